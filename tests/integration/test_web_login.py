"""Logging in and out of the web pages, the session cookie, CSRF on every form, and roles
read afresh on every request; Flask's test client against PostgreSQL with CSRF on."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import UserRole
from tests.integration.conftest import People
from tests.integration.webpages import (
    NEAR_MISS,
    PASSWORD,
    FormPage,
    Web,
    count,
    csrf,
    make_web,
    text,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    return make_web(app, container, client, people)


def test_pages_need_a_login_and_login_logout_work(web: Web, client: FlaskClient) -> None:
    email = web.user("lab", Role.reporter)
    response = client.get("/reports?kind=near_miss")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/reports?kind%3Dnear_miss"

    wrong = web.login(client, email, "not the password at all")
    assert wrong.status_code == 401 and "Enter a correct e-mail address and password" in text(wrong)
    assert FormPage(text(wrong)).values["email"] == email  # kept; the password is not
    assert FormPage(text(wrong)).values["password"] == ""
    nobody = web.login(client, "nobody@example.org")
    assert nobody.status_code == 401

    token = csrf(client.get("/login?next=/reports/new"))
    ok = client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": email.upper(),
            "password": PASSWORD,
            "next": "/reports/new",
        },
    )
    assert ok.status_code == 302 and ok.headers["Location"] == "/reports/new"
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # http here
    assert client.get("/").headers["Location"] == "/reports"
    page = client.get("/reports")
    assert page.status_code == 200 and "Log out" in text(page) and "File a report" in text(page)

    assert client.post("/logout").status_code == 400  # no CSRF token: refused, still logged in
    assert client.get("/reports").status_code == 200
    out = client.post("/logout", data={"csrf_token": csrf(page)})
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert "You have logged out" in text(client.get("/login"))
    assert client.get("/reports").status_code == 302


def test_session_cookie_is_secure_behind_https(settings_env: dict[str, str]) -> None:
    from ldis.bootstrap import build
    from ldis.settings import load_settings
    from ldis.web.app import create_app

    built = build(load_settings({**settings_env, "LDIS_PUBLIC_URL": "https://ldis.example"}))
    try:
        app = create_app(built)
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_HTTPONLY"] is True
        assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    finally:
        built.close()


def test_a_form_posted_after_logging_out_goes_to_login(web: Web, container: Container) -> None:
    browser = web.browser("lab", Role.reporter)
    token = csrf(browser.get("/reports/new/near_miss"))
    browser.post("/logout", data={"csrf_token": token})
    response = browser.post("/reports/new/near_miss", data={**NEAR_MISS, "csrf_token": token})
    assert response.status_code in (302, 400)  # never filed
    assert count(container) == 0
    assert browser.get("/reports").status_code == 302


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_login_never_redirects_off_site(web: Web, client: FlaskClient, target: str) -> None:
    email = web.user("lab", Role.reporter)
    token = csrf(client.get("/login"))
    response = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/reports"


def test_csrf_token_is_required_on_every_form(web: Web, client: FlaskClient) -> None:
    email = web.user("lab", Role.reporter)
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 400
    browser = web.browser("lab2", Role.reporter)
    refused = browser.post("/reports/new/near_miss", data=NEAR_MISS)
    assert refused.status_code == 400 and "This form has expired" in text(refused)
    forged = browser.post("/reports/new/near_miss", data={**NEAR_MISS, "csrf_token": "forged"})
    assert forged.status_code == 400
    assert browser.post("/reports/1/updates", data={"text": "x"}).status_code == 400


def test_a_removed_role_takes_effect_at_once(web: Web, container: Container) -> None:
    browser = web.browser("lab", Role.reporter)
    assert browser.get("/reports").status_code == 200
    with container.db.transaction() as session:
        session.execute(delete(UserRole))
    forbidden = browser.get("/reports")
    assert forbidden.status_code == 403 and "does not have the role" in text(forbidden)
