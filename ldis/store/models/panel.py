"""The panel's record of a case (a signal or a report): each member's grade, and decisions.

Grades are one row per member per case (a member may change their grade; the audit log
keeps every version). Decisions are appended, never changed: the latest is the panel's
current decision, the earlier ones are its history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ldis.store.models.base import Base, utcnow


class Grade(Base):
    __tablename__ = "grades"
    __table_args__ = (
        Index("uq_grades_case_user", "subject", "subject_id", "user_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(20))  # signal or report
    subject_id: Mapped[int]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    criteria: Mapped[dict[str, Any]]  # ldis.domain.grading.GradeInput, as JSON
    score: Mapped[int]
    rag: Mapped[str] = mapped_column(String(10))
    recommendation: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PanelDecision(Base):
    __tablename__ = "panel_decisions"
    __table_args__ = (Index("ix_panel_decisions_case", "subject", "subject_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int]
    decision: Mapped[str] = mapped_column(String(30))
    rag: Mapped[str] = mapped_column(String(10))
    reasons: Mapped[str] = mapped_column(String(4000))
    decided_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
