"""change numbers for polling clients, given out by one counter row

Revision ID: 9a4e6c2d1b57
Revises: 3f1c0b7a9d2e
Created: 2026-12-01 21:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = "9a4e6c2d1b57"
down_revision = "3f1c0b7a9d2e"
branch_labels = None
depends_on = None

FOLLOWED_TABLES = ("users", "messages")


def upgrade():
    """Number the users and messages there are in the order of updated_at, add the counter."""
    for table in FOLLOWED_TABLES:
        op.add_column(table, sa.Column("change", sa.BigInteger(), nullable=False,
                                       server_default="0"))
        # Each row's rank in its table, by updated_at: 1, 2, 3, ... in one statement
        # that runs the same on SQLite and PostgreSQL.
        op.execute(f"""
            UPDATE {table} SET change = (
                SELECT COUNT(*) FROM {table} AS earlier
                WHERE earlier.updated_at < {table}.updated_at
                   OR (earlier.updated_at = {table}.updated_at AND earlier.id <= {table}.id))
        """)
        op.drop_index(op.f(f"ix_{table}_updated_at"), table_name=table)
        op.create_index(op.f(f"ix_{table}_change"), table, ["change"])
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_counter")),
    )
    # The next number is above every number given out above.
    op.execute("INSERT INTO change_counter (id, last) "
               "SELECT 1, (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM messages)")


def downgrade():
    """Remove the counter and the change numbers; updated_at is indexed again."""
    op.drop_table("change_counter")
    for table in FOLLOWED_TABLES:
        op.drop_index(op.f(f"ix_{table}_change"), table_name=table)
        op.create_index(op.f(f"ix_{table}_updated_at"), table, ["updated_at"])
        op.drop_column(table, "change")
