"""The scenarios not written yet: registered, so that the page and `list` name them."""
from . import Scenario

SCENARIOS = [
    Scenario(
        name="workers", number=5,
        title="One process, or several",
        question="Requests per second and latency with one server process and with several "
                 "sharing state through Redis, at v0.18.",
        stages=("v0.18",)),
]
