"""The scenarios whose stages do not exist yet: registered, so that the page lists them."""
from . import Scenario

SCENARIOS = [
    Scenario(
        name="workers", number=5,
        title="One process, or several",
        question="Requests per second and latency with one server process and with several "
                 "sharing state through Redis, at v0.18.",
        stages=("v0.18",)),
    Scenario(
        name="fan-out", number=6,
        title="Fan-out against a Node.js Socket.IO reference",
        question="How long one message takes to reach every connected client, for Flack at "
                 "v0.17 and for a minimal Node.js socket.io server doing the same.",
        stages=("v0.17",), also_needs="a Node.js socket.io reference server"),
]
