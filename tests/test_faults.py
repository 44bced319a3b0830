"""Fault injection: kill each process of the chat while it works, and lose nothing.

Real processes, as in test_cluster.py, on a Redis that each test starts for itself
(tests.faults). While browsers are connected and a poster posts messages with links to
a slow page, one part is killed (and started again, as a supervisor would): a
gunicorn worker, the Celery pool, the Celery worker's main process, Redis, nginx.
Then every message that was posted must be stored once, reach a final version (its
preview, or none after the tries), and be in every browser; and nobody is logged out.
"""
import contextlib
import json
import os
import sys

import pytest

from tests.conftest import postgres_schema
from tests.faults import (
    FAULTS,
    NGINX,
    REDIS_SERVER,
    FaultRun,
    SlowPage,
    check_nothing_lost,
    run_fault,
)
from tests.helpers import POSTGRES_URL, ROOT

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(NGINX is None or REDIS_SERVER is None,
                       reason="needs nginx and redis-server (Debian: apt-get install nginx "
                              "redis-server)"),
]

# Every message reaches its final version within this many seconds of the kill: the
# repair sends a lost task again after LINK_PREVIEW_RESEND_AFTER (5 s in these runs).
SETTLE_SECONDS = 60


@pytest.fixture
def stack(tmp_path):
    """The chat's processes on PostgreSQL if there is a server, else SQLite."""
    with postgres_schema() if POSTGRES_URL else contextlib.nullcontext() as database_url:
        run = FaultRun(ROOT, sys.executable, tmp_path, database_url)
        try:
            yield run
        finally:
            run.stop()


@pytest.mark.parametrize("fault", FAULTS)
def test_nothing_is_lost_stuck_or_logged_out_when_a_process_dies(stack, fault, capsys):
    page = SlowPage()
    try:
        result = run_fault(stack, fault, page.url, settle=SETTLE_SECONDS)
    finally:
        page.close()
    with capsys.disabled():  # the figures, for the stage's page
        print(f"\nfault {fault}: recovered after {result['recovered_after']} s, "
              f"{len(result['posted'])} posted, {result['posts_failed']} posts failed")
    if os.environ.get("FLACK_FAULTS_OUT"):  # bench/ collects them
        with open(os.environ["FLACK_FAULTS_OUT"], "a") as out:
            out.write(json.dumps({key: value for key, value in result.items()
                                  if key != "stored"}) + "\n")
    check_nothing_lost(result)
