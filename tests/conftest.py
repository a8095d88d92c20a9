"""Shared test set-up. Unit tests need nothing; integration fixtures live in tests/integration."""

from __future__ import annotations

import os

# Tests build their settings explicitly; stray LDIS_ variables from a developer's shell
# must not leak into them (the settings loader refuses unknown ones anyway).
for _key in [k for k in os.environ if k.startswith("LDIS_")]:
    del os.environ[_key]
