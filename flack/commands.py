"""The application's commands, createdb and runserver, and what `shell` preloads.

create_app() registers them on every application, so `python manage.py <command>`
and `flask --app flack <command>` both run them.
"""
import click
from flask import current_app
from flask.cli import with_appcontext
from flask.helpers import get_debug_flag
from sqlalchemy import inspect
from werkzeug.serving import is_running_from_reloader, run_simple

from .models import Message, Token, User, db
from .presence import PresenceThread


def init_app(app):
    """Register the commands, and the names that `shell` preloads, on an application."""
    app.cli.add_command(createdb)
    app.cli.add_command(runserver)
    app.shell_context_processor(shell_context)


def shell_context():
    """Preload the database and the models in `manage.py shell`."""
    return {"db": db, "User": User, "Token": Token, "Message": Message}


@click.command()
@click.option("--drop-first", is_flag=True,
              help="Drop all tables first, which deletes every user and message.")
@with_appcontext
def createdb(drop_first):
    """Create the database tables that do not exist yet."""
    if drop_first:
        db.drop_all()
        click.echo("Dropped all tables.")
    db.create_all()
    click.echo(f"Created the missing tables in {db.engine.url.render_as_string()}.")


def missing_tables():
    """Return the names of the model tables that the database does not have yet."""
    return sorted(set(db.metadata.tables) - set(inspect(db.engine).get_table_names()))


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
    missing = missing_tables()
    if missing:  # every request would fail, and so would every presence sweep
        raise click.ClickException(f"the database has no {', '.join(missing)} tables yet:"
                                   " run `python manage.py createdb` first")
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
