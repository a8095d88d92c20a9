"""Who may read /metrics: the allowed networks, or the bearer token when one is set."""

from __future__ import annotations

import pytest

from ldis.settings import SettingsError, load_settings
from ldis.web.metrics import allowed


def test_loopback_only_by_default() -> None:
    settings = load_settings({})
    assert allowed(settings, "127.0.0.1", "")
    assert allowed(settings, "::1", "")
    assert not allowed(settings, "10.0.0.5", "")
    assert not allowed(settings, None, "")


def test_networks_and_token() -> None:
    settings = load_settings(
        {"LDIS_METRICS_ALLOW": "10.0.0.0/8, 192.0.2.7", "LDIS_METRICS_TOKEN": "s3cret-token"}
    )
    assert allowed(settings, "10.20.30.40", "")
    assert allowed(settings, "192.0.2.7", "")
    assert not allowed(settings, "127.0.0.1", "")  # the list replaces the default
    assert allowed(settings, "203.0.113.9", "Bearer s3cret-token")
    assert not allowed(settings, "203.0.113.9", "Bearer s3cret-tokenX")
    assert not allowed(settings, "203.0.113.9", "s3cret-token")


def test_a_bad_network_names_the_setting() -> None:
    with pytest.raises(SettingsError, match=r"LDIS_METRICS_ALLOW: 'ten\.0/8' is not a network"):
        load_settings({"LDIS_METRICS_ALLOW": "ten.0/8"})
