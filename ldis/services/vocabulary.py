"""The substances vocabulary in use: the shipped list plus what admins added."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.domain.substances import SubstanceEntry, Vocabulary
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import VocabularyEntry

# (row count, newest id) -> vocabulary: rebuilt only when an admin has added something.
_cache: dict[tuple[int, int], Vocabulary] = {}
# Intake asks for the vocabulary on every report; checking the table at most this often keeps
# that off the hot path. An admin's addition reaches every process within this many seconds.
RECHECK_SECONDS = 10.0
_checked_at = [0.0]


def _entry(row: VocabularyEntry) -> SubstanceEntry:
    return SubstanceEntry(
        name=row.canonical,
        drug_class=row.drug_class,
        red_list=row.red_list,
        synonyms=tuple(row.synonyms.get("names", [])),
    )


def current(session: Session) -> Vocabulary:
    now = time.monotonic()
    if _cache and now - _checked_at[0] < RECHECK_SECONDS:
        return next(iter(_cache.values()))
    _checked_at[0] = now
    count, newest = session.execute(
        select(func.count(VocabularyEntry.id), func.coalesce(func.max(VocabularyEntry.id), 0))
    ).one()
    key = (int(count), int(newest))
    if key not in _cache:
        base = Vocabulary.load_default()
        rows = session.scalars(select(VocabularyEntry).order_by(VocabularyEntry.id)).all()
        _cache.clear()
        _cache[key] = base.extended(_entry(row) for row in rows) if rows else base
    return _cache[key]


MAX_NAME = 100


def add_entry(db: Database, actor: Principal, body: Any) -> dict[str, Any]:
    """Admins extend the vocabulary: a new substance, or new names for a known one."""
    actor.require(Role.admin)
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "must be a JSON object"})
    name, drug_class = body.get("name"), body.get("class")
    synonyms, red_list = body.get("synonyms", []), body.get("red_list", False)
    problems: dict[str, str] = {}
    if not isinstance(name, str) or not name.strip():
        problems["name"] = "give the substance's canonical name"
    elif len(name.strip()) > MAX_NAME:
        # Names end up in signal keys and summaries, which have room for two of them.
        problems["name"] = f"keep it to {MAX_NAME} characters"
    if not isinstance(drug_class, str):
        problems["class"] = "give the drug class, e.g. nitazene"
    if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
        problems["synonyms"] = "must be a list of names"
    if not isinstance(red_list, bool):
        problems["red_list"] = "must be true or false"
    if problems:
        raise ValidationFailed(problems)
    assert isinstance(name, str) and isinstance(drug_class, str)
    try:
        entry = SubstanceEntry(name.strip(), drug_class, red_list, tuple(synonyms))
    except ValueError as exc:
        raise ValidationFailed({"class": str(exc)}) from None
    with db.transaction() as session:
        if session.scalar(
            select(VocabularyEntry.id).where(VocabularyEntry.canonical == entry.name)
        ):
            raise Conflict(f"{entry.name} was already added; add more names to it instead.")
        try:
            current(session).extended([entry])
        except ValueError as exc:
            raise ValidationFailed({"synonyms": str(exc)}) from None
        row = VocabularyEntry(
            canonical=entry.name,
            drug_class=entry.drug_class,
            red_list=entry.red_list,
            synonyms={"names": list(entry.synonyms)},
            created_by=actor.user_id,
        )
        session.add(row)
        session.flush()
        _checked_at[0] = 0.0  # this process sees its own addition at once
        audit.record(
            session,
            actor_id=actor.user_id,
            action="substance.added",
            entity="substance",
            entity_id=row.id,
            name=entry.name,
        )
        return {
            "id": row.id,
            "name": entry.name,
            "class": entry.drug_class,
            "red_list": entry.red_list,
            "synonyms": list(entry.synonyms),
        }


def forget() -> None:
    """Drop the cached vocabulary (after the table was emptied beneath it, as tests do)."""
    _cache.clear()
    _checked_at[0] = 0.0
