"""What an inbound text asks for: stop, start again, help, or none of these (a code reply).

The keyword sets are Twilio's standard ones. Twilio blocks or unblocks a number at its own
end when it sees them, so our records must read a text exactly as Twilio does, or we would
believe we can reach a phone that the carrier will refuse (or the other way round).
"""

from __future__ import annotations

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
