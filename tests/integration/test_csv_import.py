"""`ldis import-callouts`: the Tempe file imports as it is, all rows, and a second import adds
nothing; malformed rows are reported by line and the good ones kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.settings import PROJECT_ROOT
from ldis.store.models import Report

pytestmark = pytest.mark.integration
TEMPE = PROJECT_ROOT / "tests" / "data" / "tempe_opioid_calls.csv"
TEMPE_MAP = [
    "--map",
    "occurred_at=incident_date",
    "--map",
    "lat=latitude",
    "--map",
    "lon=longitude",
    "--map",
    "naloxone_given=narcan_given",
]


def ldis(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")} | settings_env
    return subprocess.run(
        [sys.executable, "-m", "ldis.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def count(container: Container) -> int:
    with container.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Report)) or 0)


def test_tempe_imports_whole_and_only_once(
    settings_env: dict[str, str], container: Container
) -> None:
    assert TEMPE.exists(), f"the shared data file is missing: {TEMPE}"
    first = ldis(settings_env, "import-callouts", str(TEMPE), "--source", "Tempe Fire", *TEMPE_MAP)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("accepted 3379, duplicate 0, rejected 0"), first.stdout
    assert count(container) == 3379
    second = ldis(settings_env, "import-callouts", str(TEMPE), "--source", "Tempe Fire", *TEMPE_MAP)
    assert second.stdout.startswith("accepted 0, duplicate 3379, rejected 0"), second.stdout
    assert count(container) == 3379
    with container.db.transaction() as session:
        report = session.scalars(select(Report).order_by(Report.occurred_at)).first()
        assert report is not None and report.kind == "callout" and report.area_id is None
        assert report.occurred_at is not None and report.occurred_at.isoformat().startswith(
            "2017-01-03T00:00"
        )
        assert report.data["time_known"] is False
        assert (report.lat, report.lon) is not None


def test_malformed_rows_are_reported_by_line(
    settings_env: dict[str, str], container: Container, tmp_path: Path
) -> None:
    csv_file = tmp_path / "calls.csv"
    csv_file.write_text(
        "when,lat,lon,ref,narcan\n"
        "2026-11-01T01:00:00Z,53.7,-1.1,A1,yes\n"
        "2026-11-01T01:00:00Z,53.7\n"
        "3026-11-01,53.7,-1.1,A3,no\n"
        "2026-11-01,91,-1.1,A4,maybe\n"
        "\n"
        "2026-11-02,53.7,-1.1,A5,\n"
    )
    result = ldis(
        settings_env,
        "import-callouts",
        str(csv_file),
        "--map",
        "occurred_at=when",
        "--map",
        "reference=ref",
        "--map",
        "naloxone_given=narcan",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("accepted 2, duplicate 0, rejected 3"), result.stdout
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 3: row: has 2 columns")
    assert errors[1].startswith("line 4: occurred_at:") and "future" in errors[1]
    assert (
        errors[2].startswith("line 5:")
        and "location.lat" in errors[2]
        and "naloxone_given" in errors[2]
    )
    assert count(container) == 2


def test_a_bad_mapping_is_one_clear_line(settings_env: dict[str, str], tmp_path: Path) -> None:
    csv_file = tmp_path / "calls.csv"
    csv_file.write_text("when,lat,lon\n2026-11-01,53.7,-1.1\n")
    wrong = ldis(settings_env, "import-callouts", str(csv_file), "--map", "when")
    assert wrong.returncode == 2 and "our=theirs" in wrong.stderr
    missing = ldis(settings_env, "import-callouts", str(csv_file), "--map", "occurred_at=date")
    assert missing.returncode == 1 and "no column 'date'" in missing.stderr
