"""The figures that stage pages take from the benchmark's results, checked against them.

docs/data/prose-figures.json lists each figure of a page's prose that comes from a
results file, with the way to compute it; a figure that no longer matches its results
(a rerun, a typo) fails here. Every "N ms" in a stage page's prose must be one of them,
or a setting that the file lists.

    python3 -m unittest discover -s tutorial/tests -v
"""
import json
import re
import unittest
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent.parent
FIGURES = TOP / "docs" / "data" / "prose-figures.json"
MILLISECONDS_RE = re.compile(r"\d[\d,]*(?:\.\d+)? ?ms\b")
FENCE_RE = re.compile(r"^( *)(`{3,}).*?^\1\2 *$", re.MULTILINE | re.DOTALL)
CODE_SPAN_RE = re.compile(r"`[^`\n]*`")


def flat(text):
    """Return text with every run of white space, line ends included, as one space."""
    return " ".join(text.split())


def prose(page):
    """Return a page's Markdown without its code blocks and code spans, flattened."""
    text = (TOP / "docs" / page).read_text(encoding="utf-8")
    return flat(CODE_SPAN_RE.sub("", FENCE_RE.sub("", text)))


def value_at(data, path):
    """Return the value at a path like runs[label=x;clients=1000]/summary/p50 in loaded JSON.

    In brackets, the first item of the list whose keys have those values, compared as text.
    """
    for part in path.split("/"):
        match = re.fullmatch(r"(\w+)\[(.+)\]", part)
        if match:
            name, conditions = match.groups()
            wanted = dict(condition.split("=", 1) for condition in conditions.split(";"))
            data = next(item for item in data[name]
                        if all(str(item.get(key)) == value for key, value in wanted.items()))
        else:
            data = data[part]
    return data


def figure_text(figure):
    """Return the text the page must hold for a figure, its value computed from its results."""
    data = json.loads((TOP / figure["results"]).read_text(encoding="utf-8"))
    value = value_at(data, figure["path"])
    if "over" in figure:
        value = figure["over"] / value
    value *= figure.get("scale", 1)
    return flat(figure["text"].format(figure["format"].format(value)))


class ProseFiguresTest(unittest.TestCase):
    figures = json.loads(FIGURES.read_text(encoding="utf-8"))

    def test_each_figure_matches_its_results(self):
        for figure in self.figures["figures"]:
            with self.subTest(page=figure["page"], text=figure["text"]):
                self.assertTrue(figure_text(figure) in prose(figure["page"]),
                                f"{figure_text(figure)!r} is not in {figure['page']}: the "
                                f"page's figure differs from {figure['results']}")

    def test_every_millisecond_figure_of_a_stage_page_is_a_result_or_a_setting(self):
        known = {}
        for figure in self.figures["figures"]:
            known.setdefault(figure["page"], []).append(figure_text(figure))
        for setting in self.figures["settings"]:
            known.setdefault(setting["page"], []).append(flat(setting["text"]))
        for path in sorted((TOP / "docs" / "stages").glob("v*.md")):
            page = f"stages/{path.name}"
            text = prose(page)
            for match in MILLISECONDS_RE.finditer(text):
                with self.subTest(page=page, figure=match.group()):
                    self.assertTrue(
                        any(match.group() in entry and entry in text[max(0, match.start() - 80):
                                                                       match.end() + 80]
                            for entry in known.get(page, [])),
                        f"{match.group()!r} in {page} comes from no results file in "
                        f"{FIGURES.relative_to(TOP)}: add it there, or list it as a setting")


class ValueAtTest(unittest.TestCase):
    def test_a_run_by_its_label_then_keys(self):
        data = {"runs": [{"label": "a", "p50": 1}, {"label": "b + c", "p50": 2}]}
        self.assertEqual(value_at(data, "runs[label=b + c]/p50"), 2)

    def test_a_run_by_several_keys(self):
        data = {"runs": [{"label": "a", "clients": 100, "p50": 1},
                         {"label": "a", "clients": 1000, "p50": 2}]}
        self.assertEqual(value_at(data, "runs[label=a;clients=1000]/p50"), 2)

    def test_a_figure_is_found_only_as_its_results_give_it(self):
        figure = {"results": "bench/results/web-servers.json", "text": "p50 of {} ms",
                  "path": "runs[label=gunicorn + eventlet]/summary/latency_ms/50/median",
                  "format": "{:.1f}"}
        self.assertIn(figure_text(figure), prose("stages/v0.21.md"))
        self.assertNotIn(figure_text({**figure, "format": "{:.2f}"}), prose("stages/v0.21.md"))


if __name__ == "__main__":
    unittest.main()
