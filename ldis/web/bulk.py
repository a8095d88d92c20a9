"""Pages: bulk."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("bulk", __name__)
