"""Database migrations: the scripts in migrations/ build the models' tables, and undo them."""
import os
import shutil
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, Text, create_engine, inspect, text

from flack import MIGRATIONS, create_app
from flack.models import User, db
from tests.helpers import PASSWORD, ROOT, count, needs_postgres, settings_with_database

FIRST_REVISION = "7beb9159071c"
FLACK_TABLES = {"users", "tokens", "messages", "change_counter", "connections", "processes"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def empty_app(request, tmp_path):
    """An application whose database has no tables: a new SQLite file or PostgreSQL schema."""
    database_url = f"sqlite:///{tmp_path}/flack.sqlite"
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
    app = create_app(settings_with_database(database_url))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def flask_db(app, *args):
    """Run `manage.py db ...` in this process and return click's result."""
    return app.test_cli_runner().invoke(args=["db", *args])


def upgrade(app):
    """Apply every migration, and check that it worked."""
    result = flask_db(app, "upgrade")
    assert result.exit_code == 0, result.output


def table_names():
    """Return the names of the tables in the current app's database."""
    return set(inspect(db.engine).get_table_names())


def model_differences(metadata=db.metadata):
    """Return what autogenerate finds between the models' metadata and the database."""
    with db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), metadata)


def test_upgrade_creates_the_tables_and_downgrade_removes_them(empty_app):
    upgrade(empty_app)
    assert table_names() == FLACK_TABLES | {"alembic_version"}
    upgrade(empty_app)  # a second upgrade has nothing to do
    result = flask_db(empty_app, "downgrade", "base")
    assert result.exit_code == 0, result.output
    assert table_names() == {"alembic_version"}


def test_the_migrated_database_matches_the_models(empty_app):
    upgrade(empty_app)
    assert model_differences() == []


def test_a_model_change_without_a_migration_is_found(empty_app):
    upgrade(empty_app)
    changed = MetaData(naming_convention=db.metadata.naming_convention)
    for table in db.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["users"].append_column(Column("not_migrated", Text))
    [(operation, _, table, column)] = model_differences(changed)
    assert (operation, table, column.name) == ("add_column", "users", "not_migrated")


def make_tables_as_createdb_did(app):
    """Leave the tables of v0.11, the first revision's, with no revision recorded."""
    for args in (["upgrade", FIRST_REVISION], ["stamp", "--purge", "base"]):
        result = flask_db(app, *args)
        assert result.exit_code == 0, result.output
    db.session.execute(text(
        "INSERT INTO users (nickname, password_hash, online, last_seen_at, created_at,"
        " updated_at) VALUES ('susan', 'x', false, 0, 0, 0)"))
    db.session.commit()


def test_a_database_from_createdb_is_refused_with_advice_that_works(empty_app, caplog):
    make_tables_as_createdb_did(empty_app)
    result = flask_db(empty_app, "upgrade")
    assert result.exit_code == 1
    assert f"python manage.py db stamp {FIRST_REVISION}" in caplog.text
    result = flask_db(empty_app, "stamp", FIRST_REVISION)
    assert result.exit_code == 0, result.output
    upgrade(empty_app)
    assert model_differences() == []
    assert count(User) == 1  # nothing was lost on the way


@pytest.fixture
def migrations_copy(tmp_path):
    """A copy of migrations/, for commands that write scripts; the real one stays clean."""
    return shutil.copytree(MIGRATIONS, tmp_path / "migrations",
                           ignore=shutil.ignore_patterns("__pycache__"))


def scripts(migrations):
    """Return the names of the migration scripts in a migrations folder."""
    return sorted(path.name for path in (migrations / "versions").glob("*.py"))


def test_migrate_writes_nothing_when_the_models_match(empty_app, migrations_copy):
    upgrade(empty_app)
    before = scripts(migrations_copy)
    result = flask_db(empty_app, "migrate", "-d", str(migrations_copy), "-m", "no change")
    assert result.exit_code == 0, result.output
    assert scripts(migrations_copy) == before


def test_migrate_writes_the_whole_schema_for_an_empty_history(empty_app, migrations_copy):
    for script in (migrations_copy / "versions").glob("*.py"):
        script.unlink()
    result = flask_db(empty_app, "migrate", "-d", str(migrations_copy), "-m", "first")
    assert result.exit_code == 0, result.output
    [script] = scripts(migrations_copy)
    source = (migrations_copy / "versions" / script).read_text()
    for table in FLACK_TABLES:
        assert f"op.create_table('{table}'" in source


def run_command(command, tmp_path, cwd=ROOT):
    """Run a command in a new process with a development app on a new SQLite file."""
    env = dict(os.environ, FLACK_CONFIG="development",
               DATABASE_URL=f"sqlite:///{tmp_path}/flack.sqlite")
    result = subprocess.run(command, cwd=cwd, env=env, text=True, capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def sqlite_tables(tmp_path):
    """Return the table names in the SQLite file that run_command() uses."""
    engine = create_engine(f"sqlite:///{tmp_path}/flack.sqlite")
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_upgrade_sql_prints_the_sql_and_changes_nothing(tmp_path):
    # Alembic writes to the sys.stdout it started with, so this runs in a new process.
    result = run_command([sys.executable, "manage.py", "db", "upgrade", "--sql"], tmp_path)
    assert "CREATE TABLE users" in result.stdout
    assert f"INSERT INTO alembic_version (version_num) VALUES ('{FIRST_REVISION}')" in (
        result.stdout)
    assert sqlite_tables(tmp_path) == set()


def test_history_lists_the_revisions(tmp_path):
    result = run_command([sys.executable, "manage.py", "db", "history"], tmp_path)
    assert f"<base> -> {FIRST_REVISION}" in result.stdout
    assert "create users, tokens and messages" in result.stdout
    assert "(head)" in result.stdout


def test_flask_command_upgrades_too(tmp_path):
    run_command([sys.executable, "-m", "flask", "--app", "flack", "db", "upgrade"], tmp_path)
    assert FLACK_TABLES <= sqlite_tables(tmp_path)


def test_manage_py_finds_the_migrations_from_another_folder(tmp_path):
    run_command([sys.executable, str(ROOT / "manage.py"), "db", "upgrade"], tmp_path,
                cwd=tmp_path)
    assert FLACK_TABLES <= sqlite_tables(tmp_path)


def test_upgraded_database_serves_the_api(empty_app):
    upgrade(empty_app)
    client = empty_app.test_client()
    response = client.post("/api/users", json={"nickname": "susan", "password": PASSWORD})
    assert response.status_code == 201
    assert client.get("/api/users").json["users"][0]["nickname"] == "susan"


def test_the_preview_columns_are_filled_in_for_the_messages_there_are(empty_app):
    assert flask_db(empty_app, "upgrade", FIRST_REVISION).exit_code == 0
    with db.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO users (nickname, password_hash, online, last_seen_at, created_at,"
            " updated_at) VALUES ('susan', 'x', false, 1, 1, 1)"))
        connection.execute(text(
            "INSERT INTO messages (source, html, user_id, created_at, updated_at)"
            " VALUES ('as posted', '<p>as posted</p>', 1, 10, 10),"
            " ('edited', '<p>edited</p>', 1, 10, 25)"))
    upgrade(empty_app)
    client = empty_app.test_client()
    messages = client.get("/api/messages").json["messages"]
    assert [(message["previews_pending"], message["edited_at"]) for message in messages] == [
        (False, None), (False, 25)]
    db.session.remove()  # the request's read holds a lock that the downgrade would wait for
    result = flask_db(empty_app, "downgrade", FIRST_REVISION)
    assert result.exit_code == 0, result.output
    columns = {column["name"] for column in inspect(db.engine).get_columns("messages")}
    assert not columns & {"previews_pending", "edited_at"}


KEYS_REVISION = "0c68b1be9531"  # nicknames compared by RFC 8266, unique by their keys
BEFORE_KEYS = "b6e1f0c3a8d4"


def rows(sql):
    """Return the rows of a query, read on a connection of its own that it closes."""
    with db.engine.connect() as connection:
        return connection.execute(text(sql)).all()


def revision():
    """Return the revision that the database is at."""
    return rows("SELECT version_num FROM alembic_version")[0][0]


def add_users(app, *nicknames, at=BEFORE_KEYS):
    """Upgrade to a revision before nickname keys, and add users with these nicknames."""
    result = flask_db(app, "upgrade", at)
    assert result.exit_code == 0, result.output
    with db.engine.begin() as connection:
        for nickname in nicknames:
            connection.execute(text(
                "INSERT INTO users (nickname, password_hash, online, last_seen_at, created_at,"
                " updated_at) VALUES (:nickname, 'x', false, 0, 0, 0)"), {"nickname": nickname})


def add_token_and_message(user_id):
    """Give a user a token and a message, rows that refer to the users table."""
    with db.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO tokens (digest, user_id, created_at, expires_at)"
            " VALUES ('digest', :user_id, 0, 1)"), {"user_id": user_id})
        connection.execute(text(
            "INSERT INTO messages (source, html, user_id, created_at, updated_at)"
            " VALUES ('hi', '<p>hi</p>', :user_id, 0, 0)"), {"user_id": user_id})


def unique_constraints():
    """Return the names of the unique constraints of the users table."""
    return {constraint["name"] for constraint in inspect(db.engine).get_unique_constraints("users")}


def test_upgrade_gives_each_user_the_key_of_their_nickname(empty_app):
    add_users(empty_app, "Zoë", "wide")
    add_token_and_message(1)  # SQLite copies the users table, which these refer to
    upgrade(empty_app)
    assert rows("SELECT id, nickname, nickname_key FROM users ORDER BY id") == [
        (1, "Zoë", "zoë"), (2, "wide", "wide")]
    assert rows("SELECT user_id FROM tokens UNION ALL SELECT user_id FROM messages") == [
        (1,), (1,)]
    assert model_differences() == []
    if db.engine.dialect.name == "sqlite":  # the copy turned them off for a while
        assert rows("PRAGMA foreign_keys") == [(1,)]
    response = empty_app.test_client().post(
        "/api/users", json={"nickname": "ZOË", "password": PASSWORD})
    assert response.status_code == 409


@pytest.mark.parametrize("nicknames", [("zoë", "ZOË"), ("wide", "ｗｉｄｅ")])
def test_upgrade_refuses_nicknames_that_become_one_and_changes_nothing(
        empty_app, caplog, nicknames):
    add_users(empty_app, "susan", *nicknames)
    add_token_and_message(2)
    before = rows("SELECT * FROM users ORDER BY id")
    result = flask_db(empty_app, "upgrade")
    assert result.exit_code == 1
    first, second = nicknames
    key = "zoë" if first == "zoë" else "wide"
    assert (f'nicknames that RFC 8266 makes one: "{first}" (user 2) and "{second}" (user 3)'
            f' -> "{key}"') in caplog.text
    assert "then run `python manage.py db upgrade` again" in caplog.text
    assert revision() == BEFORE_KEYS
    assert rows("SELECT * FROM users ORDER BY id") == before
    assert unique_constraints() == {"uq_users_nickname"}
    # The advice works: rename one of them, and upgrade again.
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE users SET nickname = 'zoe2' WHERE id = 3"))
    upgrade(empty_app)
    assert model_differences() == []


def test_upgrade_names_a_nickname_the_rfc_refuses(empty_app, caplog):
    add_users(empty_app, "susan", "\u0140")  # a letter that v0.19 took, but RFC 8266 refuses
    result = flask_db(empty_app, "upgrade")
    assert result.exit_code == 1
    assert 'a nickname that RFC 8266 refuses: "\u0140" (user 2)' in caplog.text
    assert revision() == BEFORE_KEYS


def test_a_refusal_after_earlier_revisions_leaves_a_database_that_upgrades(empty_app):
    add_users(empty_app, "zoë", "ZOË", at=FIRST_REVISION)
    assert flask_db(empty_app, "upgrade").exit_code == 1
    # PostgreSQL undoes the whole upgrade; SQLite keeps the revisions before the refusal.
    assert revision() == {"postgresql": FIRST_REVISION, "sqlite": BEFORE_KEYS}[
        db.engine.dialect.name]
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE users SET nickname = 'zoe2' WHERE id = 2"))
    upgrade(empty_app)
    assert model_differences() == []


def test_downgrade_makes_nicknames_unique_as_typed_again(empty_app):
    add_users(empty_app, "Zoë", "wide")
    add_token_and_message(1)
    upgrade(empty_app)
    result = flask_db(empty_app, "downgrade", BEFORE_KEYS)
    assert result.exit_code == 0, result.output
    assert revision() == BEFORE_KEYS
    columns = {column["name"] for column in inspect(db.engine).get_columns("users")}
    assert "nickname_key" not in columns
    assert unique_constraints() == {"uq_users_nickname"}
    indexes = {index["name"] for index in inspect(db.engine).get_indexes("users")}
    assert {"ix_users_change", "ix_users_online_last_seen_at"} <= indexes
    assert rows("SELECT id, nickname FROM users ORDER BY id") == [(1, "Zoë"), (2, "wide")]
    assert rows("SELECT COUNT(*) FROM tokens") == [(1,)]
    upgrade(empty_app)  # and up again
    assert rows("SELECT nickname_key FROM users ORDER BY id") == [("zoë",), ("wide",)]


def test_a_failure_in_the_copy_of_the_users_table_undoes_the_revision(empty_app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite copies the table, and runs DDL outside a transaction")
    add_users(empty_app, "zoë")
    with db.engine.begin() as connection:  # in the way of the copy that the batch makes
        connection.execute(text("CREATE TABLE _alembic_tmp_users (id INTEGER)"))
    assert flask_db(empty_app, "upgrade").exit_code == 1
    assert revision() == BEFORE_KEYS
    assert "nickname_key" not in {column["name"] for column in inspect(db.engine).get_columns(
        "users")}
    assert rows("PRAGMA foreign_keys") == [(1,)]  # not the connection that turned them off
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE _alembic_tmp_users"))
    upgrade(empty_app)
    assert model_differences() == []
