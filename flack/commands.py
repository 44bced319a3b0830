"""The application's own command: runserver.

create_app() registers it on every application, so `python manage.py runserver`
and `flask --app flack runserver` both run it. Flask-Migrate adds the `db`
commands, which create and update the database, and Flask-SQLAlchemy makes
`shell` preload the database and the models.
"""
import os

import click
from click.core import ParameterSource
from flask import current_app
from flask.cli import run_command as flask_run
from flask.cli import with_appcontext

from . import background, health, main
from .models import db


def init_app(app):
    """Register the commands on an application."""
    app.cli.add_command(runserver)


def database_is_up_to_date():
    """Tell whether every migration script has been applied to the database."""
    with db.engine.connect() as connection:
        return health.applied_revisions(connection) == health.newest_revisions()


# Flask's own `run` command, with its options, and the checks that Flack adds to it.
@click.command(params=flask_run.params)
@click.pass_context
@with_appcontext
def runserver(ctx, **options):
    """Run `flask run` on an up-to-date database and a broker."""
    if ctx.get_parameter_source("port") is ParameterSource.DEFAULT and os.environ.get("PORT"):
        options["port"] = click.INT.convert(os.environ["PORT"], None, ctx)  # as gunicorn does
    if not database_is_up_to_date():  # every request would fail
        raise click.ClickException("the database is not up to date with the migrations:"
                                   " run `python manage.py db upgrade` first")
    background.check_broker(current_app)  # messages with links send tasks to it
    main.check_client_files()
    ctx.invoke(flask_run.callback, **options)
