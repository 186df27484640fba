"""Alembic's environment: every package's tables, on the database `timebank migrate` names."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ledger import to_sync_url
from main.migrate import METADATA

config = context.config
url = to_sync_url(config.get_main_option("sqlalchemy.url") or "")
connection = config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, target_metadata=METADATA, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=METADATA, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
