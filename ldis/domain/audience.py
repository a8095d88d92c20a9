"""Who an alert reaches: the rules, free of storage (the query is `ldis.services.audience`).

Areas form a hierarchy. A service is in scope when one of its areas overlaps an alert area:
it is the alert area, lies inside it, or contains it. A service covering a county gets an
alert about one of its wards, and a service covering a ward gets an alert about its county:
both are inside the danger zone. Siblings never overlap. With `include_neighbours` the
alert areas' linked neighbours count as alert areas too.

In scope, a service must want the alert's level and kind; then each of its contacts who has
not opted out, nor unsubscribed from the kind, gets one message per channel that is
verified, not opted out, not failing, and has an address.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ldis.domain.alerts import AlertKind, AlertLevel, AlertPriority
from ldis.domain.recipients import QuietHours, in_quiet_hours
from ldis.domain.validation import RecordId

LONDON = ZoneInfo("Europe/London")

# --- the area hierarchy -------------------------------------------------------------------


def ancestry(area_id: int, parent_of: Mapping[int, int | None]) -> list[int]:
    """The area and its ancestors, nearest first; stops on a cycle rather than looping."""
    chain: list[int] = []
    current: int | None = area_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parent_of.get(current)
    return chain


def areas_overlap(a: int, b: int, parent_of: Mapping[int, int | None]) -> bool:
    return a in ancestry(b, parent_of) or b in ancestry(a, parent_of)


def alert_area_ids(
    chosen: Iterable[int], neighbours_of: Mapping[int, Iterable[int]], include_neighbours: bool
) -> frozenset[int]:
    """The areas that count as alert areas: those chosen, plus their linked neighbours."""
    areas = set(chosen)
    if include_neighbours:
        for area_id in list(areas):
            areas.update(neighbours_of.get(area_id, ()))
    return frozenset(areas)


def overlapping_area_ids(
    alert_areas: Iterable[int], parent_of: Mapping[int, int | None]
) -> frozenset[int]:
    """Every area a service may cover to be in scope: each alert area, its ancestors and all
    its descendants. Computed once, so the query is a plain `area_id IN (...)`."""
    children: dict[int, list[int]] = {}
    for child, parent in parent_of.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found: set[int] = set()
    for area_id in alert_areas:
        found.update(ancestry(area_id, parent_of))
        stack = [area_id]
        while stack:  # descendants; `found` guards against a cycle in bad data
            for child in children.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
    return frozenset(found)


# --- what a service and a contact want ----------------------------------------------------


def service_wants(levels: Iterable[str], kinds: Iterable[str], level: str, kind: str) -> bool:
    """A service chose the levels it receives; no kinds chosen means every kind."""
    wanted_kinds = list(kinds)
    return level in levels and (not wanted_kinds or kind in wanted_kinds)


# The contact and channel rules are written as the exact facts that must hold, so the query
# (`ldis.services.audience`) can filter by the very same definition in SQL, and these
# functions apply it in Python: one rule, two places it runs, never two versions of it.


class ContactFacts(NamedTuple):
    opted_out: bool  # unsubscribed from everything
    unsubscribed: bool  # unsubscribed from this alert's kind


class ChannelFacts(NamedTuple):
    verified: bool  # the address was proven with a code (or marked so by an admin)
    opted_out: bool  # STOP by text, or unsubscribed from this channel
    failed: bool  # a permanent failure (bounced, not a mobile)
    addressed: bool  # the contact has the address this channel needs


# A contact receives alerts only in exactly this state, and a channel only in this one.
WILLING_CONTACT = ContactFacts(opted_out=False, unsubscribed=False)
USABLE_CHANNEL = ChannelFacts(verified=True, opted_out=False, failed=False, addressed=True)
# Which contact field holds each channel's address.
ADDRESS_FIELD = {"sms": "phone", "email": "email"}


def contact_willing(facts: ContactFacts) -> bool:
    return facts == WILLING_CONTACT


def channel_usable(facts: ChannelFacts) -> bool:
    """Proven, no STOP, no hard failure, and an address to send to."""
    return facts == USABLE_CHANNEL


def has_address(channel: str, phone: str | None, email: str | None) -> bool:
    field_name = ADDRESS_FIELD.get(channel)
    return bool({"phone": phone, "email": email}.get(field_name or ""))


class MissReason(StrEnum):
    no_contacts = "no_contacts"
    no_verified_channel = "no_verified_channel"
    opted_out_or_failing = "opted_out_or_failing"


MISS_REASON_TEXT: dict[MissReason, str] = {
    MissReason.no_contacts: "No contacts at this service.",
    MissReason.no_verified_channel: (
        "No verified channel: no contact has confirmed a phone number or e-mail address yet."
    ),
    MissReason.opted_out_or_failing: (
        "Every contact has opted out or unsubscribed from this kind of alert, "
        "or their channels are failing."
    ),
}


def miss_reason(contacts: int, willing: int, verified_channels_of_willing: int) -> MissReason:
    """Why a service that wants an alert would get no message, from three counts."""
    if contacts == 0:
        return MissReason.no_contacts
    if willing and not verified_channels_of_willing:
        return MissReason.no_verified_channel
    return MissReason.opted_out_or_failing


# --- the query and its result -------------------------------------------------------------

AreaCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, to_upper=True)
]
TypeCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60, to_lower=True)
]


class AudienceQuery(BaseModel):
    """Who would an alert with these areas, types, level and kind reach?"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    areas: list[AreaCode] = Field(min_length=1, max_length=200)
    service_types: list[TypeCode] = Field(default_factory=list, max_length=50)
    level: AlertLevel = AlertLevel.professional
    kind: AlertKind = AlertKind.drug_alert
    include_neighbours: bool = False
    # Only these services, whatever their areas (an exercise's chosen participants).
    service_ids: list[RecordId] = Field(default_factory=list, max_length=500)

    @field_validator("areas", "service_types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ReachedContact(NamedTuple):
    """A contact and the channels they would get the alert on (a tuple: there are many)."""

    contact_id: int
    name: str
    role: str
    email: str | None
    phone: str | None
    quiet_start: time | None
    quiet_end: time | None
    channels: tuple[str, ...]


@dataclass(frozen=True)
class ReachedService:
    service_id: int
    name: str
    type: str
    contacts: list[ReachedContact]


@dataclass(frozen=True)
class MissedService:
    service_id: int
    name: str
    type: str
    reason: MissReason


@dataclass(frozen=True)
class Audience:
    query: AudienceQuery
    # Codes of the areas that counted as alert areas, the linked neighbours among them.
    alert_areas: list[str]
    neighbour_areas: list[str]
    services: list[ReachedService]
    missed: list[MissedService]
    # In scope by area and type, but chose not to receive this level or kind.
    excluded_by_choice: int
    by_channel: dict[str, int] = field(default_factory=dict)

    @property
    def contact_count(self) -> int:
        return sum(len(s.contacts) for s in self.services)

    @property
    def message_count(self) -> int:
        return sum(self.by_channel.values())

    def pairs(self) -> Iterator[tuple[ReachedContact, str]]:
        """Each (contact, channel) that gets one message."""
        for service in self.services:
            for contact in service.contacts:
                for channel in contact.channels:
                    yield contact, channel


# --- quiet hours at send time -------------------------------------------------------------


def quiet_until(
    start: time | None, end: time | None, at: datetime, tz: ZoneInfo = LONDON
) -> datetime | None:
    """When a contact's quiet hours end (UTC), if `at` falls inside them; else None.

    Quiet hours are UK wall-clock times, so across a clock change the wait is an hour
    longer or shorter than the times suggest: 22:00-07:00 on the night clocks go back is
    nine hours long. An end time the clocks skip in March (01:30 on the change day) is read
    in the old offset, so lands an hour on (02:30 BST), as zoneinfo and java.time do; a
    time repeated in October means its first occurrence.
    """
    if start is None or end is None or start == end:
        return None
    local = at.astimezone(tz)
    now = local.time().replace(tzinfo=None)
    if not in_quiet_hours(QuietHours.model_construct(start=start, end=end), now):
        return None
    day = local.date()
    if now >= end:  # spans midnight and it is still evening: it ends tomorrow
        day += timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


def not_before(
    priority: AlertPriority | str,
    start: time | None,
    end: time | None,
    approved_at: datetime,
) -> datetime | None:
    """When a delivery may go: standard alerts wait out quiet hours; urgent ones never wait."""
    if AlertPriority(priority) is AlertPriority.urgent:
        return None
    return quiet_until(start, end, approved_at)
