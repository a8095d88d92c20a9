"""Validated input for areas, services and contacts (phone numbers in E.164, real e-mails)."""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated, Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ldis.domain.alerts import AlertKind, AlertLevel
from ldis.domain.deliveries import Channel

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
AreaCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9_.-]+$",
    ),
]
DEFAULT_REGION = "GB"

# The managed list of service types a new installation starts with (migration 0004 seeds the
# same list; admins add, rename or retire types afterwards).
DEFAULT_SERVICE_TYPES: tuple[tuple[str, str], ...] = (
    ("needle_syringe_programme", "Needle and syringe programme"),
    ("pharmacy", "Pharmacy"),
    ("emergency_department", "A&E (emergency department)"),
    ("ambulance", "Ambulance service"),
    ("police_custody", "Police custody"),
    ("prison", "Prison"),
    ("hostel", "Hostel or supported housing"),
    ("outreach", "Outreach team"),
    ("treatment_service", "Drug and alcohol treatment service"),
    ("gp_practice", "GP practice"),
    ("youth_service", "Youth service"),
    ("neighbouring_ldis", "Neighbouring LDIS area"),
)


class AreaInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: AreaCode
    name: Name
    parent: AreaCode | None = None


ServiceTypeCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=1,
        max_length=60,
        pattern=r"^[A-Za-z0-9_]+$",
    ),
]
ServiceRef = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.:/-]+$"
    ),
]


# As wide as the column that keeps it.
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class ServiceTypeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: ServiceTypeCode
    label: Label
    active: bool = True


class ServiceTypeUpdate(BaseModel):
    """Rename a type or retire it (`active: false`): a retired type stays on the services
    that have it but cannot be chosen again."""

    model_config = ConfigDict(extra="forbid")

    label: Label | None = None
    active: bool | None = None


class ManagerInput(BaseModel):
    """The user (by their sign-in e-mail) to make a service's manager."""

    model_config = ConfigDict(extra="forbid")

    email: str

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalise_email(value).lower()


def _unique_list(value: list[Any]) -> list[Any]:
    return list(dict.fromkeys(value))


class ServiceInput(BaseModel):
    """A new service. `alert_kinds` empty means every kind; `ref` is the partnership's own
    key for the service, used to match rows when a CSV is imported again."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    type: ServiceTypeCode
    areas: list[AreaCode] = Field(min_length=1, max_length=500)
    ref: ServiceRef | None = None
    alert_levels: list[AlertLevel] = Field(
        default_factory=lambda: [AlertLevel.professional, AlertLevel.public], min_length=1
    )
    alert_kinds: list[AlertKind] = Field(default_factory=list)

    _dedupe = field_validator("areas", "alert_levels", "alert_kinds")(_unique_list)


class ServiceUpdate(BaseModel):
    """A partial change to a service: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    type: ServiceTypeCode | None = None
    areas: list[AreaCode] | None = Field(default=None, min_length=1, max_length=500)
    ref: ServiceRef | None = None
    alert_levels: list[AlertLevel] | None = Field(default=None, min_length=1)
    alert_kinds: list[AlertKind] | None = None

    _dedupe = field_validator("areas", "alert_levels", "alert_kinds")(
        lambda value: None if value is None else _unique_list(value)
    )


# Ofcom reserves 07700 900000-900999 for drama: such numbers can never reach a person, so demos
# and tests use them. libphonenumber calls them invalid; we accept them as mobiles.
FICTITIOUS_MOBILE_PREFIX = "7700900"


def is_fictitious(number: phonenumbers.PhoneNumber) -> bool:
    national = str(number.national_number)
    return (
        number.country_code == 44
        and len(national) == 10
        and national.startswith(FICTITIOUS_MOBILE_PREFIX)
    )


# Mobile numbers we send to: the UK and the Crown Dependencies, which share +44. A number from
# anywhere else is refused: alerts are for services in the partnership's area, and an
# international text costs more and may not arrive.
ALLOWED_SMS_REGIONS = frozenset({"GB", "GG", "JE", "IM"})


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """A UK mobile number in E.164; ValueError with a reason a person can act on."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValueError(
            "is not a phone number; write it like 07700 900123 or +447700900123"
        ) from None
    if is_fictitious(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    if phonenumbers.region_code_for_number(number) not in ALLOWED_SMS_REGIONS:
        raise ValueError("must be a UK mobile number; numbers from other countries are not used")
    kind = phonenumbers.number_type(number)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise ValueError("must be a mobile number: landlines cannot receive text messages")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    try:
        # No DNS lookups: intake must not depend on the network being up.
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


class ContactRole(StrEnum):
    primary = "primary"
    backup = "backup"


class QuietHours(BaseModel):
    """Local (UK) times between which standard alerts wait; may span midnight (22:00-07:00).
    Urgent alerts ignore quiet hours."""

    model_config = ConfigDict(extra="forbid")

    start: time
    end: time

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time) -> time:
        # Stored as a local time of day: an offset would be silently wrong (or, out of
        # PostgreSQL's range, an error when stored).
        if value.tzinfo is not None:
            raise ValueError("give a UK local time like 22:00, without a time zone")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ, e.g. 22:00 to 07:00")
        return self


def in_quiet_hours(quiet: QuietHours | None, local_now: time) -> bool:
    if quiet is None:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= local_now < quiet.end
    return local_now >= quiet.start or local_now < quiet.end  # spans midnight


def _address_check(channels: list[Channel], phone: str | None, email: str | None) -> None:
    if Channel.sms in channels and not phone:
        raise ValueError("channels: sms needs a mobile number in phone")
    if Channel.email in channels and not email:
        raise ValueError("channels: email needs an address in email")


def _optional_email(value: str | None) -> str | None:
    return normalise_email(value) if value else None


def _optional_mobile(value: str | None) -> str | None:
    return normalise_phone(value) if value else None


# Blank means "none"; anything else must be a real address (shared by create and update).
OptionalEmail = Annotated[str | None, AfterValidator(_optional_email)]
OptionalMobile = Annotated[str | None, AfterValidator(_optional_mobile)]


class ContactInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    role: ContactRole = ContactRole.primary
    email: OptionalEmail = None
    phone: OptionalMobile = None
    channels: list[Channel] = Field(min_length=1)
    quiet_hours: QuietHours | None = None
    verified: bool = False

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[Channel]) -> list[Channel]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _address_for_each_channel(self) -> ContactInput:
        _address_check(self.channels, self.phone, self.email)
        return self


class ContactUpdate(BaseModel):
    """A partial change to a contact: only the fields sent change. Send `null` to clear
    email, phone or quiet_hours. A changed address must be verified again."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    role: ContactRole | None = None
    email: OptionalEmail = None
    phone: OptionalMobile = None
    channels: list[Channel] | None = Field(default=None, min_length=1)
    quiet_hours: QuietHours | None = None

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[Channel] | None) -> list[Channel] | None:
        return None if value is None else list(dict.fromkeys(value))

    def merged_check(
        self, current_phone: str | None, current_email: str | None, current_channels: list[Channel]
    ) -> None:
        """Raise ValueError when the contact after this change lacks an address it needs."""
        fields = self.model_fields_set
        phone = self.phone if "phone" in fields else current_phone
        email = self.email if "email" in fields else current_email
        channels = self.channels if self.channels is not None else current_channels
        _address_check(channels, phone, email)
