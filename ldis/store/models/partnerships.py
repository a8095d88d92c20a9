"""Partnerships sharing one deployment, and alerts one partnership shares with another.

Each partnership's rows carry `partnership_id`; on PostgreSQL row-level security (migration
0009, docs/operations.md "Several partnerships") lets a partnership's people see and write
only their own. The column's server default is the partnership acting (or the default
partnership, id 1, when none is), so code that does not name a partnership files into the
right one, and a single-partnership deployment needs no change at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, ForeignKeyConstraint, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ldis.store.models.base import Base, utcnow

DEFAULT_PARTNERSHIP_ID = 1


class Partnership(Base):
    __tablename__ = "partnerships"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def partnership_fk(*, nullable: bool = False) -> Any:
    """The owning partnership of a row (the column of every partnership's own table)."""
    return mapped_column(
        ForeignKey("partnerships.id"),
        index=True,
        nullable=nullable,
        server_default=text(str(DEFAULT_PARTNERSHIP_ID)),
    )


class AlertShare(Base):
    """An alert its panel shared on purpose with a neighbouring partnership: that
    partnership's people may read it (never approve or change it), and its services get
    the alert's live versions. `shared_from` is the alert's own partnership; the composite
    key to alerts(id, partnership_id) lets the database, not only the code, hold it true."""

    __tablename__ = "alert_shares"
    __table_args__ = (
        ForeignKeyConstraint(
            ["alert_id", "shared_from"],
            ["alerts.id", "alerts.partnership_id"],
            ondelete="CASCADE",
            name="fk_alert_shares_alert_owner",
        ),
    )

    alert_id: Mapped[int] = mapped_column(primary_key=True)
    partnership_id: Mapped[int] = mapped_column(
        ForeignKey("partnerships.id"), primary_key=True, index=True
    )
    shared_from: Mapped[int] = mapped_column(ForeignKey("partnerships.id"))
    shared_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    shared_at: Mapped[datetime] = mapped_column(default=utcnow)
