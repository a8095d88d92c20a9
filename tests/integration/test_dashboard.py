"""The partnership board's dashboard, checked against a seeded data set with known answers.

The data set is written straight into the tables (SQLAlchemy ORM) at known UTC times, in
British Summer Time, so UK weeks begin at 23:00 UTC on Sunday. The period mostly used is
the four weeks Monday 6 July to Sunday 2 August 2026; rows just outside it (by one minute)
must not count. The same figures are checked on PostgreSQL and on SQLite, then the page,
the CSV downloads and the quarterly report through Flask's test client."""

from __future__ import annotations

import csv
import hashlib
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ldis.bootstrap import Container
from ldis.domain.errors import Forbidden, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import dashboard
from ldis.store.db import Database
from ldis.store.migrate import upgrade
from ldis.store.models import (
    Alert,
    AlertVersion,
    Area,
    Contact,
    Delivery,
    PanelDecision,
    Report,
    ReportSubstance,
    Service,
    Signal,
    User,
)
from ldis.web.dashboard import figure_csv
from tests.integration.webpages import Web, text

pytestmark = pytest.mark.integration

SVG = "{http://www.w3.org/2000/svg}"
JULY = {"from": "2026-07-06", "to": "2026-08-02"}
WEEKS = ["2026-07-06", "2026-07-13", "2026-07-20", "2026-07-27"]
FIGURE_KEYS = [
    "reports-by-week",
    "reports-by-area",
    "signals",
    "alerts",
    "time-to-alert",
    "response-targets",
    "delivery",
    "naloxone",
    "substances",
]


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


class Seed:
    """Inserts the data set; ids are remembered by name."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.ids: dict[str, int] = {}
        self.count = 0

    def run(self) -> None:
        with self.db.transaction() as s:
            self.user = User(email="drafter@example.org", name="Drafter")
            s.add(self.user)
            s.flush()
            self._areas(s)
            self._reports(s)
            self._signals(s)
            self._recipients(s)
            self._alerts(s)

    def _areas(self, s: Any) -> None:
        for code, name, parent in (
            ("NYORKS", "North Yorkshire", None),
            ("SELBY", "Selby", "NYORKS"),
            ("SELBY-W", "Selby West", "SELBY"),
            ("HARROGATE", "Harrogate", "NYORKS"),
            ("YORK", "York", None),
        ):
            area = Area(code=code, name=name, parent_id=self.ids.get(parent) if parent else None)
            s.add(area)
            s.flush()
            self.ids[code] = area.id

    def report(
        self,
        s: Any,
        name: str,
        kind: str,
        area: str | None,
        occurred: str | None,
        *,
        received: str | None = None,
        data: dict[str, Any] | None = None,
        found: Sequence[tuple[str, str | None, bool]] = (),
        suspected: Sequence[str] = (),
    ) -> None:
        self.count += 1
        moment = at(occurred) if occurred else None
        report = Report(
            reference=f"R-TEST{self.count:04d}",
            kind=kind,
            area_id=self.ids[area] if area else None,
            occurred_at=moment,
            received_at=at(received) if received else (moment or at("2026-07-01T00:00")),
            source_type="outreach",
            red_list=any(red for _, _, red in found),
            content_hash=hashlib.sha256(name.encode()).hexdigest(),
            data=data or {},
        )
        s.add(report)
        s.flush()
        self.ids[name] = report.id
        for index, (written, canonical, red) in enumerate(found):
            s.add(
                ReportSubstance(
                    report_id=report.id,
                    field=f"results.{index}.substance",
                    written=written,
                    canonical=canonical,
                    red_list=red,
                )
            )
        for index, written in enumerate(suspected):
            s.add(
                ReportSubstance(
                    report_id=report.id,
                    field=f"suspected_substances.{index}",
                    written=written,
                    canonical=written,
                    red_list=True,  # suspected, not detected: never counted as detected
                )
            )

    def _reports(self, s: Any) -> None:
        metonitazene = ("Metonitazene", "metonitazene", True)
        # Week of 6 July (starts 23:00 UTC on Sunday 5 July).
        self.report(
            s,
            "R1",
            "drug_checking",
            "SELBY",
            "2026-07-05T23:30",
            found=[metonitazene, ("caffeine", "caffeine", False)],
        )
        self.report(
            s,
            "R2",
            "near_miss",
            "SELBY-W",
            "2026-07-08T12:00",
            data={"naloxone_doses": 2},
            suspected=["heroin"],
        )
        self.report(s, "R3", "callout", "YORK", "2026-07-09T03:00", data={"naloxone_given": True})
        # Week of 13 July.
        self.report(
            s, "R4", "near_miss", "HARROGATE", "2026-07-12T23:30", data={"naloxone_doses": 3}
        )
        self.report(s, "R5", "near_miss", "NYORKS", "2026-07-15T10:00", data={"naloxone_doses": 0})
        self.report(
            s,
            "R6",
            "drug_checking",
            "YORK",
            "2026-07-16T00:00",
            found=[("tranq", "xylazine", True), ("heroin", "heroin", False)],
        )
        self.report(s, "R7", "callout", "SELBY", "2026-07-17T09:00", data={"naloxone_given": False})
        # Week of 20 July: nothing. Week of 27 July (ends 22:59:59 UTC on Sunday 2 August).
        self.report(
            s,
            "R8",
            "drug_checking",
            "SELBY",
            "2026-08-02T22:59",
            found=[
                metonitazene,
                ("metonitazine", "metonitazene", True),
                ("Zorbazine", None, False),
            ],
        )
        self.report(s, "R9", "callout", None, "2026-07-28T08:00", data={"naloxone_given": True})
        # No time known: counted when received.
        self.report(s, "R10", "callout", "YORK", None, received="2026-07-29T12:00")
        # Outside the four weeks (but R11 and R12 inside the third quarter).
        self.report(s, "R11", "near_miss", "SELBY", "2026-07-05T22:30", data={"naloxone_doses": 5})
        self.report(s, "R12", "drug_checking", "SELBY", "2026-08-02T23:00", found=[metonitazene])
        self.report(
            s,
            "R13",
            "near_miss",
            "SELBY",
            "2026-06-01T12:00",
            received="2026-07-07T12:00",
            data={"naloxone_doses": 4},
        )

    def signal(
        self, s: Any, name: str, kind: str, area: str, detected: str, status: str, **more: Any
    ) -> None:
        signal = Signal(
            kind=kind,
            key=f"{kind}:{name}",
            status=status,
            severity="red",
            area_id=self.ids[area],
            summary=name,
            detected_at=at(detected),
            **more,
        )
        s.add(signal)
        s.flush()
        self.ids[name] = signal.id

    def decide(self, s: Any, subject: str, name: str, decision: str, when: str) -> None:
        s.add(
            PanelDecision(
                subject=subject,
                subject_id=self.ids[name],
                decision=decision,
                rag="red",
                reasons="Seeded.",
                decided_by=self.user.id,
                decided_at=at(when),
            )
        )
        s.flush()

    def _signals(self, s: Any) -> None:
        self.signal(s, "S1", "red_list", "SELBY", "2026-07-06T10:00", "alerted")
        self.signal(s, "S2", "cluster", "YORK", "2026-07-14T10:00", "dismissed")
        self.signal(s, "S3", "presentation", "HARROGATE", "2026-07-20T10:00", "open")
        self.signal(
            s,
            "S4",
            "mismatch",
            "SELBY",
            "2026-07-21T10:00",
            "dismissed",
            merged_into_id=self.ids["S1"],
        )
        self.signal(s, "S5", "red_list", "NYORKS", "2026-07-30T10:00", "monitoring")
        self.signal(s, "S6", "red_list", "SELBY", "2026-06-20T10:00", "open")  # outside
        self.decide(s, "signal", "S1", "information_only", "2026-07-06T11:00")
        self.decide(s, "signal", "S1", "formal_alert", "2026-07-06T12:00")  # the latest
        self.decide(s, "signal", "S2", "no_further_action", "2026-07-14T12:00")
        self.decide(s, "signal", "S5", "information_only", "2026-07-30T12:00")
        # A report's decision with the same number as signal 1 must not be read as its.
        self.ids["R1-as-case"] = self.ids["S1"]
        self.decide(s, "report", "R1-as-case", "no_further_action", "2026-07-07T12:00")

    def _recipients(self, s: Any) -> None:
        for name, kind, contacts in (
            ("NSP", "needle_syringe_programme", ("C1", "C2")),
            ("PHARMACY", "pharmacy", ("C3",)),
            ("AE", "emergency_department", ("C4",)),
        ):
            service = Service(name=f"{name} service", type=kind)
            s.add(service)
            s.flush()
            self.ids[name] = service.id
            for contact_name in contacts:
                contact = Contact(
                    service_id=service.id,
                    name=contact_name,
                    email=f"{contact_name.lower()}@example.org",
                )
                s.add(contact)
                s.flush()
                self.ids[contact_name] = contact.id

    def alert(
        self,
        s: Any,
        name: str,
        areas: list[str],
        level: str,
        priority: str,
        *,
        report: str | None,
        decided: str | None,
        approved: str | None,
        exercise: bool = False,
    ) -> None:
        alert = Alert(
            status="approved" if approved else "draft",
            current_version=1,
            live_version=1 if approved else None,
            drafter_id=self.user.id,
            exercise=exercise,
            first_report_at=at(report) if report else None,
            signal_at=at(report) if report else None,
            decided_at=at(decided) if decided else None,
            approved_at=at(approved) if approved else None,
        )
        s.add(alert)
        s.flush()
        self.ids[name] = alert.id
        self.version(s, name, 1, "alert", level, priority, approved, areas)

    def version(
        self,
        s: Any,
        alert: str,
        number: int,
        purpose: str,
        level: str,
        priority: str,
        approved: str | None,
        areas: list[str],
    ) -> None:
        s.add(
            AlertVersion(
                alert_id=self.ids[alert],
                version=number,
                purpose=purpose,
                state="approved" if approved else "draft",
                drafter_id=self.user.id,
                author_ids=[self.user.id],
                title=f"{alert} v{number}",
                template="professional",
                level=level,
                priority=priority,
                content={"areas": areas, "kind": "drug_alert", "fields": {}},
                approved_at=at(approved) if approved else None,
            )
        )
        s.flush()

    def delivery(
        self,
        s: Any,
        alert: str,
        version: int,
        contact: str,
        status: str,
        *,
        sent: str | None = None,
        delivered: str | None = None,
        acknowledged: str | None = None,
        channel: str = "email",
    ) -> None:
        s.add(
            Delivery(
                alert_id=self.ids[alert],
                version=version,
                contact_id=self.ids[contact],
                channel=channel,
                priority="urgent",
                status=status,
                queued_at=at("2026-07-01T00:00"),
                sent_at=at(sent) if sent else None,
                delivered_at=at(delivered) if delivered else None,
                acknowledged_at=at(acknowledged) if acknowledged else None,
            )
        )

    def _alerts(self, s: Any) -> None:
        # A1: urgent; report 00:00, decided +2 h, approved +1 h, first delivery +30 min.
        self.alert(
            s,
            "A1",
            ["SELBY"],
            "professional",
            "urgent",
            report="2026-07-06T00:00",
            decided="2026-07-06T02:00",
            approved="2026-07-06T03:00",
        )
        self.delivery(s, "A1", 1, "C1", "sent", sent="2026-07-06T03:30")
        self.delivery(
            s,
            "A1",
            1,
            "C2",
            "delivered",
            sent="2026-07-06T03:31",
            delivered="2026-07-06T03:40",
            acknowledged="2026-07-06T04:00",
            channel="sms",
        )
        self.delivery(s, "A1", 1, "C3", "failed")
        # A2: standard; decided +50 h, approved +4 h, first delivery +6 min; an urgent update
        # (still counted as the standard alert it was issued as) and a withdrawal notice
        # (whose messages the delivery figures leave out).
        self.alert(
            s,
            "A2",
            ["YORK"],
            "professional",
            "standard",
            report="2026-07-13T00:00",
            decided="2026-07-15T02:00",
            approved="2026-07-15T06:00",
        )
        self.version(s, "A2", 2, "update", "professional", "urgent", "2026-07-16T00:00", ["YORK"])
        self.version(
            s, "A2", 3, "withdrawal", "professional", "urgent", "2026-07-17T00:00", ["YORK"]
        )
        self.delivery(s, "A2", 1, "C4", "sent", sent="2026-07-15T06:06")
        self.delivery(
            s,
            "A2",
            2,
            "C4",
            "delivered",
            sent="2026-07-16T00:01",
            delivered="2026-07-16T00:02",
            acknowledged="2026-07-16T01:00",
        )
        self.delivery(s, "A2", 2, "C3", "cancelled")
        self.delivery(s, "A2", 3, "C4", "sent", sent="2026-07-17T00:01")
        # A3: public, urgent, for the whole county; decided +30 h (over the urgent 24 h),
        # approved +2 h, first delivery +12 min.
        self.alert(
            s,
            "A3",
            ["NYORKS"],
            "public",
            "urgent",
            report="2026-07-20T00:00",
            decided="2026-07-21T06:00",
            approved="2026-07-21T08:00",
        )
        self.delivery(
            s, "A3", 1, "C1", "sent", sent="2026-07-21T08:12", acknowledged="2026-07-21T09:00"
        )
        self.delivery(s, "A3", 1, "C3", "queued")
        # A4: decided +10 h, approved +20 h; every message failed, so no delivery time.
        self.alert(
            s,
            "A4",
            ["SELBY-W"],
            "professional",
            "standard",
            report="2026-07-27T00:00",
            decided="2026-07-27T10:00",
            approved="2026-07-28T06:00",
        )
        self.delivery(s, "A4", 1, "C2", "failed", channel="sms")
        self.delivery(s, "A4", 1, "C3", "failed")
        # An exercise: counted apart, its messages nowhere.
        self.alert(
            s,
            "A5",
            ["SELBY"],
            "professional",
            "urgent",
            report=None,
            decided=None,
            approved="2026-07-08T09:00",
            exercise=True,
        )
        self.delivery(
            s,
            "A5",
            1,
            "C1",
            "delivered",
            sent="2026-07-08T09:01",
            delivered="2026-07-08T09:02",
            acknowledged="2026-07-08T09:05",
        )
        # Approved after the four weeks (inside the quarter), and a draft never approved.
        self.alert(
            s,
            "A6",
            ["SELBY"],
            "professional",
            "standard",
            report=None,
            decided=None,
            approved="2026-08-10T09:00",
        )
        self.alert(s, "A7", ["SELBY"], "public", "urgent", report=None, decided=None, approved=None)


PANEL = Principal(user_id=1, email="panel@example.org", roles=frozenset({Role.panel}))


@pytest.fixture(params=["postgresql", "sqlite"])
def seeded(
    request: pytest.FixtureRequest, container: Container, tmp_path: Path
) -> Iterator[Database]:
    """The data set in the test run's PostgreSQL database (emptied after each test) or in
    a new SQLite file built by the same migrations."""
    if request.param == "postgresql":
        Seed(container.db).run()
        yield container.db
        return
    db = Database(f"sqlite:///{tmp_path / 'dashboard.sqlite'}")
    upgrade(db.engine)
    Seed(db).run()
    yield db
    db.dispose()


def figures(db: Database, **args: str) -> dict[str, Any]:
    query = dashboard.parse_query(args, today=date(2026, 11, 30))
    view = dashboard.dashboard(db, PANEL, query)
    view["by_key"] = {f["key"]: f for f in view["figures"]}
    return view


def rows(view: dict[str, Any], key: str) -> list[list[Any]]:
    found: list[list[Any]] = view["by_key"][key]["rows"]
    return found


def headline(view: dict[str, Any]) -> dict[str, Any]:
    return {h["key"]: h["value"] for h in view["headline"]}


def test_every_figure_for_four_weeks_everywhere(seeded: Database) -> None:
    view = figures(seeded, **JULY)
    assert [f["key"] for f in view["figures"]] == FIGURE_KEYS
    assert (view["first"], view["last"], view["weeks"], view["area"]) == (
        "2026-07-06",
        "2026-08-02",
        4,
        None,
    )
    assert not view["empty"]

    # Reports per week: drug checking, near misses, call-outs, total. The first minute of
    # 6 July and the last of 2 August (UK time) count, a minute either side does not; an
    # event's own time wins over its receipt, which counts only when the time is unknown.
    assert rows(view, "reports-by-week") == [
        ["2026-07-06", 1, 1, 1, 3],
        ["2026-07-13", 1, 2, 1, 4],
        ["2026-07-20", 0, 0, 0, 0],
        ["2026-07-27", 1, 0, 2, 3],
    ]
    assert [c["key"] for c in view["by_key"]["reports-by-week"]["columns"]] == [
        "week_commencing",
        "drug_checking",
        "near_miss",
        "callout",
        "total",
    ]
    # By top-level area, most reports first.
    assert rows(view, "reports-by-area") == [
        ["NYORKS", "North Yorkshire", 2, 3, 1, 6],
        ["YORK", "York", 1, 0, 2, 3],
        ["", "No area", 0, 0, 1, 1],
    ]
    # Signals by where they stand and the panel's latest decision on each:
    # none yet, no further action, information only, formal alert, total.
    assert rows(view, "signals") == [
        ["open", "Still open", 1, 0, 0, 0, 1],
        ["monitoring", "Being monitored", 0, 0, 1, 0, 1],
        ["alerted", "Alerted", 0, 0, 0, 1, 1],
        ["dismissed", "Dismissed", 0, 1, 0, 0, 1],
        ["merged", "Merged into another signal", 1, 0, 0, 0, 1],
    ]
    # Alerts by level: urgent, standard, total (the exercise left out, the update not
    # counting again, the later alert and the draft not in the period).
    assert rows(view, "alerts") == [
        ["professional", "Professional alerts", 1, 2, 3],
        ["public", "Public alerts", 1, 0, 1],
    ]
    assert view["exercises"] == 1
    # Steps in hours: report to decision 2, 50, 30, 10; decision to approval 1, 4, 2, 20;
    # approval to first delivery 0.5, 0.1, 0.2 (A4 never delivered); whole loop 3.5, 54.1,
    # 32.2. Median and 90th percentile by linear interpolation.
    assert rows(view, "time-to-alert") == [
        ["report_to_decision", "First report to panel decision", 4, 20.0, 44.0],
        ["decision_to_approval", "Decision to approval", 4, 3.0, 15.2],
        ["approval_to_delivery", "Approval to first delivery", 3, 0.2, 0.44],
        [
            "report_to_delivery",
            "Whole loop: first report to first delivery",
            3,
            32.2,
            49.72,
        ],
    ]
    assert rows(view, "response-targets") == [
        ["decided_within_48h", "Decided within 48 h", 48, 4, 3, 75.0],
        [
            "urgent_decided_within_24h",
            "Urgent: decided within 24 h",
            24,
            2,
            1,
            50.0,
        ],
    ]
    # Messages, delivered or sent, failed, waiting, success %, services reached, services
    # that acknowledged, acknowledged %; cancelled messages, withdrawal notices and the
    # exercise left out.
    assert rows(view, "delivery") == [
        ["emergency_department", "A&E (emergency department)", 2, 2, 0, 0, 100.0, 2, 1, 50.0],
        ["needle_syringe_programme", "Needle and syringe programme", 4, 3, 1, 0, 75.0, 2, 2, 100.0],
        ["pharmacy", "Pharmacy", 3, 0, 2, 1, 0.0, 0, 0, None],
        ["all", "All service types", 9, 5, 3, 1, 62.5, 4, 3, 75.0],
    ]
    # Near misses, those with naloxone, doses, call-outs with naloxone given.
    assert rows(view, "naloxone") == [
        ["2026-07-06", 1, 1, 2, 1],
        ["2026-07-13", 2, 1, 3, 0],
        ["2026-07-20", 0, 0, 0, 0],
        ["2026-07-27", 0, 0, 0, 1],
    ]
    # Substances found by drug checking, red list first; a report naming one twice counts
    # once; suspected substances in near misses are not detections.
    assert rows(view, "substances") == [
        ["metonitazene", "yes", 2, 1, 0, 0, 1],
        ["xylazine", "yes", 1, 0, 1, 0, 0],
        ["caffeine", "no", 1, 1, 0, 0, 0],
        ["heroin", "no", 1, 0, 1, 0, 0],
        ["zorbazine", "no", 1, 0, 0, 0, 1],
    ]
    strips = view["by_key"]["substances"]["chart"]["series"]
    assert [(s["name"], s["highlight"]) for s in strips[:3]] == [
        ("metonitazene (red list)", True),
        ("xylazine (red list)", True),
        ("caffeine", False),
    ]
    assert headline(view) == {
        "reports": 10,
        "near_misses": 3,
        "naloxone_doses": 5,
        "red_list_substances": 2,
        "signals": 5,
        "alerts": 4,
        "median_report_to_delivery": 32.2,
        "decided_within_48h": 75.0,
        "delivery_success": 62.5,
        "acknowledged": 75.0,
    }
    notes = {h["key"]: h["note"] for h in view["headline"]}
    assert notes["alerts"] == "2 urgent; 1 exercise not counted"
    assert notes["acknowledged"] == "3 of 4 services reached"


def test_an_area_counts_itself_and_everything_inside_it(seeded: Database) -> None:
    view = figures(seeded, **JULY, area="nyorks")
    assert view["area"] == {"code": "NYORKS", "name": "North Yorkshire"}
    assert rows(view, "reports-by-week") == [
        ["2026-07-06", 1, 1, 0, 2],
        ["2026-07-13", 0, 2, 1, 3],
        ["2026-07-20", 0, 0, 0, 0],
        ["2026-07-27", 1, 0, 0, 1],
    ]
    # By the county's sub-areas (Selby West counted under Selby), and the county itself.
    assert rows(view, "reports-by-area") == [
        ["SELBY", "Selby", 2, 1, 1, 4],
        ["HARROGATE", "Harrogate", 0, 1, 0, 1],
        ["NYORKS", "North Yorkshire (the area as a whole)", 0, 1, 0, 1],
    ]
    assert [row[-1] for row in rows(view, "signals")] == [1, 1, 1, 0, 1]
    # A1 (Selby), A3 (the county), A4 (Selby West); York's A2 is not the county's.
    assert rows(view, "alerts") == [
        ["professional", "Professional alerts", 1, 1, 2],
        ["public", "Public alerts", 1, 0, 1],
    ]
    assert rows(view, "time-to-alert")[0][2:] == [3, 10.0, 26.0]
    assert rows(view, "naloxone")[0] == ["2026-07-06", 1, 1, 2, 0]
    assert [row[0] for row in rows(view, "substances")] == ["metonitazene", "caffeine", "zorbazine"]

    # A district: an alert sent to the county containing it reached it too.
    selby = figures(seeded, **JULY, area="SELBY")
    assert [row[-1] for row in rows(selby, "alerts")] == [2, 1]
    assert rows(selby, "reports-by-area") == [
        ["SELBY", "Selby (the area as a whole)", 2, 0, 1, 3],
        ["SELBY-W", "Selby West", 0, 1, 0, 1],
    ]
    york = figures(seeded, **JULY, area="YORK")
    assert [row[-1] for row in rows(york, "alerts")] == [1, 0]
    assert rows(york, "delivery")[-1] == ["all", "All service types", 2, 2, 0, 0, 100.0, 2, 1, 50.0]
    assert york["exercises"] == 0


def test_a_quarter_and_an_empty_period(seeded: Database) -> None:
    quarter = figures(seeded, quarter="2026-Q3")
    assert (quarter["first"], quarter["last"], quarter["quarter"], quarter["weeks"]) == (
        "2026-07-01",
        "2026-09-30",
        "2026-Q3",
        14,
    )
    assert headline(quarter)["reports"] == 12  # R11 and R12 are in July and August
    assert headline(quarter)["alerts"] == 5  # and A6, approved on 10 August
    assert headline(quarter)["naloxone_doses"] == 10
    empty = figures(seeded, **{"from": "2025-01-01", "to": "2025-03-31"})
    assert empty["empty"] and all(f["empty"] for f in empty["figures"])
    assert headline(empty)["reports"] == 0 and headline(empty)["median_report_to_delivery"] is None


def test_the_query_is_checked(seeded: Database) -> None:
    for args, field in (
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-07-10", "to": "2026-07-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
        ({"quarter": "2026-Q9"}, "quarter"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            dashboard.parse_query(args, today=date(2026, 11, 30))
        assert field in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:
        figures(seeded, **JULY, area="NOWHERE")
    assert caught.value.fields == {"area": "there is no area with the code NOWHERE"}
    default = dashboard.parse_query({}, today=date(2026, 11, 30))
    assert (default.period.first, default.period.last) == (date(2026, 9, 14), date(2026, 11, 30))
    to_only = dashboard.parse_query({"to": "2026-08-02"}, today=date(2026, 11, 30))
    assert to_only.period.first == date(2026, 5, 11)  # 12 weeks, to the week of 27 July
    report = dashboard.parse_query({}, today=date(2026, 11, 30), quarterly=True)
    assert report.period.label == "2026-Q3"
    reporter = Principal(user_id=9, email="r@example.org", roles=frozenset({Role.reporter}))
    with pytest.raises(Forbidden):
        dashboard.dashboard(seeded, reporter, default)


# Pages and downloads (PostgreSQL, the application as served).


@pytest.fixture
def web(app: Flask, container: Container) -> Web:
    Seed(container.db).run()
    return Web(app, container)


def _svgs(html: str) -> list[ET.Element]:
    found = []
    rest = html
    while "<svg" in rest:
        start = rest.index("<svg")
        end = rest.index("</svg>", start) + len("</svg>")
        found.append(ET.fromstring(rest[start:end]))
        rest = rest[end:]
    return found


def _read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_page_draws_every_figure_with_its_table_and_csv(web: Web) -> None:
    browser = web.browser("board", Role.panel)
    response = browser.get("/dashboard?from=2026-07-06&to=2026-08-02")
    assert response.status_code == 200
    html = text(response)
    assert "6 Jul 2026 to 2 Aug 2026, all areas" in html
    pictures = _svgs(html)
    assert len(pictures) == len(FIGURE_KEYS)
    for picture, key in zip(pictures, FIGURE_KEYS, strict=True):
        assert picture.attrib["role"] == "img"
        assert picture.attrib["aria-labelledby"] == f"chart-{key}-title chart-{key}-desc"
        assert picture.find(f"{SVG}title") is not None and picture.find(f"{SVG}desc") is not None
        assert f'id="table-{key}"' in html
        assert f"/dashboard/{key}.csv?from=2026-07-06&amp;to=2026-08-02" in html
    assert html.count("<table") == len(FIGURE_KEYS)
    assert 'id="headline-reports"' in html and "75%" in html and "32.2 h" in html
    assert '<span class="tag red">Red list</span>' in html
    assert "<script" not in html
    # The same page with an area keeps it in every link.
    county = text(browser.get("/dashboard?from=2026-07-06&to=2026-08-02&area=NYORKS"))
    assert "/dashboard/alerts.csv?from=2026-07-06&amp;to=2026-08-02&amp;area=NYORKS" in county
    assert '<option value="NYORKS" selected>' in county


def test_csv_downloads_are_the_tables(web: Web) -> None:
    browser = web.browser("board", Role.admin)
    response = browser.get("/dashboard/reports-by-week.csv?from=2026-07-06&to=2026-08-02")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert (
        response.headers["Content-Disposition"]
        == 'attachment; filename="ldis-reports-by-week-2026-07-06-to-2026-08-02.csv"'
    )
    assert response.get_data().count(b"\r\n") == 5
    assert _read_csv(response.get_data()) == [
        ["week_commencing", "drug_checking", "near_miss", "callout", "total"],
        ["2026-07-06", "1", "1", "1", "3"],
        ["2026-07-13", "1", "2", "1", "4"],
        ["2026-07-20", "0", "0", "0", "0"],
        ["2026-07-27", "1", "0", "2", "3"],
    ]
    timing = browser.get("/dashboard/time-to-alert.csv?from=2026-07-06&to=2026-08-02&area=nyorks")
    assert timing.headers["Content-Disposition"].endswith('-2026-08-02-nyorks.csv"')
    assert _read_csv(timing.get_data())[:2] == [
        ["stage", "step", "alerts", "median_hours", "p90_hours"],
        ["report_to_decision", "First report to panel decision", "3", "10.0", "26.0"],
    ]
    delivery = _read_csv(
        browser.get("/dashboard/delivery.csv?from=2026-07-06&to=2026-08-02").get_data()
    )
    assert delivery[3] == ["pharmacy", "Pharmacy", "3", "0", "2", "1", "0.0", "0", "0", ""]
    substances = _read_csv(
        browser.get("/dashboard/substances.csv?from=2026-07-06&to=2026-08-02").get_data()
    )
    assert substances[0] == ["substance", "red_list", "total", *[f"week_{w}" for w in WEEKS]]
    assert substances[1] == ["metonitazene", "yes", "2", "1", "0", "0", "1"]
    for key in FIGURE_KEYS:
        assert browser.get(f"/dashboard/{key}.csv?from=2026-07-06&to=2026-08-02").status_code == 200
    assert browser.get("/dashboard/nothing.csv").status_code == 404
    bad = browser.get("/dashboard/alerts.csv?from=2026-02-30")
    assert bad.status_code == 400 and "From must be a real date" in bad.get_data(as_text=True)


def test_csv_cells_never_become_formulas() -> None:
    found = {
        "columns": [
            {"key": "area", "label": "Area", "format": "text"},
            {"key": "n", "label": "N", "format": "count"},
            {"key": "p", "label": "P", "format": "percent"},
        ],
        "rows": [['=HYPERLINK("x")', 1, None], ["+44", 2, 50.0], ["Selby, West", 3, 0.0]],
    }
    assert _read_csv(figure_csv(found).encode()) == [
        ["area", "n", "p"],
        ['\'=HYPERLINK("x")', "1", ""],
        ["'+44", "2", "50.0"],
        ["Selby, West", "3", "0.0"],
    ]


def test_the_quarterly_report_prints_and_says_when_it_is_empty(web: Web) -> None:
    browser = web.browser("board", Role.panel)
    response = browser.get("/dashboard/report?quarter=2026-Q3")
    assert response.status_code == 200
    html = text(response)
    assert "Quarter 3 of 2026: 1 Jul 2026 to 30 Sep 2026, all areas" in html
    assert "@media print" in html and ".no-print { display: none" in html
    assert len(_svgs(html)) == len(FIGURE_KEYS)
    assert html.count("<table") == len(FIGURE_KEYS)
    assert 'id="headline-reports"' in html
    assert "1 exercise ran in this period" in html
    assert "<script" not in html
    # By default: the last full quarter before today.
    assert "Quarter " in text(browser.get("/dashboard/report"))
    empty = browser.get("/dashboard/report?quarter=2025-Q1&area=SELBY")
    assert empty.status_code == 200
    page = text(empty)
    assert "Nothing was recorded in this period for Selby." in page
    assert "<svg" not in page and "<table" not in page
    bad = browser.get("/dashboard/report?quarter=2026-Q7")
    assert bad.status_code == 400 and "Quarter must be a quarter like 2026-Q3" in text(bad)


def test_errors_are_shown_beside_the_fields(web: Web) -> None:
    browser = web.browser("board", Role.panel)
    response = browser.get("/dashboard?from=2026-07-10&to=2026-07-01&area=NOWHERE")
    assert response.status_code == 400
    html = text(response)
    assert 'id="to-error"' in html and "To must be on or after the start of the period" in html
    unknown = text(browser.get("/dashboard?area=NOWHERE"))
    assert "Area there is no area with the code NOWHERE" in unknown
    assert 'aria-invalid="true"' in unknown


def test_only_the_panel_and_admins_see_the_dashboard(web: Web, client: FlaskClient) -> None:
    reporter = web.browser("reporter", Role.reporter)
    manager = web.browser("manager", Role.service_manager)
    for path in ("/dashboard", "/dashboard/alerts.csv", "/dashboard/report"):
        assert reporter.get(path).status_code == 403
        assert manager.get(path).status_code == 403
        assert client.get(path).status_code == 302  # not signed in: to the login page
    panel = web.browser("member", Role.panel)
    assert 'href="/dashboard">Dashboard</a>' in text(panel.get("/dashboard"))
    assert 'href="/dashboard"' not in text(reporter.get("/reports"))
