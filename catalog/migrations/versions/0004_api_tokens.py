"""API tokens for the HTTP servers: stored hashed, owned by a named principal

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only the SHA-256 of a token is kept: a copy of the database lets nobody in. The principal is a
    # name for now; principals, groups and grants (issue 18) can reference it without a data migration.
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.String(length=12), nullable=False),
        sa.Column('principal', sa.String(length=255), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('created_by', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_api_tokens_principal', ['principal'], unique=False)
        batch_op.create_index('ix_api_tokens_revoked_at', ['revoked_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_api_tokens_revoked_at')
        batch_op.drop_index('ix_api_tokens_principal')
    op.drop_table('api_tokens')
