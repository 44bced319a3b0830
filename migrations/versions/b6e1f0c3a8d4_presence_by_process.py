"""presence by process: each web process refreshes one row for all its connections

Revision ID: b6e1f0c3a8d4
Revises: 5d2b8e0c4f1a
Created: 2026-12-02 15:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = "b6e1f0c3a8d4"
down_revision = "5d2b8e0c4f1a"
branch_labels = None
depends_on = None


def create_connections(*columns_and_constraints):
    """Create the connections table, with the columns that one side of this revision adds."""
    op.create_table(
        "connections",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        *columns_and_constraints,
        sa.ForeignKeyConstraint(["token_id"], ["tokens.id"],
                                name=op.f("fk_connections_token_id_tokens"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_connections_user_id_users")),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_connections")),
    )
    op.create_index(op.f("ix_connections_token_id"), "connections", ["token_id"])
    op.create_index(op.f("ix_connections_user_id"), "connections", ["user_id"])


def upgrade():
    """Add the processes table, and make each connection belong to a process."""
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processes")),
    )
    # The connections are made again rather than altered: their rows are not worth
    # keeping, since each web process writes back the rows of the connections it
    # holds within PRESENCE_REFRESH_INTERVAL, and no user is logged out meanwhile.
    op.drop_table("connections")
    create_connections(
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["process_id"], ["processes.id"],
                                name=op.f("fk_connections_process_id_processes"),
                                ondelete="CASCADE"))
    op.create_index(op.f("ix_connections_process_id"), "connections", ["process_id"])
    op.create_index("ix_users_online_last_seen_at", "users", ["online", "last_seen_at"])


def downgrade():
    """Go back to connections that each keep their own time."""
    op.drop_index("ix_users_online_last_seen_at", table_name="users")
    op.drop_table("connections")
    create_connections(sa.Column("seen_at", sa.Double(), nullable=False))
    op.drop_table("processes")
