"""How far back a claim may be dated: tb_schemes.claim_days_back (null: no limit).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _columns() -> set[str]:
    return {str(c["name"]) for c in sa.inspect(op.get_bind()).get_columns("tb_schemes")}


def upgrade() -> None:
    # a database this release's service made itself (create_all) already has the column
    if "claim_days_back" not in _columns():
        with op.batch_alter_table("tb_schemes", schema=None) as batch_op:
            batch_op.add_column(sa.Column("claim_days_back", sa.Integer(), nullable=True))


def downgrade() -> None:
    if "claim_days_back" in _columns():
        with op.batch_alter_table("tb_schemes", schema=None) as batch_op:
            batch_op.drop_column("claim_days_back")
