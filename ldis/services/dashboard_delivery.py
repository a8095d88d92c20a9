"""The dashboard's delivery figure: how the messages of the alerts issued in the period
fared, and how many services acknowledged them, by service type (exercises left out, as in
`dashboard_alerts`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select

from ldis.domain.alerts import VersionPurpose
from ldis.domain.deliveries import DeliveryStatus
from ldis.domain.figures import rate
from ldis.services.dashboard_alerts import counted
from ldis.services.dashboard_base import Context, chart, column, figure, series
from ldis.store.models import AlertVersion, Contact, Delivery, Service, ServiceType

DONE = (DeliveryStatus.sent.value, DeliveryStatus.delivered.value)
WAITING = (DeliveryStatus.queued.value, DeliveryStatus.sending.value)


def delivery(ctx: Context) -> dict[str, Any]:
    ids = [a.alert_id for a in counted(ctx)]
    messages: dict[str, dict[str, int]] = {}
    services: dict[str, tuple[int, int]] = {}
    labels: dict[str, str] = {
        code: label
        for code, label in ctx.session.execute(select(ServiceType.code, ServiceType.label))
    }
    if ids:
        joined = (
            select(Service.type.label("type"), Delivery.status.label("status"))
            .select_from(Delivery)
            .join(Contact, Contact.id == Delivery.contact_id)
            .join(Service, Service.id == Contact.service_id)
            .join(
                AlertVersion,
                and_(
                    AlertVersion.alert_id == Delivery.alert_id,
                    AlertVersion.version == Delivery.version,
                ),
            )
            .where(
                Delivery.alert_id.in_(ids),
                AlertVersion.purpose != VersionPurpose.withdrawal.value,
            )
        )
        inner = joined.subquery()
        for kind, status, n in ctx.session.execute(
            select(inner.c.type, inner.c.status, func.count()).group_by(
                inner.c.type, inner.c.status
            )
        ):
            messages.setdefault(kind, {})[status] = int(n)
        per_service = (
            joined.with_only_columns(
                Service.type.label("type"),
                func.sum(case((Delivery.status.in_(DONE), 1), else_=0)).label("reached"),
                func.count(Delivery.acknowledged_at).label("acks"),
            )
            .group_by(Delivery.alert_id, Delivery.version, Contact.service_id, Service.type)
            .subquery()
        )
        reached = or_(per_service.c.reached > 0, per_service.c.acks > 0)
        for kind, reached_n, acked_n in ctx.session.execute(
            select(
                per_service.c.type,
                func.sum(case((reached, 1), else_=0)),
                func.sum(case((per_service.c.acks > 0, 1), else_=0)),
            ).group_by(per_service.c.type)
        ):
            services[kind] = (int(reached_n or 0), int(acked_n or 0))
    kinds = sorted(set(messages) | set(services), key=lambda k: str(labels.get(k, k)).lower())
    rows: list[list[Any]] = [
        _delivery_row(k, labels.get(k, k), messages.get(k, {}), services.get(k)) for k in kinds
    ]
    if rows:
        everything: dict[str, int] = {}
        for found in messages.values():
            for status, n in found.items():
                everything[status] = everything.get(status, 0) + n
        reached_all = sum(r for r, _ in services.values())
        acked_all = sum(a for _, a in services.values())
        rows.append(_delivery_row("all", "All service types", everything, (reached_all, acked_all)))
    return figure(
        "delivery",
        "Delivery and acknowledgement, by service type",
        "Messages of the alerts issued in the period (first messages and updates; not "
        "withdrawal notices, not cancelled messages). Delivery success: messages delivered "
        "or handed to the provider, out of those that have finished (delivered, sent or "
        "failed; those still waiting are left out). Acknowledgement: services that "
        "confirmed receipt (any contact, any channel), out of the services each message "
        "reached, counted once per alert version.",
        [
            column("service_type", "Service type code", "code"),
            column("service_type_label", "Service type", "text"),
            column("messages", "Messages"),
            column("sent_or_delivered", "Delivered or sent"),
            column("failed", "Failed"),
            column("waiting", "Still waiting"),
            column("success_percent", "Delivery success (%)", "percent"),
            column("services_reached", "Services reached"),
            column("services_acknowledged", "Services that acknowledged"),
            column("acknowledged_percent", "Acknowledged (%)", "percent"),
        ],
        rows,
        chart(
            "hbars",
            [row[1] for row in rows],
            [
                series("Delivery success (%)", [row[6] for row in rows]),
                series("Acknowledged (%)", [row[9] for row in rows]),
            ],
            stacked=False,
            unit="percent",
            max_value=100,
        ),
        empty=not rows,
        empty_text="No alert messages were sent in this period.",
    )


def _delivery_row(
    code: str, label: str, found: dict[str, int], services: tuple[int, int] | None
) -> list[Any]:
    done = sum(found.get(s, 0) for s in DONE)
    failed = found.get(DeliveryStatus.failed.value, 0)
    waiting = sum(found.get(s, 0) for s in WAITING)
    reached, acked = services or (0, 0)
    return [
        code,
        label,
        done + failed + waiting,
        done,
        failed,
        waiting,
        rate(done, done + failed),
        reached,
        acked,
        rate(acked, reached),
    ]
