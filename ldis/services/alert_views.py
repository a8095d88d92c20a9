"""Reading alerts: the status view the API returns, delivery counts, the timing of the loop
from first report to last delivery, the per-alert history from the audit log, who
acknowledged, and the lists the panel works from. Nothing here writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertStatus, VersionPurpose, is_live
from ldis.domain.deliveries import DeliveryStatus
from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services.shared_alerts import shares_of
from ldis.store.db import Database
from ldis.store.models import (
    Alert,
    AlertApproval,
    AlertVersion,
    AuditEvent,
    Contact,
    Delivery,
    Service,
    User,
)

COUNT_KEYS = ("total", "queued", "sent", "delivered", "failed", "cancelled", "acknowledged")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def standing_approvers(session: Session, alert_id: int, version: AlertVersion) -> list[int]:
    """Who has approved this revision of the version (edits void earlier approvals)."""
    return list(
        session.scalars(
            select(AlertApproval.user_id)
            .where(
                AlertApproval.alert_id == alert_id,
                AlertApproval.version == version.version,
                AlertApproval.voided_at.is_(None),
            )
            .order_by(AlertApproval.id)
        )
    )


def version_view(version: AlertVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "purpose": version.purpose,
        "state": version.state,
        "revision": version.revision,
        "title": version.title,
        "template": version.template,
        "level": version.level,
        "priority": version.priority,
        "content": version.content,
        "drafter_id": version.drafter_id,
        "author_ids": list(version.author_ids),
        "created_at": _iso(version.created_at),
        "submitted_at": _iso(version.submitted_at),
        "approved_at": _iso(version.approved_at),
        "rejected_at": _iso(version.rejected_at),
        "reject_reason": version.reject_reason,
    }


def alert_view(session: Session, alert: Alert) -> dict[str, Any]:
    """The contract's shape (id, status, version, approvals, deliveries) and more."""
    version = alert.version_row()
    approvers = standing_approvers(session, alert.id, version)
    status = AlertStatus(alert.status)
    return {
        "id": alert.id,
        # Its own partnership, and the neighbours it is shared with (read-only there).
        "partnership_id": alert.partnership_id,
        "shared_with": shares_of(session, alert.id),
        "status": alert.status,
        "version": alert.current_version,
        "live_version": alert.live_version,
        "active": is_live(status, alert.live_version),
        "purpose": version.purpose,
        "revision": version.revision,
        "title": version.title,
        "template": version.template,
        "level": version.level,
        "priority": version.priority,
        "kind": version.content.get("kind", "drug_alert"),
        "areas": version.content.get("areas", []),
        "service_types": version.content.get("service_types", []),
        "fields": version.content.get("fields", {}),
        "exercise": alert.exercise,
        "participants": version.content.get("participants", []),
        "signal_id": alert.signal_id,
        "report_id": alert.report_id,
        "review_by": _iso(alert.review_by),
        "expires_at": _iso(alert.expires_at),
        "drafter_id": version.drafter_id,
        "author_ids": list(version.author_ids),
        "approvals": len(approvers),
        "approver_ids": approvers,
        "deliveries": delivery_counts(session, alert.id),
        "timing": timing(session, alert),
    }


def delivery_counts(session: Session, alert_id: int, version: int | None = None) -> dict[str, int]:
    query = select(Delivery.status, func.count(), func.count(Delivery.acknowledged_at)).where(
        Delivery.alert_id == alert_id
    )
    if version is not None:
        query = query.where(Delivery.version == version)
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for status, count, acknowledged in session.execute(query.group_by(Delivery.status)):
        # "sending" is still on its way: to a reader it is queued.
        key = DeliveryStatus.queued.value if status == DeliveryStatus.sending.value else status
        counts[key] = counts.get(key, 0) + count
        counts["total"] += count
        counts["acknowledged"] += acknowledged
    return counts


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def timing(session: Session, alert: Alert) -> dict[str, Any]:
    """Milestones of the first message's loop and the time between each, in seconds.

    Report, signal and decision times are stored on the alert when it is approved; the
    delivery times are read from the first message's delivery rows (handed to the
    provider, or confirmed delivered when a receipt came)."""
    first = next(
        (
            v
            for v in alert.versions
            if v.purpose != VersionPurpose.withdrawal.value and v.approved_at is not None
        ),
        None,
    )
    first_delivery = last_delivery = None
    if first is not None:
        done = func.coalesce(Delivery.delivered_at, Delivery.sent_at)
        first_delivery, last_delivery = session.execute(
            select(func.min(done), func.max(done)).where(
                Delivery.alert_id == alert.id, Delivery.version == first.version
            )
        ).one()
    approved_at = alert.approved_at
    return {
        "first_report_at": _iso(alert.first_report_at),
        "signal_at": _iso(alert.signal_at),
        "decided_at": _iso(alert.decided_at),
        "approved_at": _iso(approved_at),
        "first_delivery_at": _iso(first_delivery),
        "last_delivery_at": _iso(last_delivery),
        "seconds": {
            "report_to_signal": _seconds(alert.first_report_at, alert.signal_at),
            "signal_to_decision": _seconds(alert.signal_at, alert.decided_at),
            "decision_to_approval": _seconds(alert.decided_at, approved_at),
            "approval_to_first_delivery": _seconds(approved_at, first_delivery),
            "approval_to_last_delivery": _seconds(approved_at, last_delivery),
        },
    }


def load_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"No alert {alert_id}.")
    return alert


def get_alert(db: Database, actor: Principal, alert_id: int) -> dict[str, Any]:
    actor.require(Role.panel, Role.admin)
    with db.transaction() as session:
        view = alert_view(session, load_alert(session, alert_id))
        alert = load_alert(session, alert_id)
        view["versions"] = [version_view(v) for v in alert.versions]
        return view


def history(db: Database, actor: Principal, alert_id: int) -> list[dict[str, Any]]:
    """Every audit event of the alert, oldest first, with who did it."""
    actor.require(Role.panel, Role.admin)
    with db.transaction() as session:
        load_alert(session, alert_id)
        rows = session.execute(
            select(AuditEvent, User.name)
            .outerjoin(User, User.id == AuditEvent.actor_id)
            .where(AuditEvent.entity == "alert", AuditEvent.entity_id == alert_id)
            .order_by(AuditEvent.id)
        ).all()
    return [
        {
            "id": event.id,
            "at": _iso(event.at),
            "action": event.action,
            "actor_id": event.actor_id,
            "actor": name or "ldis (automatic)",
            "detail": event.detail,
        }
        for event, name in rows
    ]


def acknowledgements(db: Database, actor: Principal, alert_id: int) -> list[dict[str, Any]]:
    """Who acknowledged which version, when: the exercise report's roll-call."""
    actor.require(Role.panel, Role.admin)
    with db.transaction() as session:
        load_alert(session, alert_id)
        rows = session.execute(
            select(
                Delivery.version,
                Delivery.channel,
                Delivery.acknowledged_at,
                Delivery.sent_at,
                Contact.name,
                Service.name,
            )
            .join(Contact, Contact.id == Delivery.contact_id)
            .join(Service, Service.id == Contact.service_id)
            .where(Delivery.alert_id == alert_id, Delivery.acknowledged_at.is_not(None))
            .order_by(Delivery.acknowledged_at)
        ).all()
    return [
        {
            "version": version,
            "channel": channel,
            "acknowledged_at": _iso(acknowledged_at),
            "seconds_after_sending": _seconds(sent_at, acknowledged_at),
            "contact": contact,
            "service": service,
        }
        for version, channel, acknowledged_at, sent_at, contact, service in rows
    ]


LISTS = ("active", "pending", "ended", "exercises")


def list_alerts(
    db: Database, actor: Principal, which: str = "active", *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """`active`: sent and live; `pending`: never sent, still being drafted or approved;
    `ended`: withdrawn, expired or rejected before sending; `exercises`: every exercise."""
    actor.require(Role.panel, Role.admin)
    if which not in LISTS:
        raise ValidationFailed({"state": f"must be one of: {', '.join(LISTS)}"})
    now = now or datetime.now(UTC)
    query = select(Alert).order_by(Alert.id.desc()).limit(500)
    final = [AlertStatus.withdrawn.value, AlertStatus.expired.value]
    if which == "active":
        query = query.where(
            Alert.live_version.is_not(None),
            Alert.status.not_in(final),
            (Alert.expires_at.is_(None)) | (Alert.expires_at > now),
        )
    elif which == "pending":
        query = query.where(
            Alert.live_version.is_(None),
            Alert.status.in_([AlertStatus.draft.value, AlertStatus.awaiting_approval.value]),
        )
    elif which == "ended":
        query = query.where(
            Alert.status.in_(final)
            | ((Alert.live_version.is_(None)) & (Alert.status == AlertStatus.rejected.value))
            | ((Alert.live_version.is_not(None)) & (Alert.expires_at <= now))
        )
    else:
        query = query.where(Alert.exercise.is_(True))
    with db.transaction() as session:
        return [_summary(session, alert) for alert in session.scalars(query)]


def _summary(session: Session, alert: Alert) -> dict[str, Any]:
    version = alert.version_row()
    return {
        "id": alert.id,
        "status": alert.status,
        "version": alert.current_version,
        "live_version": alert.live_version,
        "title": version.title,
        "priority": version.priority,
        "level": version.level,
        "areas": version.content.get("areas", []),
        "exercise": alert.exercise,
        "approvals": len(standing_approvers(session, alert.id, version)),
        "expires_at": _iso(alert.expires_at),
        "review_by": _iso(alert.review_by),
        "updated_at": _iso(alert.updated_at),
    }


# Names the alert pages show beside the views above.


def people_names(db: Database, actor: Principal, ids: set[int]) -> dict[int, str]:
    """User id -> name for the given ids (authors, approvers); unknown ids are left out."""
    actor.require(Role.panel, Role.admin)
    if not ids:
        return {}
    with db.transaction() as session:
        rows = session.execute(select(User.id, User.name).where(User.id.in_(sorted(ids))))
        return {user_id: name for user_id, name in rows}


def participant_choices(db: Database, actor: Principal) -> list[tuple[int, str]]:
    """(id, name) of every service, by name: those a panel member may pick as an
    exercise's participants (drafting is the panel's alone)."""
    actor.require(Role.panel)
    with db.transaction() as session:
        rows = session.execute(select(Service.id, Service.name).order_by(Service.name, Service.id))
        return [(service_id, name) for service_id, name in rows]


def service_names(db: Database, actor: Principal, ids: list[int]) -> list[str]:
    """The services' names in the order given; a removed service is named by its id."""
    actor.require(Role.panel, Role.admin)
    if not ids:
        return []
    with db.transaction() as session:
        found = session.execute(select(Service.id, Service.name).where(Service.id.in_(ids)))
        names = {service_id: name for service_id, name in found}
    return [names.get(i, f"Service {i} (no longer listed)") for i in ids]
