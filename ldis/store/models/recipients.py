"""Areas (a hierarchy), frontline services, and their contacts with per-channel verification."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ldis.store.models.base import Base, utcnow


class Area(Base):
    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Area | None] = relationship(remote_side=[id], lazy="joined")


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(60), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    areas: Mapped[list[Area]] = relationship(secondary="service_areas", lazy="selectin")
    contacts: Mapped[list[Contact]] = relationship(back_populates="service", lazy="selectin")


class ServiceArea(Base):
    __tablename__ = "service_areas"

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True, index=True)


class Contact(Base):
    """A person or shared inbox at a service. Their details are staff personal data."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    service: Mapped[Service] = relationship(back_populates="contacts")
    channels: Mapped[list[ContactChannel]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", back_populates="contact"
    )


class ContactChannel(Base):
    """A channel a contact chose; it receives nothing until `verified_at` is set."""

    __tablename__ = "contact_channels"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    verified_at: Mapped[datetime | None]

    contact: Mapped[Contact] = relationship(back_populates="channels")
