"""How Alembic reaches Flack's database; every `manage.py db ...` command runs this file.

Flask-Migrate runs the commands inside an application context, so the database
URL and the models' tables come from the application's settings, never from a
second copy in alembic.ini.
"""
import logging

from alembic import context
from flask import current_app

migrate = current_app.extensions["migrate"]
logger = logging.getLogger("alembic.env")


def show_progress():
    """Print Alembic's progress ("Running upgrade ...") on the console."""
    # The tests leave logging to pytest, which captures it.
    if not current_app.testing:
        logging.basicConfig(format="%(levelname)-5.5s [%(name)s] %(message)s")
        logging.getLogger("alembic").setLevel(logging.INFO)
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # noise


def skip_empty_revision(context, revision, directives):
    """Write no script when `db migrate` finds the models and the database alike."""
    script = directives[0]
    if getattr(context.config.cmd_opts, "autogenerate", False) and script.upgrade_ops.is_empty():
        directives[:] = []
        logger.info("The models and the database match: no migration written.")


def run_migrations_offline():
    """Print the migrations' SQL instead of running it (`db upgrade --sql`)."""
    context.configure(url=migrate.db.engine.url, target_metadata=migrate.db.metadata,
                      literal_binds=True, **migrate.configure_args)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on the database, in one transaction where it allows that."""
    with migrate.db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=migrate.db.metadata,
                          process_revision_directives=skip_empty_revision,
                          **migrate.configure_args)
        with context.begin_transaction():
            context.run_migrations()


show_progress()
if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
