"""The person (or system) acting, as the use cases see them: an id and a set of roles."""

from __future__ import annotations

from dataclasses import dataclass

from ldis.domain.errors import Forbidden
from ldis.domain.roles import Role


@dataclass(frozen=True)
class Principal:
    user_id: int
    email: str
    roles: frozenset[Role]
    # The partnership whose data they act on; None: a host-level operator (or the system).
    partnership_id: int | None = None

    @property
    def db_id(self) -> int | None:
        """The user id to store, or None for the command line acting as the system."""
        return self.user_id or None

    def has_any(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def require(self, *roles: Role) -> None:
        if not self.has_any(*roles):
            names = " or ".join(role.value for role in roles)
            raise Forbidden(f"This needs the {names} role.")


# The operator at the command line (e.g. `ldis import-callouts`): files reports, is no user.
SYSTEM_REPORTER = Principal(user_id=0, email="system", roles=frozenset({Role.reporter}))
