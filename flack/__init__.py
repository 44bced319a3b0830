"""Flack: a chat application. This package holds its server, and manage.py runs it.

It works, and it is safe, but it had four scalability problems that the stages
of the tutorial fix one by one:

1. Link previews were fetched inside the request that posts a message: since
   v0.15 a background task fetches them (flack.tasks, run by a Celery worker).
2. Presence was kept by a background thread in every server process: since
   v0.16 one periodic task sweeps for the whole deployment (Celery beat).
3. Request statistics lived in the memory of one process: since v0.16 every
   process counts in Redis, when REDIS_URL is set (flack.stats).
4. The browser client found new messages by polling: since v0.17 the server
   pushes every change to it over Socket.IO (flack.sockets).
"""
from pathlib import Path

from flask import Flask
from flask_migrate import Migrate

from config import load as load_config

from . import background, commands, errors, limits, logs, origins, sockets, stats, turns
from .api import api as api_blueprint
from .health import health as health_blueprint
from .main import main as main_blueprint
from .models import db

# The migration scripts sit beside manage.py. An absolute path lets the db
# commands find them from any folder, not only from the project's top folder.
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

migrate = Migrate(db=db, directory=MIGRATIONS)


def create_app(config=None):
    """Create an application with the settings config names (FLACK_CONFIG's by default)."""
    app = Flask(__name__)
    app.config.from_mapping(load_config(config))
    db.init_app(app)
    migrate.init_app(app)
    turns.init_app(app)  # first: before any other hook runs
    stats.init_app(app)
    background.init_app(app)
    sockets.init_app(app)
    errors.init_app(app)
    limits.init_app(app)
    origins.init_app(app)
    app.register_blueprint(main_blueprint)
    app.register_blueprint(api_blueprint, url_prefix="/api")
    app.register_blueprint(health_blueprint)
    commands.init_app(app)
    logs.init_app(app)  # last: its middleware wraps all the others, Socket.IO's too
    return app
