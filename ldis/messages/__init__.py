"""Rendering alert_templates/ for each channel: the only place alerts meet Jinja."""
