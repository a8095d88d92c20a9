"""Pages: preferences."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("preferences", __name__)
