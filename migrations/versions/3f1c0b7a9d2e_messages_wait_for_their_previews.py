"""messages wait for their previews, and know when they were edited

Revision ID: 3f1c0b7a9d2e
Revises: 7beb9159071c
Created: 2026-12-01 21:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = "3f1c0b7a9d2e"
down_revision = "7beb9159071c"
branch_labels = None
depends_on = None


def upgrade():
    """Add previews_pending and edited_at to the messages, filled in for those there are."""
    # The messages there are already have their previews: none is pending.
    op.add_column("messages", sa.Column("previews_pending", sa.Boolean(), nullable=False,
                                        server_default=sa.false()))
    op.add_column("messages", sa.Column("edited_at", sa.Double(), nullable=True))
    # Until now a message changed only when its author edited it.
    messages = sa.table("messages", sa.column("created_at"), sa.column("updated_at"),
                        sa.column("edited_at"))
    op.execute(messages.update().where(messages.c.updated_at > messages.c.created_at)
               .values(edited_at=messages.c.updated_at))


def downgrade():
    """Remove the two columns again."""
    # SQLite drops a column since its version 3.35 (2021).
    op.drop_column("messages", "edited_at")
    op.drop_column("messages", "previews_pending")
