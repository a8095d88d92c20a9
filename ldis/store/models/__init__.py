"""Typed SQLAlchemy models, one module per feature; import from here."""

from ldis.store.models.alerts import Alert, AlertApproval, AlertVersion
from ldis.store.models.audit import AuditEvent
from ldis.store.models.base import Base
from ldis.store.models.deliveries import (
    Delivery,
    DeliveryAttempt,
    Escalation,
    Notice,
    OutboxMessage,
)
from ldis.store.models.panel import Grade, PanelDecision
from ldis.store.models.partnerships import AlertShare, Partnership
from ldis.store.models.people import ApiToken, PasswordReset, RecoveryCode, User, UserRole
from ldis.store.models.public import PublicFormToken, PublicSubscriber, PublicText
from ldis.store.models.recipients import (
    Area,
    AreaNeighbour,
    Contact,
    ContactChannel,
    ContactUnsubscription,
    Service,
    ServiceArea,
    ServiceManager,
    ServiceType,
)
from ldis.store.models.reports import (
    Report,
    ReportPhoto,
    ReportSubstance,
    ReportUpdate,
    VocabularyEntry,
)
from ldis.store.models.signals import Signal, SignalReport

__all__ = [
    "Alert",
    "AlertApproval",
    "AlertShare",
    "AlertVersion",
    "ApiToken",
    "Area",
    "AreaNeighbour",
    "AuditEvent",
    "Base",
    "Contact",
    "ContactChannel",
    "ContactUnsubscription",
    "Delivery",
    "DeliveryAttempt",
    "Escalation",
    "Grade",
    "Notice",
    "OutboxMessage",
    "PanelDecision",
    "Partnership",
    "PasswordReset",
    "PublicFormToken",
    "PublicSubscriber",
    "PublicText",
    "RecoveryCode",
    "Report",
    "ReportPhoto",
    "ReportSubstance",
    "ReportUpdate",
    "Service",
    "ServiceArea",
    "ServiceManager",
    "ServiceType",
    "Signal",
    "SignalReport",
    "User",
    "UserRole",
    "VocabularyEntry",
]
