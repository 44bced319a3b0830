"""The registry of scenarios: one per lesson of the tutorial whose claim can be measured.

A scenario names the stages it compares. The runner skips it, saying why,
while any of them is missing; one whose stages exist but whose measure is
still None says it is not written yet. To add one, write a module here with
a Scenario and list it in SCENARIOS.
"""
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """A measurable claim of the tutorial, and how to measure, chart and tabulate it."""

    name: str  # for `make bench SCENARIO=name` and the file names
    number: int  # its place on the Measured page
    title: str
    question: str  # what it measures, in one sentence
    stages: tuple  # the versions it needs
    also_needs: str = ""  # anything else it needs besides the stages
    needs_wrk: bool = True  # whether it loads a server with wrk
    max_minutes: int = 15  # its time limit in a full run, a first venv install included
    # measure(run) returns {"settings": ..., "runs": [...]}; run is a runner.BenchRun.
    # A list of "failures" in it is written down, and makes the scenario fail.
    measure: Callable | None = None
    chart: Callable | None = None  # chart(results, path) writes an SVG (none: nothing valid)
    table: Callable | None = None  # table(results) returns markdown
    reading: Callable | None = None  # reading(results) returns markdown sentences


def all_scenarios():
    """Return every registered scenario, in page order."""
    from . import (
        broadcast,
        containers,
        fan_out,
        faults,
        leaving_eventlet,
        link_previews,
        login_flood,
        planned,
        polling_vs_push,
        presence_writes,
        test_suite,
        turns,
        web_servers,
        workers,
    )
    return sorted([test_suite.SCENARIO, link_previews.SCENARIO, web_servers.SCENARIO,
                   polling_vs_push.SCENARIO, workers.SCENARIO, fan_out.SCENARIO,
                   faults.SCENARIO, presence_writes.SCENARIO, login_flood.SCENARIO,
                   leaving_eventlet.SCENARIO, broadcast.SCENARIO, turns.SCENARIO,
                   containers.SCENARIO,
                   *planned.SCENARIOS],
                  key=lambda s: s.number)


def by_name(name):
    """Return the scenario called name, or raise KeyError listing the names."""
    for scenario in all_scenarios():
        if scenario.name == name:
            return scenario
    names = ", ".join(s.name for s in all_scenarios())
    raise KeyError(f"no scenario {name!r}; the scenarios are: {names}")
