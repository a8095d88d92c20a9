"""Retention: reports older than LDIS_RETENTION_MONTHS lose free text, updates, photos and
exact locations, once, while every dashboard figure stays exactly the same; the dry run,
the command and the schedule."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from ldis.bootstrap import Container
from ldis.domain.figures import Period
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import areas, dashboard, intake, photos, retention
from ldis.services.accounts import create_user
from ldis.settings import PROJECT_ROOT
from ldis.store.models import AuditEvent, Report, ReportPhoto, ReportSubstance, ReportUpdate
from workers.celery_factory import make_celery

pytestmark = pytest.mark.integration

YEAR = Period(date(2023, 1, 2), date(2023, 12, 31))
LONG_AGO = datetime(2023, 6, 20, 9, 0, tzinfo=UTC)


def person(container: Container, name: str, *roles: Role) -> Principal:
    email = f"{name}@example.org"
    user_id = create_user(container.db, email=email, name=name, roles=frozenset(roles))
    return Principal(user_id=user_id, email=email, roles=frozenset(roles))


def near_miss(day: str, **changes: Any) -> dict[str, Any]:
    return {
        "kind": "near_miss",
        "area": "SELBY",
        "occurred_at": f"{day}T23:40:00Z",
        "location": {"lat": 53.78412, "lon": -1.06731},
        "suspected_substances": ["heroin", "xylazine"],
        "naloxone_doses": 2,
        "outcome": "hospital",
        "setting": "hostel stairwell",
        "notes": "Found by staff after the evening shift; two doses needed.",
        "source": {"type": "outreach", "name": "Selby outreach"},
        **changes,
    }


DRUG_CHECK = {
    "kind": "drug_checking",
    "area": "SELBY",
    "sample_obtained_on": "2023-06-14",
    "sold_as": "oxycodone 80 mg",
    "form": "tablet",
    "appearance": {"colour": "green", "markings": "OC 80"},
    "results": [
        {"substance": "metonitazene", "method": "lc-ms", "abundance": "primary"},
        {"substance": "caffeine", "method": "lc-ms", "abundance": "trace"},
    ],
    "harms_reported": "Buyer collapsed twice at the weekend.",
    "notes": "Handed in at the Tuesday drop-in.",
    "source": {"type": "drug_checking_service", "name": "Lab", "reference": "S-2023-77"},
}
CALLOUT = {
    "kind": "callout",
    "occurred_at": "2023-06-16T02:10:00Z",
    "location": {"lat": 53.78101, "lon": -1.06999},
    "naloxone_given": True,
    "area": "SELBY",
    "source": {"type": "ambulance", "name": "YAS", "reference": "INC-000123"},
}


def _jpeg() -> bytes:
    out = BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 60)).save(out, format="JPEG")
    return out.getvalue()


def _file(
    container: Container, actor: Principal, body: dict[str, Any], received: datetime | None
) -> int:
    photo = photos.process(_jpeg()) if body["kind"] == "drug_checking" else None
    view, created = intake.file_report(container.db, actor, body, photo)
    assert created, view
    if received is not None:
        with container.db.transaction() as session:
            session.execute(
                update(Report).where(Report.id == view["id"]).values(received_at=received)
            )
    return int(view["id"])


@pytest.fixture
def seeded(container: Container) -> dict[str, Any]:
    admin = person(container, "admin", Role.admin)
    reporter = person(container, "outreach", Role.reporter)
    areas.create_area(container.db, admin, {"code": "NYORKS", "name": "North Yorkshire"})
    areas.create_area(container.db, admin, {"code": "SELBY", "name": "Selby", "parent": "NYORKS"})
    old = [
        _file(container, reporter, near_miss("2023-06-12"), LONG_AGO),
        _file(container, reporter, near_miss("2023-06-13", naloxone_doses=3), LONG_AGO),
        _file(container, reporter, DRUG_CHECK, LONG_AGO),
        _file(container, reporter, CALLOUT, LONG_AGO),
    ]
    for report_id in old[:3]:
        intake.add_update(
            container.db, reporter, report_id, {"text": "Lab confirmed metonitazene."}
        )
    # Received recently about an old event: inside the retention period, kept whole.
    recent = _file(container, reporter, near_miss("2023-06-15", naloxone_doses=1), None)
    intake.add_update(container.db, reporter, recent, {"text": "Recovered on scene."})
    return {"admin": admin, "reporter": reporter, "old": old, "recent": recent}


def figures(container: Container, admin: Principal) -> dict[str, Any]:
    return dashboard.dashboard(container.db, admin, dashboard.DashboardQuery(YEAR))


def test_months_before_is_calendar_months() -> None:
    moment = datetime(2026, 3, 31, 12, 30, tzinfo=UTC)
    assert retention.months_before(moment, 1) == datetime(2026, 2, 28, 12, 30, tzinfo=UTC)
    assert retention.months_before(moment, 24) == datetime(2024, 3, 31, 12, 30, tzinfo=UTC)
    assert retention.months_before(moment, 25) == datetime(2024, 2, 29, 12, 30, tzinfo=UTC)
    assert retention.months_before(moment, 15) == datetime(2024, 12, 31, 12, 30, tzinfo=UTC)


def test_redacted_data_keeps_what_is_counted() -> None:
    stored = {
        "notes": "x",
        "setting": "hostel",
        "location": {"lat": 53.784, "lon": -1.067},
        "naloxone_doses": 2,
        "suspected_substances": ["heroin"],
        "source": {"type": "outreach", "name": "Team", "reference": "R1"},
    }
    assert retention.redacted_data("near_miss", stored) == {
        "notes": "",
        "setting": None,
        "naloxone_doses": 2,
        "suspected_substances": ["heroin"],
        "source": {"type": "outreach", "name": "Team", "reference": None},
    }


def test_old_reports_lose_text_photos_and_places_but_every_figure_stays(
    container: Container, seeded: dict[str, Any]
) -> None:
    admin, old, recent = seeded["admin"], seeded["old"], seeded["recent"]
    before = figures(container, admin)
    weekly = next(f for f in before["figures"] if f["key"] == "reports-by-week")
    assert sum(row[-1] for row in weekly["rows"]) == 5  # the counts are real, not empty
    with container.db.transaction() as session:
        substances_before = session.execute(
            select(
                ReportSubstance.report_id, ReportSubstance.written, ReportSubstance.canonical
            ).order_by(ReportSubstance.id)
        ).all()
        kept_columns = session.execute(
            select(
                Report.id, Report.kind, Report.area_id, Report.occurred_at, Report.red_list
            ).order_by(Report.id)
        ).all()

    now = datetime.now(UTC)
    dry = retention.redact_old_reports(container.db, now, 24, dry_run=True)
    assert (dry.reports, dry.updates, dry.photos, dry.locations) == (4, 3, 1, 3)
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).where(Report.redacted_at.is_not(None))) == 0

    done = retention.redact_old_reports(container.db, now, 24)
    assert done.view() == {**dry.view(), "dry_run": False}
    assert figures(container, admin) == before  # every figure and headline, unchanged

    with container.db.transaction() as session:
        rows = {r.id: r for r in session.scalars(select(Report))}
        for report_id in old:
            report = rows[report_id]
            assert report.redacted_at == now
            assert report.lat is None and report.lon is None and "location" not in report.data
            assert report.data.get("notes") == ""
            assert report.data["source"].get("reference") is None
        assert rows[old[0]].data["setting"] is None
        assert rows[old[0]].data["naloxone_doses"] == 2 and rows[old[1]].data["naloxone_doses"] == 3
        assert rows[old[2]].data["harms_reported"] == ""
        assert rows[old[2]].data["appearance"] == {
            "colour": "green",
            "shape": None,
            "markings": "OC 80",
            "weight_mg": None,
        }
        assert rows[old[3]].data["naloxone_given"] is True
        assert rows[recent].redacted_at is None and rows[recent].lat is not None
        assert rows[recent].data["notes"].startswith("Found by staff")
        assert session.scalar(select(func.count()).select_from(ReportPhoto)) == 0
        remaining = session.scalars(select(ReportUpdate.report_id)).all()
        assert remaining == [recent]
        assert (
            session.execute(
                select(
                    ReportSubstance.report_id, ReportSubstance.written, ReportSubstance.canonical
                ).order_by(ReportSubstance.id)
            ).all()
            == substances_before
        )
        assert (
            session.execute(
                select(
                    Report.id, Report.kind, Report.area_id, Report.occurred_at, Report.red_list
                ).order_by(Report.id)
            ).all()
            == kept_columns
        )
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "reports.redacted")
        ).all()
    assert len(events) == 1 and events[0].actor_id is None
    assert events[0].detail["reports"] == 4 and events[0].detail["months"] == 24

    # The report still reads: what happened, where (the area) and what was in it.
    view = intake.get_report(container.db, admin, old[0])
    assert view["area"] == "SELBY" and view["notes"] == "" and view["updates"] == []
    assert [s["written"] for s in view["substances"]] == ["heroin", "xylazine"]

    # Once only: a second run finds nothing and writes no second event.
    again = retention.redact_old_reports(container.db, now + timedelta(hours=1), 24)
    assert again.reports == 0
    with container.db.transaction() as session:
        assert (
            session.scalar(select(func.count()).where(AuditEvent.action == "reports.redacted")) == 1
        )


def test_zero_months_keeps_everything(container: Container, seeded: dict[str, Any]) -> None:
    result = retention.redact_old_reports(container.db, datetime.now(UTC), 0)
    assert result.reports == 0 and result.cutoff is None
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).where(Report.redacted_at.is_not(None))) == 0
        assert session.scalar(select(func.count()).select_from(ReportPhoto)) == 1


def test_the_command_and_the_schedule(
    container: Container, seeded: dict[str, Any], settings_env: dict[str, str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")} | settings_env

    def ldis(*args: str, months: str = "24") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ldis.cli", "retention", "run", *args],
            cwd=PROJECT_ROOT,
            env=env | {"LDIS_RETENTION_MONTHS": months},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    dry = ldis("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would redact 4 reports received before "), dry.stdout
    assert "3 updates, 1 photos, 3 locations" in dry.stdout
    kept = ldis(months="0")
    assert kept.returncode == 0 and "nothing to do" in kept.stdout
    run = ldis()
    assert run.returncode == 0 and run.stdout.startswith("redacted 4 reports"), run.stdout
    assert ldis().stdout.startswith("redacted 0 reports")

    schedule = make_celery(container.settings).conf.beat_schedule
    assert any(entry["task"] == "ldis.retention" for entry in schedule.values())
