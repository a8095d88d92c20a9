"""Who may do what: the roles a person can hold (a person may hold several)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    reporter = "reporter"
    panel = "panel"
    admin = "admin"
    # Manages the details and contacts of the services they are linked to, nothing more.
    service_manager = "service_manager"


def parse_roles(names: list[str] | tuple[str, ...]) -> frozenset[Role]:
    """Turn role names into roles; raise ValueError naming the first unknown one."""
    roles = set()
    for name in names:
        try:
            roles.add(Role(name.strip().lower()))
        except ValueError:
            allowed = ", ".join(role.value for role in Role)
            raise ValueError(f"unknown role {name!r}; use one of: {allowed}") from None
    return frozenset(roles)
