"""The panel edits the public-facing texts; the public form and the text replies use the
new words at once; bad texts are refused with the field and the fix; reset brings back
the default; admins read but cannot change; reporters cannot see the page."""

from __future__ import annotations

import html

import pytest
from flask import Flask

from ldis.bootstrap import Container
from ldis.domain.public_texts import TEXTS
from ldis.domain.roles import Role
from tests.integration import selfservice as s
from tests.integration.public_doors import app_with, areas
from tests.integration.webpages import Web, csrf
from tests.integration.webpages import text as raw_text

pytestmark = pytest.mark.integration


def text(response: object) -> str:
    return html.unescape(raw_text(response))  # type: ignore[arg-type]


@pytest.fixture
def site(container: Container) -> Flask:
    return app_with(container, public_report_rate="1000/hour")


def test_the_panel_changes_what_the_public_reads(container: Container, site: Flask) -> None:
    areas(container, ("YORK", "York"))
    web = Web(site, container)
    panel = web.browser("panelist", Role.panel)
    page = panel.get("/panel/public-texts")
    assert page.status_code == 200
    assert TEXTS["sms_report_thanks"].default in text(page)

    token = csrf(page)
    new = "Thanks for looking out for each other. Carry naloxone, and try not to use alone."
    saved = panel.post(
        "/panel/public-texts/sms_report_thanks", data={"csrf_token": token, "text": new}
    )
    assert saved.status_code == 302
    reply = s.text_in(site.test_client(), "REPORT brown powder in York, too strong")
    assert new in html.unescape(reply.get_data(as_text=True))

    intro = "Tell us what happened. No names please."
    panel.post("/panel/public-texts/form_intro", data={"csrf_token": token, "text": intro})
    assert intro in html.unescape(site.test_client().get("/report").get_data(as_text=True))

    refused = panel.post(
        "/panel/public-texts/sms_join_confirm",
        data={"csrf_token": token, "text": "Reply YES for {town} alerts, free of charge."},
    )
    assert refused.status_code == 400
    assert "only these placeholders can be used: {area}" in text(refused)
    markup = panel.post(
        "/panel/public-texts/sms_help",
        data={"csrf_token": token, "text": "<script>alert(1)</script> help text here"},
    )
    assert markup.status_code == 400 and "HTML or script" in text(markup)

    withdrawn = 'This warning is over: "{title}". Thank you for sharing it.'
    saved = panel.post(
        "/panel/public-texts/sms_withdrawn", data={"csrf_token": token, "text": withdrawn}
    )
    assert saved.status_code == 302
    assert withdrawn in text(panel.get("/panel/public-texts"))

    reset = panel.post(
        "/panel/public-texts/sms_report_thanks", data={"csrf_token": token, "action": "reset"}
    )
    assert reset.status_code == 302
    again = s.text_in(site.test_client(), "REPORT white pills in York, much stronger")
    assert TEXTS["sms_report_thanks"].default in html.unescape(again.get_data(as_text=True))
    assert s.audit_events(container, "public_text.changed")
    assert s.audit_events(container, "public_text.reset")


def test_admins_read_and_reporters_cannot_see_the_texts(container: Container, site: Flask) -> None:
    web = Web(site, container)
    admin = web.browser("admin", Role.admin)
    page = admin.get("/panel/public-texts")
    assert page.status_code == 200 and "<textarea" not in page.get_data(as_text=True)
    posted = admin.post(
        "/panel/public-texts/form_intro", data={"csrf_token": csrf(page), "text": "Changed"}
    )
    assert posted.status_code == 403
    reporter = web.browser("reporter", Role.reporter)
    assert reporter.get("/panel/public-texts").status_code == 403
