"""The Twilio channel reads the environment's proxy and CA settings once, at start-up, and
still honours them (workers/channels/twilio_sms.py, `environment_once`)."""

from __future__ import annotations

import pytest

from ldis.settings import Settings
from workers.channels.twilio_sms import TwilioSender


def sender(base_url: str = "http://twilio.example.org") -> TwilioSender:
    return TwilioSender(Settings(twilio_base_url=base_url, twilio_account_sid="AC" + "1" * 32))


def test_a_proxy_in_the_environment_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3129")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = sender()._http.session
    assert session is not None
    assert session.proxies["http"] == "http://proxy.example.org:3128"
    assert session.proxies["https"] == "http://proxy.example.org:3129"
    # ...and the environment is not walked again for every message.
    assert session.trust_env is False
    settings = session.merge_environment_settings(
        "http://twilio.example.org/2010-04-01", {}, None, None, None
    )
    assert settings["proxies"]["http"] == "http://proxy.example.org:3128"


def test_no_proxy_for_the_twilio_host_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("NO_PROXY", "twilio.example.org")
    session = sender()._http.session
    assert session is not None and "http" not in session.proxies


def test_a_ca_bundle_in_the_environment_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/our-proxy.pem")
    session = sender()._http.session
    assert session is not None and session.verify == "/etc/ssl/certs/our-proxy.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    plain = sender()._http.session
    assert plain is not None and plain.verify is True
