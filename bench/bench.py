#!/usr/bin/env python3
"""Measure the tutorial's scalability claims: stages side by side, on this machine.

    python bench/bench.py list                       # the scenarios, and which can run
    python bench/bench.py run [--scenario NAME]      # measure; write results and charts
    python bench/bench.py run --smoke                # a few seconds each, into a temp folder
    python bench/bench.py charts                     # redraw the charts from the results
    python3 bench/bench.py docs                      # the pages' snippets

`make bench`, `make bench SCENARIO=NAME` and `make bench-smoke` run it with
the bench venv, whose matplotlib draws the charts. `docs` needs only the
standard library, so `make docs` runs it with the system python3.
Everything it starts listens on 127.0.0.1 and is stopped before it exits.
"""
import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

from harness import checkout, page, runner
from harness.scenarios import all_scenarios, by_name

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
IMG_DIR = ROOT / "docs" / "img" / "bench"
SNIPPETS_DIR = ROOT / "docs" / "_generated" / "bench"
# Each snippet comes twice, its chart linked from where the page that includes it lives.
SNIPPET_PAGES = {"": "img/bench", "-stage": "../img/bench"}  # docs/measured.md, docs/stages/


def cmd_list(args):
    """Print each scenario and whether its stages exist."""
    for scenario in all_scenarios():
        _, missing = checkout.find(scenario.stages)
        if missing:
            state = f"needs {', '.join(missing)}"
        elif scenario.measure is None:
            state = "not written yet"
        else:
            state = "ready"
        print(f"{scenario.number}. {scenario.name:<16} {state:<18} {scenario.title}")
    return 0


def cmd_run(args):
    """Run the chosen scenarios, or all of them; return 1 if any failed."""
    scenarios = [by_name(args.scenario)] if args.scenario else all_scenarios()
    if importlib.util.find_spec("matplotlib") is None:
        print("bench: matplotlib is missing: run `make bench`, which uses .venv-bench",
              file=sys.stderr)
        return 1
    smoke = args.smoke or os.environ.get("BENCH_SMOKE", "") not in ("", "0")
    if args.out:
        outputs = runner.Outputs.inside(args.out)
    elif smoke:  # smoke numbers mean nothing: never let them near the committed results
        outputs = runner.Outputs.inside(tempfile.mkdtemp(prefix="flack-bench-smoke-"))
    else:
        outputs = runner.Outputs(RESULTS_DIR, IMG_DIR)
    mode = "smoke run, a few seconds per scenario" if smoke else "full run"
    print(f"bench: {mode}; writing to {outputs.results_dir} and {outputs.img_dir}", flush=True)
    failed = runner.run_scenarios(scenarios, smoke, outputs, args.seconds, args.repetitions)
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_charts(args):
    """Redraw every chart from its committed results, without measuring again."""
    for scenario in all_scenarios():
        results_path = RESULTS_DIR / f"{scenario.name}.json"
        if results_path.exists() and scenario.chart:
            chart = IMG_DIR / f"{scenario.name}.svg"
            scenario.chart(json.loads(results_path.read_text()), chart)
            print(f"bench: wrote {chart}")
    return 0


def cmd_docs(args):
    """Write the snippets of each scenario from the committed JSON: <name>.md, <name>-stage.md.

    <name>.md is for docs/measured.md, <name>-stage.md for a page in docs/stages/:
    an included snippet's links are read from the including page's folder.
    """
    out = Path(args.out) if args.out else SNIPPETS_DIR
    out.mkdir(parents=True, exist_ok=True)
    for scenario in all_scenarios():
        results_path = RESULTS_DIR / f"{scenario.name}.json"
        _, missing = checkout.find(scenario.stages)
        chart = IMG_DIR / f"{scenario.name}.svg"
        for suffix, img_folder in SNIPPET_PAGES.items():
            if results_path.exists() and scenario.table:
                link = f"{img_folder}/{chart.name}" if chart.exists() else None
                text = page.measured(scenario, json.loads(results_path.read_text()), link)
            else:
                text = page.not_measured(scenario, missing)
            (out / f"{scenario.name}{suffix}.md").write_text(text)
    print(f"bench: wrote the pages' snippets to {out}")
    return 0


def parser():
    """Build the command-line parser."""
    main = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = main.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the scenarios").set_defaults(run=cmd_list)
    run = sub.add_parser("run", help="run scenarios and write their results")
    run.add_argument("--scenario", help="only this scenario (default: every one)")
    run.add_argument("--smoke", action="store_true",
                     help="tiny durations, into a temporary folder (also BENCH_SMOKE=1)")
    run.add_argument("--seconds", type=int,
                     help="seconds per measured run, instead of the scenario's own")
    run.add_argument("--repetitions", type=int,
                     help="measured runs of each thing compared, instead of the scenario's own")
    run.add_argument("--out", help="write results/, img/ and pages/ into this folder instead")
    run.set_defaults(run=cmd_run)
    sub.add_parser("charts", help="redraw the charts from the results (bench venv)"
                   ).set_defaults(run=cmd_charts)
    docs = sub.add_parser("docs", help="write the pages' snippets")
    docs.add_argument("--out", help=f"folder (default {SNIPPETS_DIR.relative_to(ROOT)})")
    docs.set_defaults(run=cmd_docs)
    return main


def main(argv=None):
    """Run the subcommand; turn Ctrl-C and the time limit into a message and a status."""
    args = parser().parse_args(argv)
    os.chdir(ROOT)  # the stage tool runs git here
    try:
        return args.run(args)
    except KeyError as error:
        print(f"bench: {error.args[0]}", file=sys.stderr)
        return 2
    except checkout.StageError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
