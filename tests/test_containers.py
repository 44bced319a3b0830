"""The containers of compose.yaml: each one killed while the chat works comes back alone.

A real container engine builds Flack's image and runs compose.yaml (tests.containers),
so these tests run only where FLACK_TEST_COMPOSE names the compose command, as
`make test-containers` sets it. While browsers are connected and a poster posts
messages with links, one container's main process is killed: the engine must start
it again by itself (restart: unless-stopped), no other container may stop, and the
checks of the fault tests (tests/test_faults.py) must hold: every message posted is
stored once and reaches its final version and every browser, and nobody is logged out.
"""
import json
import os
import re

import pytest

from tests.containers import FAULTS, ContainerStack
from tests.faults import check_nothing_lost, run_fault
from tests.helpers import ROOT

COMPOSE = os.environ.get("FLACK_TEST_COMPOSE")

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(not COMPOSE, reason="FLACK_TEST_COMPOSE is not set: no container engine "
                                           "to test with (make test-containers sets it)"),
]

SETTLE_SECONDS = 90
# The link in each message: the chat's own page, through nginx, on the stack's network.
LINK = "http://nginx/"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """compose.yaml's services, up and healthy, for every test of this module."""
    containers = ContainerStack(ROOT, COMPOSE, tmp_path_factory.mktemp("containers"))
    try:
        containers.up()
        yield containers
    finally:
        containers.down()


def test_the_chat_answers_through_nginx_with_a_request_id(stack):
    status, body = stack.proxy.call("GET", "/readyz")
    assert status == 200, body
    assert set(body["checks"].values()) == {"ok"}
    lines = [json.loads(line) for line in stack.logs("nginx").splitlines()
             if line.startswith("{")]
    ids = {line["request_id"] for line in lines if line["path"] == "/readyz"}
    app_lines = "".join(stack.logs(web) for web in ("web1", "web2"))
    assert any(re.search(f'"request_id": ?"{request_id}"', app_lines) for request_id in ids)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_killed_container_comes_back_alone_and_nothing_is_lost(stack, fault, capsys):
    stack.wait_healthy(stack.services, SETTLE_SECONDS)  # the last test's fault is over
    stack.new_run()
    before = stack.pids()
    result = run_fault(stack, fault, LINK, settle=SETTLE_SECONDS)
    came_back_after = stack.came_back_after(fault)
    after = stack.pids()
    with capsys.disabled():  # the figures, for the stage's page
        print(f"\ncontainer {fault}: back after {came_back_after} s, all caught up "
              f"after {result['recovered_after']} s, {len(result['posted'])} posted, "
              f"{result['posts_failed']} posts failed")
    if os.environ.get("FLACK_CONTAINERS_OUT"):  # bench/ and the page collect them
        with open(os.environ["FLACK_CONTAINERS_OUT"], "a") as out:
            out.write(json.dumps({"came_back_after": came_back_after, **{
                key: value for key, value in result.items() if key != "stored"}}) + "\n")
    assert came_back_after is not None, f"{fault} did not come back healthy"
    assert after[fault] not in (0, before[fault])  # a new process: the engine restarted it
    others = {service: pid for service, pid in before.items() if service != fault}
    assert {service: after[service] for service in others} == others  # nothing else stopped
    check_nothing_lost(result)
