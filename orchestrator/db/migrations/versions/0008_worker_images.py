"""workers.images: the pipeline images a worker has (NULL: any, or not reported)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a default: a catalogue change only, whatever the table holds.
    op.add_column("workers", sa.Column("images", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("workers", "images")
