"""Pages: audience."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("audience", __name__)
