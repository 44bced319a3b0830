"""A writer process for tests/test_changes.py: `python -m tests.writer URL NICKNAME COUNT`.

It posts COUNT messages as NICKNAME, and waits a little before each commit, as a busy
server might: a client polling meanwhile must still miss nothing.
"""
import random
import sys
import time

from sqlalchemy.orm import Session

from flack import create_app
from tests.helpers import Accounts, post_message, settings_with_database

commit = Session.commit


def slow_commit(session):
    """Commit after a pause that widens the gap between a change number and its commit."""
    time.sleep(random.uniform(0, 0.02))  # a race to widen, not a clock to control
    commit(session)


def main(database_url, nickname, count):
    """Post count messages as nickname."""
    Session.commit = slow_commit
    app = create_app(settings_with_database(database_url))
    with app.app_context():
        client = app.test_client()
        auth = Accounts(client).login(nickname)
        for number in range(int(count)):
            post_message(client, auth, f"{nickname} {number}")


if __name__ == "__main__":
    main(*sys.argv[1:])
