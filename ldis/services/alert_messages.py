"""What an alert version will say and to how many: the approvers' preview.

The preview is rendered with the same context builder and templates as the real send
(`ldis.messages`), and its audience is counted from the same targets the approval writes
(`ldis.services.outbox_writer.version_targets`), so what approvers read and count is what
goes out. Drafting and editing also render every channel, so a missing field is refused
when it is typed, not discovered when hundreds of messages fail.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ldis.domain.errors import ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.messages.context import is_exercise, previous_version_of
from ldis.messages.preview import Preview, preview_version
from ldis.messages.render import Renderer, TemplateError, TemplateFieldMissing
from ldis.services import shared_alerts
from ldis.services.alert_views import load_alert
from ldis.services.alerts import RenderCheck
from ldis.services.outbox_writer import version_targets
from ldis.store.db import Database
from ldis.store.models import Alert, AlertVersion, Contact
from ldis.store.tenancy import acting_partnership


def render_version(
    renderer: Renderer, public_url: str, alert: Alert | int, version: AlertVersion
) -> Preview:
    alert_id = alert if isinstance(alert, int) else alert.id
    return preview_version(
        renderer,
        version.content,
        template=version.template,
        alert_id=alert_id,
        version=version.version,
        purpose=version.purpose,
        exercise=is_exercise(version.content),
        public_url=public_url,
        previous_version=previous_version_of(version.content, version.version),
    )


def render_check(renderer: Renderer, public_url: str) -> RenderCheck:
    """A check for the draft use cases: every channel renders, or the field is named."""

    def check(alert_id: int, version: AlertVersion) -> None:
        try:
            render_version(renderer, public_url, alert_id, version)
        except TemplateFieldMissing as exc:
            raise ValidationFailed({exc.field: str(exc)}) from None
        except TemplateError as exc:
            raise ValidationFailed({"template": str(exc)}) from None

    return check


def audience_counts(session: Session, alert_id: int, version: AlertVersion) -> dict[str, Any]:
    """How many services, contacts and messages per channel the version would reach now
    (in the reader's partnership, when the alert was shared with it by another)."""
    acting, alert = acting_partnership(), version.alert
    if acting is not None and alert.partnership_id != acting:
        targets = shared_alerts.targets_for(session, alert, version, acting)
    else:
        targets = version_targets(session, alert_id, version)
    contact_ids = sorted({contact_id for contact_id, _ in targets})
    services: set[int] = set()
    for start in range(0, len(contact_ids), 5000):
        services.update(
            session.scalars(
                select(Contact.service_id).where(Contact.id.in_(contact_ids[start : start + 5000]))
            )
        )
    by_channel = Counter(channel for _, channel in targets)
    return {
        "services": len(services),
        "contacts": len(contact_ids),
        "messages": len(targets),
        "by_channel": dict(sorted(by_channel.items())),
    }


def preview_alert(
    db: Database,
    actor: Principal,
    alert_id: int,
    *,
    renderer: Renderer,
    public_url: str,
    version: int | None = None,
) -> dict[str, Any]:
    """The rendered messages per channel (SMS with its segment count) and the audience
    size of a version (the current one unless given)."""
    actor.require(Role.panel, Role.admin)
    with db.transaction() as session:
        alert = load_alert(session, alert_id)
        try:
            row = alert.version_row(version)
        except StopIteration:
            raise ValidationFailed(
                {"version": f"alert {alert_id} has no version {version}"}
            ) from None
        try:
            messages: dict[str, Any] = render_version(renderer, public_url, alert, row).as_dict()
            error = None
        except TemplateError as exc:
            messages, error = {}, str(exc)
        return {
            "id": alert.id,
            "version": row.version,
            "revision": row.revision,
            "purpose": row.purpose,
            "state": row.state,
            "exercise": alert.exercise,
            "messages": messages,
            "render_error": error,
            "audience": audience_counts(session, alert.id, row),
        }
