"""The application factory: every call makes a new application with its own state."""
import importlib
import pkgutil

from flask import Flask

import config
import flack
from flack import create_app, stats
from flack.models import User, db
from tests.helpers import Accounts


class QuickConfig(config.TestingConfig):
    """Testing settings with a short stats window and a quick presence timeout."""
    STATS_WINDOW = 10
    PRESENCE_TIMEOUT = 5
    PRESENCE_REFRESH_INTERVAL = 2.0
    LAST_SEEN_INTERVAL = 1.0


def test_create_app_takes_a_name_a_dotted_path_or_a_class():
    assert create_app("testing").config["STATS_WINDOW"] == 60
    assert create_app("tests.test_factory.QuickConfig").config["STATS_WINDOW"] == 10
    assert create_app(QuickConfig).config["STATS_WINDOW"] == 10


def test_create_app_uses_flack_config_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("FLACK_CONFIG", "testing")
    monkeypatch.setattr(config, "ENV_FILE", str(tmp_path / ".env"))
    app = create_app()
    assert app.config["TESTING"] is True
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"


def test_each_call_makes_a_new_app():
    first, second = create_app("testing"), create_app("testing")
    assert first is not second
    assert first.extensions["flack_stats"] is not second.extensions["flack_stats"]


def test_no_module_holds_an_application():
    # Except flack.wsgi and flack.worker, which exist to build one from the environment,
    # for a WSGI server and for the Celery worker.
    modules = [importlib.import_module(f"flack.{info.name}")
               for info in pkgutil.iter_modules(flack.__path__)
               if info.name not in ("wsgi", "worker")]
    for module in [flack, *modules]:
        assert not any(isinstance(value, Flask) for value in vars(module).values()), module


def test_two_apps_in_one_process_keep_their_own_data_statistics_and_presence(clock,
                                                                          monkeypatch):
    # Not everything is theirs: a process has one Socket.IO server (flack.sockets) and
    # one default Celery app, the last one made, which shared tasks send through. One
    # app a process is what the servers run; the tests make many, one at a time.
    apps = {"plain": create_app("testing"), "quick": create_app(QuickConfig)}
    for app in apps.values():
        with app.app_context():
            db.create_all()
    clients = {name: app.test_client() for name, app in apps.items()}

    # The database: each app has its own, with its own users.
    Accounts(clients["plain"]).login("susan")
    Accounts(clients["quick"]).login("david")
    assert [user["nickname"] for user in clients["plain"].get("/api/users").json["users"]] == [
        "susan"]
    assert [user["nickname"] for user in clients["quick"].get("/api/users").json["users"]] == [
        "david"]

    # The statistics: each app counts its own requests over its own window.
    for _ in range(4):
        clients["plain"].get("/api/users")
    with apps["plain"].app_context():
        assert stats.requests_per_second() == 7 / 60  # 2 to log in, 1 above, 4 here
    with apps["quick"].app_context():
        assert stats.requests_per_second() == 3 / 10

    # Presence: each app's Celery application runs the sweep in its own app's context,
    # on its own database with its own timeout.
    assert apps["plain"].extensions["celery"] is not apps["quick"].extensions["celery"]
    clock.advance(6)  # past the quick app's timeout, not the plain one's
    for app in apps.values():
        app.extensions["celery"].tasks["flack.tasks.mark_offline_users"].apply()
    online = {}
    for name, app in apps.items():
        with app.app_context():
            online[name] = [user.online for user in db.session.scalars(db.select(User))]
    for app in apps.values():
        with app.app_context():
            db.engine.dispose()  # Python 3.13 warns of an SQLite connection never closed
    assert online == {"plain": [True], "quick": [False]}
