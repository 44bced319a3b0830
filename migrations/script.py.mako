"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Created: ${create_date}
"""
import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    """Change the database from the previous revision to this one."""
    ${upgrades if upgrades else "pass"}


def downgrade():
    """Undo upgrade(): back to the previous revision."""
    ${downgrades if downgrades else "pass"}
