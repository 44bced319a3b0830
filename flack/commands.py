"""The application's commands: runserver, and what `shell` preloads.

create_app() registers them on every application, so `python manage.py <command>`
and `flask --app flack <command>` both run them. Flask-Migrate adds the `db`
commands, which create and update the database.
"""
import click
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import with_appcontext
from flask.helpers import get_debug_flag
from werkzeug.serving import is_running_from_reloader, run_simple

from .models import Message, Token, User, db
from .presence import PresenceThread


def init_app(app):
    """Register the commands, and the names that `shell` preloads, on an application."""
    app.cli.add_command(runserver)
    app.shell_context_processor(shell_context)


def shell_context():
    """Preload the database and the models in `manage.py shell`."""
    return {"db": db, "User": User, "Token": Token, "Message": Message}


def database_is_up_to_date():
    """Tell whether every migration script has been applied to the database."""
    config = current_app.extensions["migrate"].migrate.get_config()
    newest = set(ScriptDirectory.from_config(config).get_heads())
    with db.engine.connect() as connection:
        applied = set(MigrationContext.configure(connection).get_current_heads())
    return applied == newest


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The interface to listen on; 0.0.0.0 means all of them.")
@click.option("--port", type=int, default=5000, envvar="PORT", show_default=True,
              help="The port to listen on (or the PORT environment variable).")
@click.option("--debug/--no-debug", default=None,
              help="Show tracebacks, and an interactive debugger, in the browser. "
                   "[default: off, unless given before the command name]")
@click.option("--reload/--no-reload", default=None,
              help="Restart when a source file changes. [default: on with --debug]")
@with_appcontext
def runserver(host, port, debug, reload):
    """Run the chat on Werkzeug's development server, with the presence thread."""
    if not database_is_up_to_date():  # requests and presence sweeps would fail
        raise click.ClickException("the database is not up to date with the migrations:"
                                   " run `python manage.py db upgrade` first")
    if debug is None:
        debug = get_debug_flag()  # set by `manage.py --debug runserver`
    if reload is None:
        reload = debug
    # The application itself, not the current_app proxy: the server's threads
    # and the presence thread use it outside this command's app context.
    app = current_app._get_current_object()
    app.debug = debug
    # With the reloader, this process only watches the files and a child process
    # serves the requests: the presence thread belongs in the child.
    presence = None
    if not reload or is_running_from_reloader():
        presence = PresenceThread(app)
        presence.start()
    try:
        run_simple(host, port, app, use_reloader=reload, use_debugger=debug, threaded=True)
    finally:
        if presence is not None:
            presence.stop()
