"""`ldis areas load-boundaries`: a FeatureCollection loads in one transaction; any refused
feature (bad geometry, unknown code without --create) means nothing is stored and exit 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import Area, AuditEvent
from tests.integration.conftest import People
from tests.integration.test_areas_api import BOW_TIE, box
from tests.integration.test_csv_import import ldis

pytestmark = pytest.mark.integration


def feature(code: str, name: str, geometry: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"WD24CD": code, "WD24NM": name}, "geometry": geometry}


WARDS = [
    feature("E05014100", "Guildhall", box(-1.09, 53.95, -1.07, 53.97)),
    feature("E05014101", "Micklegate", box(-1.11, 53.94, -1.09, 53.96)),
    feature("E05014102", "Fishergate", box(-1.08, 53.93, -1.06, 53.95)),
]


@pytest.fixture
def york(client: FlaskClient, people: People) -> None:
    admin = people.headers("admin", Role.admin)
    for body in (
        {"code": "YORK", "name": "York"},
        {"code": "E05014100", "name": "Guildhall", "parent": "YORK"},
    ):
        assert client.post("/api/v1/areas", json=body, headers=admin).status_code == 201


def write(tmp_path: Path, features: list[dict[str, Any]]) -> Path:
    path = tmp_path / "wards.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def areas(container: Container) -> dict[str, tuple[str, str | None, bool]]:
    with container.db.transaction() as session:
        return {
            a.code: (a.name, a.parent.code if a.parent else None, a.boundary is not None)
            for a in session.scalars(select(Area))
        }


def test_a_file_of_wards_loads_and_creates_under_a_parent(
    york: None, tmp_path: Path, settings_env: dict[str, str], container: Container
) -> None:
    result = ldis(
        settings_env,
        *("areas", "load-boundaries", str(write(tmp_path, WARDS))),
        *("--code-property", "WD24CD", "--name-property", "WD24NM", "--parent", "york"),
        "--create",
    )
    assert result.returncode == 0, result.stderr
    assert "loaded 1, created 2, refused 0 of 3 features" in result.stdout
    assert areas(container) == {
        "YORK": ("York", None, False),
        "E05014100": ("Guildhall", "YORK", True),
        "E05014101": ("Micklegate", "YORK", True),
        "E05014102": ("Fishergate", "YORK", True),
    }
    with container.db.transaction() as session:
        event = session.scalar(
            select(AuditEvent).where(AuditEvent.action == "areas.boundaries_loaded")
        )
    assert event is not None and event.detail == {"loaded": 1, "created": 2, "parent": "YORK"}


def test_any_refused_feature_means_nothing_is_stored(
    york: None, tmp_path: Path, settings_env: dict[str, str], container: Container
) -> None:
    before = areas(container)
    broken = [
        WARDS[0],
        feature("E05014101", "Micklegate", BOW_TIE),
        {"type": "Feature", "properties": {}, "geometry": WARDS[2]["geometry"]},
        WARDS[0],
    ]
    result = ldis(
        settings_env,
        *("areas", "load-boundaries", str(write(tmp_path, broken))),
        *("--code-property", "WD24CD", "--create"),
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        "feature 1 (E05014101): features.1.geometry: the boundary crosses itself near lon -1.08"
    )
    assert lines[1] == "feature 2: has no property 'WD24CD' to give its area code"
    assert lines[2] == "feature 3 (E05014100): repeats the code of feature 0"
    assert "nothing was stored" in lines[-1]
    assert areas(container) == before


def test_an_unknown_code_is_refused_without_create(
    york: None, tmp_path: Path, settings_env: dict[str, str], container: Container
) -> None:
    result = ldis(
        settings_env,
        *("areas", "load-boundaries", str(write(tmp_path, WARDS[:2]))),
        *("--code-property", "WD24CD"),
    )
    assert result.returncode == 1
    assert (
        "feature 1 (E05014101): no area has the code E05014101; add it first, or load with "
        "--create" in result.stderr
    )
    assert "loaded 1, created 0, refused 1 of 2 features" in result.stdout
    assert areas(container)["E05014100"][2] is False  # the good one was not stored either


def test_a_file_that_is_not_a_feature_collection(
    tmp_path: Path, settings_env: dict[str, str]
) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text("{not json")
    result = ldis(settings_env, "areas", "load-boundaries", str(path), "--code-property", "C")
    assert result.returncode == 1 and "is not valid JSON" in result.stderr
    path.write_text(json.dumps(WARDS[0]))
    result = ldis(settings_env, "areas", "load-boundaries", str(path), "--code-property", "C")
    assert result.returncode == 1 and "file: must be a GeoJSON FeatureCollection" in result.stderr
