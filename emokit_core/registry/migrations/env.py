"""Alembic environment of the emokit registry.

emokit runs migrations programmatically (``emokit_core.registry.store``): it passes an
open connection, already inside a write transaction, as ``config.attributes["connection"]``.
For hand use, ``sqlalchemy.url`` may be set on the Config instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from emokit_core.registry.schema import Base

config = context.config
target_metadata = Base.metadata


def _include_object(obj, name, type_, reflected, compare_to):
    # the SQL views are managed by hand in the migrations, not by autogenerate
    return not (type_ == "table" and name in ("finished_runs", "leaderboard"))


def _configure(connection=None, url=None) -> None:
    dialect = connection.dialect.name if connection is not None else (url or "").split(":", 1)[0]
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=dialect.startswith("sqlite"),  # SQLite needs table rebuilds for ALTER
        compare_type=True,
        include_object=_include_object,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
