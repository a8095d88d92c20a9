"""What the report pages need besides intake's views: the areas to choose from, and for one
report whether it has a photo and whether the actor may add an update to it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services.intake import FILERS
from ldis.store.db import Database
from ldis.store.models import Area, Report, ReportPhoto


def area_choices(db: Database) -> list[tuple[str, str]]:
    """(code, "Name (CODE)") for every area, by name."""
    with db.transaction() as session:
        rows = session.execute(select(Area.code, Area.name).order_by(Area.name, Area.code)).all()
    return [(code, f"{name} ({code})") for code, name in rows]


def detail_extras(db: Database, actor: Principal, report_id: int) -> dict[str, Any]:
    """Call after `intake.get_report` has checked the actor may read the report."""
    actor.require(*FILERS)
    with db.transaction() as session:
        reporter_id = session.scalar(select(Report.reporter_id).where(Report.id == report_id))
        photo = session.execute(
            select(ReportPhoto.content_type, ReportPhoto.width, ReportPhoto.height).where(
                ReportPhoto.report_id == report_id
            )
        ).first()
    return {
        # The same rule as intake.add_update: the reporter who filed it, or an admin.
        "may_update": actor.has_any(Role.admin)
        or (reporter_id is not None and reporter_id == actor.user_id),
        "photo": (
            {"content_type": photo[0], "width": photo[1], "height": photo[2]} if photo else None
        ),
    }
