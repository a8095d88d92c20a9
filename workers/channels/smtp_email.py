"""The `smtp` email channel: standard-library smtplib, one reused connection per batch.

One connection per `send_many` roughly doubles throughput over a connection per mail
(DESIGN.md, "Facts measured"), and the session is then kept open for the worker's next batch
(closed instead once idle for `_KEEP_IDLE_SECONDS`; one the server dropped meanwhile is
replaced without counting against the batch's reconnect). Each message has a single recipient, so a refusal is that
recipient's outcome: 5xx is permanent, 4xx transient. If the connection drops mid-batch we
reconnect once and carry on; whatever cannot be attempted because the server is unreachable
is transient. Addresses and bodies are never logged and are scrubbed from error texts.

Each message's Message-ID comes from its delivery (`<delivery-{id}@ldis>`), so the rare
repeat after a crash between the server's 250 and our record carries the same id, which
mail systems use to drop duplicates.

Messages are built with the `compat32` classes (`email.mime`) and handed to smtplib as
bytes: less than half the CPU of `EmailMessage` with the SMTP policy (docs/performance.md),
and that policy folded the long one-click `List-Unsubscribe` URL into RFC 2047 encoded
words, which mail clients do not read as a URL. `compat32` leaves ASCII headers unencoded
(a URL longer than 78 characters stays on one line: RFC 5322 allows 998). Only a
non-ASCII address (SMTPUTF8) still takes the `EmailMessage` path, which knows that case.

Even so, building each e-mail with the email library cost about 0.4 ms of CPU, the worker's
largest cost per message in a fan-out. Every e-mail of one alert has the same shape; only
To, Message-ID, Date, List-Unsubscribe and the two part bodies differ. So the fast path
(`_Skeleton`) has the library build each shape once, with sentinels in place of those values
and a boundary of its own, splits its bytes at the sentinels, and fills each message's values
into the pieces: header values formatted as the slow path formats them, bodies encoded by the
same stdlib encoders and written with CRLF as the generator writes them. About 0.03 ms per
e-mail. The guards: a sender keeps at most 32 skeletons (LRU); what decides the shape is the
key (every other header's name and value, the header order, an HTML part or not, and each
part's 7bit-or-base64 choice, made per message); a header value the generator would not
write as it is, or the boundary inside a body, takes the slow path for that message; and the
first message of each skeleton is built both ways and compared, a difference disabling that
skeleton (with a warning). Line breaks in headers are refused before either path, as before.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import secrets
import smtplib
import ssl
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from email.charset import Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP as SMTP_POLICY
from email.policy import compat32
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from ldis.domain.messages import OutgoingMessage, SendOutcome, SendResult
from ldis.services.ports import Gate
from ldis.settings import Settings
from ldis.telemetry import record_outcomes
from workers.ratelimit import Limiter

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0
# One reconnect per batch: enough for an idle-timeout or a per-connection message limit,
# without hammering a server that keeps dropping us.
_RECONNECTS_PER_BATCH = 1
# A batch's session is kept open for the next batch of the same worker thread: a new session
# per batch (TCP, greeting, EHLO, QUIT) cost the mail server more than sending a hundred
# messages did (docs/performance.md). Idle longer than this, it is closed instead: servers
# drop idle sessions (RFC 5321 asks them to wait 5 minutes; some wait less).
_KEEP_IDLE_SECONDS = 30.0

# What Python's email library (str.splitlines) takes for the end of a header line, not
# only CR and LF: a vertical tab in a subject would otherwise start a header of its own.
_LINE_BREAK = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ADDRESS_LIKE = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")
# Serialised as on the wire (smtplib passes bytes through as they are). No folding by the
# generator: `_header_value` has already made each header what it should be on the wire.
_WIRE = compat32.clone(linesep="\r\n", max_line_length=None)
# SMTP's limit on a line (RFC 5321), less the CRLF: longer lines need a transfer encoding.
_MAX_LINE = 998
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender"})
# The fast path (`_Skeleton`): the headers whose values differ from one e-mail of an alert to
# the next, filled into a cached skeleton; every other header is part of the skeleton's key.
_SLOTS = frozenset({"to", "message-id", "date", "list-unsubscribe"})
_SKELETONS = 32  # per sender; a handful of alerts' shapes are in flight at once
_SHAPES_SEEN = 256  # shapes met once; a skeleton is made on the second message of a shape
# A header value the compat32 generator writes exactly as it is (`email.header.Header` with
# no line limit leaves ASCII words and single spaces alone): anything else, slow path.
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
_UTF8 = Charset("utf-8")
# Line ends as the generator finds them in a payload (`email.generator.NLCRE`): each one
# becomes CRLF on the wire.
_NEWLINE = re.compile(r"\r\n|\r|\n")
# As `email.generator` shapes its random boundaries.
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))
_SkeletonKey = tuple[tuple[tuple[str, str | None], ...], bool, bool | None]


@dataclass(frozen=True)
class _Built:
    """One message ready for the wire: bytes (the usual case) or, for a non-ASCII address,
    an `EmailMessage` that `send_message` serialises for SMTPUTF8."""

    message_id: str
    data: bytes | EmailMessage


@dataclass
class _Skeleton:
    """One shape of e-mail serialised by the email library with sentinels in place of the
    per-message header values (`_SLOTS`) and part bodies, split at them: `pieces` are the
    bytes around the holes, `holes` what fills each (a header key, "text" or "html")."""

    boundary: str | None
    pieces: tuple[bytes, ...]
    holes: tuple[str, ...]
    text_7bit: bool
    html_7bit: bool | None  # None: no HTML part
    usable: bool = True
    verified: bool = False  # set once a fill-in has matched the slow path byte for byte

    @classmethod
    def make(
        cls,
        headers: dict[str, tuple[str, str]],
        text_7bit: bool,
        html_7bit: bool | None,
        boundary: str,
    ) -> _Skeleton:
        token = secrets.token_hex(8)
        markers: dict[str, bytes] = {}

        def sentinel(hole: str) -> str:
            value = f"ldis{token}x{len(markers)}x"
            markers[hole] = value.encode("ascii")
            return value

        def body(hole: str, seven_bit: bool) -> str:
            # Non-ASCII when the real body's is, so `_text_part` picks the same encoding.
            value = sentinel(hole) if seven_bit else "\u00e9" + sentinel(hole)
            markers[hole] = _wire_body(value, seven_bit)
            return value

        items = [
            (name, sentinel(key) if key in _SLOTS else _formatted(key, name, value))
            for key, (name, value) in headers.items()
        ]
        text = body("text", text_7bit)
        html = None if html_7bit is None else body("html", html_7bit)
        multipart = html is not None
        data = _compose(text, html, items, boundary if multipart else None)
        found: list[tuple[int, str, bytes]] = []
        for hole, marker in markers.items():
            at = data.find(marker)
            if at < 0 or data.find(marker, at + 1) >= 0:
                log.warning("smtp: a message skeleton could not be split; slow path for it")
                return cls(None, (), (), text_7bit, html_7bit, usable=False)
            found.append((at, hole, marker))
        found.sort()
        pieces: list[bytes] = []
        start = 0
        for at, _, marker in found:
            pieces.append(data[start:at])
            start = at + len(marker)
        pieces.append(data[start:])
        return cls(
            boundary if multipart else None,
            tuple(pieces),
            tuple(hole for _, hole, _ in found),
            text_7bit,
            html_7bit,
        )

    def fill(self, message: OutgoingMessage, headers: dict[str, tuple[str, str]]) -> bytes | None:
        """The e-mail's bytes, or None if a value does not fit the skeleton (a header value
        the generator would not write as it is, the boundary inside a body)."""
        boundary = None if self.boundary is None else self.boundary.encode("ascii")
        out = [self.pieces[0]]
        for hole, piece in zip(self.holes, self.pieces[1:], strict=True):
            if hole == "text" or hole == "html":
                seven_bit = self.text_7bit if hole == "text" else self.html_7bit
                filled = _wire_body(
                    (message.text if hole == "text" else message.html) or "", bool(seven_bit)
                )
                if boundary is not None and boundary in filled:
                    return None
            else:
                name, value = headers[hole]
                value = _formatted(hole, name, value)
                if not _PLAIN.fullmatch(value):
                    return None
                filled = value.encode("ascii")
            out.append(filled)
            out.append(piece)
        return b"".join(out)


class _ConnectionLost(Exception):
    """The SMTP session is unusable (dropped, timed out, 421); the message may be retried."""


class SmtpSender:
    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self._settings = settings
        self._limiter = limiter
        self._timeout = timeout
        # Injected only by tests that trust a throwaway certificate; production verifies.
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._envelope_from = parseaddr(settings.mail_from)[1] or settings.mail_from
        self._msgid_domain = self._envelope_from.rpartition("@")[2] or "localhost"
        self._list_unsubscribe = (
            f"<mailto:{self._envelope_from}?subject=unsubscribe>, "
            f"<{settings.public_url}/preferences>"
        )
        # Skeletons, least recently used first (`_fast_bytes`); the lock keeps the LRU
        # consistent if a sender is ever shared by threads.
        self._skeletons: OrderedDict[_SkeletonKey, _Skeleton] = OrderedDict()
        self._kept = threading.local()  # the session kept between batches (`_take_kept`)
        self._shapes_seen: OrderedDict[_SkeletonKey, None] = OrderedDict()  # once, no skeleton
        self._skeleton_on_first_sighting = False  # the tests' seam
        self._skeletons_lock = threading.Lock()
        self._new_boundary: Callable[[], str] = _random_boundary  # tests pin it

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        return [result for _, result in self.send_each(messages)]

    def send_each(
        self, messages: list[OutgoingMessage], gate: Gate | None = None
    ) -> Generator[tuple[OutgoingMessage, SendResult], None, None]:
        """Send over one connection, each message after a token from the rate limit and a
        yes from `gate` (which may refuse: the message is then skipped, with no result).
        Results come one at a time, so the caller can record each before the next goes."""
        results: list[SendResult] = []
        connection = self._take_kept()
        kept = connection is not None  # until it has carried a message: maybe dropped meanwhile
        reconnects_left = _RECONNECTS_PER_BATCH
        down: str | None = None  # set once the server is unreachable for the rest of the batch
        clean = False  # between messages at the end: the connection may be kept
        try:
            for message in messages:
                if down is not None:
                    results.append(SendResult(SendOutcome.transient_error, error=down))
                    yield message, results[-1]
                    continue
                try:
                    email = self._build(message)
                except (ValueError, TypeError) as exc:
                    # Deterministic (e.g. a newline in a header): retrying cannot help.
                    results.append(
                        SendResult(
                            SendOutcome.permanent_error,
                            error=f"cannot build message: {type(exc).__name__}",
                        )
                    )
                    yield message, results[-1]
                    continue
                if self._limiter is not None:
                    self._limiter.acquire()
                if gate is not None and not gate(message):
                    continue
                while True:
                    if connection is None:
                        try:
                            connection = self._connect()
                        except _ConnectionLost as exc:
                            down = str(exc)
                            results.append(SendResult(SendOutcome.transient_error, error=down))
                            break
                    try:
                        results.append(self._send_one(connection, message, email))
                        kept = False
                        break
                    except _ConnectionLost as exc:
                        _close(connection)
                        connection = None
                        if kept:  # the server let the kept session go: not a failure of ours
                            kept = False
                            continue
                        if reconnects_left > 0:
                            reconnects_left -= 1
                            log.info("smtp connection lost (%s); reconnecting", exc)
                            continue  # the same message on a fresh connection
                        down = str(exc)
                        results.append(SendResult(SendOutcome.transient_error, error=down))
                        break
                yield message, results[-1]
            clean = True
        except GeneratorExit:
            clean = True  # the caller stopped between two messages
            raise
        finally:
            if connection is not None:
                if clean:
                    self._keep(connection)
                else:
                    _close(connection)  # stopped mid-dialogue: its state is unknown
            _log_batch(results)

    def _take_kept(self) -> smtplib.SMTP | None:
        """The session the last batch of this thread left open, if it is fresh enough."""
        connection: smtplib.SMTP | None = getattr(self._kept, "connection", None)
        self._kept.connection = None
        if connection is not None and time.monotonic() - self._kept.since > _KEEP_IDLE_SECONDS:
            _quit(connection)
            return None
        return connection

    def _keep(self, connection: smtplib.SMTP) -> None:
        self._kept.connection, self._kept.since = connection, time.monotonic()

    def _headers(self, message: OutgoingMessage) -> dict[str, tuple[str, str]]:
        """Header name (lower case) -> (name, value); the caller's headers win (Message-ID,
        or a per-recipient List-Unsubscribe URL)."""
        headers = {
            name.lower(): (name, value)
            for name, value in (
                ("From", self._settings.mail_from),
                ("To", message.to),
                ("Subject", message.subject or ""),
                ("Date", _date_now()),
                ("List-Unsubscribe", self._list_unsubscribe),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            )
        }
        for name, value in message.headers.items():
            headers[name.lower()] = (name, value)
        if "message-id" not in headers:
            headers["message-id"] = ("Message-ID", make_msgid(domain=self._msgid_domain))
        for name, value in headers.values():
            if _LINE_BREAK.search(value):
                # Header injection, or a template bug: never fold it into the message.
                raise ValueError(f"header {name} contains a line break")
        return headers

    def _build(self, message: OutgoingMessage) -> _Built:
        headers = self._headers(message)
        message_id = headers["message-id"][1]
        if not (message.to.isascii() and self._envelope_from.isascii()):
            return _Built(message_id, self._build_international(message, headers))
        data = self._fast_bytes(message, headers)
        if data is None:
            data = _compat_bytes(message, headers)
        return _Built(message_id, data)

    def _fast_bytes(
        self, message: OutgoingMessage, headers: dict[str, tuple[str, str]]
    ) -> bytes | None:
        """The message from its cached skeleton, or None for the slow path (`_compat_bytes`).

        The first message of each new skeleton is also built by the slow path, with the same
        boundary and headers, and the two compared: a difference disables that skeleton."""
        if any(key == "mime-version" or key.startswith("content-") for key in headers):
            return None  # would change the structure the generator writes: not worth a case
        text_7bit = _is_7bit(message.text)
        html_7bit = _is_7bit(message.html) if message.html else None
        key: _SkeletonKey = (
            tuple(
                (name, None if header in _SLOTS else value)
                for header, (name, value) in headers.items()
            ),
            text_7bit,
            html_7bit,
        )
        with self._skeletons_lock:
            skeleton = self._skeletons.get(key)
            if skeleton is not None:
                self._skeletons.move_to_end(key)
        if skeleton is None:
            with self._skeletons_lock:
                first_sighting = key not in self._shapes_seen
                self._shapes_seen[key] = None
                while len(self._shapes_seen) > _SHAPES_SEEN:
                    self._shapes_seen.popitem(last=False)
            if first_sighting and self._skeleton_on_first_sighting is False:
                # A shape seen once may never come again (a subject with the contact's name
                # in it): making and checking a skeleton would cost more than it saves.
                return None
            try:
                skeleton = _Skeleton.make(headers, text_7bit, html_7bit, self._new_boundary())
            except Exception:  # a static header the library refuses: let it say so itself
                return None
            with self._skeletons_lock:
                self._skeletons[key] = skeleton
                while len(self._skeletons) > _SKELETONS:
                    self._skeletons.popitem(last=False)
        if not skeleton.usable:
            return None
        try:
            data = skeleton.fill(message, headers)
        except Exception:  # e.g. a lone surrogate in a body: the slow path raises its own
            return None
        if data is None or skeleton.verified:
            return data
        slow = _compat_bytes(message, headers, boundary=skeleton.boundary)
        if data != slow:
            skeleton.usable = False
            log.warning(
                "smtp: a message skeleton does not match the email library's output; "
                "building messages of that shape the slow way"
            )
            return slow
        skeleton.verified = True
        return data

    @staticmethod
    def _build_international(
        message: OutgoingMessage, headers: dict[str, tuple[str, str]]
    ) -> EmailMessage:
        email = EmailMessage(policy=SMTP_POLICY)
        for name, value in headers.values():
            email[name] = value
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        return email

    def _connect(self) -> smtplib.SMTP:
        settings = self._settings
        try:
            connection = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=self._timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise _ConnectionLost(f"smtp connect failed: {_describe(exc)}") from exc
        try:
            connection.ehlo()
            tls = False
            if settings.smtp_starttls and connection.has_extn("starttls"):
                connection.starttls(context=self._ssl_context)
                connection.ehlo()
                tls = True
            if settings.smtp_username:
                if settings.smtp_starttls and not tls:
                    # A server that stops offering STARTTLS may be a downgrade in the path:
                    # never hand it the password in clear unless STARTTLS was turned off.
                    raise _ConnectionLost("smtp server offers no STARTTLS; not logging in")
                connection.login(settings.smtp_username, settings.smtp_password)
        except _ConnectionLost:
            _close(connection)
            raise
        except (OSError, smtplib.SMTPException) as exc:
            _close(connection)
            # Login refused or TLS failure: ours to fix, never the recipients' fault.
            raise _ConnectionLost(f"smtp session setup failed: {_describe(exc)}") from exc
        return connection

    def _send_one(
        self, connection: smtplib.SMTP, message: OutgoingMessage, email: _Built
    ) -> SendResult:
        try:
            if isinstance(email.data, bytes):
                connection.sendmail(self._envelope_from, [message.to], email.data)
            else:
                connection.send_message(
                    email.data, from_addr=self._envelope_from, to_addrs=[message.to]
                )
        except smtplib.SMTPRecipientsRefused as exc:
            # Single recipient: the only entry is ours. smtplib has already sent RSET.
            code, text = next(iter(exc.recipients.values()))
            if code == 421:  # smtplib has closed the connection: retry on a fresh one
                raise _ConnectionLost(f"{code} {_scrub(text)}") from exc
            return _refused(code, text, "recipient refused")
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code == 421:
                raise _ConnectionLost(_describe(exc)) from exc
            # The server refuses our From: a set-up problem, not the recipient's.
            return SendResult(
                SendOutcome.transient_error, error=f"sender refused: {_describe(exc)}"
            )
        except smtplib.SMTPResponseException as exc:  # includes SMTPDataError
            if exc.smtp_code == 421:
                raise _ConnectionLost(_describe(exc)) from exc
            return _refused(exc.smtp_code, exc.smtp_error, "message refused")
        except smtplib.SMTPNotSupportedError as exc:
            # e.g. a non-ASCII address and no SMTPUTF8 on the server: will not change.
            return SendResult(SendOutcome.permanent_error, error=f"not supported: {exc}")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:  # OSError covers timeouts
            raise _ConnectionLost(_describe(exc)) from exc
        return SendResult(SendOutcome.sent, provider_id=email.message_id)


def _compat_bytes(
    message: OutgoingMessage, headers: dict[str, tuple[str, str]], boundary: str | None = None
) -> bytes:
    """The slow path: the whole message built and serialised by the email library. The
    generator picks the multipart boundary unless one is given (the skeleton check)."""
    items = ((name, _formatted(key, name, value)) for key, (name, value) in headers.items())
    return _compose(message.text, message.html or None, items, boundary)


def _compose(
    text: str, html: str | None, headers: Iterable[tuple[str, str]], boundary: str | None
) -> bytes:
    """`headers`: (name, value as it goes on the wire), in order. `boundary`: the
    multipart's, if there is one and the generator is not to pick it."""
    email: Message
    if html is not None:
        email = MIMEMultipart("alternative")
        email.attach(_text_part(text, "plain"))
        email.attach(_text_part(html, "html"))
    else:
        email = _text_part(text, "plain")
    for name, value in headers:
        email[name] = value
    if "MIME-Version" not in email:
        email["MIME-Version"] = "1.0"
    if boundary is not None and html is not None:
        email.set_boundary(boundary)  # as the generator sets the one it picks
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=_WIRE).flatten(email)
    return out.getvalue()


def _formatted(key: str, name: str, value: str) -> str:
    if key in _ADDRESS_HEADERS:
        # Only a display name is encoded (RFC 2047), never the address itself.
        value = formataddr(parseaddr(value))
    return _header_value(name, value)


def _random_boundary() -> str:
    """Shaped as `email.generator` shapes its own."""
    return "=" * 15 + f"{secrets.randbelow(sys.maxsize):0{_BOUNDARY_DIGITS}d}" + "=="


# (second, its Date header): formatdate takes as long as the rest of the headers together,
# and every e-mail sent within one second carries the same Date.
_date_cache: tuple[int, str] = (0, "")


def _date_now() -> str:
    """`formatdate(usegmt=True)`, worked out once per second."""
    global _date_cache
    now = int(time.time())
    second, text = _date_cache
    if now != second:
        text = formatdate(now, usegmt=True)
        _date_cache = (now, text)
    return text


def _is_7bit(body: str) -> bool:
    """`_text_part`'s choice: 7bit for ASCII with lines SMTP can carry, else base64."""
    return body.isascii() and max(map(len, body.splitlines()), default=0) <= _MAX_LINE


def _wire_body(body: str, seven_bit: bool) -> bytes:
    """A part's body as the `_WIRE` generator writes it after `_text_part` (the payload's
    line ends made CRLF): as it is for 7bit, else UTF-8 in base64 by the same `Charset`."""
    payload = body if seven_bit else _UTF8.body_encode(body)
    # Without a CR, `replace` does what the regular expression does, several times faster.
    wire = _NEWLINE.sub("\r\n", payload) if "\r" in payload else payload.replace("\n", "\r\n")
    return wire.encode("ascii")


def _header_value(name: str, value: str) -> str:
    """ASCII that fits on a line goes as it is (a URL stays one token: no folding, no
    encoded words); anything else is encoded and folded by `email.header`."""
    if value.isascii() and len(name) + 2 + len(value) <= _MAX_LINE:
        return value
    charset = "us-ascii" if value.isascii() else "utf-8"
    return Header(value, charset, header_name=name).encode(linesep="\r\n")


def _text_part(body: str, subtype: str) -> MIMEText:
    """7bit when it can be (ASCII, short lines), else UTF-8 in base64 (C-fast)."""
    part = MIMEText(body, subtype, "us-ascii" if _is_7bit(body) else "utf-8")
    del part["MIME-Version"]  # once, on the whole message
    return part


def _refused(code: int, text: bytes | str, what: str) -> SendResult:
    outcome = SendOutcome.permanent_error if 500 <= code < 600 else SendOutcome.transient_error
    return SendResult(outcome, error=f"{what}: {code} {_scrub(text)}")


def _scrub(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return _ADDRESS_LIKE.sub("[address]", text)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_scrub(exc.smtp_error)}"
    detail = _scrub(str(exc))
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _close(connection: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        connection.close()


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        _close(connection)


def _log_batch(results: list[SendResult]) -> None:
    if not results:
        return
    counts = {outcome: 0 for outcome in SendOutcome}
    for result in results:
        counts[result.outcome] += 1
    log.info(
        "smtp batch: %d sent, %d transient, %d permanent",
        counts[SendOutcome.sent],
        counts[SendOutcome.transient_error],
        counts[SendOutcome.permanent_error],
    )
    record_outcomes("email", counts)  # provider outcomes for /metrics
