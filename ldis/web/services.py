"""Pages: services."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("services", __name__)
