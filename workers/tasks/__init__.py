"""Celery tasks: thin adapters that load by id, call a use case, and record."""
