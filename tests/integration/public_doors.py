"""Helpers for the public report tests: the form as a browser fills it (CSRF cookie,
signed token, a distinct client address per test so the per-address limit of one test
never throttles another), an app with test settings, and a scan of every stored value."""

from __future__ import annotations

import dataclasses
import re
import secrets
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.store.models import Area, Base
from ldis.web.app import create_app
from ldis.web.public_reports import FORM_PURPOSE
from tests.integration import selfservice as s

_HIDDEN = re.compile(r'name="(csrf_token|token)" value="([^"]+)"')


def app_with(container: Container, queue: Any = None, **settings: Any) -> Flask:
    """The app with some settings changed (and Twilio's token, for the webhook)."""
    changed = container.settings.model_copy(
        update={"twilio_auth_token": s.TWILIO_TOKEN, **settings}
    )
    return create_app(
        dataclasses.replace(container, settings=changed, queue=queue or s.RecordingQueue())
    )


def new_address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


class Browser:
    """One person at one address, filling in /report."""

    def __init__(self, app: Flask, address: str | None = None) -> None:
        self.client: FlaskClient = app.test_client()
        self.address = address or new_address()
        self.secret = app.config["SECRET_KEY"]

    def open_form(self) -> dict[str, str]:
        page = self.client.get("/report", environ_base={"REMOTE_ADDR": self.address})
        assert page.status_code == 200, page.status_code
        return dict(_HIDDEN.findall(page.get_data(as_text=True)))

    def fresh_token(self) -> str:
        """A token as the form would carry it (signed now), without loading the page."""
        signer = URLSafeTimedSerializer(self.secret, salt=FORM_PURPOSE)
        return str(signer.dumps(secrets.token_urlsafe(18)))

    def send(self, hidden: dict[str, str], **fields: Any) -> TestResponse:
        data = {"csrf_token": hidden["csrf_token"], "token": hidden["token"], **fields}
        return self.client.post("/report", data=data, environ_base={"REMOTE_ADDR": self.address})


def areas(container: Container, *pairs: tuple[str, str]) -> dict[str, int]:
    with container.db.transaction() as session:
        for code, name in pairs:
            session.add(Area(code=code, name=name))
        session.flush()
        return {code: i for code, i in session.execute(select(Area.code, Area.id)).all()}


def every_stored_value(container: Container) -> str:
    """Every row of every table, as text, for "is this stored anywhere?" checks."""
    chunks: list[str] = []
    with container.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(text(f'SELECT * FROM "{table.name}"')):
                chunks.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(chunks)
