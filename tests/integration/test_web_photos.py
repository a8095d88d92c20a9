"""Photos on drug checking reports: checked by decoding, scaled down, re-encoded with no
EXIF/GPS or other metadata left, and refused with a message beside the field."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import ExifTags, Image
from sqlalchemy import select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import ReportPhoto
from tests.integration.conftest import People
from tests.integration.webpages import (
    DRUG_CHECK,
    NEAR_MISS,
    FormPage,
    Web,
    count,
    error_beside,
    jpeg_with_gps,
    make_web,
    png_bomb,
    post_form,
    text,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    return make_web(app, container, client, people)


def test_drug_checking_form_with_photo_strips_metadata(web: Web, container: Container) -> None:
    browser = web.browser("lab", Role.reporter)
    photo = (BytesIO(jpeg_with_gps()), "IMG_0001.jpg", "image/jpeg")
    response = post_form(
        browser,
        "/reports/new/drug_checking",
        {**DRUG_CHECK, "photo": photo},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, text(response)
    html = text(browser.get(response.headers["Location"]))
    api = web.app.test_client().get(
        response.headers["Location"].replace("/reports", "/api/v1/reports"),
        headers=web.token("lab"),
    )
    assert [r["substance"] for r in api.get_json()["results"]] == ["Protonitazepyne", "zorbazine"]
    found = api.get_json()["substances"][0]
    assert found["class"] == "nitazene" and found["red_list"] and found["canonical"]
    assert f"<td>{found['canonical']}</td>" in html and "<td>nitazene</td>" in html
    assert "Not in vocabulary — check spelling" in html  # zorbazine is kept but flagged
    assert "Red list" in html and "lc-ms, primary" in html and "oxycodone 80 mg" in html
    photo_url = re.search(r'<img class="photo" src="([^"]+)"', html)
    assert photo_url

    served = browser.get(photo_url.group(1))
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Content-Disposition"] == "inline"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    image = Image.open(BytesIO(served.data))
    assert image.size == (2000, 1000)  # scaled down to 2000 px at most
    assert not image.getexif() and not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert "exif" not in image.info and "comment" not in image.info
    assert b"PhoneMaker" not in served.data and b"Acacia" not in served.data
    with container.db.transaction() as session:
        row = session.scalars(select(ReportPhoto)).one()
        assert (row.width, row.height, row.content_type) == (2000, 1000, "image/jpeg")

    # Another reporter can neither open the report nor its photo.
    stranger = web.browser("other", Role.reporter)
    assert stranger.get(response.headers["Location"]).status_code == 404
    assert stranger.get(photo_url.group(1)).status_code == 404


def test_png_stays_png_and_keeps_no_text_chunks(web: Web, container: Container) -> None:
    from PIL.PngImagePlugin import PngInfo

    meta = PngInfo()
    meta.add_text("Author", "Jo Bloggs 07700 900123")
    out = BytesIO()
    Image.new("RGBA", (300, 200), (200, 0, 0, 128)).save(out, format="PNG", pnginfo=meta)
    browser = web.browser("lab", Role.reporter)
    response = post_form(
        browser,
        "/reports/new/drug_checking",
        {**DRUG_CHECK, "photo": (BytesIO(out.getvalue()), "bag.png", "image/png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, text(response)
    served = browser.get(response.headers["Location"] + "/photo")
    assert served.headers["Content-Type"] == "image/png"
    image = Image.open(BytesIO(served.data))
    assert image.format == "PNG" and image.mode == "RGBA" and "Author" not in image.info
    assert b"Bloggs" not in served.data


def test_webp_is_re_encoded_as_jpeg(web: Web) -> None:
    out = BytesIO()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    Image.new("RGB", (640, 480), (10, 20, 30)).save(out, format="WEBP", exif=exif)
    browser = web.browser("lab", Role.reporter)
    response = post_form(
        browser,
        "/reports/new/drug_checking",
        {**DRUG_CHECK, "photo": (BytesIO(out.getvalue()), "sample.webp", "image/webp")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, text(response)
    served = browser.get(response.headers["Location"] + "/photo")
    assert served.headers["Content-Type"] == "image/jpeg" and b"PhoneMaker" not in served.data
    assert Image.open(BytesIO(served.data)).size == (640, 480)


@pytest.mark.parametrize(
    ("content", "filename", "words"),
    [
        (b"just some text, not a picture\n" * 20, "sample.jpg", "JPEG, PNG or WebP"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "truncated.jpg", "JPEG, PNG or WebP"),
        (b"GIF89a" + b"\x00" * 100, "anim.gif", "JPEG, PNG or WebP"),
        (png_bomb(), "bomb.png", "too large in pixels"),
        (b"\xff" * (5 * 1024 * 1024 + 1), "big.jpg", "5 MB or smaller"),
        (b"\xff" * (10 * 1024 * 1024), "huge.jpg", "10.0 MB"),
    ],
)
def test_photos_that_are_not_safe_images_are_refused(
    web: Web, container: Container, content: bytes, filename: str, words: str
) -> None:
    browser = web.browser("lab", Role.reporter)
    fields = {**DRUG_CHECK, "photo": (BytesIO(content), filename, "image/jpeg")}
    response = post_form(
        browser, "/reports/new/drug_checking", fields, content_type="multipart/form-data"
    )
    assert response.status_code == 422
    html = text(response)
    assert words in error_beside(html, "photo")
    assert "Choose the photo again" in html
    assert FormPage(html).values["result1-substance"] == "Protonitazepyne"
    assert count(container) == 0 and count(container, ReportPhoto) == 0


def test_a_body_past_the_upload_limit_gets_a_page_not_a_crash(
    web: Web, container: Container
) -> None:
    browser = web.browser("lab", Role.reporter)
    fields = {**DRUG_CHECK, "photo": (BytesIO(b"\xff" * (17 * 1024 * 1024)), "x.jpg", "image/jpeg")}
    response = post_form(
        browser, "/reports/new/drug_checking", fields, content_type="multipart/form-data"
    )
    assert response.status_code == 413 and "5 MB or smaller" in text(response)
    big_note = post_form(browser, "/reports/new/near_miss", {**NEAR_MISS, "notes": "x" * 2_000_000})
    assert big_note.status_code == 413
    assert count(container) == 0
