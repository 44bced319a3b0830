"""Change numbers: the cursor of polling clients, right across processes."""
import subprocess
import sys

import pytest
from sqlalchemy import event

from flack import create_app
from flack.models import ChangeCounter, db
from tests.helpers import POSTGRES_URL, ROOT, post_message, settings_with_database


def test_each_change_gets_the_next_number(client, clock, accounts):
    auth = accounts.login()
    first = post_message(client, auth, "first")
    second = post_message(client, auth, "second")
    assert second["change"] > first["change"]
    edited = client.put(f"/api/messages/{first['id']}", json={"source": "again"},
                        headers=auth).json
    assert edited["change"] > second["change"]
    assert db.session.get(ChangeCounter, 1).last == edited["change"]


def test_a_request_that_changes_nothing_visible_takes_no_number(client, clock, app, accounts):
    auth = accounts.login()
    [user] = client.get("/api/users").json["users"]
    clock.advance(app.config["LAST_SEEN_INTERVAL"])
    client.get("/api/stats", headers=auth)  # last_seen_at moves; nothing a client shows
    [again] = client.get("/api/users").json["users"]
    assert again["last_seen_at"] == user["last_seen_at"] + app.config["LAST_SEEN_INTERVAL"]
    assert again["change"] == user["change"]


def test_requests_write_last_seen_at_once_an_interval(client, clock, app, accounts):
    auth = accounts.login()
    [user] = client.get("/api/users").json["users"]
    statements = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    for _ in range(10):  # within LAST_SEEN_INTERVAL: nothing to write
        clock.advance(app.config["LAST_SEEN_INTERVAL"] / 20)
        assert client.get("/api/stats", headers=auth).status_code == 200
    assert not [statement for statement in statements if statement.startswith("UPDATE")]
    [again] = client.get("/api/users").json["users"]
    assert again["last_seen_at"] == user["last_seen_at"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="FLACK_TEST_POSTGRES_URL is not set: no PostgreSQL to test with"))])
def shared_database(request, tmp_path):
    """A database that several processes write to: an SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/chat.sqlite"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.mark.servers  # several writer processes: `make test-all` runs it
def test_a_polling_client_misses_nothing_that_several_processes_write(shared_database):
    reader = create_app(settings_with_database(shared_database))
    with reader.app_context():
        db.create_all()
        client = reader.test_client()
        writers = [subprocess.Popen([sys.executable, "-m", "tests.writer", shared_database,
                                     f"writer{number}", "25"], cwd=ROOT)
                   for number in range(3)]
        seen, after = [], 0
        while True:
            writing = any(writer.poll() is None for writer in writers)
            page = client.get(f"/api/messages?after={after}&limit=7").json["messages"]
            seen += [message["id"] for message in page]
            after = page[-1]["change"] if page else after
            if not page and not writing:
                break
        assert [writer.returncode for writer in writers] == [0, 0, 0]
        everything = client.get("/api/messages?limit=500").json["messages"]
        assert len(everything) == 75
        assert seen == [message["id"] for message in everything]  # each once, in order
        db.session.remove()
        db.engine.dispose()
