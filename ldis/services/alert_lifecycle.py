"""Time-driven steps of an alert's life, run by the scheduler: expiry (an expired alert
leaves the active list and nothing still queued for it goes out) and the reminder to the
panel before an alert's review date. Both are idempotent: a repeated or missed run is
harmless, and every action reads fresh rows under the alert's lock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from ldis.domain.alerts import AlertStatus, review_reminder_due
from ldis.domain.roles import Role
from ldis.services import audit, notices
from ldis.services.alerts import expire_if_due, locked_alert
from ldis.store.db import Database
from ldis.store.models import Alert, User, UserRole

_LIVE_STATUSES = [
    AlertStatus.approved.value,
    AlertStatus.draft.value,
    AlertStatus.awaiting_approval.value,
    AlertStatus.rejected.value,
]


def expire_due(db: Database, now: datetime | None = None) -> list[int]:
    """Expire every live alert whose expiry date has passed; return their ids."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        candidates = list(
            session.scalars(
                select(Alert.id).where(
                    Alert.live_version.is_not(None),
                    Alert.status.in_(_LIVE_STATUSES),
                    Alert.expires_at <= now,
                )
            )
        )
    expired = []
    for alert_id in candidates:
        with db.transaction() as session:
            if expire_if_due(session, locked_alert(session, alert_id), now):
                expired.append(alert_id)
    return expired


def review_reminders(db: Database, public_url: str, now: datetime | None = None) -> list[int]:
    """E-mail every panel member once about each live alert nearing its review date;
    return the notice ids to send."""
    now = now or datetime.now(UTC)
    notice_ids: list[int] = []
    with db.transaction() as session:
        alerts = list(
            session.scalars(
                select(Alert).where(
                    Alert.live_version.is_not(None),
                    Alert.status.in_(_LIVE_STATUSES),
                    Alert.review_by.is_not(None),
                    Alert.review_reminded_at.is_(None),
                )
            )
        )
        due = [a for a in alerts if review_reminder_due(a.review_by, a.review_reminded_at, now)]
        if not due:
            return []
        panel = session.execute(
            select(User.id, User.email)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == Role.panel.value, User.active.is_(True))
        ).all()
        for alert in due:
            assert alert.review_by is not None
            title = alert.version_row(alert.live_version).title
            when = alert.review_by.strftime("%d %b %Y %H:%M UTC")
            link = f"{public_url}/alerts/{alert.id}"
            for user_id, email in panel:
                notice_id = notices.queue_notice(
                    session,
                    dedupe_key=f"alert-review:{alert.id}:{alert.review_by.isoformat()}:{user_id}",
                    purpose="alert_review",
                    channel="email",
                    recipient=email,
                    subject=f"Review due {when}: {title}",
                    text=(
                        f"The alert '{title}' (LDIS-{alert.id}) is due for review by the "
                        f"panel by {when}.\n\nDecide whether it still stands, needs an update "
                        f"or should be withdrawn: {link}\n"
                    ),
                )
                if notice_id is not None:
                    notice_ids.append(notice_id)
            alert.review_reminded_at = now
            audit.record(
                session,
                actor_id=None,
                action="alert.review_reminder",
                entity="alert",
                entity_id=alert.id,
                review_by=alert.review_by.isoformat(),
                panel_members=len(panel),
            )
    return notice_ids
