"""Guards over the whole: no route without an access rule; every queue a task is sent to is
consumed by the worker command; every task the code sends by name exists."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from ldis.cli import _worker_command
from ldis.settings import PROJECT_ROOT, Settings
from ldis.web.access import ACCESS_ATTR
from workers.celery_factory import QUEUES

pytestmark = pytest.mark.integration


def test_every_route_declares_who_may_use_it(app: Flask) -> None:
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue  # Flask's own static files: no data behind them
        view = app.view_functions[rule.endpoint]
        if getattr(view, ACCESS_ATTR, None) is None:
            missing.append(str(rule))
    assert missing == [], f"routes without an access rule: {missing}"


# The API's own description is public on purpose: clients and scanners read it first.
PUBLIC_API_ROUTES = frozenset({"/api/v1/openapi.json"})


def test_api_routes_all_require_roles(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            access = getattr(app.view_functions[rule.endpoint], ACCESS_ATTR)
            if rule.rule in PUBLIC_API_ROUTES:
                assert access == "public", rule.rule
                continue
            assert isinstance(access, frozenset) and access, rule.rule


def test_the_worker_consumes_every_queue(settings: Settings) -> None:
    command = _worker_command(2, settings)
    consumed = set(command[command.index("--queues") + 1].split(","))
    assert consumed == set(QUEUES)
    sources = "\n".join(p.read_text() for p in (PROJECT_ROOT / "workers").rglob("*.py"))
    routed = set(re.findall(r'"queue":\s*(\w+)', sources)) | {"URGENT_QUEUE", "STANDARD_QUEUE"}
    assert routed <= {"URGENT_QUEUE", "STANDARD_QUEUE"}


def test_every_task_sent_by_name_is_registered() -> None:
    from workers.celery_app import app as celery

    celery.loader.import_default_modules()
    registered = {name for name in celery.tasks if name.startswith("ldis.")}
    sources = "\n".join(
        p.read_text()
        for folder in ("ldis", "workers")
        for p in (PROJECT_ROOT / folder).rglob("*.py")
    )
    sent = set(re.findall(r'"(ldis\.[a-z_]+)"', sources)) & {
        n for n in re.findall(r'send_task\(\s*"(ldis\.[a-z_]+)"', sources)
    }
    scheduled = set(re.findall(r'"task":\s*"(ldis\.[a-z_]+)"', sources))
    assert sent and scheduled
    assert sent | scheduled <= registered
    for name in registered:
        assert celery.tasks[name].acks_late, f"{name} must use acks_late"
