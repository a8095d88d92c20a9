"""Cluster signals end to end: planted call-outs reach the real worker's detector through the
API, and `ldis signals recompute` over the Tempe background is stable when repeated."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import Signal, SignalReport
from tests.integration.conftest import People, wait_for
from tests.integration.test_csv_import import TEMPE, TEMPE_MAP, ldis

pytestmark = pytest.mark.integration


def test_a_burst_of_callouts_becomes_one_cluster_signal(
    client: FlaskClient, people: People, container: Container, worker: subprocess.Popen[str]
) -> None:
    reporter = people.headers("ambulance", Role.reporter)
    start = datetime.now(UTC) - timedelta(hours=10)
    # Seven call-outs within about 300 m in 9 hours, in a place with no history at all.
    burst = [
        {
            "occurred_at": (start + timedelta(hours=1.5 * n)).isoformat(),
            "location": {"lat": 53.958 + 0.001 * (n % 3), "lon": -1.081 + 0.001 * (n % 2)},
            "naloxone_given": True,
            "source": {"type": "ambulance", "name": "YAS", "reference": f"INC-{n}"},
        }
        for n in range(7)
    ]
    body = client.post("/api/v1/callouts", json=burst, headers=reporter).get_json()
    assert body["accepted"] == 7

    def biggest_cluster() -> tuple[Signal, int] | None:
        """The cluster signal linking the most call-outs, once it links at least five: a
        detection run may first see part of the burst (a smaller circle) before all of it."""
        with container.db.transaction() as session:
            rows = session.execute(
                select(Signal, func.count(SignalReport.report_id))
                .join(SignalReport, SignalReport.signal_id == Signal.id)
                .where(Signal.kind == "cluster")
                .group_by(Signal.id)
                .order_by(func.count(SignalReport.report_id).desc())
            ).all()
            if rows and rows[0][1] >= 5:
                session.expunge(rows[0][0])
                return rows[0][0], rows[0][1]
            return None

    found = wait_for(biggest_cluster, timeout=30)
    assert found is not None, "no cluster signal linked five or more of the seven call-outs"
    signal, linked = found
    assert "call-outs" in signal.summary and "expected" in signal.summary
    assert linked <= 7
    panel = people.headers("panel", Role.panel)
    listed = client.get("/api/v1/signals?status=open", headers=panel).get_json()
    cluster = next(s for s in listed if s["kind"] == "cluster")
    assert cluster["window"]["start"] and cluster["window"]["end"]


def test_recompute_over_tempe_is_stable(settings_env: dict[str, str], container: Container) -> None:
    imported = ldis(settings_env, "import-callouts", str(TEMPE), *TEMPE_MAP)
    assert imported.returncode == 0, imported.stderr
    first = ldis(settings_env, "signals", "recompute")
    assert first.returncode == 0, first.stderr
    with container.db.transaction() as session:
        count = session.scalar(select(func.count()).select_from(Signal))
    second = ldis(settings_env, "signals", "recompute")
    assert second.returncode == 0, second.stderr
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Signal)) == count
        # 93 months of real background: false alarms must stay rare.
        assert count is not None and count <= 2 * 93
