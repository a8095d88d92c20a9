"""The alert use cases: draft, submit, approve (which writes the outbox), reject, read status.

Every state change first takes a write lock on the alert row with an UPDATE, so two panel
members approving at the same moment are serialised: on PostgreSQL by the row lock, on
SQLite by its single writer. Only then are the rules checked against fresh data.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ldis.domain.alerts import (
    AlertAction,
    AlertDraft,
    AlertPriority,
    AlertStatus,
    approval_outcome,
    next_status,
)
from ldis.domain.errors import Forbidden, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit
from ldis.services.outbox_writer import write_deliveries
from ldis.services.ports import TaskQueue
from ldis.services.recipients import areas_by_code
from ldis.store.db import Database
from ldis.store.models import Alert, AlertApproval, AlertVersion, Delivery

log = logging.getLogger(__name__)


def _locked_alert(session: Session, alert_id: int) -> Alert:
    locked = session.execute(
        update(Alert).where(Alert.id == alert_id).values(updated_at=datetime.now(UTC))
    ).rowcount  # type: ignore[attr-defined]
    if not locked:
        raise NotFound(f"No alert {alert_id}.")
    alert = session.get(Alert, alert_id, populate_existing=True)
    assert alert is not None
    return alert


def _check_templates(draft: AlertDraft, templates: frozenset[str]) -> None:
    if draft.template not in templates:
        raise ValidationFailed(
            {"template": f"unknown template; use one of: {', '.join(sorted(templates))}"}
        )


def draft_alert(
    db: Database, actor: Principal, body: Any, *, templates: frozenset[str]
) -> dict[str, Any]:
    actor.require(Role.panel)
    draft = parse(AlertDraft, body)
    _check_templates(draft, templates)
    with db.transaction() as session:
        areas_by_code(session, draft.areas, "areas")
        alert = Alert(status=AlertStatus.draft.value, current_version=1, drafter_id=actor.user_id)
        session.add(alert)
        session.flush()
        session.add(_version_row(alert.id, 1, actor.user_id, draft))
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.drafted",
            entity="alert",
            entity_id=alert.id,
        )
        session.flush()
        return alert_view(session, alert)


def _version_row(alert_id: int, number: int, drafter_id: int, draft: AlertDraft) -> AlertVersion:
    return AlertVersion(
        alert_id=alert_id,
        version=number,
        drafter_id=drafter_id,
        title=draft.title,
        template=draft.template,
        level=draft.level.value,
        priority=draft.priority.value,
        content=draft.content(),
    )


def submit_alert(db: Database, actor: Principal, alert_id: int) -> dict[str, Any]:
    actor.require(Role.panel)
    with db.transaction() as session:
        alert = _locked_alert(session, alert_id)
        version = alert.version_row()
        if version.drafter_id != actor.user_id:
            raise Forbidden("Only the person who drafted this version can submit it.")
        alert.status = next_status(AlertStatus(alert.status), AlertAction.submit).value
        version.submitted_at = datetime.now(UTC)
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.submitted",
            entity="alert",
            entity_id=alert.id,
            version=alert.current_version,
        )
        return alert_view(session, alert)


def approve_alert(
    db: Database, actor: Principal, alert_id: int, *, required: int, queue: TaskQueue
) -> dict[str, Any]:
    """Record one approval; the last one needed writes every delivery in the same transaction."""
    actor.require(Role.panel)
    with db.transaction() as session:
        alert = _locked_alert(session, alert_id)
        version = alert.version_row()
        status = AlertStatus(alert.status)
        next_status(status, AlertAction.approve)  # refuses alerts in the wrong state
        earlier = frozenset(
            session.scalars(
                select(AlertApproval.user_id).where(
                    AlertApproval.alert_id == alert.id, AlertApproval.version == version.version
                )
            )
        )
        outcome = approval_outcome(
            drafter_id=version.drafter_id,
            approver_id=actor.user_id,
            earlier_approver_ids=earlier,
            required=required,
        )
        session.add(
            AlertApproval(alert_id=alert.id, version=version.version, user_id=actor.user_id)
        )
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.approval_given",
            entity="alert",
            entity_id=alert.id,
            version=version.version,
            approvals=outcome.approvals,
            required=required,
        )
        queued = 0
        if outcome.complete:
            alert.status = AlertStatus.approved.value
            version.approved_at = datetime.now(UTC)
            queued = write_deliveries(session, alert.id, version)
            audit.record(
                session,
                actor_id=actor.user_id,
                action="alert.approved",
                entity="alert",
                entity_id=alert.id,
                version=version.version,
                deliveries=queued,
            )
        session.flush()
        view = alert_view(session, alert)
    if queued:
        # After commit: a lost enqueue is recovered by the sweeper, a lost approval is not.
        _enqueue_quietly(queue, alert.id, version.version, version.priority)
    return view


def _enqueue_quietly(queue: TaskQueue, alert_id: int, version: int, priority: str) -> None:
    try:
        queue.enqueue_fan_out(alert_id, version, urgent=priority == AlertPriority.urgent.value)
    except Exception:
        log.exception(
            "could not enqueue fan-out for alert %s v%s; the sweeper will retry", alert_id, version
        )


def reject_alert(db: Database, actor: Principal, alert_id: int, reason: str) -> dict[str, Any]:
    actor.require(Role.panel)
    if not reason.strip():
        raise ValidationFailed({"reason": "say why the alert is rejected"})
    with db.transaction() as session:
        alert = _locked_alert(session, alert_id)
        alert.status = next_status(AlertStatus(alert.status), AlertAction.reject).value
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.rejected",
            entity="alert",
            entity_id=alert.id,
            version=alert.current_version,
            reason=reason.strip()[:1000],
        )
        return alert_view(session, alert)


def get_alert(db: Database, actor: Principal, alert_id: int) -> dict[str, Any]:
    actor.require(Role.panel, Role.admin)
    with db.transaction() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise NotFound(f"No alert {alert_id}.")
        return alert_view(session, alert)


def alert_view(session: Session, alert: Alert) -> dict[str, Any]:
    version = alert.version_row()
    approvals = session.scalar(
        select(func.count())
        .select_from(AlertApproval)
        .where(AlertApproval.alert_id == alert.id, AlertApproval.version == version.version)
    )
    return {
        "id": alert.id,
        "status": alert.status,
        "version": alert.current_version,
        "title": version.title,
        "template": version.template,
        "level": version.level,
        "priority": version.priority,
        "areas": version.content.get("areas", []),
        "approvals": approvals or 0,
        "deliveries": delivery_counts(session, alert.id),
    }


def delivery_counts(session: Session, alert_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Delivery.status, func.count(), func.count(Delivery.acknowledged_at))
        .where(Delivery.alert_id == alert_id)
        .group_by(Delivery.status)
    ).all()
    counts = {"total": 0, "queued": 0, "sent": 0, "delivered": 0, "failed": 0, "acknowledged": 0}
    for status, count, acknowledged in rows:
        # "sending" is still on its way: to a reader it is queued.
        key = "queued" if status == "sending" else status
        counts[key] = counts.get(key, 0) + count
        counts["total"] += count
        counts["acknowledged"] += acknowledged
    return counts
