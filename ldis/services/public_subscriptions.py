"""Public subscriptions to public alerts by text: JOIN <area>, confirmed by YES; STOP erases.

A subscriber's number is personal data kept for one purpose, sending them the public
alerts of their area: sealed at rest (`ldis.domain.public_phone`), found by a keyed hash,
deleted on STOP with every copy of it in what was sent to them. They get only alerts the
panel approved at the public level, rendered with the public SMS template (never a
professional one), as notices keyed (alert, version, phone): one text per phone per
version, however often the fan-out or the sweeper runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, select, update
from sqlalchemy.orm import Session

from ldis.domain.alerts import VersionPurpose, VersionState
from ldis.domain.deliveries import DeliveryStatus
from ldis.domain.public_phone import phone_hash, seal_phone
from ldis.domain.public_reports import find_area
from ldis.domain.public_texts import fill
from ldis.messages.context import is_exercise, message_context, previous_version_of
from ldis.messages.render import Renderer, TemplateError
from ldis.services import audit, notices, public_texts
from ldis.services.public_alerts import PUBLIC_LEVEL, _related_codes
from ldis.store.db import Database
from ldis.store.models import Alert, AlertVersion, Area, Notice, OutboxMessage, PublicSubscriber

PURPOSE = "public_alert"
PUBLIC_TEMPLATE = "public"
PENDING, ACTIVE = "pending", "active"
# A JOIN nobody confirmed is forgotten after this long (it holds a number).
PENDING_FOR = timedelta(days=2)
MAX_AREAS_LISTED = 8
# Texts that reached (or may have reached) a phone: a withdrawal follows them.
_REACHED = (
    DeliveryStatus.sending.value,
    DeliveryStatus.sent.value,
    DeliveryStatus.delivered.value,
)


def join(session: Session, phone: str, area_text: str, key: str) -> str:
    """Ask to join the public alerts of the area the text names; the reply asks for YES."""
    texts = public_texts.current(session)
    areas = session.execute(select(Area.code, Area.name, Area.id).order_by(Area.name)).all()
    code = find_area(area_text, [(c, n) for c, n, _ in areas]) if area_text else None
    if code is None:
        names = ", ".join(n for _, n, _ in areas[:MAX_AREAS_LISTED])
        return fill(texts["sms_join_unknown"], areas=names)
    name, area_id = next((n, i) for c, n, i in areas if c == code)
    hashed = phone_hash(phone, key)
    row = session.scalar(
        select(PublicSubscriber).where(
            PublicSubscriber.phone_hash == hashed, PublicSubscriber.area_id == area_id
        )
    )
    if row is not None and row.status == ACTIVE:
        return fill(texts["sms_joined"], area=name)
    if row is None:
        row = PublicSubscriber(
            phone_hash=hashed, phone_sealed=seal_phone(phone, key), area_id=area_id, status=PENDING
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor_id=None,
            action="public_subscriber.requested",
            entity="public_subscriber",
            entity_id=row.id,
            area=code,
        )
    return fill(texts["sms_join_confirm"], area=name)


def confirm(session: Session, phone: str, key: str) -> str | None:
    """YES: start every pending subscription of this phone; None when there is none."""
    now = datetime.now(UTC)
    rows = list(
        session.scalars(
            select(PublicSubscriber)
            .where(
                PublicSubscriber.phone_hash == phone_hash(phone, key),
                PublicSubscriber.status == PENDING,
                PublicSubscriber.created_at >= now - PENDING_FOR,
            )
            .with_for_update()
        )
    )
    if not rows:
        return None
    for row in rows:
        row.status, row.confirmed_at = ACTIVE, now
        audit.record(
            session,
            actor_id=None,
            action="public_subscriber.confirmed",
            entity="public_subscriber",
            entity_id=row.id,
        )
    names = sorted(
        session.scalars(select(Area.name).where(Area.id.in_([row.area_id for row in rows])))
    )
    return fill(public_texts.current(session)["sms_joined"], area=" and ".join(names))


def is_subscriber(session: Session, phone: str, key: str) -> bool:
    hashed = phone_hash(phone, key)
    return (
        session.scalar(
            select(PublicSubscriber.id).where(PublicSubscriber.phone_hash == hashed).limit(1)
        )
        is not None
    )


def stop(session: Session, phone: str, key: str) -> int:
    """STOP: erase every subscription of this phone and every copy of its number in what
    was sent to it (queued texts are cancelled). Returns how many subscriptions went."""
    hashed = phone_hash(phone, key)
    rows = list(
        session.scalars(select(PublicSubscriber).where(PublicSubscriber.phone_hash == hashed))
    )
    notice_ids = list(
        session.scalars(
            select(Notice.id).where(
                Notice.purpose == PURPOSE, Notice.dedupe_key.like(f"%:{hashed[:32]}")
            )
        )
    )
    if notice_ids:
        session.execute(
            update(Notice)
            .where(Notice.id.in_(notice_ids), Notice.status == DeliveryStatus.queued.value)
            .values(status=DeliveryStatus.cancelled.value, last_error="recipient opted out")
        )
        session.execute(update(Notice).where(Notice.id.in_(notice_ids)).values(recipient=""))
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.notice_id.in_(notice_ids))
            .values(recipient="")
        )
    for row in rows:
        audit.record(
            session,
            actor_id=None,
            action="public_subscriber.erased",
            entity="public_subscriber",
            entity_id=row.id,
            texts_scrubbed=len(notice_ids),
        )
    session.execute(delete(PublicSubscriber).where(PublicSubscriber.phone_hash == hashed))
    return len(rows)


def forget_unconfirmed(db: Database) -> int:
    """Delete JOINs nobody confirmed within `PENDING_FOR` (they hold a number for nothing)."""
    with db.transaction() as session:
        result = session.execute(
            delete(PublicSubscriber).where(
                PublicSubscriber.status == PENDING,
                PublicSubscriber.created_at < datetime.now(UTC) - PENDING_FOR,
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


# --- sending public alerts ------------------------------------------------------------------


def _public_text(renderer: Renderer, alert: Alert, version: AlertVersion) -> str:
    context = message_context(
        version.content,
        alert_id=alert.id,
        version=version.version,
        purpose=version.purpose,
        exercise=False,
        ack_url="",
        previous_version=previous_version_of(version.content, version.version),
    )
    return renderer.render("sms", PUBLIC_TEMPLATE, context).text


def _area_ids(session: Session, codes: list[str]) -> set[int]:
    rows = session.execute(select(Area.id, Area.code, Area.parent_id)).all()
    known = {code for _, code, _ in rows}
    related: set[str] = set()
    for code in codes:
        if code in known:
            related |= _related_codes(code, [(i, c, p) for i, c, p in rows])
    return {i for i, c, _ in rows if c in related}


def queue_public_alert(
    db: Database, alert_id: int, version_no: int, renderer: Renderer
) -> list[int]:
    """Write one notice per confirmed subscriber (by phone) of the areas a public-level
    alert version names, or of areas inside or around them; return the new notice ids.
    Subscribers who confirmed after the approval are not sent it (so a re-run writes the
    same set). Exercises, other levels, withdrawals and unapproved versions: nothing."""
    with db.transaction() as session:
        alert = session.get(Alert, alert_id)
        version = session.scalar(
            select(AlertVersion).where(
                AlertVersion.alert_id == alert_id, AlertVersion.version == version_no
            )
        )
        if (
            alert is None
            or version is None
            or alert.exercise
            or is_exercise(version.content)
            or version.level != PUBLIC_LEVEL
            or version.state != VersionState.approved.value
            or version.approved_at is None
        ):
            return []
        if version.purpose == VersionPurpose.withdrawal.value:
            return _queue_withdrawal(session, alert, version)
        codes = [str(c).strip().upper() for c in version.content.get("areas", [])]
        subscribers = session.execute(
            select(PublicSubscriber.phone_hash, PublicSubscriber.phone_sealed)
            .where(
                PublicSubscriber.status == ACTIVE,
                PublicSubscriber.area_id.in_(_area_ids(session, codes)),
                PublicSubscriber.confirmed_at <= version.approved_at,
            )
            .order_by(PublicSubscriber.id)
        ).all()
        if not subscribers:
            return []
        try:
            text = _public_text(renderer, alert, version)
        except TemplateError:
            return []  # drafts are rendered before approval; a template broken since is logged by the caller
        ids: list[int] = []
        for hashed, sealed in dict(subscribers).items():
            notice_id = notices.queue_notice(
                session,
                dedupe_key=f"{PURPOSE}:{alert_id}:{version_no}:{hashed[:32]}",
                purpose=PURPOSE,
                channel="sms",
                recipient=sealed,
                text=text,
            )
            if notice_id is not None:
                ids.append(notice_id)
        if ids:
            audit.record(
                session,
                actor_id=None,
                action="public_alert.queued",
                entity="alert",
                entity_id=alert_id,
                version=version_no,
                texts=len(ids),
            )
        return ids


def _queue_withdrawal(session: Session, alert: Alert, version: AlertVersion) -> list[int]:
    """A withdrawal goes to the phones an earlier version reached (and still subscribed);
    what has not gone yet is cancelled."""
    session.execute(
        update(Notice)
        .where(
            Notice.purpose == PURPOSE,
            Notice.dedupe_key.like(f"{PURPOSE}:{alert.id}:%"),
            Notice.status == DeliveryStatus.queued.value,
        )
        .values(status=DeliveryStatus.cancelled.value, last_error="alert withdrawn")
    )
    reached = session.execute(
        select(Notice.dedupe_key, Notice.recipient).where(
            Notice.purpose == PURPOSE,
            Notice.dedupe_key.like(f"{PURPOSE}:{alert.id}:%"),
            Notice.status.in_(_REACHED),
            Notice.recipient != "",
        )
    ).all()
    phones = {key.rsplit(":", 1)[1]: recipient for key, recipient in reached}
    # The panel's words (`/panel/public-texts`); the opt-out line is always added.
    text = fill(public_texts.current(session)["sms_withdrawn"], title=version.title)
    text += " Reply STOP to opt out"
    ids: list[int] = []
    for hashed, sealed in sorted(phones.items()):
        notice_id = notices.queue_notice(
            session,
            dedupe_key=f"{PURPOSE}:{alert.id}:{version.version}:{hashed}",
            purpose=PURPOSE,
            channel="sms",
            recipient=sealed,
            text=text,
        )
        if notice_id is not None:
            ids.append(notice_id)
    return ids


def recent_public_versions(db: Database, since: timedelta) -> list[tuple[int, int]]:
    """(alert, version) of public-level versions approved within `since`: what the sweeper
    offers `queue_public_alert` again, in case a fan-out task was lost."""
    with db.transaction() as session:
        return [
            (a, v)
            for a, v in session.execute(
                select(AlertVersion.alert_id, AlertVersion.version).where(
                    and_(
                        AlertVersion.level == PUBLIC_LEVEL,
                        AlertVersion.state == VersionState.approved.value,
                        AlertVersion.approved_at >= datetime.now(UTC) - since,
                    )
                )
            ).all()
        ]
