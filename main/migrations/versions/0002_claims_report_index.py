"""The reports' partial covering index on confirmed claims (tb_claims_for_reports).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = [
    "scheme",
    "day",
    "activity",
    "member",
    "minutes",
    "entry_seq",
    "reversal_seq",
    "receiver",
    "status",
]
CONFIRMED = sa.text("status = 'confirmed'")


def upgrade() -> None:
    # if_not_exists: a database the service made itself (create_all) already has it
    op.create_index(
        "tb_claims_for_reports",
        "tb_claims",
        COLUMNS,
        if_not_exists=True,
        sqlite_where=CONFIRMED,
        postgresql_where=CONFIRMED,
    )


def downgrade() -> None:
    op.drop_index("tb_claims_for_reports", "tb_claims", if_exists=True)
