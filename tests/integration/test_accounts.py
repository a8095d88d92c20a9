"""People and trust: the password policy, lockout with back-off, password reset by e-mailed
single-use link, session time-outs, two-factor sign-in (enrolment, wrong and replayed codes,
recovery codes), a fresh second factor to approve or withdraw (web and API), and API tokens
(scopes, revocation, last use, the tokens page). Against PostgreSQL with CSRF on; time is
moved by passing `now` or by ageing the session cookie's timestamps, never by sleeping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ldis.bootstrap import Container
from ldis.domain.errors import ValidationFailed
from ldis.domain.roles import Role
from ldis.services import password_reset, two_factor
from ldis.services.accounts import (
    create_token,
    create_user,
    list_tokens,
    principal_for_token,
    revoke_token,
)
from ldis.services.sessions import sign_in
from ldis.store.models import ApiToken, AuditEvent, Notice, PasswordReset, User
from ldis.web.access import SESSION_SECOND_FACTOR, SESSION_SEEN, SESSION_STARTED
from tests.integration.cases import decided_report_via
from tests.integration.conftest import People
from tests.integration.thin_path import ALERT
from tests.integration.webpages import (
    AREA,
    PASSWORD,
    FormPage,
    Web,
    csrf,
    error_beside,
    make_web,
    post_form,
    text,
)

pytestmark = pytest.mark.integration
NEW_PASSWORD = "kettle moorland lantern drizzle"


@pytest.fixture
def web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    return make_web(app, container, client, people)


def _actions(container: Container, user_id: int | None = None) -> list[str]:
    with container.db.transaction() as session:
        query = select(AuditEvent.action).order_by(AuditEvent.id)
        if user_id is not None:
            query = query.where(AuditEvent.entity == "user", AuditEvent.entity_id == user_id)
        return list(session.scalars(query))


def _user(container: Container, email: str) -> User:
    with container.db.transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        session.expunge(user)
        return user


# The password policy.


def test_the_policy_refuses_naming_the_field(container: Container) -> None:
    for password, problem in (
        ("too short", "at least 12 characters"),
        ("password1234", "common passwords"),
        ("qwertyuiopasdf", "too easy to guess"),
        ("casper-loves-ferries", "your name or e-mail"),
        ("x" * 257, "256 characters or fewer"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            create_user(
                container.db,
                email="casper@example.org",
                name="Casper",
                roles=frozenset({Role.reporter}),
                password=password,
            )
        assert list(refused.value.fields) == ["password"]
        assert problem in refused.value.fields["password"], (password, refused.value.fields)


# Lockout with back-off.


def test_lockout_backs_off_and_answers_as_for_a_wrong_password(
    web: Web, client: FlaskClient, container: Container
) -> None:
    email = web.user("lab", Role.reporter)
    user_id = _user(container, email).id
    now = datetime.now(UTC)
    for _ in range(4):
        assert sign_in(container.db, email, "wrong password here", now=now) is None
    assert _user(container, email).locked_until is None
    assert sign_in(container.db, email, "wrong password here", now=now) is None  # the fifth
    assert _user(container, email).locked_until == now + timedelta(minutes=1)
    # Locked: even the right password is refused, and the lock does not grow meanwhile.
    assert sign_in(container.db, email, PASSWORD, now=now + timedelta(seconds=59)) is None
    assert _user(container, email).failed_logins == 5
    # A minute later one more failure locks for two minutes (doubling).
    later = now + timedelta(minutes=1)
    assert sign_in(container.db, email, "wrong password here", now=later) is None
    assert _user(container, email).locked_until == later + timedelta(minutes=2)
    after = later + timedelta(minutes=2)
    signed = sign_in(container.db, email, PASSWORD, now=after)
    assert signed is not None and signed.next_step == "done"
    assert (_user(container, email).failed_logins, _user(container, email).locked_until) == (
        0,
        None,
    )
    actions = _actions(container, user_id)
    assert actions.count("session.failed") == 6 and actions.count("user.locked") == 2
    assert "session.refused_locked" in actions and actions[-1] == "session.started"

    # On the page, a locked account, a wrong password and an unknown address look the same.
    for _ in range(5):
        web.login(client, email, "wrong password here")
    answers = [
        web.login(client, email, PASSWORD),  # locked now
        web.login(client, email, "wrong password here"),
        web.login(client, "nobody@example.org"),
    ]
    assert {a.status_code for a in answers} == {401}

    def normalised(html: str) -> str:
        html = re.sub(r'name="csrf_token" type="hidden" value="[^"]*"', "", html)
        return re.sub(r'value="[^"]*@example.org"', "", html)

    assert len({normalised(text(a)) for a in answers}) == 1
    assert "Enter a correct e-mail address and password" in text(answers[0])


# Password reset.


def _reset_link(container: Container, email: str) -> str:
    with container.db.transaction() as session:
        notice = session.scalars(
            select(Notice).where(Notice.recipient == email).order_by(Notice.id.desc())
        ).first()
        assert notice is not None and notice.purpose == "password_reset"
        match = re.search(r"http://ldis\.test(/login/reset/\S+)", notice.text_body)
        assert match, notice.text_body
        return match.group(1)


def test_password_reset_by_a_single_use_link(
    web: Web, client: FlaskClient, container: Container
) -> None:
    email = web.user("lab", Role.reporter)
    already = web.browser("lab2", Role.reporter)
    earlier = web.app.test_client()  # lab's own browser, logged in before the reset
    assert web.login(earlier, email).status_code == 302

    known = post_form(client, "/login/forgot", {"email": email.upper()})
    unknown = post_form(client, "/login/forgot", {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert text(known) == text(unknown)
    assert "If an account uses that address" in text(known)
    with container.db.transaction() as session:
        notices = session.scalars(select(Notice)).all()
        assert [n.recipient for n in notices] == [email]
        stored = session.scalars(select(PasswordReset.token_hash)).all()
    link = _reset_link(container, email)
    token = link.rsplit("/", 1)[1]
    assert token not in stored  # only the hash is kept

    form = client.get(link)
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    weak = client.post(link, data={"csrf_token": csrf(form), "new_password": "password1234"})
    assert weak.status_code == 422
    assert "common passwords" in error_beside(text(weak), "new_password")
    done = client.post(link, data={"csrf_token": csrf(form), "new_password": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/login"

    # Used once; the old password and every earlier session are finished; others untouched.
    again = client.get(link)
    assert again.status_code == 404 and "cannot be used" in text(again)
    assert web.login(client, email).status_code == 401
    assert web.login(web.app.test_client(), email, NEW_PASSWORD).status_code == 302
    assert earlier.get("/reports").status_code == 302
    assert "the password of this account was changed" in text(earlier.get("/login"))
    assert already.get("/reports").status_code == 200
    assert "user.password_reset" in _actions(container, _user(container, email).id)


def test_a_reset_link_expires_after_an_hour(web: Web, container: Container) -> None:
    email = web.user("lab", Role.reporter)
    now = datetime.now(UTC)
    notice = password_reset.request_reset(
        container.db, email, public_url="http://ldis.test", now=now
    )
    assert notice is not None
    token = _reset_link(container, email).rsplit("/", 1)[1]
    later = now + timedelta(hours=1)
    assert password_reset.link_is_live(container.db, token, now=later - timedelta(seconds=1))
    assert not password_reset.link_is_live(container.db, token, now=later)
    with pytest.raises(password_reset.ResetLinkInvalid):
        password_reset.reset_password(container.db, token, NEW_PASSWORD, now=later)
    with pytest.raises(password_reset.ResetLinkInvalid):
        password_reset.reset_password(container.db, "made-up", NEW_PASSWORD, now=now)
    # Nobody's inbox can be flooded: three links an hour at most.
    for _ in range(2):
        assert password_reset.request_reset(container.db, email, public_url="x", now=now)
    assert password_reset.request_reset(container.db, email, public_url="x", now=now) is None


# Session time-outs.


def _age(browser: FlaskClient, key: str, seconds: float) -> None:
    with browser.session_transaction() as session:
        session[key] = session[key] - seconds


def test_a_session_ends_after_idling_and_after_twelve_hours(web: Web) -> None:
    browser = web.browser("lab", Role.reporter)
    _age(browser, SESSION_SEEN, 29 * 60)
    assert browser.get("/reports").status_code == 200  # 29 minutes idle: fine, and renewed
    _age(browser, SESSION_SEEN, 30 * 60)
    assert browser.get("/reports").status_code == 302
    assert "left unused for a while" in text(browser.get("/login"))

    busy = web.browser("lab2", Role.reporter)
    _age(busy, SESSION_STARTED, 12 * 3600 - 60)
    assert busy.get("/reports").status_code == 200
    _age(busy, SESSION_STARTED, 60)
    assert busy.get("/reports").status_code == 302
    assert "logged in for a long time" in text(busy.get("/login"))


# Two-factor sign-in.


def _secret(html: str) -> str:
    match = re.search(r'<code id="secret">([A-Z2-7 ]+)</code>', html)
    assert match, "no secret shown as text"
    return match.group(1).replace(" ", "")


def _password_only(browser: FlaskClient, email: str) -> Any:
    """The first step of logging in, without the test helper entering any code."""
    token = csrf(browser.get("/login"))
    return browser.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})


def _code_page(browser: FlaskClient, path: str, code: str) -> Any:
    return browser.post(path, data={"csrf_token": csrf(browser.get(path)), "code": code})


def test_panel_members_enrol_before_anything_else_and_codes_work_once(
    web: Web, container: Container
) -> None:
    email = "nell@example.org"
    create_user(
        container.db,
        email=email,
        name="Nell",
        roles=frozenset({Role.panel}),
        password=PASSWORD,
    )
    browser = web.app.test_client()
    first = _password_only(browser, email)
    assert first.status_code == 302 and first.headers["Location"] == "/login/two-factor/setup"
    assert browser.get("/alerts").status_code == 302  # nothing else before enrolling
    page = browser.get("/login/two-factor/setup")
    html = text(page)
    assert page.status_code == 200 and "<svg" in html and "<script" not in html
    secret = _secret(html)
    assert _secret(text(browser.get("/login/two-factor/setup"))) == secret  # same until used
    app = pyotp.TOTP(secret)

    wrong = _code_page(browser, "/login/two-factor/setup", "000000")
    assert wrong.status_code == 401 and "wrong" in error_beside(text(wrong), "code")
    first_code = app.now()
    enrolled = _code_page(browser, "/login/two-factor/setup", first_code)
    assert enrolled.status_code == 200 and enrolled.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<li><code>([a-z0-9-]{11})</code></li>", text(enrolled))
    assert len(codes) == 10
    assert browser.get("/alerts").status_code == 200
    with container.db.transaction() as session:
        stored = session.scalar(select(User.totp_secret).where(User.email == email))
    assert stored and secret not in stored  # sealed at rest

    # Next time: password, then a code; the same code is never taken twice.
    browser.post("/logout", data={"csrf_token": csrf(browser.get("/alerts"))})
    again = web.app.test_client()
    step = _password_only(again, email)
    assert step.headers["Location"] == "/login/two-factor"
    assert again.get("/alerts").status_code == 302
    replay = _code_page(again, "/login/two-factor", first_code)
    assert replay.status_code == 401, "the enrolment code was used already"
    assert "already been used" in error_beside(text(replay), "code")

    # A recovery code stands in for the phone, once.
    ok = _code_page(again, "/login/two-factor", codes[0].upper())
    assert ok.status_code == 302 and again.get("/alerts").status_code == 200
    assert "<strong>9</strong> unused recovery codes" in text(again.get("/account"))
    other = web.app.test_client()
    _password_only(other, email)
    assert _code_page(other, "/login/two-factor", codes[0]).status_code == 401
    assert _code_page(other, "/login/two-factor", codes[1]).status_code == 302
    user_id = _user(container, email).id
    actions = _actions(container, user_id)
    assert "two_factor.enrolled" in actions and "two_factor.failed" in actions
    assert actions.count("two_factor.recovery_code_used") == 2


def test_wrong_codes_lock_the_account_too(web: Web, container: Container) -> None:
    email = web.user("nell", Role.panel)
    browser = web.app.test_client()
    for _ in range(5):
        assert _password_only(browser, email).status_code == 302  # the password is right ...
        assert web.enter_code(browser, email, "000000").status_code in (401, 302)
    # ... but that does not reset the count between guesses at the code: now locked.
    assert _user(container, email).locked_until is not None
    assert _password_only(browser, email).status_code == 401


# A fresh second factor to approve or withdraw.


def _awaiting_alert(client: FlaskClient, people: People) -> int:
    drafter = people.headers("drafter", Role.panel)
    report_id = decided_report_via(client, drafter, AREA)
    alert = client.post(
        "/api/v1/alerts", json={**ALERT, "report_id": report_id}, headers=drafter
    ).get_json()
    submitted = client.post(f"/api/v1/alerts/{alert['id']}/submit", headers=drafter)
    assert submitted.status_code == 200
    return int(alert["id"])


def test_approving_on_the_web_asks_for_a_new_code_after_fifteen_minutes(
    web: Web, client: FlaskClient, people: People, container: Container
) -> None:
    alert_id = _awaiting_alert(client, people)
    page_path = f"/alerts/{alert_id}"
    penny = web.browser("penny", Role.panel)
    fresh = text(penny.get(page_path))
    assert 'name="otp"' not in fresh  # logged in with a code just now

    _age(penny, SESSION_SECOND_FACTOR, 15 * 60)
    page = penny.get(page_path)
    assert 'id="approve_otp"' in text(page)
    values = FormPage(text(page)).values
    form = {"csrf_token": values["csrf_token"], "revision": values["revision"]}
    refused = penny.post(f"{page_path}/approve", data=form)
    assert refused.status_code == 422
    assert "Enter the 6-digit code" in error_beside(text(refused), "approve_otp")
    wrong = penny.post(f"{page_path}/approve", data={**form, "otp": "000000"})
    assert wrong.status_code == 403 and "wrong" in error_beside(text(wrong), "approve_otp")
    view = client.get(f"/api/v1/alerts/{alert_id}", headers=people.headers("drafter"))
    assert view.get_json()["approvals"] == 0

    code = web.apps.code("penny@example.org")
    approved = penny.post(f"{page_path}/approve", data={**form, "otp": code})
    assert approved.status_code == 302
    view = client.get(f"/api/v1/alerts/{alert_id}", headers=people.headers("drafter"))
    assert view.get_json()["approvals"] == 1
    assert 'name="otp"' not in text(penny.get(page_path))  # fresh again for 15 minutes
    assert "two_factor.verified" in _actions(container)


def test_withdrawing_on_the_web_asks_for_a_new_code_and_keeps_the_reason(
    web: Web, client: FlaskClient, people: People
) -> None:
    alert_id = _awaiting_alert(client, people)
    for name in ("p2", "p3"):
        approver = people.headers(name, Role.panel)
        response = client.post(
            f"/api/v1/alerts/{alert_id}/approve",
            json={"otp": people.otp(name)},
            headers=approver,
        )
        assert response.status_code == 200, response.get_json()
    wendy = web.browser("wendy", Role.panel)
    _age(wendy, SESSION_SECOND_FACTOR, 16 * 60)
    path = f"/alerts/{alert_id}"
    token = csrf(wendy.get(path))
    reason = "Lab retest found no nitazene."
    refused = wendy.post(f"{path}/withdraw", data={"csrf_token": token, "withdraw_reason": reason})
    assert refused.status_code == 422
    assert "code" in error_beside(text(refused), "withdraw_otp")
    assert FormPage(text(refused)).values["withdraw_reason"] == reason
    code = web.apps.code("wendy@example.org")
    asked = wendy.post(
        f"{path}/withdraw", data={"csrf_token": token, "withdraw_reason": reason, "otp": code}
    )
    assert asked.status_code == 302
    view = client.get(f"/api/v1/alerts/{alert_id}", headers=people.headers("p2")).get_json()
    assert view["status"] == "withdrawal_requested"


def test_the_api_needs_a_current_code_to_approve_or_withdraw(
    web: Web, client: FlaskClient, people: People, container: Container
) -> None:
    alert_id = _awaiting_alert(client, people)
    approve = f"/api/v1/alerts/{alert_id}/approve"
    p2 = people.headers("p2", Role.panel)

    missing = client.post(approve, headers=p2)
    assert missing.status_code == 422 and "otp" in missing.get_json()["fields"]
    wrong = client.post(approve, json={"otp": "000000"}, headers=p2)
    assert wrong.status_code == 403 and wrong.get_json()["error"] == "second_factor_required"
    not_text = client.post(approve, json={"otp": 123456}, headers=p2)
    assert not_text.status_code == 422
    code = people.otp("p2")
    assert client.post(approve, json={"otp": code}, headers=p2).status_code == 200
    # The same code again (say, a replayed request) is refused before anything else.
    replayed = client.post(approve, json={"otp": code}, headers=p2)
    assert replayed.status_code == 403 and "already been used" in replayed.get_json()["message"]

    # A panel member without two-factor cannot approve through the API at all.
    create_user(container.db, email="nat@example.org", name="Nat", roles=frozenset({Role.panel}))
    nat = {"Authorization": "Bearer " + create_token(container.db, email="nat@example.org")}
    refused = client.post(approve, json={"otp": "123456"}, headers=nat)
    assert refused.status_code == 403 and refused.get_json()["error"] == "second_factor_required"
    assert "set it up" in refused.get_json()["message"]

    # A recovery code works too, once.
    [code_one, *_] = two_factor.regenerate_recovery_codes(container.db, people.ids["p2"])
    p3 = people.headers("p3", Role.panel)
    assert client.post(approve, json={"otp": people.otp("p3")}, headers=p3).status_code == 200
    withdraw = f"/api/v1/alerts/{alert_id}/withdraw"
    no_code = client.post(withdraw, json={"reason": "Lab retest."}, headers=p2)
    assert no_code.status_code == 422 and "otp" in no_code.get_json()["fields"]
    body = {"reason": "Lab retest.", "otp": code_one}
    asked = client.post(withdraw, json=body, headers=p2)
    assert asked.status_code == 200 and asked.get_json()["status"] == "withdrawal_requested"
    used = client.post(withdraw, json=body, headers=p2)
    assert used.status_code == 403


# API tokens.


def test_a_token_scoped_to_reporter_cannot_approve(
    web: Web, client: FlaskClient, people: People, container: Container
) -> None:
    alert_id = _awaiting_alert(client, people)
    people.headers("p2", Role.panel, Role.reporter)
    scoped = create_token(container.db, email="p2@example.org", scopes=[Role.reporter])
    headers = {"Authorization": f"Bearer {scoped}"}
    refused = client.post(
        f"/api/v1/alerts/{alert_id}/approve", json={"otp": people.otp("p2")}, headers=headers
    )
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    assert client.get("/api/v1/alerts", headers=headers).status_code == 403
    assert client.get("/api/v1/reports", headers=headers).status_code == 200
    principal = principal_for_token(container.db, scoped)
    assert principal is not None and principal.roles == {Role.reporter}
    # A scope the user does not hold is refused when the token is made.
    with pytest.raises(ValidationFailed) as outside:
        create_token(container.db, email="p2@example.org", scopes=[Role.admin])
    assert "scope" in outside.value.fields


def test_tokens_are_revocable_and_record_their_last_use(
    client: FlaskClient, people: People, container: Container
) -> None:
    headers = people.headers("lab", Role.reporter)
    token = headers["Authorization"].removeprefix("Bearer ")
    principal = principal_for_token(container.db, token)
    assert principal is not None
    [listed] = list_tokens(container.db, principal)
    assert listed["last_used_at"] is not None and listed["scopes"] == []
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert principal_for_token(container.db, token, now=later) is not None
    with container.db.transaction() as session:
        assert session.scalar(select(ApiToken.last_used_at)) == later
    assert client.get("/api/v1/reports", headers=headers).status_code == 200
    revoke_token(container.db, principal, listed["id"])
    gone = client.get("/api/v1/reports", headers=headers)
    assert gone.status_code == 401 and gone.get_json()["error"] == "unauthenticated"
    assert "token.revoked" in _actions(container)


def test_the_tokens_page_shows_a_new_token_once(web: Web, client: FlaskClient) -> None:
    browser = web.browser("lab", Role.reporter, Role.service_manager)
    page = browser.get("/account/tokens")
    assert page.status_code == 200 and "You have no API tokens" in text(page)
    nameless = post_form(browser, "/account/tokens", {"label": " "})
    assert nameless.status_code == 422 and error_beside(text(nameless), "label")
    made = post_form(
        browser, "/account/tokens", {"label": "upload script", "scope": Role.reporter.value}
    )
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    match = re.search(r'<code class="ref">(ldis_[A-Za-z0-9_-]+)</code>', text(made))
    assert match
    token = match.group(1)
    listing = text(browser.get("/account/tokens"))
    assert token not in listing and "upload script" in listing and "Never" in listing
    assert (
        client.get("/api/v1/reports", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    listing = text(browser.get("/account/tokens"))
    assert "Never" not in listing  # last used: just now
    token_id = re.search(r"/account/tokens/(\d+)/revoke", listing)
    assert token_id
    revoke_path = f"/account/tokens/{token_id.group(1)}/revoke"
    revoked = browser.post(revoke_path, data={"csrf_token": csrf(browser.get("/account/tokens"))})
    assert revoked.status_code == 302
    assert (
        client.get("/api/v1/reports", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert "Revoked" in text(browser.get("/account/tokens"))
    # Someone else's token cannot be revoked from here.
    other = web.browser("lab2", Role.reporter)
    refused = other.post(revoke_path, data={"csrf_token": csrf(other.get("/account/tokens"))})
    assert refused.status_code == 404


# Your account.


def test_changing_your_password_signs_out_other_browsers(web: Web) -> None:
    here = web.browser("lab", Role.reporter)
    elsewhere = web.app.test_client()
    assert web.login(elsewhere, "lab@example.org").status_code == 302
    account = here.get("/account")
    assert account.status_code == 200 and "Off." in text(account)
    token = csrf(account)
    wrong = here.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": "not it at all",
            "new_password": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 422
    assert "not your current password" in error_beside(text(wrong), "current_password")
    weak = here.post(
        "/account/password",
        data={"csrf_token": token, "current_password": PASSWORD, "new_password": "lab password 1"},
    )
    assert weak.status_code == 422
    assert "New password must not contain your name" in error_beside(text(weak), "new_password")
    changed = here.post(
        "/account/password",
        data={"csrf_token": token, "current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert here.get("/reports").status_code == 200
    assert elsewhere.get("/reports").status_code == 302


def test_account_page_two_factor_and_new_recovery_codes(web: Web, container: Container) -> None:
    reporter = web.browser("lab", Role.reporter)
    setup = reporter.get("/account/two-factor")
    app = pyotp.TOTP(_secret(text(setup)))
    on = _code_page(reporter, "/account/two-factor", app.now())
    assert on.status_code == 200 and len(re.findall(r"<li><code>", text(on))) == 10
    assert "<strong>On</strong>" in text(reporter.get("/account"))

    panel = web.browser("penny", Role.panel)
    page = panel.get("/account")
    assert "<strong>0</strong> unused recovery codes" in text(page)  # provisioned: none yet
    fresh = panel.post("/account/recovery-codes", data={"csrf_token": csrf(page)})
    assert fresh.status_code == 200 and len(re.findall(r"<li><code>", text(fresh))) == 10
    _age(panel, SESSION_SECOND_FACTOR, 20 * 60)
    page = panel.get("/account")
    assert 'id="code"' in text(page)
    refused = panel.post("/account/recovery-codes", data={"csrf_token": csrf(page)})
    assert refused.status_code == 422
    code = web.apps.code("penny@example.org")
    again = panel.post("/account/recovery-codes", data={"csrf_token": csrf(page), "code": code})
    assert again.status_code == 200
    assert "<strong>10</strong> unused recovery codes" in text(panel.get("/account"))
