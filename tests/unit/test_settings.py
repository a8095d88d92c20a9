"""Settings: embedded defaults, and one clear line naming the variable when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldis.settings import SettingsError, load_settings


def test_embedded_defaults_need_no_server(tmp_path: Path) -> None:
    settings = load_settings({"LDIS_INSTANCE_PATH": str(tmp_path)})
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'ldis.sqlite'}"
    assert settings.effective_broker_url.startswith("sqla+sqlite:///")
    assert settings.broker_is_embedded
    assert settings.sms_channel == "outbox" and settings.email_channel == "outbox"
    assert settings.approvals_required == 2


def test_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = load_settings({"LDIS_INSTANCE_PATH": str(tmp_path)})
    first = settings.secret()
    assert len(first) >= 40 and settings.secret() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"LDIS_APPROVALS_REQUIRED": "0"}, "LDIS_APPROVALS_REQUIRED"),
        ({"LDIS_APPROVALS_REQUIRED": "two"}, "LDIS_APPROVALS_REQUIRED"),
        ({"LDIS_SMS_CHANNEL": "pigeon"}, "LDIS_SMS_CHANNEL"),
        ({"LDIS_DATABASE_URL": "mysql://x"}, "LDIS_DATABASE_URL"),
        ({"LDIS_PUBLIC_URL": "ldis.example"}, "LDIS_PUBLIC_URL"),
        ({"LDIS_SMTP_PORT": "70000"}, "LDIS_SMTP_PORT"),
        ({"LDIS_SMS_CHANNEL": "twilio"}, "LDIS_TWILIO_ACCOUNT_SID"),
        ({"LDIS_EMAIL_CHANNEL": "smtp"}, "LDIS_SMTP_HOST"),
        ({"LDIS_APROVALS_REQUIRED": "2"}, "LDIS_APROVALS_REQUIRED"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert message.startswith(variable + ":")
    assert "\n" not in message


def test_typo_gets_a_suggestion() -> None:
    with pytest.raises(SettingsError, match="did you mean LDIS_APPROVALS_REQUIRED"):
        load_settings({"LDIS_APROVALS_REQUIRED": "2"})


def test_postgres_urls_use_the_shipped_driver() -> None:
    settings = load_settings({"LDIS_DATABASE_URL": "postgresql://u@h/db"})
    assert settings.effective_database_url == "postgresql+psycopg://u@h/db"


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(Exception, match="frozen"):
        settings.approvals_required = 1  # type: ignore[misc]
