"""Photos of a drug-checking sample or its packaging: checked by decoding, never by name or
declared type; bombs refused; scaled down; re-encoded from bare pixels so no EXIF, GPS, ICC
profile, comment or other metadata survives. One photo per report."""

from __future__ import annotations

import warnings
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select

from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.photo import Photo, looks_like
from ldis.domain.principal import Principal
from ldis.services import intake
from ldis.store.db import Database
from ldis.store.models import ReportPhoto

MAX_BYTES = 5 * 1024 * 1024
# Far above any phone camera a reporter would use, far below what would exhaust memory.
MAX_PIXELS = 50_000_000
MAX_SIDE = 2000
JPEG_QUALITY = 85
# MPO is a JPEG holding more than one picture (many phone cameras write them, e.g. for
# depth); the first picture is the photo.
ACCEPTED = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
JPEG_KINDS = ("JPEG", "MPO")
# The only decoders ever run on an upload (the JPEG one also opens MPO files).
DECODERS = ["JPEG", "PNG", "WEBP"]
NOT_AN_IMAGE = "must be a photo in JPEG, PNG or WebP format; this file is not one"
TOO_MANY_PIXELS = "is too large in pixels; take it again at a normal size"


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed({"photo": message}, "The photo cannot be used.")


def _not_an_image(raw: bytes) -> ValidationFailed:
    """Refuse a file that does not decode as an accepted photo, saying what it looks like."""
    what = looks_like(raw)
    if what is None:
        return _refuse(NOT_AN_IMAGE)
    return _refuse(f"must be a photo in JPEG, PNG or WebP format; this file is {what}")


def _normalised(image: Image.Image, keep_alpha: bool) -> Image.Image:
    """RGB or greyscale pixels (RGBA when transparency is kept), ready to scale and encode."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        if keep_alpha:
            return rgba
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def _bare(image: Image.Image) -> Image.Image:
    """The same pixels in a brand-new image: nothing from the file's headers comes along."""
    return Image.frombytes(image.mode, image.size, image.tobytes())


def process(raw: bytes) -> Photo:
    """Check and clean an uploaded photo; ValidationFailed names the `photo` field."""
    if not raw:
        raise _refuse("the file is empty; choose the photo again")
    if len(raw) > MAX_BYTES:
        size = len(raw) / (1024 * 1024)
        raise _refuse(f"must be 5 MB or smaller; this one is {size:.1f} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(raw), formats=DECODERS) as image:
                kind = image.format or ""
                width, height = image.size
                if kind not in ACCEPTED:
                    raise _not_an_image(raw)
                if width * height > MAX_PIXELS or width < 1 or height < 1:
                    raise _refuse(TOO_MANY_PIXELS)
                if kind in JPEG_KINDS:
                    image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at a reduced scale
                image.load()
                upright = ImageOps.exif_transpose(image)  # keep the picture the right way up
                pixels = _normalised(upright, keep_alpha=kind == "PNG")
                pixels.thumbnail((MAX_SIDE, MAX_SIDE))
                clean = _bare(pixels)
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(TOO_MANY_PIXELS) from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
    ):
        raise _not_an_image(raw) from None
    out = BytesIO()
    if kind == "PNG":
        clean.save(out, format="PNG", optimize=True)
        content_type = "image/png"
    else:
        clean.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        content_type = "image/jpeg"
    return Photo(content_type, clean.width, clean.height, out.getvalue())


def load(db: Database, actor: Principal, report_id: int) -> Photo:
    """The photo of a report the actor may read; NotFound when either is missing."""
    intake.get_report(db, actor, report_id)  # the same rule as the report itself
    with db.transaction() as session:
        row = session.scalar(select(ReportPhoto).where(ReportPhoto.report_id == report_id))
        if row is None:
            raise NotFound(f"Report {report_id} has no photo.")
        return Photo(row.content_type, row.width, row.height, row.data)
