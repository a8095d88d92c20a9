"""The audience query on PostgreSQL: the preview lists exactly the services, contacts and
channels an alert reaches and the services it misses (with why); the approval writes
deliveries for exactly the previewed pairs; the API and the page, and who may use them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ldis.bootstrap import Container
from ldis.domain.audience import (
    AudienceQuery,
    ChannelFacts,
    ContactFacts,
    channel_usable,
    contact_willing,
)
from ldis.domain.roles import Role
from ldis.services.audience import resolve
from ldis.store.models import (
    Area,
    AreaNeighbour,
    Contact,
    ContactChannel,
    ContactUnsubscription,
    Delivery,
    Service,
    ServiceArea,
)
from tests.integration.cases import decided_report_via
from tests.integration.conftest import People
from tests.integration.webpages import Web, error_beside, summary_links, text

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# NYORKS (county) > SELBY (district) > SELBY-N (ward); NYORKS > YORK; WYORKS > LEEDS.
# SELBY and LEEDS are linked neighbours across the county line.
AREAS = [
    ("NYORKS", None),
    ("SELBY", "NYORKS"),
    ("SELBY-N", "SELBY"),
    ("YORK", "NYORKS"),
    ("WYORKS", None),
    ("LEEDS", "WYORKS"),
]


@dataclass
class World:
    areas: dict[str, int] = field(default_factory=dict)
    services: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)


def _channel(
    name: str, *, verified: bool = True, out: bool = False, failed: bool = False
) -> ContactChannel:
    return ContactChannel(
        channel=name,
        verified_at=NOW if verified else None,
        opted_out_at=NOW if out else None,
        failed_at=NOW if failed else None,
        failure_reason="bounced" if failed else None,
    )


def _contact(
    name: str,
    channels: list[ContactChannel],
    *,
    role: str = "primary",
    phone: str | None = None,
    email: str | None = None,
    opted_out: bool = False,
    unsubscribed: tuple[str, ...] = (),
) -> Contact:
    slug = name.lower().replace(" ", ".")
    return Contact(
        name=name,
        role=role,
        phone=phone,
        email=email if email is not None else f"{slug}@example.org",
        opted_out_at=NOW if opted_out else None,
        channels=channels,
        unsubscriptions=[ContactUnsubscription(alert_kind=k) for k in unsubscribed],
    )


@pytest.fixture
def world(container: Container) -> World:
    built = World()
    with container.db.transaction() as session:
        for code, parent in AREAS:
            area = Area(code=code, name=code.title(), parent_id=built.areas.get(parent or ""))
            session.add(area)
            session.flush()
            built.areas[code] = area.id
        session.add_all(
            [
                AreaNeighbour(area_id=built.areas["SELBY"], neighbour_id=built.areas["LEEDS"]),
                AreaNeighbour(area_id=built.areas["LEEDS"], neighbour_id=built.areas["SELBY"]),
            ]
        )

        def service(
            name: str, type_: str, area: str, contacts: list[Contact], **wants: Any
        ) -> None:
            row = Service(name=name, type=type_, contacts=contacts, **wants)
            session.add(row)
            session.flush()
            session.add(ServiceArea(service_id=row.id, area_id=built.areas[area]))
            built.services[name] = row.id
            for contact in contacts:
                built.contacts[contact.name] = contact.id

        service(
            "Selby NSP",
            "needle_syringe_programme",
            "SELBY-N",
            [
                _contact("Ann", [_channel("sms"), _channel("email")], phone="+447700900001"),
                _contact(
                    "Bob",
                    [_channel("sms", out=True), _channel("email")],
                    role="backup",
                    phone="+447700900002",
                ),
                _contact("Cat", [_channel("sms")], phone="+447700900003", opted_out=True),
                _contact("Dan", [_channel("email")], unsubscribed=("drug_alert",)),
                _contact(
                    "Eve",
                    [_channel("sms", verified=False), _channel("email", failed=True)],
                    phone="+447700900005",
                ),
                # Verified for SMS, but the number has since been removed: no address.
                _contact("Fay", [_channel("sms")], phone=None),
            ],
        )
        service(
            "County A&E", "emergency_department", "NYORKS", [_contact("Gus", [_channel("email")])]
        )
        service("York outreach", "outreach", "YORK", [_contact("Hal", [_channel("email")])])
        service(
            "Leeds pharmacy",
            "pharmacy",
            "LEEDS",
            [_contact("Ivy", [_channel("sms")], phone="+447700900009")],
        )
        service("Selby hostel", "hostel", "SELBY", [])
        service(
            "Selby GP",
            "gp_practice",
            "SELBY",
            [_contact("Jo", [_channel("email", verified=False)])],
        )
        service(
            "Selby prison",
            "prison",
            "SELBY",
            [_contact("Kim", [_channel("email")])],
            alert_levels=["public"],
        )
        service(
            "Selby youth",
            "youth_service",
            "SELBY",
            [],
            alert_kinds=["cluster"],
        )
        service(
            "Selby custody",
            "police_custody",
            "SELBY",
            [
                _contact("Lee", [_channel("email")], opted_out=True),
                _contact("Max", [_channel("sms", failed=True)], phone="+447700900013"),
            ],
        )
    return built


def _ask(container: Container, **query: Any) -> Any:
    with container.db.transaction() as session:
        return resolve(session, AudienceQuery.model_validate(query))


def _pairs(result: Any) -> set[tuple[str, str]]:
    return {(contact.name, channel) for contact, channel in result.pairs()}


def test_a_district_alert_reaches_exactly_the_right_contacts_and_channels(
    container: Container, world: World
) -> None:
    result = _ask(container, areas=["SELBY"])
    assert [s.name for s in result.services] == ["County A&E", "Selby NSP"]
    # Ann on both; Bob's SMS opted out; Cat opted out; Dan unsubscribed from drug alerts;
    # Eve unverified and failing; Fay has no number for her verified SMS.
    assert _pairs(result) == {("Ann", "sms"), ("Ann", "email"), ("Bob", "email"), ("Gus", "email")}
    nsp = result.services[1]
    assert [(c.name, c.role, c.channels) for c in nsp.contacts] == [
        ("Ann", "primary", ("email", "sms")),
        ("Bob", "backup", ("email",)),
    ]
    assert result.by_channel == {"email": 3, "sms": 1}
    assert result.contact_count == 3 and result.message_count == 4
    assert [(m.name, m.reason.value) for m in result.missed] == [
        ("Selby custody", "opted_out_or_failing"),
        ("Selby GP", "no_verified_channel"),
        ("Selby hostel", "no_contacts"),
    ]
    assert result.excluded_by_choice == 2  # the prison (public only), youth (clusters only)
    assert result.neighbour_areas == [] and "YORK" not in result.alert_areas


def test_a_ward_alert_reaches_the_services_of_its_district_and_county(
    container: Container, world: World
) -> None:
    ward = _ask(container, areas=["SELBY-N"])
    district = _ask(container, areas=["SELBY"])
    assert _pairs(ward) == _pairs(district)
    assert [m.name for m in ward.missed] == [m.name for m in district.missed]


def test_a_county_alert_reaches_every_district_but_not_the_next_county(
    container: Container, world: World
) -> None:
    result = _ask(container, areas=["NYORKS"])
    assert [s.name for s in result.services] == ["County A&E", "Selby NSP", "York outreach"]
    assert "Ivy" not in {c.name for c, _ in result.pairs()}


def test_neighbours_are_reached_only_when_asked(container: Container, world: World) -> None:
    without = _ask(container, areas=["SELBY"])
    with_neighbours = _ask(container, areas=["SELBY"], include_neighbours=True)
    assert _pairs(with_neighbours) - _pairs(without) == {("Ivy", "sms")}
    assert with_neighbours.neighbour_areas == ["LEEDS"]
    assert with_neighbours.alert_areas == ["LEEDS", "SELBY"]


def test_service_types_level_and_kind_narrow_the_audience(
    container: Container, world: World
) -> None:
    only_ae = _ask(container, areas=["SELBY"], service_types=["emergency_department"])
    assert _pairs(only_ae) == {("Gus", "email")} and only_ae.missed == []
    assert only_ae.excluded_by_choice == 0

    public = _ask(container, areas=["SELBY"], level="public")
    assert ("Kim", "email") in _pairs(public)  # the prison wants public alerts only

    cluster = _ask(container, areas=["SELBY"], kind="cluster")
    assert ("Dan", "email") in _pairs(cluster)  # unsubscribed from drug alerts, not clusters
    assert "Selby youth" in {m.name for m in cluster.missed}  # wants clusters, no contacts
    assert cluster.excluded_by_choice == 1  # the prison still wants public alerts only


# --- the API ------------------------------------------------------------------------------


def test_the_api_preview_shows_names_and_channels_with_addresses_hidden(
    client: FlaskClient, people: People, world: World
) -> None:
    response = client.post(
        "/api/v1/audience/preview",
        json={"areas": ["selby"], "include_neighbours": True},
        headers=people.headers("panel", Role.panel),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["totals"] == {
        "services": 3,
        "contacts": 4,
        "messages": 5,
        "by_channel": {"email": 3, "sms": 2},
        "missed": 3,
        "excluded_by_choice": 2,
    }
    assert body["neighbour_areas"] == ["LEEDS"]
    assert [s["name"] for s in body["services"]] == ["County A&E", "Leeds pharmacy", "Selby NSP"]
    ann = body["services"][2]["contacts"][0]
    assert ann["name"] == "Ann" and ann["role"] == "primary"
    assert ann["channels"] == [
        {"channel": "email", "address": "a•••@example.org"},
        {"channel": "sms", "address": "07700 9•••01"},
    ]
    raw = response.get_data(as_text=True)
    assert "ann@example.org" not in raw and "+447700900001" not in raw
    assert body["missed"][2] == {
        "id": world.services["Selby hostel"],
        "name": "Selby hostel",
        "type": "hostel",
        "reason": "no_contacts",
        "why": "No contacts at this service.",
    }


def test_the_api_preview_is_for_the_panel_and_admins(
    client: FlaskClient, people: People, world: World
) -> None:
    body = {"areas": ["SELBY"]}
    url = "/api/v1/audience/preview"
    assert client.post(url, json=body).status_code == 401
    refused = client.post(url, json=body, headers=people.headers("rep", Role.reporter))
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    admin = client.post(url, json=body, headers=people.headers("admin", Role.admin))
    assert admin.status_code == 200


def test_bad_questions_get_422_naming_each_field(
    client: FlaskClient, people: People, world: World
) -> None:
    panel = people.headers("panel", Role.panel)
    url = "/api/v1/audience/preview"
    unknown = client.post(url, json={"areas": ["SELBY", "NOWHERE", "ATLANTIS"]}, headers=panel)
    assert unknown.status_code == 422
    assert unknown.get_json()["fields"] == {
        "areas.1": "unknown area code 'NOWHERE'",
        "areas.2": "unknown area code 'ATLANTIS'",
    }
    bad_type = client.post(url, json={"areas": ["SELBY"], "service_types": ["spa"]}, headers=panel)
    assert bad_type.status_code == 422
    assert bad_type.get_json()["fields"]["service_types.0"].startswith("unknown service type 'spa'")
    both = client.post(url, json={"areas": ["NOWHERE"], "service_types": ["spa"]}, headers=panel)
    assert set(both.get_json()["fields"]) == {"areas.0", "service_types.0"}
    wrong = client.post(url, json={"areas": [], "level": "loud", "extra": 1}, headers=panel)
    assert wrong.status_code == 422
    assert set(wrong.get_json()["fields"]) == {"areas", "level", "extra"}


# --- the approval sends to exactly the previewed pairs ------------------------------------


ALERT = {
    "title": "Nitazenes in fake oxycodone",
    "priority": "urgent",
    "areas": ["SELBY"],
    "include_neighbours": True,
    "fields": {"summary": "Green OC 80 tablets contain metonitazene.", "advice": "Carry naloxone."},
}


def test_approval_writes_deliveries_for_exactly_the_previewed_pairs(
    client: FlaskClient, people: People, container: Container, world: World
) -> None:
    drafter = people.headers("drafter", Role.panel)
    preview = client.post(
        "/api/v1/audience/preview",
        json={"areas": ["SELBY"], "include_neighbours": True},
        headers=drafter,
    ).get_json()
    previewed = {
        (contact["id"], channel["channel"])
        for service in preview["services"]
        for contact in service["contacts"]
        for channel in contact["channels"]
    }
    report_id = decided_report_via(client, drafter, "SELBY")
    alert = client.post(
        "/api/v1/alerts", json={**ALERT, "report_id": report_id}, headers=drafter
    ).get_json()
    assert client.post(f"/api/v1/alerts/{alert['id']}/submit", headers=drafter).status_code == 200
    for name in ("approver1", "approver2"):
        approved = client.post(
            f"/api/v1/alerts/{alert['id']}/approve",
            headers=people.headers(name, Role.panel),
            json={"otp": people.otp(name)},
        )
        assert approved.status_code == 200, approved.get_json()
    with container.db.transaction() as session:
        written = {
            (d, c) for d, c in session.execute(select(Delivery.contact_id, Delivery.channel))
        }
    assert written == previewed
    assert (world.contacts["Ivy"], "sms") in written  # the neighbour came along


# --- the page -----------------------------------------------------------------------------


@pytest.fixture
def web(app: Flask, container: Container) -> Web:
    return Web(app, container)


def test_the_page_shows_totals_services_and_misses(web: Web, world: World) -> None:
    browser = web.browser("panel", Role.panel)
    empty = browser.get("/audience")
    assert empty.status_code == 200
    html = text(empty)
    assert "Choose at least one area" in html and '<option value="SELBY-N">' in html
    page = browser.get(
        "/audience?areas=SELBY&service_types=needle_syringe_programme&service_types=hostel"
        "&level=professional&kind=drug_alert&include_neighbours=y"
    )
    assert page.status_code == 200
    html = text(page)
    assert "Selby NSP" in html and "Ann" in html and "07700 9•••01" in html
    assert "+447700900001" not in html and "ann@example.org" not in html
    assert "Would miss (1)" in html and "No contacts at this service." in html
    assert "County A&amp;E" not in html.split("Services reached (", 1)[1]  # type filter
    assert "LEEDS" in html
    assert 'value="hostel" checked' in html and 'selected value="SELBY"' in html


def test_the_page_names_an_empty_choice_and_refuses_reporters(web: Web, world: World) -> None:
    browser = web.browser("panel", Role.panel)
    page = browser.get("/audience?level=professional&kind=drug_alert")
    assert page.status_code == 422
    assert "Select at least one area" in text(page) and 'href="#areas"' in text(page)
    unknown = browser.get("/audience?areas=NOWHERE&service_types=spa&level=professional")
    assert unknown.status_code == 422
    assert error_beside(text(unknown), "areas") == (
        "Areas: unknown area code 'NOWHERE'; choose from the list"
    )
    assert error_beside(text(unknown), "service_types").startswith("Service types: unknown")
    assert summary_links(text(unknown)) == ["areas", "service_types"]
    reporter = web.browser("rep", Role.reporter)
    assert reporter.get("/audience").status_code == 403


def test_the_page_says_when_nobody_is_reached(web: Web, world: World) -> None:
    browser = web.browser("panel", Role.panel)
    page = browser.get("/audience?areas=YORK&service_types=pharmacy&level=professional")
    assert page.status_code == 200
    assert "No service would receive this alert." in text(page)


def test_the_sql_filter_agrees_with_the_domain_rules_in_every_state(
    container: Container,
) -> None:
    """The query filters contacts and channels in SQL by the domain's own definition: every
    one of the 64 combinations of facts reaches exactly when the domain functions say so."""
    combos = list(itertools.product([False, True], repeat=6))
    with container.db.transaction() as session:
        area = Area(code="SELBY", name="Selby")
        service = Service(name="Every state", type="outreach")
        session.add_all([area, service])
        session.flush()
        session.add(ServiceArea(service_id=service.id, area_id=area.id))
        expected = set()
        for n, (out, unsub, verified, channel_out, failed, addressed) in enumerate(combos):
            contact = _contact(
                f"C{n}",
                [_channel("sms", verified=verified, out=channel_out, failed=failed)],
                phone=f"+4477009{n:05d}" if addressed else None,
                opted_out=out,
                unsubscribed=("drug_alert",) if unsub else (),
            )
            contact.service_id = service.id
            session.add(contact)
            if contact_willing(ContactFacts(out, unsub)) and channel_usable(
                ChannelFacts(verified, channel_out, failed, addressed)
            ):
                expected.add((f"C{n}", "sms"))
    result = _ask(container, areas=["SELBY"])
    assert len(expected) == 1 and _pairs(result) == expected
