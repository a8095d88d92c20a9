"""The SMTP channel's fast build (`workers.channels.smtp_email._Skeleton`): every e-mail it
fills into a cached skeleton is byte for byte what the email library builds (the slow path)
given the same boundary and Date; whatever does not fit takes the slow path; and the guards
(bounded cache, boundary check, first-use comparison) do what they say."""

from __future__ import annotations

import email
import email.policy
import email.utils
import logging
import re
import string
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ldis.domain.messages import OutgoingMessage, SendOutcome
from ldis.settings import Settings
from workers.channels import smtp_email
from workers.channels.smtp_email import SmtpSender

BOUNDARY = "===============4242424242424242424=="
DATE = "Sat, 21 Nov 2026 23:40:00 GMT"
MAIL_FROM = "LDIS Alerts <alerts@ldis.example.org>"


def make_sender(mail_from: str = MAIL_FROM, boundary: str = BOUNDARY) -> SmtpSender:
    sender = SmtpSender(Settings(mail_from=mail_from, public_url="https://ldis.example.org"))
    sender._new_boundary = lambda: boundary
    sender._skeleton_on_first_sighting = True  # most tests look at the skeleton at once
    return sender


def message(
    n: int = 1,
    *,
    to: str = "sam@service.example.org",
    text: str = "Hello\n",
    html: str | None = "<p>Hello</p>\n",
    subject: str = "Nitazenes in fake oxycodone",
    extra: dict[str, str] | None = None,
) -> OutgoingMessage:
    headers = {
        "Message-ID": f"<delivery-{n}@ldis>",
        "List-Unsubscribe": f"<https://ldis.example.org/p/{n}/unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Date": DATE,
        **(extra or {}),
    }
    return OutgoingMessage(
        delivery_id=n,
        channel="email",
        to=to,
        text=text,
        subject=subject,
        html=html,
        headers=headers,
    )


def both_ways(sender: SmtpSender, outgoing: OutgoingMessage) -> tuple[bytes | None, bytes]:
    """(fast path's bytes or None, slow path's bytes with the skeleton's boundary)."""
    headers = sender._headers(outgoing)
    fast = sender._fast_bytes(outgoing, headers)
    return fast, smtp_email._compat_bytes(outgoing, headers, boundary=BOUNDARY)


def usable(sender: SmtpSender) -> list[bool]:
    return [skeleton.usable for skeleton in sender._skeletons.values()]


# --- strategies --------------------------------------------------------------------------

SPECIAL_LINES = ["", ".", "..", ".hidden", "From here", "From ", ">From x", " ", "--", "-- "]
LINE_ENDS = ["\n", "\r\n", "\r", "\n\n", "\r\r\n"]
ascii_line = st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=90)
any_line = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
long_line = st.builds(
    lambda char, n: char * n, st.sampled_from(["a", "é", "ab "]), st.integers(990, 1100)
)


line = st.one_of(st.sampled_from(SPECIAL_LINES), ascii_line, long_line, any_line)


@st.composite
def bodies(draw: st.DrawFn) -> str:
    """Lines of any kind, each with any line end; the last one with or without it."""
    lines: list[tuple[str, str]] = draw(
        st.lists(st.tuples(line, st.sampled_from(LINE_ENDS)), max_size=12)
    )
    ends_with_line_end: bool = draw(st.booleans())
    text = "".join(text + end for text, end in lines)
    if lines and not ends_with_line_end:
        text = text[: -len(lines[-1][1])]
    return text


word = st.text(alphabet=string.ascii_letters + string.digits + ".'-", min_size=1, max_size=12)
plain_name = st.lists(word, max_size=4).map(" ".join)
address = st.builds(
    "{}@{}.example.org".format,
    st.text(alphabet=string.ascii_lowercase + string.digits + "._+-", min_size=1, max_size=20),
    st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=20),
)
# Header text: anything but a line end, CR, LF or any other `str.splitlines` breaks at
# (refused before either path: a test of its own). Characters the email library treats
# specially are drawn often: control characters, folding white space, encoded-word and
# address syntax.
LINE_ENDS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
TRICKY = '\x00\x7f\x1f \t:;,=?<>()"\\@é'
header_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_characters=LINE_ENDS),
        st.sampled_from(TRICKY),
    ),
    max_size=120,
)
ascii_header_text = st.text(
    alphabet=st.one_of(
        st.characters(max_codepoint=127, exclude_characters=LINE_ENDS),
        st.sampled_from(TRICKY.replace("é", "")),
    ),
    max_size=120,
)
# Mostly ASCII: non-ASCII header values are encoded, so never reach the fast path raw.
header_value = st.one_of(ascii_header_text, ascii_header_text, header_text)
url_token = st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=120)


def recipient(name: str, addr: str) -> str:
    return f"{name} <{addr}>" if name else addr


# --- the fast path's bytes are the library's -----------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first_text=bodies(),
    second_text=bodies(),
    first_html=bodies(),
    second_html=bodies(),
    with_html=st.booleans(),
    names=st.tuples(plain_name, plain_name),
    addresses=st.tuples(address, address),
    subject=header_text,
    tokens=st.tuples(url_token, url_token),
)
@example(  # ASCII on one, non-ASCII on the other: 7bit and base64 parts in one e-mail
    first_text="Dear Sam,\r\n.\nFrom here\r\rbye",
    second_text="Dear Zoë,\n\n",
    first_html="<p>Zoë</p>" + "x" * 1000,
    second_html="<p>ok</p>\r\n",
    with_html=True,
    names=("Sam O'Neil", ""),
    addresses=("sam@a.example.org", "zoe@b.example.org"),
    subject="Nitazènes in fake  oxycodone ",
    tokens=("abc", "x" * 120),
)
def test_fast_path_bytes_equal_the_library_bytes(
    first_text: str,
    second_text: str,
    first_html: str,
    second_html: str,
    with_html: bool,
    names: tuple[str, str],
    addresses: tuple[str, str],
    subject: str,
    tokens: tuple[str, str],
) -> None:
    """Two e-mails of one alert with any bodies and ASCII recipients: the fast path takes
    both (the second from the verified skeleton) and each is the library's bytes."""
    sender = make_sender()
    for n, (text, html, name, addr, token) in enumerate(
        zip(
            (first_text, second_text),
            (first_html, second_html),
            names,
            addresses,
            tokens,
            strict=True,
        )
    ):
        outgoing = message(
            n,
            to=recipient(name, addr),
            text=text,
            html=html if with_html else None,
            subject=subject,
            extra={"List-Unsubscribe": f"<https://ldis.example.org/p/{token}/unsubscribe>"},
        )
        fast, slow = both_ways(sender, outgoing)
        if BOUNDARY in text or BOUNDARY in html:  # pragma: no cover - never drawn in practice
            continue
        assert fast is not None
        assert fast == slow
        assert sender._build(outgoing).data == slow
    assert usable(sender) == [True] * len(sender._skeletons)
    assert all(skeleton.verified for skeleton in sender._skeletons.values())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=bodies(),
    html=st.one_of(st.none(), st.just(""), bodies()),
    name=header_value,
    addr=address,
    subject=header_value,
    mail_from=st.sampled_from(
        [
            MAIL_FROM,
            "alerts@ldis.example.org",
            '"Zoë York, LDIS" <alerts@ldis.example.org>',
            'Zoë\'s "LDIS", York <alerts@ldis.example.org>',
            f"{'a' * 1000} <alerts@ldis.example.org>",
        ]
    ),
    unsubscribe=st.one_of(url_token, header_value, st.just("u" * 1000)),
    message_id=st.one_of(st.just("<delivery-7@ldis>"), header_value),
    extra=st.dictionaries(
        st.sampled_from(["X-Alert", "Reply-To", "X-Priority", "Precedence"]),
        header_value,
        max_size=2,
    ),
)
def test_any_message_either_matches_the_library_or_takes_the_slow_path(
    text: str,
    html: str | None,
    name: str,
    addr: str,
    subject: str,
    mail_from: str,
    unsubscribe: str,
    message_id: str,
    extra: dict[str, str],
) -> None:
    """Display names, Message-IDs and URLs of any text, long headers, odd static headers:
    whatever the fast path returns is the library's bytes, and no skeleton had to be
    disabled (which would mean the check had caught a mismatch)."""
    sender = make_sender(mail_from=mail_from)
    outgoing = message(
        text=text,
        html=html,
        to=f'"{name}" <{addr}>',
        subject=subject,
        extra={"Message-ID": message_id, "List-Unsubscribe": unsubscribe, **extra},
    )
    try:
        fast, slow = both_ways(sender, outgoing)
    except Exception as exc:  # the library refuses it: so must `_build`, with the same error
        if outgoing.to.isascii() and sender._envelope_from.isascii():  # else SMTPUTF8
            with pytest.raises(type(exc)):
                sender._build(outgoing)
        return
    if fast is not None:
        assert fast == slow
    assert False not in usable(sender)


def test_a_given_boundary_changes_nothing_but_the_boundary() -> None:
    """The seam the skeleton check and these tests use: the slow path with a boundary
    given is the slow path with the generator's own random one, boundary aside."""
    sender = make_sender()
    outgoing = message(text="Dear Zoë,\nFrom here\r\n.\n", html="<p>" + "y" * 1200 + "</p>")
    headers = sender._headers(outgoing)
    picked = smtp_email._compat_bytes(outgoing, headers)
    found = re.search(rb'boundary="([^"]+)"', picked)
    assert found is not None
    given_boundary = smtp_email._compat_bytes(outgoing, headers, found.group(1).decode())
    assert given_boundary == picked
    assert picked.count(b"--" + found.group(1)) == 3  # two parts and the close


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every slow-path build from here on, by the boundary it was given (None: its own)."""
    seen: list[str | None] = []
    compat = smtp_email._compat_bytes

    def counting(
        outgoing: OutgoingMessage, headers: dict[str, tuple[str, str]], boundary: str | None = None
    ) -> bytes:
        seen.append(boundary)
        return compat(outgoing, headers, boundary)

    monkeypatch.setattr(smtp_email, "_compat_bytes", counting)
    return seen


def test_a_realistic_alert_goes_the_fast_way_after_the_first(calls: list[str | None]) -> None:
    """The first e-mail of a shape is checked against the slow path; later ones are not
    built by the slow path at all."""
    sender = make_sender()
    built = [
        sender._build(message(n, to=f"c{n}@example.org", text=f"Dear C{n}\n" * 40))
        for n in range(5)
    ]
    assert calls == [BOUNDARY]  # the first-use check, once
    assert len(sender._skeletons) == 1
    for n, one in enumerate(built):
        parsed = email.message_from_bytes(one.data, policy=email.policy.default)  # type: ignore[arg-type]
        assert parsed["To"] == f"c{n}@example.org"
        assert parsed["Message-ID"] == f"<delivery-{n}@ldis>"
        assert one.message_id == f"<delivery-{n}@ldis>"


def test_a_shape_met_once_gets_no_skeleton(calls: list[str | None]) -> None:
    """A skeleton is made on the second message of a shape: a shape that never comes again
    (a subject naming its recipient) costs what the slow path costs, no more."""
    sender = SmtpSender(Settings(mail_from=MAIL_FROM, public_url="https://ldis.example.org"))
    for n in range(10):
        sender._build(message(n, subject=f"For C{n}"))
    assert calls == [None] * 10 and len(sender._skeletons) == 0
    calls.clear()
    for n in range(5):
        sender._build(message(n, subject="The same for everyone"))
    # the first the slow way, the second checked against it, the rest from the skeleton
    assert calls[0] is None and len(calls) == 2 and len(sender._skeletons) == 1


# --- the guards ------------------------------------------------------------------------------


def test_the_skeleton_cache_is_bounded_and_least_recently_used() -> None:
    sender = make_sender()
    sender._build(message(subject="subject 0"))
    for n in range(1, 40):
        sender._build(message(subject=f"subject {n}"))
        sender._build(message(subject="subject 0"))  # kept fresh: never the one evicted
    assert len(sender._skeletons) == smtp_email._SKELETONS == 32
    subjects = {dict(key[0])["Subject"] for key in sender._skeletons}
    assert "subject 0" in subjects
    assert "subject 1" not in subjects  # the least recently used went first
    assert "subject 39" in subjects


def test_the_boundary_inside_a_body_takes_the_slow_path() -> None:
    sender = make_sender()
    text = f"quoting an e-mail:\n--{BOUNDARY}\nContent-Type: text/plain\n\nbye\n"
    outgoing = message(text=text)
    fast, _ = both_ways(sender, outgoing)
    assert fast is None
    data = sender._build(outgoing).data
    assert isinstance(data, bytes)
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed.get_boundary() != BOUNDARY  # the generator picked another
    [plain, _] = parsed.iter_parts()
    assert plain.get_content().replace("\r\n", "\n") == text
    # The same shape without the collision still goes the fast way.
    assert both_ways(sender, message(2))[0] is not None


@pytest.mark.parametrize(
    "outgoing",
    [
        message(extra={"List-Unsubscribe": "<https://ldis.example.org/p/1>\r\nBcc: x@y.org"}),
        message(extra={"X-Alert": "1\nBcc: x@y.org"}),
        message(subject="Nitazenes\r\nBcc: x@y.org"),
        message(to="sam@example.org\nBcc: x@y.org"),
        message(subject="Nitazenes\x0bBcc: x@y.org"),
        message(subject="Nitazenes\x1cBcc: x@y.org"),
        message(extra={"X-Alert": "1\u2028Bcc: x@y.org"}),
    ],
    ids=["slot", "static", "subject", "to", "vertical-tab", "file-separator", "unicode-line"],
)
def test_a_line_break_in_a_header_still_raises(outgoing: OutgoingMessage) -> None:
    sender = make_sender()
    sender._build(message())  # a skeleton of the usual shape is cached already
    with pytest.raises(ValueError, match="line break"):
        sender._build(outgoing)
    [result] = sender.send_many([outgoing])  # refused before any connection is made
    assert result.outcome is SendOutcome.permanent_error
    assert result.error == "cannot build message: ValueError"


def test_a_non_ascii_address_still_takes_the_international_path() -> None:
    sender = make_sender()
    built = sender._build(message(to="Zoë <zoë@exämple.org>"))
    assert isinstance(built.data, email.message.EmailMessage)
    assert built.data["To"] == "Zoë <zoë@exämple.org>"
    assert len(sender._skeletons) == 0


def test_mime_headers_from_the_caller_take_the_slow_path() -> None:
    sender = make_sender()
    assert both_ways(sender, message(extra={"Content-Language": "en-GB"}))[0] is None
    assert both_ways(sender, message(extra={"MIME-Version": "1.0"}))[0] is None
    assert len(sender._skeletons) == 0


def test_a_lone_surrogate_in_a_body_raises_as_before() -> None:
    sender = make_sender()
    sender._build(message(text="Dear Zoë\n"))  # the base64 shape is cached already
    with pytest.raises(UnicodeEncodeError):
        sender._build(message(text="Dear \udc80\n"))


def test_a_skeleton_that_does_not_match_is_disabled(caplog: pytest.LogCaptureFixture) -> None:
    sender = make_sender()
    fills: list[int] = []
    fill = smtp_email._Skeleton.fill

    def broken(
        self: smtp_email._Skeleton, outgoing: OutgoingMessage, headers: dict[str, tuple[str, str]]
    ) -> bytes | None:
        fills.append(1)
        data = fill(self, outgoing, headers)
        return None if data is None else data.replace(b"Hello", b"Hellp")

    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.WARNING):
        patch.setattr(smtp_email._Skeleton, "fill", broken)
        first = message(1)
        first_data = sender._build(first).data
        assert first_data == smtp_email._compat_bytes(first, sender._headers(first), BOUNDARY)
        second = message(2)
        second_data = sender._build(second).data
    assert isinstance(second_data, bytes) and b"Hellp" not in second_data
    assert b"Hello" in second_data
    assert fills == [1]  # never filled again once disabled
    assert usable(sender) == [False]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skeleton" in warnings[0].getMessage()
    assert "sam@" not in warnings[0].getMessage()  # addresses are never logged


def test_a_skeleton_that_cannot_be_split_is_disabled(caplog: pytest.LogCaptureFixture) -> None:
    """If the library ever wrote a sentinel otherwise than `_wire_body` predicts, the
    skeleton is refused at once rather than filled wrongly."""
    sender = make_sender()
    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.WARNING):
        patch.setattr(smtp_email, "_wire_body", lambda body, seven_bit: b"not what was written")
        assert both_ways(sender, message())[0] is None
    assert usable(sender) == [False]
    assert any("could not be split" in r.getMessage() for r in caplog.records)


def test_each_new_skeleton_gets_its_own_boundary() -> None:
    sender = SmtpSender(Settings(mail_from=MAIL_FROM))
    for subject in ("one", "one", "two", "two"):  # a skeleton on each shape's second message
        sender._build(message(subject=subject))
    boundaries = {skeleton.boundary for skeleton in sender._skeletons.values()}
    assert len(boundaries) == 2
    pattern: Callable[[str], re.Match[str] | None] = re.compile(r"={15}\d{19}==").fullmatch
    assert all(b is not None and pattern(b) for b in boundaries)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [("short lines\n" * 3, b"7bit"), ("x" * 999 + "\n", b"base64"), ("Zoë\n", b"base64")],
)
def test_each_part_is_encoded_as_before(text: str, encoding: bytes) -> None:
    """7bit for ASCII with lines SMTP can carry (998), else UTF-8 in base64; the same on
    both paths, and chosen per message (a skeleton for each)."""
    sender = make_sender()
    fast, slow = both_ways(sender, message(text=text, html=None))
    assert fast == slow
    assert b"Content-Transfer-Encoding: " + encoding + b"\r\n" in slow
    [skeleton] = sender._skeletons.values()
    assert skeleton.text_7bit is (encoding == b"7bit")


def test_the_date_header_is_formatdate_worked_out_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1_764_547_200.25]
    monkeypatch.setattr("workers.channels.smtp_email.time.time", lambda: clock[0])
    formatted = []
    real = email.utils.formatdate

    def counting(*args: object, **kwargs: object) -> str:
        formatted.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("workers.channels.smtp_email.formatdate", counting)
    first = smtp_email._date_now()
    clock[0] += 0.7  # the same second
    assert smtp_email._date_now() == first == email.utils.formatdate(clock[0], usegmt=True)
    clock[0] += 0.1  # the next one
    assert smtp_email._date_now() == email.utils.formatdate(clock[0], usegmt=True) != first
    assert len(formatted) == 2
