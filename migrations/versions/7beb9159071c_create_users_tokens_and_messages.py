"""create users, tokens and messages

Revision ID: 7beb9159071c
Revises:
Created: 2026-11-22 19:31:48.056015
"""
import sqlalchemy as sa
from alembic import op

revision = "7beb9159071c"
down_revision = None
branch_labels = None
depends_on = None


def refuse_tables_made_by_createdb():
    """Stop with advice when the tables exist already, made by an earlier stage's createdb."""
    if op.get_context().as_sql:  # `db upgrade --sql` writes SQL and sees no database
        return
    if sa.inspect(op.get_bind()).has_table("users"):
        # Flask-Migrate prints a RuntimeError as one line, "Error: ...".
        raise RuntimeError(
            "the database has Flack's tables already, made by `createdb` before migrations "
            f"existed. They match this revision: run `python manage.py db stamp {revision}` "
            "to record that, then `python manage.py db upgrade`.")


def upgrade():
    """Create the three tables of v0.11's models."""
    refuse_tables_made_by_createdb()
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nickname", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("nickname", name=op.f("uq_users_nickname")),
    )
    op.create_index(op.f("ix_users_updated_at"), "users", ["updated_at"])

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_messages_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(op.f("ix_messages_updated_at"), "messages", ["updated_at"])
    op.create_index(op.f("ix_messages_user_id"), "messages", ["user_id"])

    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_tokens_digest")),
    )
    op.create_index(op.f("ix_tokens_user_id"), "tokens", ["user_id"])


def downgrade():
    """Drop the three tables, the ones that refer to users first."""
    op.drop_table("tokens")  # dropping a table drops its indexes too
    op.drop_table("messages")
    op.drop_table("users")
