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
