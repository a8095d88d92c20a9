"""The one place that reads the environment.

Settings are typed, read once, frozen, and refuse unknown ``LDIS_`` keys, so a typo such as
``LDIS_APROVALS_REQUIRED`` stops start-up instead of silently running with the default.
Every failure is a :class:`SettingsError` whose message is one line naming the variable.
"""

from __future__ import annotations

import difflib
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PREFIX = "LDIS_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line naming the variable."""


class SmsChannel(StrEnum):
    outbox = "outbox"
    twilio = "twilio"


class EmailChannel(StrEnum):
    outbox = "outbox"
    smtp = "smtp"


class LogFormat(StrEnum):
    text = "text"  # one readable line per record (`make run`)
    json = "json"  # one JSON object per line, for a log collector (production)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_path: Path = Field(default=PROJECT_ROOT / "instance")
    database_url: str = ""
    broker_url: str = ""
    # Isolates several deployments (or test runs) sharing one Redis server.
    broker_prefix: str = ""
    secret_key: str = ""
    public_url: str = "http://127.0.0.1:8000"
    approvals_required: int = Field(default=2, ge=1, le=10)
    sms_channel: SmsChannel = SmsChannel.outbox
    email_channel: EmailChannel = EmailChannel.outbox
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_base_url: str = "https://api.twilio.com"
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "ldis@localhost"
    templates_path: Path = Field(default=PROJECT_ROOT / "alert_templates")
    # Optional background tiles for the board's map (docs/dashboard.md): a slippy-map URL
    # template with {z}, {x} and {y}, and the attribution its licence asks for. Empty: the
    # map draws the area boundaries only and needs no network.
    map_tile_url: str = ""
    map_tile_attribution: str = ""
    # 0 lets config/gunicorn.conf.py choose from the core count.
    web_workers: int = Field(default=0, ge=0, le=64)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    # Request rate limits (docs/security.md): "N/second|minute|hour|day", several joined by
    # ";". Sign-in forms per client address; report intake per user (or address); Twilio
    # webhooks and acknowledgement links per address.
    login_rate: str = "10/minute"
    intake_rate: str = "120/minute"
    webhook_rate: str = "600/minute"
    ack_rate: str = "60/minute"
    # The public report doors (docs/public-reports.md): web form posts per client address,
    # texts (REPORT, JOIN) per sender's hashed number. Counted in Redis with a TTL, never
    # stored with a report.
    public_report_rate: str = "10/hour;30/day"
    # A public form sent sooner than this after it was shown is a robot's, and refused.
    public_form_min_seconds: int = Field(default=3, ge=0, le=600)
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto to believe (0: none;
    # the client address is then the TCP peer).
    trusted_proxies: int = Field(default=0, ge=0, le=10)
    delivery_batch_size: int = Field(default=100, ge=1, le=1000)
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    stuck_after_seconds: float = Field(default=120.0, gt=0)
    # Messages per second handed to each provider account, shared by every worker (a token
    # bucket in Redis when the broker is Redis; per process on the embedded broker).
    sms_rate_per_second: float = Field(default=30.0, gt=0, le=10_000)
    email_rate_per_second: float = Field(default=50.0, gt=0, le=10_000)
    # Transient failures (timeouts, 5xx, 429) are retried with backoff up to this many tries.
    max_attempts: int = Field(default=12, ge=1, le=50)
    # An urgent alert no contact at a service has acknowledged within this many minutes goes
    # to the service's backup contacts; after as long again, to the panel as "not reached".
    escalate_after_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # A red signal nobody has looked at within this many minutes is escalated.
    signal_escalate_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    # Each service is asked to confirm its details this often (the yearly list review).
    review_interval_days: int = Field(default=365, ge=1, le=3650)
    # Reports received longer ago than this lose their free text, photos and exact location
    # (the counts stay); 0 keeps everything (docs/privacy.md).
    retention_months: int = Field(default=24, ge=0, le=1200)
    # A web session ends after this long without a request, and this long after sign-in
    # whatever happens (docs/accounts.md).
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=30 * 24)
    # Approving or withdrawing asks for a new two-factor code when the last one is older.
    fresh_2fa_minutes: int = Field(default=15, ge=1, le=24 * 60)
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.text
    # Redis for what every process must share beyond the queue: rate-limit buckets and the
    # workers' telemetry (provider outcomes, heartbeats). Empty: the broker, when it is Redis.
    redis_url: str = ""
    # Who may read /metrics: clients in these networks (comma separated), or any client
    # sending `Authorization: Bearer <LDIS_METRICS_TOKEN>` when that is set.
    metrics_allow: str = "127.0.0.1/32,::1/128"
    metrics_token: str = ""

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url_known(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgres://") or value.startswith("postgresql://"):
            # Use psycopg 3, the driver we ship, rather than asking for psycopg2.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("map_tile_url")
    @classmethod
    def _tile_url_template(cls, value: str) -> str:
        if value and (
            not value.startswith(("https://", "http://"))
            or not all(part in value for part in ("{z}", "{x}", "{y}"))
        ):
            raise ValueError(
                "must be an http(s) URL template with {z}, {x} and {y}, "
                "e.g. https://tile.example.org/{z}/{x}/{y}.png"
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url_known(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "amqp://", "sqla+")):
            raise ValueError("must be a redis://, amqp:// or sqla+sqlite:/// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_known(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        import ipaddress

        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(
                    f"{part!r} is not a network; give addresses or CIDR networks, comma "
                    "separated, e.g. '127.0.0.1/32,10.0.0.0/8'"
                ) from None
        return value

    @field_validator("login_rate", "intake_rate", "webhook_rate", "ack_rate", "public_report_rate")
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must be a rate such as '10/minute' or '5/second;100/hour'") from None
        return value

    @model_validator(mode="after")
    def _channels_configured(self) -> Settings:
        if self.sms_channel is SmsChannel.twilio:
            for name in ("twilio_account_sid", "twilio_auth_token", "twilio_from"):
                if not getattr(self, name):
                    raise _MissingForChannel(name, "LDIS_SMS_CHANNEL=twilio")
        if self.email_channel is EmailChannel.smtp and not self.smtp_host:
            raise _MissingForChannel("smtp_host", "LDIS_EMAIL_CHANNEL=smtp")
        return self

    # Derived values: computed, not stored, so they cannot disagree with their inputs.
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.instance_path / 'ldis.sqlite'}"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.instance_path / 'broker.sqlite'}"

    @property
    def broker_is_embedded(self) -> bool:
        return self.effective_broker_url.startswith("sqla+")

    @property
    def effective_redis_url(self) -> str:
        """Redis for shared counters: LDIS_REDIS_URL, else a Redis broker, else none ("")."""
        if self.redis_url:
            return self.redis_url
        return self.broker_url if self.broker_url.startswith(("redis://", "rediss://")) else ""

    @property
    def uses_outbox(self) -> bool:
        return self.sms_channel is SmsChannel.outbox or self.email_channel is EmailChannel.outbox

    def secret(self) -> str:
        """The secret key; embedded runs get one generated once into the instance folder."""
        if self.secret_key:
            return self.secret_key
        key_file = self.instance_path / "secret_key"
        if not key_file.exists():
            self.instance_path.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


class _MissingForChannel(ValueError):
    def __init__(self, field: str, because: str) -> None:
        super().__init__(f"{PREFIX}{field.upper()}: required when {because}")
        self.field = field


def _unknown_keys(environ: dict[str, str]) -> list[str]:
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(key for key in environ if key.startswith(PREFIX) and key not in known)


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Read and validate settings; raise SettingsError with one line naming the variable."""
    env = dict(os.environ if environ is None else environ)
    unknown = _unknown_keys(env)
    if unknown:
        key = unknown[0]
        known = [PREFIX + name.upper() for name in Settings.model_fields]
        guess = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        raise SettingsError(f"{key}: unknown setting{hint}")
    values: dict[str, Any] = {
        name: env[PREFIX + name.upper()]
        for name in Settings.model_fields
        if PREFIX + name.upper() in env
    }
    values.update(overrides)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        ctx_error = error.get("ctx", {}).get("error")
        if isinstance(ctx_error, _MissingForChannel):
            raise SettingsError(str(ctx_error)) from None
        field = str(error["loc"][0]) if error["loc"] else "settings"
        given = values.get(field, "")
        raise SettingsError(
            f"{PREFIX}{field.upper()}: {error['msg'].removeprefix('Value error, ')} (got {given!r})"
        ) from None
