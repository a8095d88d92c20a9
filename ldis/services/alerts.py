"""The alert use cases: draft, edit, submit, approve (which writes the outbox), reject,
revise and withdraw. The rules are in `ldis.domain.alerts`; this module applies them to
fresh rows under a lock and records every step in the audit log.

Every state change first takes a write lock on the alert row with an UPDATE, so two panel
members approving at the same moment are serialised: on PostgreSQL by the row lock, on
SQLite by its single writer. Only then are the rules checked against fresh data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ldis.domain.alerts import (
    AlertAction,
    AlertDraft,
    AlertLevel,
    AlertPriority,
    AlertStatus,
    VersionPurpose,
    VersionState,
    approval_outcome,
    changed_fields,
    check_dates,
    expiry_due,
    next_status,
)
from ldis.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ldis.domain.grading import Decision
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit, panel_cases, signals
from ldis.services.alert_views import alert_view, standing_approvers
from ldis.services.outbox_writer import cancel_queued, write_deliveries
from ldis.services.ports import TaskQueue
from ldis.services.recipients import areas_by_code
from ldis.services.shared_alerts import SHARED_READ_ONLY, write_shared
from ldis.store.db import Database
from ldis.store.models import Alert, AlertApproval, AlertVersion, Report, Service, Signal
from ldis.store.models.signals import OPEN_STATUSES

log = logging.getLogger(__name__)

# Chosen by ldis for a withdrawal version, never by a drafter.
WITHDRAWAL_TEMPLATE = "withdrawal"
# Decisions that let an alert go out: "share for information only" is sent too, as such.
SENDABLE_DECISIONS = frozenset({Decision.formal_alert.value, Decision.information_only.value})

# Checks a draft renders on every channel; raises ValidationFailed naming the field.
RenderCheck = Callable[[int, AlertVersion], None]


def _now() -> datetime:
    return datetime.now(UTC)


def locked_alert(session: Session, alert_id: int) -> Alert:
    locked = session.execute(
        update(Alert).where(Alert.id == alert_id).values(updated_at=_now())
    ).rowcount  # type: ignore[attr-defined]
    if not locked:
        if session.get(Alert, alert_id) is not None:
            # Readable but not writable here: shared with this partnership by another one.
            raise Forbidden(SHARED_READ_ONLY)
        raise NotFound(f"No alert {alert_id}.")
    alert = session.get(Alert, alert_id, populate_existing=True)
    assert alert is not None
    return alert


def _live(alert: Alert) -> bool:
    return alert.live_version is not None


def expire_if_due(session: Session, alert: Alert, now: datetime) -> bool:
    """Apply a passed expiry date before anything else looks at the alert."""
    if not (_live(alert) and expiry_due(alert.expires_at, now)):
        return False
    try:
        status = next_status(AlertStatus(alert.status), AlertAction.expire, live=True)
    except Conflict:
        return False  # a withdrawal under way is decided first
    alert.status = status.value
    alert.expired_at = now
    _discard_pending(session, alert)
    cancelled = cancel_queued(session, alert.id, reason="alert expired")
    audit.record(
        session,
        actor_id=None,
        action="alert.expired",
        entity="alert",
        entity_id=alert.id,
        expires_at=alert.expires_at.isoformat() if alert.expires_at else None,
        cancelled_deliveries=cancelled,
    )
    return True


def _discard_pending(session: Session, alert: Alert) -> None:
    """A revision still being drafted or approved when the alert ends is dropped."""
    for version in alert.versions:
        if version.version != alert.live_version and version.state in (
            VersionState.draft.value,
            VersionState.awaiting_approval.value,
        ):
            version.state = VersionState.discarded.value
            _void_approvals(session, alert.id, version.version)


def _void_approvals(session: Session, alert_id: int, version: int) -> int:
    return int(
        session.execute(
            update(AlertApproval)
            .where(
                AlertApproval.alert_id == alert_id,
                AlertApproval.version == version,
                AlertApproval.voided_at.is_(None),
            )
            .values(voided_at=_now())
        ).rowcount  # type: ignore[attr-defined]
    )


def _check_draft(
    session: Session, draft: AlertDraft, templates: frozenset[str], now: datetime
) -> None:
    problems = check_dates(draft, now)
    offered = templates - {WITHDRAWAL_TEMPLATE}
    if draft.template not in offered:
        problems["template"] = f"unknown template; use one of: {', '.join(sorted(offered))}"
    if draft.signal_id is not None and session.get(Signal, draft.signal_id) is None:
        problems["signal_id"] = f"no signal {draft.signal_id}"
    if draft.report_id is not None and session.get(Report, draft.report_id) is None:
        problems["report_id"] = f"no report {draft.report_id}"
    if draft.participants:
        known = set(session.scalars(select(Service.id).where(Service.id.in_(draft.participants))))
        for i, service_id in enumerate(draft.participants):
            if service_id not in known:
                problems[f"participants.{i}"] = f"no service {service_id}"
    try:
        areas_by_code(session, draft.areas, "areas")
    except ValidationFailed as exc:
        problems |= exc.fields
    if problems:
        raise ValidationFailed(problems)


def _set_alert_fields(alert: Alert, draft: AlertDraft) -> None:
    alert.signal_id = draft.signal_id
    alert.report_id = draft.report_id
    alert.review_by = draft.review_by
    alert.expires_at = draft.expires_at
    alert.review_reminded_at = None
    if not _live(alert):
        alert.exercise = draft.exercise


def _fill_version(version: AlertVersion, draft: AlertDraft) -> None:
    version.title = draft.title
    version.template = draft.template
    version.level = draft.level.value
    version.priority = draft.priority.value
    version.content = draft.content()


def draft_alert(
    db: Database,
    actor: Principal,
    body: Any,
    *,
    templates: frozenset[str],
    check_render: RenderCheck | None = None,
) -> dict[str, Any]:
    actor.require(Role.panel)
    draft = parse(AlertDraft, body)
    now = _now()
    with db.transaction() as session:
        _check_draft(session, draft, templates, now)
        alert = Alert(status=AlertStatus.draft.value, current_version=1, drafter_id=actor.user_id)
        _set_alert_fields(alert, draft)
        session.add(alert)
        session.flush()
        version = AlertVersion(
            alert_id=alert.id,
            version=1,
            purpose=VersionPurpose.alert.value,
            state=VersionState.draft.value,
            revision=1,
            drafter_id=actor.user_id,
            author_ids=[actor.user_id],
        )
        _fill_version(version, draft)
        session.add(version)
        session.flush()
        if check_render:
            check_render(alert.id, version)
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.drafted",
            entity="alert",
            entity_id=alert.id,
            version=1,
            title=draft.title,
            exercise=draft.exercise,
        )
        session.flush()
        session.refresh(alert)
        return alert_view(session, alert)


def edit_alert(
    db: Database,
    actor: Principal,
    alert_id: int,
    body: Any,
    *,
    templates: frozenset[str],
    check_render: RenderCheck | None = None,
) -> dict[str, Any]:
    """Change the current version's content. Any approval given so far is void."""
    actor.require(Role.panel)
    draft = parse(AlertDraft, body)
    now = _now()
    with db.transaction() as session:
        alert = locked_alert(session, alert_id)
        if expire_if_due(session, alert, now):
            return alert_view(session, alert)
        status = AlertStatus(alert.status)
        next_status(status, AlertAction.edit, live=_live(alert))
        version = alert.version_row()
        if version.purpose == VersionPurpose.withdrawal.value:
            raise Conflict("A withdrawal notice is not edited; reject it and ask again.")
        if _live(alert) and draft.exercise != alert.exercise:
            raise ValidationFailed({"exercise": "cannot change once the alert has been sent"})
        _check_draft(session, draft, templates, now)
        before = version.content
        _fill_version(version, draft)
        if "previous_version" in before:
            version.content = {**version.content, "previous_version": before["previous_version"]}
        _set_alert_fields(alert, draft)
        version.revision += 1
        if actor.user_id not in version.author_ids:
            version.author_ids = [*version.author_ids, actor.user_id]
        voided = _void_approvals(session, alert.id, version.version)
        session.flush()
        if check_render:
            check_render(alert.id, version)
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.edited",
            entity="alert",
            entity_id=alert.id,
            version=version.version,
            revision=version.revision,
            changes=changed_fields(before, version.content),
            approvals_voided=voided,
        )
        return alert_view(session, alert)


def submit_alert(db: Database, actor: Principal, alert_id: int) -> dict[str, Any]:
    actor.require(Role.panel)
    with db.transaction() as session:
        alert = locked_alert(session, alert_id)
        if expire_if_due(session, alert, _now()):
            raise Conflict("The alert has expired; it cannot be submitted.")
        version = alert.version_row()
        if actor.user_id not in version.author_ids:
            raise Forbidden("Only someone who wrote this version can submit it.")
        alert.status = next_status(
            AlertStatus(alert.status), AlertAction.submit, live=_live(alert)
        ).value
        version.state = VersionState.awaiting_approval.value
        version.submitted_at = _now()
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.submitted",
            entity="alert",
            entity_id=alert.id,
            version=version.version,
            revision=version.revision,
        )
        return alert_view(session, alert)


def _require_decision(session: Session, alert: Alert) -> None:
    """Nothing reaches services before the panel has graded and decided the case."""
    if alert.exercise:
        return
    subject, subject_id = _case(alert)
    if subject_id is None:
        raise Conflict(
            "Link the alert to the signal or report the panel decided on (signal_id or "
            "report_id) before it can be approved.",
            {"signal_id": "required before approval"},
        )
    decision = panel_cases.current_decision(session, subject, subject_id)
    if decision is None or decision.decision not in SENDABLE_DECISIONS:
        raise Conflict(
            f"The panel has not decided to share this {subject}: record a decision of "
            "'issue a formal alert' or 'share for information only' first."
        )


def _case(alert: Alert) -> tuple[str, int | None]:
    if alert.signal_id is not None:
        return "signal", alert.signal_id
    return "report", alert.report_id


def _stamp_milestones(session: Session, alert: Alert, now: datetime) -> None:
    """Store when the loop's steps happened, the first time the alert is approved."""
    if alert.approved_at is not None:
        return
    alert.approved_at = now
    subject, subject_id = _case(alert)
    if subject_id is None:
        return
    alert.first_report_at = panel_cases.first_report_at(session, subject, subject_id)
    alert.signal_at = panel_cases.case_seen_at(session, subject, subject_id)
    decision = panel_cases.current_decision(session, subject, subject_id)
    alert.decided_at = decision.decided_at if decision else None


def approve_alert(
    db: Database,
    actor: Principal,
    alert_id: int,
    *,
    required: int,
    queue: TaskQueue,
    seen_revision: int | None = None,
) -> dict[str, Any]:
    """Record one approval; the last one needed writes every delivery in the same transaction.

    `seen_revision` is the revision the approver was shown: if the alert was edited
    since, the approval is refused, so nobody approves words they have not read."""
    actor.require(Role.panel)
    now = _now()
    with db.transaction() as session:
        alert = locked_alert(session, alert_id)
        if expire_if_due(session, alert, now):
            raise Conflict("The alert has expired; it cannot be approved.")
        status = AlertStatus(alert.status)
        target = next_status(status, AlertAction.approve, live=_live(alert))
        version = alert.version_row()
        if seen_revision is not None and seen_revision != version.revision:
            raise Conflict(
                "The alert was changed after you viewed it; read it again before approving.",
                {"revision": f"now {version.revision}, you saw {seen_revision}"},
            )
        withdrawing = version.purpose == VersionPurpose.withdrawal.value
        if not withdrawing:
            if expiry_due(alert.expires_at, now):
                raise Conflict(
                    "The expiry date has passed; edit it before approving.",
                    {"expires_at": "must be in the future"},
                )
            _require_decision(session, alert)
        outcome = approval_outcome(
            author_ids=frozenset(version.author_ids),
            approver_id=actor.user_id,
            earlier_approver_ids=frozenset(standing_approvers(session, alert.id, version)),
            required=required,
        )
        session.add(
            AlertApproval(
                alert_id=alert.id,
                version=version.version,
                revision=version.revision,
                user_id=actor.user_id,
            )
        )
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.approval_given",
            entity="alert",
            entity_id=alert.id,
            version=version.version,
            revision=version.revision,
            purpose=version.purpose,
            approvals=outcome.approvals,
            required=required,
        )
        queued = 0
        if outcome.complete:
            queued = _complete(session, actor, alert, version, target, now)
        # Public subscribers (ldis.services.public_subscriptions) are reached by the fan-out
        # task too, even when no contact is.
        public = outcome.complete and version.level == AlertLevel.public.value
        session.flush()
        view = alert_view(session, alert)
    if queued or public:
        # After commit: a lost enqueue is recovered by the sweeper, a lost approval is not.
        _enqueue_quietly(queue, alert.id, version.version, version.priority)
    return view


def _complete(
    session: Session,
    actor: Principal,
    alert: Alert,
    version: AlertVersion,
    target: AlertStatus,
    now: datetime,
) -> int:
    """The last approval: the version goes out, to whom its purpose says."""
    version.state = VersionState.approved.value
    version.approved_at = now
    earlier = alert.live_version
    if target is AlertStatus.withdrawn:
        alert.withdrawn_at = now
        cancelled = cancel_queued(session, alert.id, reason="alert withdrawn")
        queued = write_deliveries(session, alert.id, version, now=now)
        action = "alert.withdrawn"
    else:
        _stamp_milestones(session, alert, now)
        # An update replaces what has not gone yet; those contacts get the update instead.
        cancelled = (
            cancel_queued(session, alert.id, reason="replaced by an update") if earlier else 0
        )
        queued = write_deliveries(session, alert.id, version, now=now)
        alert.live_version = version.version
        _mark_signal_alerted(session, actor, alert)
        action = "alert.sent"
    # Neighbouring partnerships it is shared with get it too, in this same transaction.
    queued += write_shared(session, alert, version, now)
    alert.status = target.value
    if action == "alert.sent":
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.approved",
            entity="alert",
            entity_id=alert.id,
            version=version.version,
            purpose=version.purpose,
        )
    audit.record(
        session,
        actor_id=actor.user_id,
        action=action,
        entity="alert",
        entity_id=alert.id,
        version=version.version,
        purpose=version.purpose,
        deliveries=queued,
        cancelled_deliveries=cancelled,
        exercise=alert.exercise,
    )
    return queued


def _mark_signal_alerted(session: Session, actor: Principal, alert: Alert) -> None:
    """The signal behind a sent alert leaves the open queue as `alerted`."""
    if alert.signal_id is None or alert.exercise:
        return
    signal = session.get(Signal, alert.signal_id, with_for_update=True)
    if signal is not None and signal.status in OPEN_STATUSES:
        signals.move(session, actor.user_id, signal, "alerted", f"alert LDIS-{alert.id} sent")


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
        alert = locked_alert(session, alert_id)
        if expire_if_due(session, alert, _now()):
            raise Conflict("The alert has expired; there is nothing to reject.")
        status = AlertStatus(alert.status)
        target = next_status(status, AlertAction.reject, live=_live(alert))
        version = alert.version_row()
        version.state = VersionState.rejected.value
        version.rejected_at = _now()
        version.reject_reason = reason.strip()[:1000]
        alert.status = target.value
        if status is AlertStatus.withdrawal_requested and alert.live_version is not None:
            # The withdrawal is refused: the live version is the one to work from again.
            alert.current_version = alert.live_version
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.rejected",
            entity="alert",
            entity_id=alert.id,
            version=version.version,
            purpose=version.purpose,
            reason=version.reject_reason,
        )
        return alert_view(session, alert)


def _next_version_number(session: Session, alert_id: int) -> int:
    highest = session.scalar(
        select(func.max(AlertVersion.version)).where(AlertVersion.alert_id == alert_id)
    )
    return int(highest or 0) + 1


def revise_alert(
    db: Database,
    actor: Principal,
    alert_id: int,
    body: Any | None,
    *,
    templates: frozenset[str],
    check_render: RenderCheck | None = None,
) -> dict[str, Any]:
    """A new version as a draft: an UPDATE of a live alert, or a fresh try after a
    rejection. Without a body it starts as a copy of the version it replaces."""
    actor.require(Role.panel)
    now = _now()
    with db.transaction() as session:
        alert = locked_alert(session, alert_id)
        if expire_if_due(session, alert, now):
            raise Conflict("The alert has expired; an expired alert cannot be revised.")
        status = next_status(AlertStatus(alert.status), AlertAction.revise, live=_live(alert))
        base = alert.version_row(alert.live_version or alert.current_version)
        draft = parse(AlertDraft, body if body else _draft_body(alert, base, now))
        if _live(alert) and draft.exercise != alert.exercise:
            raise ValidationFailed({"exercise": "cannot change once the alert has been sent"})
        _check_draft(session, draft, templates, now)
        number = _next_version_number(session, alert.id)
        version = AlertVersion(
            alert_id=alert.id,
            version=number,
            purpose=(VersionPurpose.update if _live(alert) else VersionPurpose.alert).value,
            state=VersionState.draft.value,
            revision=1,
            drafter_id=actor.user_id,
            author_ids=[actor.user_id],
        )
        _fill_version(version, draft)
        if _live(alert):
            # Messages quote the version this one updates (rejected tries in between aside).
            version.content = {**version.content, "previous_version": alert.live_version}
        session.add(version)
        _set_alert_fields(alert, draft)
        alert.current_version = number
        alert.status = status.value
        session.flush()
        session.refresh(alert)
        if check_render:
            check_render(alert.id, version)
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.revised",
            entity="alert",
            entity_id=alert.id,
            version=number,
            from_version=base.version,
            purpose=version.purpose,
            changes=changed_fields(base.content, version.content),
        )
        return alert_view(session, alert)


def _draft_body(alert: Alert, version: AlertVersion, now: datetime) -> dict[str, Any]:
    """A stored version as a draft body again (older rows lack the newer keys). A review
    date already passed is dropped: reviewing is why one revises, and a new one is set."""
    allowed = set(AlertDraft.model_fields)
    body = {k: v for k, v in version.content.items() if k in allowed}
    for name in ("review_by", "expires_at"):
        moment: datetime | None = getattr(alert, name)
        body[name] = moment.isoformat() if moment and moment > now else None
    body["signal_id"], body["report_id"] = alert.signal_id, alert.report_id
    return body


def withdraw_alert(db: Database, actor: Principal, alert_id: int, reason: str) -> dict[str, Any]:
    """Ask to withdraw a live alert. Approved like a send; then a withdrawal notice goes to
    everyone who was sent any version, and nothing still queued goes out."""
    actor.require(Role.panel)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed({"reason": "say why the alert is withdrawn"})
    if len(reason) > 1000:
        raise ValidationFailed({"reason": "at most 1000 characters"})
    now = _now()
    with db.transaction() as session:
        alert = locked_alert(session, alert_id)
        if expire_if_due(session, alert, now):
            raise Conflict("The alert has expired and left the active list already.")
        status = next_status(AlertStatus(alert.status), AlertAction.withdraw, live=_live(alert))
        _discard_pending(session, alert)
        assert alert.live_version is not None  # the state table allows withdraw only when live
        live = alert.version_row(alert.live_version)
        content = dict(live.content)
        content["fields"] = {**live.content.get("fields", {}), "withdrawal_reason": reason}
        content["previous_version"] = live.version
        number = _next_version_number(session, alert.id)
        session.add(
            AlertVersion(
                alert_id=alert.id,
                version=number,
                purpose=VersionPurpose.withdrawal.value,
                state=VersionState.awaiting_approval.value,
                revision=1,
                drafter_id=actor.user_id,
                author_ids=[actor.user_id],
                title=live.title,
                template=WITHDRAWAL_TEMPLATE,
                level=live.level,
                priority=live.priority,
                content=content,
                submitted_at=now,
            )
        )
        alert.current_version = number
        alert.status = status.value
        session.flush()
        session.refresh(alert)
        audit.record(
            session,
            actor_id=actor.user_id,
            action="alert.withdrawal_requested",
            entity="alert",
            entity_id=alert.id,
            version=number,
            reason=reason,
        )
        return alert_view(session, alert)
