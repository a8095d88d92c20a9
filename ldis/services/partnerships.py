"""Partnerships on one deployment, and alerts shared on purpose with a neighbour.

Which rows a partnership's people see is not decided here: row-level security does that
(migration 0009, ldis.store.tenancy). This module names partnerships, and lets an alert's
own panel share it with a neighbouring partnership, whose people may then read it (never
approve or change it) and whose services receive its live versions
(ldis.services.shared_fanout).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertPriority, AlertStatus
from ldis.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import audit
from ldis.services.ports import TaskQueue
from ldis.services.shared_alerts import shares_of, write_for
from ldis.store.db import Database, dialect_insert
from ldis.store.models import Alert, AlertShare, Partnership
from ldis.store.models.partnerships import DEFAULT_PARTNERSHIP_ID

log = logging.getLogger(__name__)
# Sharing a live alert sends its live version to the neighbour at once.
SENDING = (AlertStatus.approved.value, AlertStatus.withdrawal_requested.value)
CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
NEEDS_POSTGRES = (
    "several partnerships need PostgreSQL: SQLite has no row-level security to keep them "
    "apart. Set LDIS_DATABASE_URL to a PostgreSQL database and run `ldis db upgrade`."
)


def view(row: Partnership) -> dict[str, Any]:
    return {"id": row.id, "code": row.code, "name": row.name}


def create(db: Database, code: str, name: str) -> dict[str, Any]:
    """A new partnership (PostgreSQL only: on SQLite nothing would keep it apart)."""
    code, name = code.strip().lower(), name.strip()
    if db.is_sqlite:
        raise ValidationFailed({"database": NEEDS_POSTGRES})
    problems = {}
    if not CODE.match(code):
        problems["code"] = "use 2-40 lower-case letters, digits and hyphens, e.g. york-north-yorks"
    if not name or len(name) > 200:
        problems["name"] = "give the partnership's name (at most 200 characters)"
    if problems:
        raise ValidationFailed(problems)
    try:
        with db.transaction() as session:
            row = Partnership(code=code, name=name)
            session.add(row)
            session.flush()
            audit.record(
                session,
                actor_id=None,
                action="partnership.created",
                entity="partnership",
                entity_id=row.id,
                code=code,
            )
            return view(row)
    except IntegrityError:
        raise Conflict(f"A partnership with code {code} already exists.") from None


def list_all(db: Database) -> list[dict[str, Any]]:
    with db.transaction() as session:
        return [view(p) for p in session.scalars(select(Partnership).order_by(Partnership.id))]


def id_of(session: Session, code: str, *, field: str = "partnership") -> int:
    found = session.scalar(select(Partnership.id).where(Partnership.code == code.strip().lower()))
    if found is None:
        raise ValidationFailed({field: f"no partnership {code!r}: `ldis partnerships list`"})
    return found


def resolve_code(db: Database, code: str, *, field: str = "partnership") -> int:
    """The id of the partnership `code`; on SQLite only the default one exists."""
    with db.transaction() as session:
        found = id_of(session, code, field=field)
    if db.is_sqlite and found != DEFAULT_PARTNERSHIP_ID:  # pragma: no cover (refused at create)
        raise ValidationFailed({field: NEEDS_POSTGRES})
    return found


def share_alert(
    db: Database, actor: Principal, alert_id: int, code: Any, *, queue: TaskQueue
) -> dict[str, Any]:
    """The alert's own panel shares it with the partnership `code`: its people may read it
    and, from now on, its services get the alert's versions (the live one at once)."""
    actor.require(Role.panel)
    now = datetime.now(UTC)
    if not isinstance(code, str) or not code.strip():
        raise ValidationFailed({"partnership": "give the code of the partnership to share with"})
    with db.transaction() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise NotFound(f"No alert {alert_id}.")
        if actor.partnership_id is not None and alert.partnership_id != actor.partnership_id:
            raise Forbidden("Only the panel of the alert's own partnership can share it.")
        target = id_of(session, code)
        if target == alert.partnership_id:
            raise ValidationFailed({"partnership": "the alert already belongs to it"})
        insert = dialect_insert(session)
        new = session.execute(
            insert(AlertShare)
            .values(
                alert_id=alert.id,
                partnership_id=target,
                shared_from=alert.partnership_id,
                shared_by=actor.db_id,
                shared_at=now,
            )
            .on_conflict_do_nothing()
            .returning(AlertShare.alert_id)
        ).first()
        queued, live = 0, alert.live_version
        if new is not None and live is not None and alert.status in SENDING:
            queued = write_for(session, alert, alert.version_row(live), target, now)
        priority = alert.version_row(live).priority if live is not None else ""
        audit.record(
            session,
            actor_id=actor.db_id,
            action="alert.shared",
            entity="alert",
            entity_id=alert.id,
            partnership=code.strip().lower(),
        )
        result = {"alert_id": alert.id, "shared_with": shares_of(session, alert.id)}
    if queued and live is not None:
        # After commit; a lost enqueue is recovered by the sweeper.
        try:
            queue.enqueue_fan_out(alert_id, live, urgent=priority == AlertPriority.urgent.value)
        except Exception:
            log.exception("could not enqueue the shared fan-out of alert %s", alert_id)
    return result
