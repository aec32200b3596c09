"""PostgreSQL through SQLAlchemy 2: models, engine, the task repository and Alembic migrations."""
