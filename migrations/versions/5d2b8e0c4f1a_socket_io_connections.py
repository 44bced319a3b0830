"""the open Socket.IO connections, which keep their users online

Revision ID: 5d2b8e0c4f1a
Revises: 9a4e6c2d1b57
Created: 2026-12-02 00:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = "5d2b8e0c4f1a"
down_revision = "9a4e6c2d1b57"
branch_labels = None
depends_on = None


def upgrade():
    """Add the connections table."""
    op.create_table(
        "connections",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["tokens.id"],
                                name=op.f("fk_connections_token_id_tokens"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_connections_user_id_users")),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_connections")),
    )
    op.create_index(op.f("ix_connections_token_id"), "connections", ["token_id"])
    op.create_index(op.f("ix_connections_user_id"), "connections", ["user_id"])


def downgrade():
    """Remove the connections table."""
    op.drop_index(op.f("ix_connections_user_id"), table_name="connections")
    op.drop_index(op.f("ix_connections_token_id"), table_name="connections")
    op.drop_table("connections")
