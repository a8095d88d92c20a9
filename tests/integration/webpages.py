"""Helpers for the web page tests: users with passwords and their own logged-in browsers,
reading a page's form (values, CSRF token, the error beside a field), test images."""

from __future__ import annotations

import re
import struct
import zlib
from datetime import datetime
from html import unescape
from html.parser import HTMLParser
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from PIL import ExifTags, Image
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.domain.two_factor import required_for
from ldis.services.accounts import create_token, create_user
from ldis.store.models import Report
from tests.integration.conftest import Authenticators, People

PASSWORD = "correct horse battery staple"
AREA = "SELBY"
LONDON = ZoneInfo("Europe/London")


class FormPage(HTMLParser):
    """What a page's form shows: each field's value (typed, selected or hidden)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name") or ""
        if tag == "input" and a.get("type") == "checkbox":
            if "checked" in a:
                self.values[name] = a.get("value") or "on"
        elif tag == "input" and a.get("type") != "file":
            self.values[name] = a.get("value") or ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value") or ""
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += (
                data.lstrip("\r\n") if not self.values[self._textarea] else data
            )


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def csrf(response: TestResponse) -> str:
    return FormPage(text(response)).values["csrf_token"]


def error_beside(html: str, field_id: str) -> str:
    match = re.search(
        rf'id="{re.escape(field_id)}-error"><span class="visually-hidden">Error:</span> (.*?)</p>',
        html,
        re.S,
    )
    assert match, f"no error beside {field_id}"
    return unescape(match.group(1))


def summary_links(html: str) -> list[str]:
    box = html.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<a href="#([^"]+)">', box)


class Web:
    """People with passwords, each with their own logged-in browser. Panel members and
    admins have two-factor set up (it is required of them) and `login` enters their code,
    as a person with an authenticator app would."""

    def __init__(
        self, app: Flask, container: Container, apps: Authenticators | None = None
    ) -> None:
        self.app, self.container = app, container
        self.apps = apps or Authenticators(container)

    def user(self, name: str, *roles: Role) -> str:
        email = f"{name}@example.org"
        create_user(
            self.container.db, email=email, name=name, roles=frozenset(roles), password=PASSWORD
        )
        if required_for(roles):
            self.apps.enrol(email)
        return email

    def login(self, client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
        token = csrf(client.get("/login"))
        response = client.post(
            "/login", data={"csrf_token": token, "email": email, "password": password}
        )
        if response.status_code == 302 and response.headers["Location"] == "/login/two-factor":
            response = self.enter_code(client, email)
        return response

    def enter_code(self, client: FlaskClient, email: str, code: str | None = None) -> TestResponse:
        """The second step of logging in: the current code from the user's app."""
        token = csrf(client.get("/login/two-factor"))
        return client.post(
            "/login/two-factor",
            data={"csrf_token": token, "code": code or self.apps.code(email.lower())},
        )

    def browser(self, name: str, *roles: Role) -> FlaskClient:
        client = self.app.test_client()
        response = self.login(client, self.user(name, *roles))
        assert response.status_code == 302, text(response)
        return client

    def token(self, name: str) -> dict[str, str]:
        return {
            "Authorization": "Bearer "
            + create_token(self.container.db, email=f"{name}@example.org")
        }


def make_web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    admin = people.headers("admin", Role.admin)
    for area in (
        {"code": "NYORKS", "name": "North Yorkshire"},
        {"code": AREA, "name": "Selby", "parent": "NYORKS"},
    ):
        # The JSON API with a bearer token needs no CSRF token: it works exactly as before.
        assert client.post("/api/v1/areas", json=area, headers=admin).status_code == 201
    return Web(app, container, people.apps)


def post_form(
    client: FlaskClient, path: str, fields: dict[str, Any], **kwargs: Any
) -> TestResponse:
    return client.post(path, data={"csrf_token": csrf(client.get(path)), **fields}, **kwargs)


def london(moment: datetime) -> str:
    return moment.astimezone(LONDON).strftime("%Y-%m-%dT%H:%M")


NEAR_MISS = {
    "occurred_at": "2026-07-01T12:30",
    "area": AREA,
    "lat": "53.95912",
    "lon": "-1.08171",
    "suspected_substances": "heroin, xylazine",
    "naloxone_doses": "2",
    "outcome": "hospital",
    "setting": "hostel",
    "source_type": "outreach",
    "source_name": "York outreach",
    "notes": "Two doses of naloxone needed.",
}
DRUG_CHECK = {
    "sample_obtained_on": "2026-11-20",
    "area": AREA,
    "sold_as": "oxycodone 80 mg",
    "sample_form": "tablet",
    "appearance_colour": "green",
    "appearance_markings": "OC 80",
    "result1-substance": "Protonitazepyne",
    "result1-method": "lc-ms",
    "result1-abundance": "primary",
    "result3-substance": "zorbazine",
    "result3-method": "ftir",
    "result3-abundance": "trace",
    "source_type": "drug_checking_service",
    "source_name": "Lab",
    "source_reference": "S-001",
}


def count(container: Container, model: Any = Report) -> int:
    with container.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def jpeg_with_gps(size: tuple[int, int] = (2400, 1200)) -> bytes:
    image = Image.new("RGB", size, (30, 140, 60))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Orientation] = 1
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (53.0, 57.0, 33.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (1.0, 4.0, 54.0)
    out = BytesIO()
    image.save(out, format="JPEG", exif=exif, comment=b"Seized at 12 Acacia Avenue")
    raw = out.getvalue()
    check = Image.open(BytesIO(raw)).getexif()
    assert check.get_ifd(ExifTags.IFD.GPSInfo), "the test photo must carry GPS to start with"
    return raw


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny file claiming ten billion pixels: only the header, never decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
