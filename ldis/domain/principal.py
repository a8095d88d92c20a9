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

    def has_any(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def require(self, *roles: Role) -> None:
        if not self.has_any(*roles):
            names = " or ".join(role.value for role in roles)
            raise Forbidden(f"This needs the {names} role.")
