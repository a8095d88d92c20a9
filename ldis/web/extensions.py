"""Where the app keeps its container; views reach adapters only through here."""

from __future__ import annotations

from flask import current_app

from ldis.bootstrap import Container

KEY = "ldis"


def container() -> Container:
    value: Container = current_app.extensions[KEY]
    return value
