"""Saved queries: SQL kept by name, re-runnable from the console and `lake sql --saved NAME`

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The query's result is a catalog dataset of its own (query.<name>, kind 'query'): its lineage
    # and tags live in the dataset tables, this row only keeps the text and who saved it.
    op.create_table(
        'saved_queries',
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('sql', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('owner', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('saved_queries')
