"""Where registered weights come from: ``weights.provenance``, e.g. for weights that ``emokit
pretrain`` made, their architecture, source corpus and its fingerprint, seed, epochs and test
accuracy.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("weights", sa.Column("provenance", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("weights") as batch:
        batch.drop_column("provenance")
