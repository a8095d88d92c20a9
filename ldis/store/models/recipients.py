"""Areas (a hierarchy with optional boundaries), frontline services of managed types, their
contacts with per-channel verification and opt-outs, and what each wants to receive."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ldis.store.models.base import Base, utcnow
from ldis.store.models.partnerships import partnership_fk


class Area(Base):
    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    partnership_id: Mapped[int] = partnership_fk()
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    # A validated GeoJSON Polygon/MultiPolygon geometry (WGS84 lon/lat), loaded by an admin.
    boundary: Mapped[dict[str, Any] | None]
    # The boundary's bounding box, so a point lookup tests few polygons.
    min_lon: Mapped[float | None] = mapped_column(Float)
    min_lat: Mapped[float | None] = mapped_column(Float)
    max_lon: Mapped[float | None] = mapped_column(Float)
    max_lat: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]

    parent: Mapped[Area | None] = relationship(remote_side=[id], lazy="joined")


class AreaNeighbour(Base):
    """A link between neighbouring areas (stored both ways) so an alert can reach across."""

    __tablename__ = "area_neighbours"

    area_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True
    )
    neighbour_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ServiceType(Base):
    """The managed list of service types (needle exchange, A&E, custody suite ...)."""

    __tablename__ = "service_types"

    code: Mapped[str] = mapped_column(String(60), primary_key=True)
    label: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    # An optional stable key from the partnership's own list, used to match CSV re-imports.
    ref: Mapped[str | None] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    partnership_id: Mapped[int] = partnership_fk()
    type: Mapped[str] = mapped_column(ForeignKey("service_types.code"), index=True)
    # Alert levels (professional, public) and alert kinds it wants; empty kinds = every kind.
    alert_levels: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: ["professional", "public"]
    )
    alert_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    # When a person last confirmed the details (the yearly review), and when we last asked.
    confirmed_at: Mapped[datetime | None]
    review_reminded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]

    areas: Mapped[list[Area]] = relationship(secondary="service_areas", lazy="selectin")
    contacts: Mapped[list[Contact]] = relationship(back_populates="service", lazy="selectin")
    managers: Mapped[list[ServiceManager]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", back_populates="service"
    )


class ServiceArea(Base):
    __tablename__ = "service_areas"

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True, index=True)


class ServiceManager(Base):
    """A user who manages this service's own details and contacts."""

    __tablename__ = "service_managers"

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )

    service: Mapped[Service] = relationship(back_populates="managers")


class Contact(Base):
    """A person or shared inbox at a service. Their details are staff personal data."""

    __tablename__ = "contacts"
    # One person once per service: the same address twice would mean two copies of each alert.
    __table_args__ = (
        Index(
            "uq_contacts_service_email",
            "service_id",
            "email",
            unique=True,
            postgresql_where=text("email IS NOT NULL"),
            sqlite_where=text("email IS NOT NULL"),
        ),
        Index(
            "uq_contacts_service_phone",
            "service_id",
            "phone",
            unique=True,
            postgresql_where=text("phone IS NOT NULL"),
            sqlite_where=text("phone IS NOT NULL"),
        ),
        Index("ix_contacts_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="primary")  # primary | backup
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    # Local (Europe/London) quiet hours; urgent alerts ignore them.
    quiet_start: Mapped[time | None]
    quiet_end: Mapped[time | None]
    # Unsubscribed from everything (self-service); honoured at once, kept for the record.
    opted_out_at: Mapped[datetime | None]
    # Flagged for the service manager (e.g. a message failed permanently).
    flagged_at: Mapped[datetime | None]
    flag_reason: Mapped[str | None] = mapped_column(String(300))
    # Bumped to revoke every self-service link already sent to this contact.
    link_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]
    # When the person left and their details were erased (the delivery counts stay).
    erased_at: Mapped[datetime | None]

    service: Mapped[Service] = relationship(back_populates="contacts")
    channels: Mapped[list[ContactChannel]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", back_populates="contact"
    )
    unsubscriptions: Mapped[list[ContactUnsubscription]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", back_populates="contact"
    )


class ContactChannel(Base):
    """A channel a contact chose; it receives nothing until `verified_at` is set, nor after
    an opt-out (SMS STOP) or a permanent failure."""

    __tablename__ = "contact_channels"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    verified_at: Mapped[datetime | None]
    # A hash of the one-time code sent to prove the address (never the code itself).
    verification_hash: Mapped[str | None] = mapped_column(String(64))
    verification_sent_at: Mapped[datetime | None]
    verification_attempts: Mapped[int] = mapped_column(Integer, default=0)
    opted_out_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(300))

    contact: Mapped[Contact] = relationship(back_populates="channels")


class ContactUnsubscription(Base):
    """A contact's choice to stop one kind of alert (self-service)."""

    __tablename__ = "contact_unsubscriptions"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    alert_kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="unsubscriptions")
