"""Signed links placed in messages (acknowledge, own preferences), so a click needs no login
and no lookup table."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer


class Links:
    def __init__(self, secret: str, public_url: str) -> None:
        self._ack = URLSafeSerializer(secret, salt="ldis.ack")
        # A different salt: an acknowledgement token can never open someone's preferences.
        self._preferences = URLSafeSerializer(secret, salt="ldis.preferences")
        self.public_url = public_url.rstrip("/")

    def ack_token(self, delivery_id: int) -> str:
        return self._ack.dumps(delivery_id)

    def ack_url(self, delivery_id: int) -> str:
        return f"{self.public_url}/ack/{self.ack_token(delivery_id)}"

    def delivery_for_ack(self, token: str) -> int | None:
        try:
            value = self._ack.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, int) else None

    def preferences_token(self, contact_id: int, link_version: int) -> str:
        """No expiry: alerts are kept and re-read. Bumping `Contact.link_version` revokes
        every link already sent to that contact."""
        return self._preferences.dumps([contact_id, link_version])

    def preferences_url(self, contact_id: int, link_version: int) -> str:
        return f"{self.public_url}/preferences/{self.preferences_token(contact_id, link_version)}"

    def contact_for_preferences(self, token: str) -> tuple[int, int] | None:
        """(contact id, link version) from a genuine token, else None."""
        try:
            value = self._preferences.loads(token)
        except BadSignature:
            return None
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            return value[0], value[1]
        return None
