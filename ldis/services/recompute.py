"""`ldis signals recompute`: every detector over all stored data. Idempotent: what is already
linked stays linked once, and what the panel dismissed is not reopened."""

from __future__ import annotations

from sqlalchemy import select

from ldis.domain.clusters import ClusterSettings
from ldis.domain.rules import facts_from_stored
from ldis.services import clusters, signals, vocabulary
from ldis.services.signals import similar_appearances
from ldis.store.db import Database
from ldis.store.models import Area, Report


def recompute_rules(db: Database) -> int:
    raised = 0
    with db.transaction() as session:
        vocab = vocabulary.current(session)
        rows = session.execute(
            select(Report, Area.code)
            .outerjoin(Area, Area.id == Report.area_id)
            # Public reports joined their signals when filed (ldis.services.public_reports):
            # run again through the rules, they would open rule signals of their own.
            .where(Report.kind != "callout", Report.origin == "staff")
            .order_by(Report.id)
        ).all()
        for report, code in rows:
            similar = similar_appearances(session, report.appearance_key, report.occurred_at) - 1
            facts = facts_from_stored(
                report.kind,
                code,
                report.occurred_at,
                report.data,
                vocab,
                similar_recent=max(similar, 0),
            )
            raised += signals.rules_recompute(session, report.id, report.area_id, facts)
    return raised


def recompute_all(db: Database, settings: ClusterSettings | None = None) -> tuple[int, int]:
    return recompute_rules(db), clusters.recompute(db, settings or ClusterSettings())
