"""Failed API authentications, counted by every process: api_auth_failures.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "api_auth_failures"


def _exists() -> bool:
    return TABLE in sa.inspect(op.get_bind()).get_table_names()


def upgrade() -> None:
    # a database this release's service made itself (create_all) already has the table
    if _exists():
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("api_auth_failures_by_address", TABLE, ["address", "at_us"])
    op.create_index("api_auth_failures_by_time", TABLE, ["at_us"])


def downgrade() -> None:
    if _exists():
        op.drop_table(TABLE)
