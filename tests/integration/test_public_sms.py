"""The public by text message, through the real signed Twilio webhook: REPORT files an
anonymous report (the number is never stored), JOIN/YES/STOP/HELP manage a subscription
(the number sealed, erased on STOP), and an approved public alert reaches the confirmed
subscribers of its area only, through the real worker, once, in the public wording."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ldis.bootstrap import Container
from ldis.domain.public_phone import phone_hash, unseal_phone
from ldis.services import public_subscriptions
from ldis.store.models import (
    Notice,
    OutboxMessage,
    PublicSubscriber,
    PublicText,
    Report,
    Signal,
)
from tests.integration import selfservice as s
from tests.integration.conftest import People, wait_for
from tests.integration.public_doors import app_with, areas, every_stored_value
from tests.integration.test_public_feeds import World

pytestmark = pytest.mark.integration
ANNA, BEN, CARA, DAN = "+447700900201", "+447700900202", "+447700900203", "+447700900204"


def _digits(phone: str) -> list[str]:
    """The ways a UK mobile may be written down."""
    national = "0" + phone.removeprefix("+44")
    return [
        phone,
        national,
        phone.removeprefix("+"),
        national[1:],
        f"{national[:5]} {national[5:]}",
    ]


def _reply(response: object) -> str:
    text = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.status_code == 200, text  # type: ignore[attr-defined]
    return text


@pytest.fixture
def leeds(container: Container) -> dict[str, int]:
    return areas(container, ("LEEDS", "Leeds"), ("LEEDS-C", "Leeds centre"), ("YORK", "York"))


@pytest.fixture
def texts(container: Container) -> FlaskClient:
    return app_with(container, public_report_rate="1000/hour").test_client()


def _reports(container: Container) -> list[Report]:
    with container.db.transaction() as session:
        rows = list(session.scalars(select(Report).order_by(Report.id)))
        session.expunge_all()
        return rows


def _subscribers(container: Container) -> list[PublicSubscriber]:
    with container.db.transaction() as session:
        rows = list(session.scalars(select(PublicSubscriber).order_by(PublicSubscriber.id)))
        session.expunge_all()
        return rows


def test_a_text_report_becomes_an_anonymous_public_report(
    container: Container, texts: FlaskClient, leeds: dict[str, int]
) -> None:
    story = "REPORT green oxy 80s in Leeds centre, 2 people went over fast, think fentanyl"
    reply = _reply(s.text_in(texts, story, sender=ANNA, sid="SMreport1"))
    assert "Thank you, your report helps keep people safe" in reply
    assert "carry naloxone" in reply

    (report,) = _reports(container)
    assert (report.kind, report.origin, report.verified) == ("public", "public_sms", False)
    assert report.area_id == leeds["LEEDS-C"]
    assert report.data["suspected_substances"] == ["fentanyl"]
    assert report.data["effects"] == ["passed_out"]
    assert report.data["what_happened"].startswith("green oxy 80s in Leeds centre")
    assert report.data["source"]["reference"] == "SMreport1"

    # Twilio retries the webhook: the same report, the same reply, nothing new.
    again = _reply(s.text_in(texts, story, sender=ANNA, sid="SMreport1"))
    assert again == reply
    assert len(_reports(container)) == 1
    with container.db.transaction() as session:
        signals = list(session.scalars(select(Signal)))
        assert [(x.kind, x.area_id) for x in signals] == [("public", leeds["LEEDS-C"])]

    # Lower case works, an empty report is asked to say more, and a text naming a person
    # is refused with a kind explanation; neither is stored.
    assert "Thank you" in _reply(
        s.text_in(texts, "report white pills in York, too strong", sender=BEN)
    )
    assert "after the word REPORT" in _reply(s.text_in(texts, "REPORT", sender=BEN))
    refused = _reply(s.text_in(texts, "REPORT Mr Tom Jones sold it, call 07700 900555", sender=BEN))
    assert "could not save your report" in refused
    assert len(_reports(container)) == 2

    stored = every_stored_value(container)
    for phone in (ANNA, BEN):
        for written in _digits(phone):
            assert written not in stored, f"{written} is stored"
        assert phone_hash(phone, container.settings.secret()) not in stored
    assert "Tom Jones" not in stored


def test_join_confirm_help_and_stop(
    container: Container, texts: FlaskClient, leeds: dict[str, int]
) -> None:
    unknown = _reply(s.text_in(texts, "JOIN Narnia", sender=CARA))
    assert "did not recognise that area" in unknown and "Leeds centre" in unknown
    assert _subscribers(container) == []

    asked = _reply(s.text_in(texts, "join leeds centre", sender=CARA))
    assert "drug alerts for Leeds centre. Reply YES" in asked
    (pending,) = _subscribers(container)
    assert (pending.status, pending.area_id) == ("pending", leeds["LEEDS-C"])
    secret = container.settings.secret()
    assert unseal_phone(pending.phone_sealed, secret) == CARA
    assert pending.phone_hash == phone_hash(CARA, secret)

    confirmed = _reply(s.text_in(texts, "Yes", sender=CARA))
    assert "You will now get drug alerts for Leeds centre" in confirmed
    (active,) = _subscribers(container)
    assert active.status == "active" and active.confirmed_at is not None
    assert "Reply STOP" in _reply(s.text_in(texts, "HELP", sender=CARA))
    assert "text REPORT" in _reply(s.text_in(texts, "what is this", sender=CARA))

    stored = every_stored_value(container)
    for written in _digits(CARA):
        assert written not in stored, f"{written} is stored in the clear"

    assert "<Message>" not in _reply(s.text_in(texts, "STOP", sender=CARA)), "Twilio replies"
    assert _subscribers(container) == []
    assert s.audit_events(container, "public_subscriber.erased")
    assert "<Message>" not in _reply(s.text_in(texts, "YES", sender=CARA)), "nothing pending"
    assert _subscribers(container) == []


def test_texts_from_one_number_are_throttled_without_blocking_another(
    container: Container, leeds: dict[str, int]
) -> None:
    client = app_with(container, public_report_rate="5/hour").test_client()
    replies = [
        s.text_in(client, f"REPORT junk {n} fentanyl in Leeds centre", sender=DAN)
        for n in range(1000)
    ]
    assert {r.status_code for r in replies} == {200}
    answered = [r for r in replies if "<Message>" in r.get_data(as_text=True)]
    assert len(answered) == 5, "beyond the limit: no reply, nothing stored"
    assert len(_reports(container)) == 5
    assert "Thank you" in _reply(s.text_in(client, "REPORT bad batch in York", sender=ANNA))
    assert len(_reports(container)) == 6
    with container.db.transaction() as session:
        kinds = sorted((x.kind, x.area_id) for x in session.scalars(select(Signal)))
    assert kinds == [("public", leeds["LEEDS-C"]), ("public", leeds["YORK"])]


@pytest.fixture
def world(client: FlaskClient, people: People) -> World:
    return World(client, people)


def test_a_public_alert_reaches_confirmed_subscribers_of_its_area_only(
    container: Container, world: World, worker: object
) -> None:
    texts: Flask = app_with(container, public_report_rate="1000/hour")
    phone = texts.test_client()
    # World made NYORKS with SELBY and TADCASTER inside it, and YORK apart.
    for sender, area, confirm in (
        (ANNA, "Selby", True),  # the alert's area
        (BEN, "Selby", False),  # never confirmed
        (CARA, "York", True),  # another area
        (DAN, "North Yorkshire", True),  # the county the alert's areas lie in
    ):
        assert "Reply YES" in _reply(s.text_in(phone, f"JOIN {area}", sender=sender))
        if confirm:
            assert "You will now get" in _reply(s.text_in(phone, "YES", sender=sender))

    professional = world.send("Professional only", level="professional", template="professional")
    alert_id = world.send("Nitazenes in fake oxycodone")

    def public_texts() -> list[OutboxMessage]:
        with container.db.transaction() as session:
            rows = list(
                session.scalars(
                    select(OutboxMessage)
                    .join(Notice, Notice.id == OutboxMessage.notice_id)
                    .where(Notice.purpose == "public_alert")
                    .order_by(OutboxMessage.recipient)
                )
            )
            session.expunge_all()
            return rows

    sent = wait_for(lambda: len(public_texts()) >= 2 and public_texts(), timeout=30)
    assert [m.recipient for m in sent] == sorted([ANNA, DAN])
    body = sent[0].text_body
    assert body.startswith("Drug alert: ")
    assert "Reply STOP" in body and "Call 999" in body
    assert "Share this alert with your frontline" not in body, "no professional wording"
    assert "LDIS-" not in body and "/ack/" not in body

    # Exactly once: the fan-out and the sweeper may offer it again; nothing new is written.
    again = public_subscriptions.queue_public_alert(container.db, alert_id, 1, container.renderer)
    assert again == []
    assert (
        public_subscriptions.queue_public_alert(container.db, professional, 1, container.renderer)
        == []
    )
    with container.db.transaction() as session:
        queued = list(session.scalars(select(Notice).where(Notice.purpose == "public_alert")))
        assert len(queued) == 2, "one text per phone for this alert version"
        assert all(n.recipient.startswith("p1:") for n in queued), "numbers sealed at rest"

    # A withdrawal follows the phones the alert reached, in the panel's words (as saved on
    # /panel/public-texts, tested in test_public_texts.py), the title filled in.
    with container.db.transaction() as session:
        session.add(
            PublicText(
                key="sms_withdrawn",
                text='Drug alert withdrawn: "{title}". Thanks for passing the word on.',
            )
        )
    world.withdraw(alert_id)
    both = wait_for(lambda: len(public_texts()) >= 4 and public_texts(), timeout=30)
    withdrawn = [m for m in both if "withdrawn" in m.text_body]
    assert sorted(m.recipient for m in withdrawn) == sorted([ANNA, DAN])
    assert withdrawn[0].text_body == (
        'Drug alert withdrawn: "Nitazenes in fake oxycodone". Thanks for passing the word on.'
        " Reply STOP to opt out"
    )

    # STOP erases the number from what was sent to it, too.
    _reply(s.text_in(phone, "STOP", sender=ANNA))
    assert [m.recipient for m in public_texts()] == ["", "", DAN, DAN]
