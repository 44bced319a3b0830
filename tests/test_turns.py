"""Each request lets the other green threads run first (flack.turns)."""
import subprocess
import sys

from tests.helpers import ROOT

# In a process of its own: gevent must patch the standard library before anything
# imports it, as gunicorn's gevent worker does.
REQUEST_UNDER_GEVENT = """
from gevent import monkey
monkey.patch_all()
import gevent
from flack import create_app

app = create_app("testing")
order = []

@app.get("/turn")
def turn():
    order.append("the request")
    return {}

gevent.spawn(order.append, "another green thread")
app.test_client().get("/turn")
print(", ".join(order))
"""


def test_a_request_lets_the_other_green_threads_run_first():
    result = subprocess.run([sys.executable, "-c", REQUEST_UNDER_GEVENT], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    # Without its turn, the other green thread would run only once the request had waited
    # for the network, and this one never does.
    assert result.stdout.strip() == "another green thread, the request"
