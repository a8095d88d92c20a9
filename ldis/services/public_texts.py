"""The public-facing texts: shipped defaults, the panel's changes stored in `public_texts`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.public_texts import TEXTS, check_text
from ldis.domain.roles import Role
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import PublicText
from ldis.store.models.base import utcnow


def current(session: Session) -> dict[str, str]:
    """Every text as it is now: the panel's version, else the default."""
    changed = {k: t for k, t in session.execute(select(PublicText.key, PublicText.text)).all()}
    return {key: changed.get(key, spec.default) for key, spec in TEXTS.items()}


def read(db: Database) -> dict[str, str]:
    with db.transaction() as session:
        return current(session)


def list_texts(db: Database, actor: Principal) -> list[dict[str, Any]]:
    actor.require(Role.panel, Role.admin)
    with db.transaction() as session:
        rows = {row.key: row for row in session.scalars(select(PublicText))}
        return [
            {
                "key": key,
                "label": spec.label,
                "text": rows[key].text if key in rows else spec.default,
                "default": spec.default,
                "changed": key in rows,
                "max_length": spec.max_length,
                "placeholders": sorted(spec.placeholders),
                "sms": spec.sms,
            }
            for key, spec in TEXTS.items()
        ]


def save_text(db: Database, actor: Principal, key: str, text: str | None) -> None:
    """Change one text (the panel); None or the default text puts the default back."""
    actor.require(Role.panel)
    spec = TEXTS.get(key)
    if spec is None:
        raise NotFound(f"No public text {key!r}.")
    with db.transaction() as session:
        if text is None or text.strip() == spec.default:
            session.execute(delete(PublicText).where(PublicText.key == key))
            action = "public_text.reset"
        else:
            problem = check_text(key, text)
            if problem:
                raise ValidationFailed({key: problem})
            row = session.get(PublicText, key)
            if row is None:
                row = PublicText(key=key, text=text.strip())
                session.add(row)
            row.text, row.updated_by, row.updated_at = text.strip(), actor.db_id, utcnow()
            action = "public_text.changed"
        audit.record(
            session,
            actor_id=actor.db_id,
            action=action,
            entity="public_text",
            entity_id=None,
            key=key,
        )
