"""Password hashes run in a real thread under green threads, so they cannot stall the others."""
import sys
import threading
from types import ModuleType, SimpleNamespace

import pytest

from flack import passwords
from flack.models import db
from tests.helpers import PASSWORD


class FakeThreadPool:
    """A stand-in thread pool that runs each call in a new real thread, and counts them."""

    def __init__(self):
        self.calls = 0

    def run(self, function, args):
        """Run function(*args) in another thread and return its result."""
        self.calls += 1
        results = []
        thread = threading.Thread(target=lambda: results.append(function(*args)))
        thread.start()
        thread.join()
        return results[0]


@pytest.fixture
def pool(monkeypatch):
    """Fake gevent's hub, which only runs inside gunicorn's worker."""
    pool = FakeThreadPool()
    gevent = ModuleType("gevent")
    gevent.get_hub = lambda: SimpleNamespace(threadpool=SimpleNamespace(apply=pool.run))
    monkeypatch.setitem(sys.modules, "gevent", gevent)
    return pool


@pytest.mark.parametrize("mode, in_the_pool", [("gevent", True), ("threading", False)])
def test_hashes_run_in_the_thread_pool_of_green_threads(app, pool, mode, in_the_pool):
    app.config["SOCKETIO_ASYNC_MODE"] = mode
    password_hash = passwords.hash_password("correct horse")
    assert passwords.password_matches(password_hash, "correct horse")
    assert not passwords.password_matches(password_hash, "wrong horse")
    assert pool.calls == (3 if in_the_pool else 0)


def test_the_hash_is_made_with_the_configured_method(app):
    app.config["PASSWORD_HASH_METHOD"] = "pbkdf2:sha256:2"
    assert passwords.hash_password("correct horse").startswith("pbkdf2:sha256:2$")


def test_a_hash_waits_for_a_free_slot(app, monkeypatch):
    app.config["PASSWORD_HASH_THREADS"] = 1
    started = threading.Event()
    monkeypatch.setattr(passwords, "generate_password_hash",
                        lambda *args: started.set() or "hashed")
    slots = passwords.hashing_slots()
    slots.acquire()  # the one slot, taken as by another login's hash
    context = app.app_context()
    thread = threading.Thread(target=lambda: context.push() or passwords.hash_password("x"))
    thread.start()
    assert not started.wait(0.2)  # in line behind the slot, not hashing
    slots.release()
    assert started.wait(10)
    thread.join()


def test_a_login_holds_no_database_connection_while_it_hashes(client, accounts, monkeypatch):
    accounts.register("susan")
    in_transaction = []
    real_check = passwords.check_password_hash
    monkeypatch.setattr(passwords, "check_password_hash", lambda *args: (
        in_transaction.append(db.session().in_transaction()) or real_check(*args)))
    assert client.post("/api/tokens", auth=("susan", PASSWORD)).status_code == 200
    assert client.post("/api/tokens", auth=("susan", "wrong")).status_code == 401
    assert in_transaction == [False, False]

