"""Principals, group membership, grants, masking policies per tag, the audit trail (issue 18)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tokens keep naming their principal (0004); a principal row is what grants attach to. Once any
    # principal exists, the service serves nobody anonymously.
    op.create_table(
        'principals',
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('created_by', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'group_members',
        sa.Column('group', sa.String(length=255), nullable=False),
        sa.Column('member', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['group'], ['principals.name'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['member'], ['principals.name'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('group', 'member'),
    )
    op.create_index('ix_group_members_member', 'group_members', ['member'], unique=False)
    op.create_table(
        'grants',
        sa.Column('principal', sa.String(length=255), nullable=False),
        sa.Column('privilege', sa.String(length=16), nullable=False),
        sa.Column('object', sa.String(length=512), nullable=False),
        sa.Column('granted_by', sa.String(length=255), nullable=True),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['principal'], ['principals.name'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('principal', 'privilege', 'object'),
    )
    op.create_index('ix_grants_object', 'grants', ['object'], unique=False)
    op.create_table(
        'mask_policies',
        sa.Column('tag', sa.String(length=128), nullable=False),
        sa.Column('method', sa.String(length=16), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('tag'),
    )
    op.create_table(
        'audit_records',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('principal', sa.String(length=255), nullable=True),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('object', sa.String(length=512), nullable=True),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_records_at', 'audit_records', ['at'], unique=False)
    op.create_index('ix_audit_principal_at', 'audit_records', ['principal', 'at'], unique=False)
    op.create_index('ix_audit_object_at', 'audit_records', ['object', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_object_at', table_name='audit_records')
    op.drop_index('ix_audit_principal_at', table_name='audit_records')
    op.drop_index('ix_audit_records_at', table_name='audit_records')
    op.drop_table('audit_records')
    op.drop_table('mask_policies')
    op.drop_index('ix_grants_object', table_name='grants')
    op.drop_table('grants')
    op.drop_index('ix_group_members_member', table_name='group_members')
    op.drop_table('group_members')
    op.drop_table('principals')
