#!/usr/bin/env python3
"""Flack's command line: `python manage.py --help` lists the commands.

The application registers its own commands, so `flask --app flack <command>`
runs them as well: runserver, Flask-Migrate's db, and Flask's shell, run and routes.
The two commands defined here, test and lint, look after the source code
rather than the application, so they live beside it instead.
"""
import subprocess
import sys
from pathlib import Path

import click
from flask.cli import FlaskGroup

from flack import create_app

TOP = Path(__file__).resolve().parent
LINT_PATHS = ["flack", "migrations", "tests", "deploy", "config.py", "manage.py",
              "gunicorn.conf.py"]

cli = FlaskGroup(create_app=create_app,
                 help="Run Flack, set up its database, and test and lint its code.")


@cli.command(with_appcontext=False, context_settings={"ignore_unknown_options": True})
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def test(pytest_args):
    """Run the tests; arguments such as -k or -x are passed on to pytest."""
    # A new process, because this one has imported flack already: coverage must
    # start measuring before the package is imported, or it misses its top lines.
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", *pytest_args], cwd=TOP))


@cli.command(with_appcontext=False)
def lint():
    """Check the code with ruff, using the rules in pyproject.toml."""
    sys.exit(subprocess.call([sys.executable, "-m", "ruff", "check", *LINT_PATHS], cwd=TOP))


if __name__ == "__main__":
    cli()
