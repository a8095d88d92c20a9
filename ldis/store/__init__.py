"""Storage: SQLAlchemy 2 typed models, the unit of work and the Alembic migrations."""
