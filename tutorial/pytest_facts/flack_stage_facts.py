"""A pytest plugin for `stage.py facts`: write how many tests a stage collects, and how
many of them their skip marks skip here, to the JSON file named by $FLACK_FACTS_OUT.

Loaded with `-p flack_stage_facts` and this folder on PYTHONPATH; run with --collect-only,
so no test runs.
"""
import json
import os


def skipped_by_marks(item):
    """Tell whether the item's skip or skipif marks skip it in this environment."""
    try:
        from _pytest.skipping import evaluate_skip_marks
    except ImportError:  # an old pytest: count nothing as skipped rather than guess
        return False
    return evaluate_skip_marks(item) is not None


def pytest_collection_finish(session):
    """Write the counts once collection is over."""
    out = os.environ.get("FLACK_FACTS_OUT")
    if not out:
        return
    counts = {"tests": len(session.items),
              "skipped": sum(1 for item in session.items if skipped_by_marks(item))}
    with open(out, "w", encoding="utf-8") as file:
        json.dump(counts, file)
