"""API tokens may expire: api_tokens.expires_us (null: until revoked).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _columns() -> set[str]:
    return {str(c["name"]) for c in sa.inspect(op.get_bind()).get_columns("api_tokens")}


def upgrade() -> None:
    # a database this release's service made itself (create_all) already has the column
    if "expires_us" not in _columns():
        with op.batch_alter_table("api_tokens", schema=None) as batch_op:
            batch_op.add_column(sa.Column("expires_us", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    if "expires_us" in _columns():
        with op.batch_alter_table("api_tokens", schema=None) as batch_op:
            batch_op.drop_column("expires_us")
