"""What the public side keeps: the texts the panel edits, people subscribed to public
alerts by text (their number sealed, looked up by a keyed hash), and the form tokens
already used (so each public form is sent once)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ldis.store.models.base import Base, utcnow


class PublicText(Base):
    """A public-facing text the panel changed; a key without a row uses the shipped default."""

    __tablename__ = "public_texts"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PublicSubscriber(Base):
    """One phone subscribed (or asked to subscribe) to the public alerts of one area.

    Personal data, kept only to send those alerts: `phone_sealed` is the number encrypted
    with the deployment's key (Fernet), `phone_hash` a keyed one-way hash to find the row
    when a text arrives. STOP deletes every row of the number."""

    __tablename__ = "public_subscribers"
    __table_args__ = (UniqueConstraint("phone_hash", "area_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    phone_sealed: Mapped[str] = mapped_column(String(400))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10))  # pending | active
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]


class PublicFormToken(Base):
    """A public report form's token that has been used: a second post of it is refused."""

    __tablename__ = "public_form_tokens"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
