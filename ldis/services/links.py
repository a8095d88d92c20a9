"""Signed links placed in messages (acknowledge, own preferences), so a click needs no login
and no lookup table."""

from __future__ import annotations

import hmac
import zlib
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from itsdangerous.encoding import base64_encode, want_bytes

_NEVER_COMPRESSED = 10


class _Minter:
    """`URLSafeSerializer.dumps`, byte for byte, for the integers and lists of integers
    our links carry. Every message carries two links, and itsdangerous builds a signer and
    derives its key again for each (a twentieth of a worker's CPU in the fan-out benchmark,
    docs/performance.md): here the key's HMAC state is made once and copied per token.
    Tokens are still read back by itsdangerous (`loads`), so a difference would show at once;
    tests/unit/test_links.py compares the two on random values."""

    def __init__(self, serializer: URLSafeSerializer) -> None:
        signer = serializer.make_signer()
        self._mac = hmac.new(signer.derive_key(), digestmod=signer.digest_method)
        self._sep = want_bytes(signer.sep)
        self._dump_payload = serializer.dump_payload

    def dumps(self, value: Any) -> str:
        payload = self._payload(value)
        mac = self._mac.copy()
        mac.update(payload)
        return (payload + self._sep + base64_encode(mac.digest())).decode("ascii")

    def _payload(self, value: Any) -> bytes:
        # Compact JSON of an int is its decimal form; of a list of ints, those joined by
        # commas. Anything else takes itsdangerous's own path.
        if type(value) is int:
            text = str(value).encode()
        elif type(value) is list and all(type(v) is int for v in value):
            text = ("[" + ",".join(map(str, value)) + "]").encode()
        else:
            return self._dump_payload(value)
        # As itsdangerous does: zlib only when it saves more than one byte. A zlib stream is
        # at least 9 bytes (2 of header, 4 of checksum, 3 of the shortest deflate block: a
        # 3-bit block header, one literal and the end code), so it never wins below 11.
        if len(text) <= _NEVER_COMPRESSED:
            return base64_encode(text)
        compressed = zlib.compress(text)
        if len(compressed) < len(text) - 1:
            return b"." + base64_encode(compressed)
        return base64_encode(text)


class Links:
    def __init__(self, secret: str, public_url: str) -> None:
        self._ack = URLSafeSerializer(secret, salt="ldis.ack")
        # A different salt: an acknowledgement token can never open someone's preferences.
        self._preferences = URLSafeSerializer(secret, salt="ldis.preferences")
        self._ack_minter = _Minter(self._ack)
        self._preferences_minter = _Minter(self._preferences)
        self.public_url = public_url.rstrip("/")

    def ack_token(self, delivery_id: int) -> str:
        return self._ack_minter.dumps(delivery_id)

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
        return self._preferences_minter.dumps([contact_id, link_version])

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
