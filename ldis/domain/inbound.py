"""What an inbound text asks for: stop, start again, help, an acknowledgement of an alert, or
none of these (a code reply).

The keyword sets are Twilio's standard ones. Twilio blocks or unblocks a number at its own
end when it sees them, so our records must read a text exactly as Twilio does, or we would
believe we can reach a phone that the carrier will refuse (or the other way round).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Keyword(StrEnum):
    stop = "stop"
    start = "start"
    help = "help"


KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
        Keyword.stop,
    ),
    **dict.fromkeys(("START", "YES", "UNSTOP"), Keyword.start),
    **dict.fromkeys(("HELP", "INFO"), Keyword.help),
}


def keyword(body: str) -> Keyword | None:
    """The keyword a text is, or None. Case, spaces and punctuation do not matter
    ("Stop.", " stop all ", "OPT-OUT"); any other word in the text makes it no keyword."""
    letters = "".join(ch for ch in body.upper() if ch.isalnum())
    return KEYWORDS.get(letters)


# --- acknowledging an alert by text -------------------------------------------------------

# "ACK", "Acknowledged", optionally "REF", then an alert's reference (`LDIS-12-v1` as our
# messages quote it, `LDIS-12`, or the bare number): read on the text with every run of
# spaces and punctuation made one space, ignoring case.
_ACK_WORD = r"(?:ACK|ACKNOWLEDGE|ACKNOWLEDGED)"
_REFERENCE = r"(?:REF ?)?(?:LDIS ?)?(?P<alert>\d{1,9})(?: ?V ?(?P<version>\d{1,4}))?"
_ACK_ALONE = re.compile(rf"{_ACK_WORD}(?: REF)?")
_ACK_WITH_REFERENCE = re.compile(rf"{_ACK_WORD} ?{_REFERENCE}")
_LDIS_REFERENCE = re.compile(r"(?:REF ?)?LDIS ?(?P<alert>\d{1,9})(?: ?V ?(?P<version>\d{1,4}))?")
# A bare alert number, kept shorter than a verification code (six digits) so a code reply
# is never read as an acknowledgement.
_BARE_NUMBER = re.compile(r"(?P<alert>\d{1,5})(?: ?V ?(?P<version>\d{1,4}))?")


@dataclass(frozen=True)
class AckRequest:
    """A text that acknowledges an alert: which one, if it says (else the latest)."""

    alert_id: int | None = None
    version: int | None = None


def acknowledgement(body: str) -> AckRequest | None:
    """The acknowledgement a text makes, or None when it is not one.

    `ACK` alone acknowledges the latest alert sent to the phone; `ACK LDIS-12-v1`,
    `ACK 12`, `LDIS-12-v1`, `LDIS 12` and a bare `12` name one (and a version, if given).
    Anything else in the text ("ack, but who is this?") makes it no acknowledgement."""
    text = " ".join(re.sub(r"[^A-Z0-9]+", " ", body.upper()).split())
    if not text:
        return None
    if _ACK_ALONE.fullmatch(text):
        return AckRequest()
    for pattern in (_ACK_WITH_REFERENCE, _LDIS_REFERENCE, _BARE_NUMBER):
        match = pattern.fullmatch(text)
        if match:
            version = match.group("version")
            alert_id = int(match.group("alert"))
            if alert_id == 0 or (version is not None and int(version) == 0):
                return None
            return AckRequest(alert_id, int(version) if version is not None else None)
    return None
