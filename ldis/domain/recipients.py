"""Validated input for areas, services and contacts (phone numbers in E.164, real e-mails)."""

from __future__ import annotations

from typing import Annotated

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

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


class ServiceInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    type: Annotated[
        str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=60)
    ]
    areas: list[AreaCode] = Field(min_length=1, max_length=500)


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


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """A mobile number in E.164; ValueError with a reason a person can act on."""
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


class ContactInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    email: str | None = None
    phone: str | None = None
    channels: list[Channel] = Field(min_length=1)
    verified: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalise_email(value) if value else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value else None

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[Channel]) -> list[Channel]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _address_for_each_channel(self) -> ContactInput:
        if Channel.sms in self.channels and not self.phone:
            raise ValueError("channels: sms needs a mobile number in phone")
        if Channel.email in self.channels and not self.email:
            raise ValueError("channels: email needs an address in email")
        return self
