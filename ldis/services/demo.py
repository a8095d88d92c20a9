"""Demo data: a small partnership (areas, services, contacts, users). Safe to load twice.

Numbers are from Ofcom's drama range (07700 900xxx) and addresses from example.org, so a
demo can never message a real person even with a real channel configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import select

from ldis.domain.roles import Role
from ldis.store.db import Database
from ldis.store.models import Area, Contact, ContactChannel, Service, User, UserRole

AREAS = [
    ("NYORKS", "North Yorkshire and York", None),
    ("YORK-C", "York city centre", "NYORKS"),
    ("YORK-W", "York west", "NYORKS"),
    ("HARROGATE", "Harrogate", "NYORKS"),
]
SERVICES: list[tuple[str, str, list[str], list[tuple[str, str, str | None]]]] = [
    (
        "York needle and syringe programme",
        "needle_syringe_programme",
        ["YORK-C", "YORK-W"],
        [("NSP duty worker", "nsp@example.org", "07700 900101")],
    ),
    (
        "York Hospital emergency department",
        "emergency_department",
        ["NYORKS"],
        [("ED nurse in charge", "ed@example.org", "07700 900102")],
    ),
    (
        "York custody suite",
        "police_custody",
        ["YORK-C"],
        [("Custody sergeant", "custody@example.org", None)],
    ),
    (
        "Harrogate outreach team",
        "outreach",
        ["HARROGATE"],
        [("Outreach lead", "outreach@example.org", "07700 900103")],
    ),
]
USERS: list[tuple[str, str, list[Role]]] = [
    ("admin@example.org", "Demo Admin", [Role.admin]),
    ("reporter@example.org", "Demo Reporter", [Role.reporter]),
    ("panel1@example.org", "Demo Panel One", [Role.panel]),
    ("panel2@example.org", "Demo Panel Two", [Role.panel]),
    ("panel3@example.org", "Demo Panel Three", [Role.panel]),
]


def load_demo(db: Database) -> Iterator[str]:
    from ldis.domain.recipients import normalise_phone

    now = datetime.now(UTC)
    with db.transaction() as session:
        by_code = {a.code: a for a in session.scalars(select(Area))}
        for code, name, parent in AREAS:
            if code not in by_code:
                by_code[code] = Area(code=code, name=name, parent=by_code.get(parent or ""))
                session.add(by_code[code])
                yield f"area {code}"
        existing_services = {s.name: s for s in session.scalars(select(Service))}
        for name, kind, codes, contacts in SERVICES:
            # A stable ref, so the demo list exports to a CSV that imports again unchanged.
            ref = "DEMO-" + "-".join(word[:4].upper() for word in name.split()[:3])
            if name in existing_services:
                if existing_services[name].ref is None:  # loaded before services had refs
                    existing_services[name].ref = ref
                continue
            service = Service(ref=ref, name=name, type=kind, areas=[by_code[c] for c in codes])
            for contact_name, email, phone in contacts:
                channels = [ContactChannel(channel="email", verified_at=now)]
                if phone:
                    channels.append(ContactChannel(channel="sms", verified_at=now))
                service.contacts.append(
                    Contact(
                        name=contact_name,
                        email=email,
                        phone=normalise_phone(phone) if phone else None,
                        channels=channels,
                    )
                )
            session.add(service)
            yield f"service {name}"
        existing_users = set(session.scalars(select(User.email)))
        for email, name, roles in USERS:
            if email not in existing_users:
                session.add(
                    User(email=email, name=name, roles=[UserRole(role=r.value) for r in roles])
                )
                yield f"user {email} ({', '.join(r.value for r in roles)})"
    yield "demo data loaded; create API tokens with: ldis tokens create --email panel1@example.org"
    # Demo users get no two-factor secret of a known value: that would open any instance
    # where `ldis demo` was run by mistake. An operator gives each one its own secret.
    yield (
        "approving needs two-factor: ldis users totp --email panel2@example.org prints a secret "
        'for an authenticator app; send its current code as "otp"'
    )
