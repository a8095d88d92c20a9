"""The CSV import pages through Flask's test client against PostgreSQL with CSRF on: upload,
the dry-run page (bad rows in a table, changes), apply exactly the previewed file, the
export download, and the error states."""

from __future__ import annotations

import re
from html import unescape
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import Area, Contact, Service
from tests.integration.test_recipients_bulk import ROWS, count, csv_file
from tests.integration.webpages import Web, csrf, error_beside, text

pytestmark = pytest.mark.integration
PAGE = "/recipients/import"


@pytest.fixture
def web(app: Flask, container: Container) -> Web:
    for path in staged(container):  # the instance folder is shared by the whole run
        path.unlink()
    with container.db.transaction() as session:
        session.add_all(Area(code=code, name=code) for code in ("YORK-C", "YORK-W", "SELBY"))
    return Web(app, container)


@pytest.fixture
def admin(web: Web) -> FlaskClient:
    return web.browser("admin", Role.admin)


def upload(browser: FlaskClient, data: bytes, name: str = "recipients.csv") -> TestResponse:
    token = csrf(browser.get(PAGE))
    return browser.post(
        PAGE,
        data={"csrf_token": token, "csv_file": (BytesIO(data), name, "text/csv")},
        content_type="multipart/form-data",
    )


def apply_form(html: str) -> dict[str, str]:
    form = html.split('action="/recipients/import/apply"', 1)[1].split("</form>", 1)[0]
    return dict(re.findall(r'name="([^"]+)"[^>]*value="([^"]*)"', form))


def staged(container: Container) -> list[Path]:
    return list((container.settings.instance_path / "recipient-imports").glob("*.csv"))


def test_upload_preview_then_apply(admin: FlaskClient, container: Container) -> None:
    page = admin.get(PAGE)
    assert page.status_code == 200
    assert 'href="/recipients/export.csv"' in text(page)
    assert 'enctype="multipart/form-data"' in text(page)

    preview = upload(admin, csv_file(*ROWS))
    assert preview.status_code == 200
    html = text(preview)
    assert "Check the import" in html and "Nothing has been saved yet" in html
    assert html.count('class="change"') == 6  # 3 services and 3 contacts to create
    counts = '<th scope="row">{}</th><td>3</td><td>0</td><td>0</td><td>0</td>'
    assert counts.format("Services") in html and counts.format("Contacts") in html
    assert "Service NSP-YORK: York NSP" in html
    assert "awaiting verification: sms, email" in html
    assert "jo@example.org" not in html  # addresses are never echoed
    assert count(container, Service) == 0
    fields = apply_form(html)
    assert set(fields) == {"csrf_token", "file", "plan"}
    assert len(staged(container)) == 1

    applied = admin.post("/recipients/import/apply", data=fields)
    assert applied.status_code == 302 and applied.headers["Location"].endswith(PAGE)
    assert count(container, Service) == 3 and count(container, Contact) == 3
    done = text(admin.get(PAGE))
    assert (
        "Import applied: 3 services created, 0 updated; 3 contacts created, 0 updated. "
        "4 channels are awaiting verification: 4 codes or links have been sent." in unescape(done)
    )
    assert staged(container) == []  # the file with contact details is not kept

    # The same file again: nothing to change, so nothing to apply.
    again = text(upload(admin, csv_file(*ROWS)))
    assert "Nothing to change" in again and "Apply these changes" not in again
    assert staged(container) == []


def test_bad_rows_are_listed_and_cannot_be_applied(
    admin: FlaskClient, container: Container
) -> None:
    response = upload(admin, csv_file(*ROWS, "X-1,Bad,barber,NOWHERE,,,,,,,,"))
    assert response.status_code == 200
    html = unescape(text(response))
    assert "1 row needs fixing" in html
    rows = re.findall(r'<tr class="bad-row"><td>(\d+)</td><td>([a-z_]+)</td><td>(.*?)</td>', html)
    assert [(row, column) for row, column, _ in rows] == [
        ("6", "service_type"),
        ("6", "service_areas"),
    ]
    assert rows[1][2] == "unknown area codes: NOWHERE"
    assert "Apply these changes" not in html
    assert staged(container) == [] and count(container, Service) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            (",".join(["service_ref"]) + "\nCaf\u00e9 \u00a3\n").encode("cp1252"),
            "The file is not UTF-8: byte 0xE9 on line 2 cannot be read",
        ),
        (b"name,phone\nJo,07700 900123\n", "The header row unknown columns: name; missing"),
        (b"", "The file is empty"),
    ],
)
def test_a_wrong_file_gets_the_error_beside_the_field(
    admin: FlaskClient, container: Container, data: bytes, message: str
) -> None:
    response = upload(admin, data)
    assert response.status_code == 422
    html = text(response)
    assert error_beside(html, "csv_file").startswith(message)
    assert 'class="error-summary"' in html and 'href="#csv_file"' in html
    assert count(container, Service) == 0


def test_no_file_chosen(admin: FlaskClient) -> None:
    token = csrf(admin.get(PAGE))
    response = admin.post(PAGE, data={"csrf_token": token}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert error_beside(text(response), "csv_file") == "Select a CSV file to upload"


def test_apply_acts_only_on_the_file_previewed_with_its_form_token(
    admin: FlaskClient, container: Container
) -> None:
    fields = apply_form(text(upload(admin, csv_file(*ROWS))))
    no_token = admin.post("/recipients/import/apply", data={**fields, "csrf_token": ""})
    assert no_token.status_code == 400 and "This form has expired" in text(no_token)
    for forged in ("../../secret_key", "0" * 64, fields["file"].upper()):
        response = admin.post("/recipients/import/apply", data={**fields, "file": forged})
        assert response.status_code == 410, forged
    # A staged file changed on disk is no longer the file that was previewed.
    (path,) = staged(container)
    path.write_bytes(csv_file(ROWS[3]))
    assert admin.post("/recipients/import/apply", data=fields).status_code == 410
    assert count(container, Service) == 0


def test_apply_after_the_records_changed_shows_the_new_plan(
    admin: FlaskClient, container: Container
) -> None:
    first = apply_form(text(upload(admin, csv_file(*ROWS))))
    second = apply_form(text(upload(admin, csv_file(ROWS[3]))))
    assert admin.post("/recipients/import/apply", data=second).status_code == 302
    stale = admin.post("/recipients/import/apply", data=first)
    assert stale.status_code == 409
    html = text(stale)
    assert "changed after this file was previewed" in html
    assert "Apply these changes" in html  # the fresh plan can be applied
    assert count(container, Service) == 1
    assert admin.post("/recipients/import/apply", data=apply_form(html)).status_code == 302
    assert count(container, Service) == 3


def test_export_download(admin: FlaskClient, container: Container) -> None:
    admin.post("/recipients/import/apply", data=apply_form(text(upload(admin, csv_file(*ROWS)))))
    response = admin.get("/recipients/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    again = text(upload(admin, response.get_data()))
    assert "Nothing to change" in again


def test_only_admins_and_only_small_files(web: Web, admin: FlaskClient, app: Flask) -> None:
    reporter = web.browser("reporter", Role.reporter)
    assert reporter.get(PAGE).status_code == 403
    assert reporter.get("/recipients/export.csv").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get(PAGE).status_code == 302
    limit = web.container.settings.max_body_bytes
    too_large = upload(admin, csv_file(*ROWS * (limit // 300)))
    assert too_large.status_code == 413
    assert "The file is too large" in text(too_large)
    with web.container.db.transaction() as session:
        assert session.scalars(select(Service)).all() == []
