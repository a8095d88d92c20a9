"""Signed links placed in messages (acknowledge), so a click needs no login and no lookup table."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer


class Links:
    def __init__(self, secret: str, public_url: str) -> None:
        self._ack = URLSafeSerializer(secret, salt="ldis.ack")
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
