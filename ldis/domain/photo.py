"""A checked, re-encoded photo of a sample or its packaging (no camera metadata left), and
what an upload that is not one of the accepted formats looks like, so the person is told
what they sent and what to do instead of a bare "not an image"."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Photo:
    content_type: str
    width: int
    height: int
    data: bytes


# What a file's first bytes say it is, for the formats people most often send by mistake.
# Only used to word the refusal: whether a file is accepted is decided by decoding it.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "a GIF image"),
    (b"GIF89a", 0, "a GIF image"),
    (b"BM", 0, "a BMP image"),
    (b"II*\x00", 0, "a TIFF image"),
    (b"MM\x00*", 0, "a TIFF image"),
    (b"%PDF", 0, "a PDF document"),
    (b"PK\x03\x04", 0, "a zip file or office document"),
    (b"\xd0\xcf\x11\xe0", 0, "an office document"),
)
# ISO media brands (bytes 8-12 after "ftyp" at 4): the iPhone's default HEIC and friends.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_MARKUP_STARTS = (b"<?xml", b"<svg", b"<!doctype", b"<html")

HEIC_HINT = (
    "a HEIC photo (the iPhone's own format); set the camera to 'Most Compatible' or "
    "share the photo as JPEG, then choose it again"
)


def looks_like(raw: bytes) -> str | None:
    """What the file appears to be when it is not JPEG, PNG or WebP ("a GIF image", a hint
    for HEIC ...), or None when its first bytes say nothing we recognise."""
    head = raw[:64]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return HEIC_HINT
        if brand in _AVIF_BRANDS:
            return "an AVIF image; share it as JPEG instead, then choose it again"
        return "a video or other media file"
    for signature, offset, label in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return label
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(_MARKUP_STARTS):
        return "a web page or SVG drawing, not a photo"
    return None
