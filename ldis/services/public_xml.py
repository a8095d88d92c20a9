"""The XML documents of the public alerts (`docs/public-feeds.md`): one CAP 1.2 message per
alert and the Atom feed, built from the plain `PublicAlert` values that
`ldis.services.public_alerts` reads. Pure functions: no database, nothing written, every
link passed in. Every XML document is built with lxml, never by pasting strings.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lxml import etree
from shapely.geometry import Polygon

from ldis.domain.alerts import VersionPurpose
from ldis.messages.context import reference

if TYPE_CHECKING:
    from ldis.services.public_alerts import PublicAlert

MAX_POLYGON_POINTS = 100  # per CAP <polygon>; larger boundaries are simplified
SENDER_NAME = "Local Drug Information System"
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 cannot carry; lxml refuses them, so they are dropped from user text.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
SEVERITY = {"red": "Severe", "amber": "Moderate", "green": "Minor"}


def _child(
    ns: str, parent: etree._Element, name: str, text: str | None = None, **attrs: str
) -> etree._Element:
    """A namespaced child element; text is set as text (escaped by lxml), minus characters
    XML cannot carry."""
    element = etree.SubElement(parent, f"{{{ns}}}{name}", attrs)
    if text is not None:
        element.text = _NOT_XML.sub("", text)
    return element


def cap_time(moment: datetime) -> str:
    """CAP's dateTime: whole seconds and an offset, never "Z" (UTC is written -00:00)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def atom_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cap_identifier(sender: str, alert_id: int, version: int) -> str:
    """The CAP identifier of one version of an alert, unique to the sender."""
    return f"{sender}-{reference(alert_id, version)}"


def cap_polygons(boundary: dict[str, Any] | None) -> list[str]:
    """A GeoJSON Polygon or MultiPolygon (lon, lat) as CAP polygons ("lat,lon lat,lon ...",
    closed): each part's outer ring, simplified to at most `MAX_POLYGON_POINTS` points."""
    if not boundary or boundary.get("type") not in ("Polygon", "MultiPolygon"):
        return []
    parts = [boundary["coordinates"]]
    if boundary["type"] == "MultiPolygon":
        parts = list(boundary["coordinates"])
    polygons = []
    for rings in parts:
        ring = [(float(p[0]), float(p[1])) for p in rings[0]]
        tolerance = 0.0001  # degrees: about 10 m, doubled until the ring is small enough
        while len(ring) > MAX_POLYGON_POINTS and tolerance < 10:
            simpler = Polygon(ring).simplify(tolerance, preserve_topology=True)
            if isinstance(simpler, Polygon) and not simpler.is_empty:
                ring = [(x, y) for x, y, *_ in simpler.exterior.coords]
            tolerance *= 2
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        polygons.append(" ".join(f"{round(lat, 5)},{round(lon, 5)}" for lon, lat in ring))
    return polygons


def cap_message(
    alert: PublicAlert, *, sender: str, page_url: str, rag: str | None, certainty: str
) -> bytes:
    """The alert's current CAP 1.2 message (Alert, Update or Cancel), from `sender`, with
    the panel's RAG as its severity and `page_url` as its web link."""
    current = alert.messages[-1]
    earlier = alert.messages[:-1]
    if current.purpose == VersionPurpose.withdrawal.value:
        msg_type = "Cancel"
    else:
        msg_type = "Update" if earlier else "Alert"
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    add = functools.partial(_child, CAP_NS)
    add(root, "identifier", cap_identifier(sender, alert.id, current.version))
    add(root, "sender", sender)
    add(root, "sent", cap_time(current.sent))
    add(root, "status", "Actual")  # exercises are never published
    add(root, "msgType", msg_type)
    add(root, "scope", "Public")
    if msg_type == "Cancel":
        add(root, "note", "Withdrawn by the Local Drug Information System panel.")
    if earlier:
        refs = (
            f"{sender},{cap_identifier(sender, alert.id, m.version)},{cap_time(m.sent)}"
            for m in earlier
        )
        add(root, "references", " ".join(refs))
    add(root, "incidents", f"{sender}-LDIS-{alert.id}")
    info = add(root, "info")
    add(info, "language", "en-GB")
    add(info, "category", "Health")
    add(info, "event", alert.title)
    add(info, "urgency", "Immediate" if alert.urgent else "Expected")
    add(info, "severity", SEVERITY.get(rag or "", "Unknown"))
    add(info, "certainty", certainty)
    add(info, "audience", "The public, people who use drugs, their friends and family")
    if alert.expires_at is not None:
        add(info, "expires", cap_time(alert.expires_at))
    add(info, "senderName", SENDER_NAME)
    add(
        info,
        "headline",
        alert.headline if msg_type == "Cancel" else f"{alert.heading}: {alert.title}",
    )
    add(info, "description", "\n\n".join(alert.description))
    add(info, "instruction", "\n\n".join(alert.instruction))
    add(info, "web", page_url)
    for area in alert.areas:
        block = add(info, "area")
        add(block, "areaDesc", area.name)
        for polygon in cap_polygons(area.boundary):
            add(block, "polygon", polygon)
        geocode = add(block, "geocode")
        add(geocode, "valueName", "LDIS-area")
        add(geocode, "value", area.code)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def atom_feed(
    alerts: Sequence[PublicAlert],
    *,
    updated: datetime,
    feed_url: str,
    listing_url: str,
    page_url: Callable[[int], str],
    cap_url: Callable[[int], str],
) -> bytes:
    """The Atom 1.0 feed of `alerts`, in the order given; each entry links to the alert's
    page and its CAP message."""
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", "en-GB")
    add = functools.partial(_child, ATOM_NS)
    add(feed, "id", feed_url)
    add(feed, "title", "Public drug alerts")
    add(feed, "subtitle", "Warnings about dangerous drugs from the " + SENDER_NAME)
    add(feed, "updated", atom_time(updated))
    add(feed, "link", rel="self", type="application/atom+xml", href=feed_url)
    add(feed, "link", rel="alternate", type="text/html", href=listing_url)
    author = add(feed, "author")
    add(author, "name", SENDER_NAME)
    add(author, "uri", listing_url)
    for alert in alerts:
        entry = add(feed, "entry")
        add(entry, "id", page_url(alert.id))
        add(entry, "title", alert.headline)
        add(entry, "updated", atom_time(alert.updated))
        add(entry, "published", atom_time(alert.first_sent))
        for kind, href in (
            ("text/html", page_url(alert.id)),
            ("application/cap+xml", cap_url(alert.id)),
        ):
            add(entry, "link", rel="alternate", type=kind, href=href)
        add(entry, "category", term=alert.state, label=alert.state.capitalize())
        summary = "\n\n".join((*alert.description, *alert.instruction))
        add(entry, "summary", summary, type="text")
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)
