"""nicknames compared by RFC 8266: unique by a key, not as typed

Revision ID: 0c68b1be9531
Revises: b6e1f0c3a8d4
Created: 2026-12-03 10:00:00.000000
"""
import json
from collections import defaultdict
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

# precis_i18n is called here, not through flack.nicknames: a revision must compute
# the keys it was written with, whatever the application's code becomes later.
from precis_i18n import get_profile

revision = "0c68b1be9531"
down_revision = "b6e1f0c3a8d4"
branch_labels = None
depends_on = None

KEY_LENGTH = 18 * 32  # NFKC makes a nickname of 32 characters up to 18 times longer

users = sa.table("users", sa.column("id", sa.Integer()), sa.column("nickname", sa.String()),
                 sa.column("nickname_key", sa.String()))


def users_table(key_nullable, unique_column):
    """Return the users table as a batch finds it: SQLite's copy of it is made from this."""
    # Given, not reflected, so that `db upgrade --sql` can write the copy too.
    return sa.Table(
        "users", sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nickname", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("change", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("nickname_key", sa.String(length=KEY_LENGTH), nullable=key_nullable),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint(unique_column, name=f"uq_users_{unique_column}"),
        sa.Index("ix_users_change", "change"),
        sa.Index("ix_users_online_last_seen_at", "online", "last_seen_at"),
    )


def key_of(nickname):
    """Return a nickname's RFC 8266 comparison form, or None if the RFC refuses it."""
    try:
        return get_profile("NicknameCaseMapped").enforce(nickname)
    except ValueError:  # UnicodeEncodeError, for a refused nickname
        return None


def quoted(nickname):
    """Return a nickname in double quotes, with any control character escaped."""
    return json.dumps(nickname, ensure_ascii=False)


def named(rows):
    """Return '"zoë" (user 3) and "ZOË" (user 7)' for some (id, nickname) rows."""
    names = [f"{quoted(nickname)} (user {id})" for id, nickname in rows]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def problems(rows):
    """Return a line for each group of nicknames that share a key, and for each refused one."""
    groups = defaultdict(list)
    refused = []
    for id, nickname in rows:
        key = key_of(nickname)
        if key is None:
            refused.append(f"a nickname that RFC 8266 refuses: {named([(id, nickname)])}")
        else:
            groups[key].append((id, nickname))
    return [f"nicknames that RFC 8266 makes one: {named(group)} -> {quoted(key)}"
            for key, group in groups.items() if len(group) > 1] + refused


def keys_or_refusal():
    """Return each user's key by id; refuse, before any change, nicknames that clash."""
    # Locked on PostgreSQL until the keys are written, so that no nickname changes meanwhile.
    rows = op.get_bind().execute(
        sa.select(users.c.id, users.c.nickname).order_by(users.c.id).with_for_update()).all()
    found = problems(rows)
    if found:
        # Flask-Migrate prints a RuntimeError as one message, "Error: ...".
        raise RuntimeError(
            f"revision {revision} compares nicknames as RFC 8266 does, and stopped before "
            "changing anything: two nicknames that look alike must be one user's.\n  "
            + "\n  ".join(found) + "\nRename all but one user of each group, and each user "
            "whose nickname the RFC refuses, to a nickname that nobody has (UPDATE users SET "
            "nickname = '...' WHERE id = ...), then run `python manage.py db upgrade` again.")
    return {id: key_of(nickname) for id, nickname in rows}


def fill_keys(keys):
    """Write the users' keys into the new column."""
    if keys:
        op.get_bind().execute(
            users.update().where(users.c.id == sa.bindparam("user_id"))
            .values(nickname_key=sa.bindparam("key")),
            [{"user_id": id, "key": key} for id, key in keys.items()])


def set_sqlite_foreign_keys(state):
    """Turn SQLite's foreign keys ON or OFF, which it allows only outside a transaction."""
    with op.get_context().autocommit_block():  # commits what the revision did so far
        op.execute(f"PRAGMA foreign_keys = {state}")


@contextmanager
def sqlite_foreign_keys_off():
    """Let SQLite copy the users table, in one transaction, with its foreign keys off.

    A batch copies the table, drops it and renames the copy: with the foreign keys on,
    dropping a table that tokens and messages refer to fails.
    """
    if op.get_context().dialect.name != "sqlite":
        yield
        return
    set_sqlite_foreign_keys("OFF")
    if not op.get_context().as_sql:
        # pysqlite would begin a transaction only at the first UPDATE: begun here, so that
        # a failure undoes the ADD COLUMN and the CREATE TABLE of the copy as well.
        op.execute("BEGIN")
    try:
        yield
    except BaseException:
        if not op.get_context().as_sql:
            # The transaction must roll back, so the keys stay off: the pool closes this
            # connection instead of handing it out that way.
            op.get_bind().detach()
        raise
    if not op.get_context().as_sql and op.get_bind().exec_driver_sql(
            "PRAGMA foreign_key_check").first():
        raise RuntimeError("the copy of the users table lost rows that other tables refer to")
    set_sqlite_foreign_keys("ON")


def upgrade():
    """Give each user the key of their nickname, and make the key unique, not the nickname."""
    # `db upgrade --sql` sees no rows, so it writes no keys: on a database with users,
    # the script fails at the key's NOT NULL, and the upgrade must be run online instead.
    keys = {} if op.get_context().as_sql else keys_or_refusal()
    with sqlite_foreign_keys_off():
        op.add_column("users", sa.Column("nickname_key", sa.String(length=KEY_LENGTH),
                                         nullable=True))
        fill_keys(keys)
        with op.batch_alter_table("users", copy_from=users_table(True, "nickname")) as batch:
            batch.alter_column("nickname_key", existing_type=sa.String(length=KEY_LENGTH),
                               nullable=False)
            batch.create_unique_constraint(op.f("uq_users_nickname_key"), ["nickname_key"])
            batch.drop_constraint(op.f("uq_users_nickname"), type_="unique")


def downgrade():
    """Make the nickname unique again, as typed, and drop the keys."""
    # Equal nicknames have equal keys, so the nicknames are unique already.
    with (sqlite_foreign_keys_off(),
          op.batch_alter_table("users", copy_from=users_table(False, "nickname_key")) as batch):
        batch.create_unique_constraint(op.f("uq_users_nickname"), ["nickname"])
        batch.drop_constraint(op.f("uq_users_nickname_key"), type_="unique")
        batch.drop_column("nickname_key")
