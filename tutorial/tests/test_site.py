"""Tests of the built site: generated names are not read as Markdown, and the test
counts that pages state agree with the stages.

Run after `make docs`, with the docs venv's Python so that the Markdown checks run too:

    .venv-docs/bin/python -m unittest discover -s tutorial/tests -v

SITE_DIR names another build folder (default: site/ at the top of the repository).
"""
import html.parser
import os
import re
import sys
import tempfile
import unittest
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TUTORIAL))

import stage  # noqa: E402  (the stage tool, found through the line above)

TOP = TUTORIAL.parent
SITE = Path(os.environ.get("SITE_DIR") or TOP / "site")
# Emphasis glued to a word or a slash is a name that Markdown ate: flack/<strong>init</strong>.py
EATEN_NAME = re.compile(r"[\w/.]<(strong|em)>[\w.]+</\1>|<(strong|em)>[\w.]+</\2>(?:[\w/]|\.\w)")
# "89 test functions" counts functions, not the tests their parameters make.
COUNT = re.compile(r"\b(\d+) tests?\b(?!\W+functions?\b)(?P<after>(?:\W+\w+){0,3})")
PARTIAL = re.compile(r"\b(added|new|more|fewer|for|in tests/)", re.I)


def stage_page(version):
    """Return the built page of a stage, with or without directory URLs."""
    for path in (SITE / "stages" / f"{version}.html", SITE / "stages" / version / "index.html"):
        if path.exists():
            return path.read_text(encoding="utf-8")
    raise AssertionError(f"no built page for {version} in {SITE}: run `make docs` first")


class ProseText(html.parser.HTMLParser):
    """Collect a page's article text outside code, and the generated test-count sentences."""

    def __init__(self):
        """Start outside the article."""
        super().__init__()
        self.prose, self.generated = [], []
        self.code_depth = self.generated_depth = 0
        self.in_article = False

    def handle_starttag(self, tag, attrs):
        """Note entering the article, code, or a generated count."""
        classes = dict(attrs).get("class") or ""
        if tag == "article":
            self.in_article = True
        if tag in ("pre", "code"):
            self.code_depth += 1
        if self.generated_depth or "flack-test-count" in classes.split():
            self.generated_depth += 1

    def handle_endtag(self, tag):
        """Note leaving them."""
        if tag == "article":
            self.in_article = False
        if tag in ("pre", "code"):
            self.code_depth -= 1
        if self.generated_depth:
            self.generated_depth -= 1

    def handle_data(self, data):
        """Keep text by where it is."""
        if not self.in_article:
            return
        if self.generated_depth:
            self.generated.append(data)
        elif not self.code_depth:
            self.prose.append(data)


def read(page):
    """Return (prose text, generated count text) of a built page."""
    parser = ProseText()
    parser.feed(page)
    return " ".join(parser.prose), " ".join(parser.generated)


class EscapingTest(unittest.TestCase):
    """Names from the code and the history stay names on the site."""

    def test_no_name_is_eaten_by_markdown(self):
        """No page shows emphasis glued to a word, as flack/__init__.py read as Markdown gives."""
        pages = sorted(SITE.rglob("*.html"))
        self.assertTrue(pages, f"no pages in {SITE}: run `make docs` first")
        damaged = []
        for path in pages:
            for match in EATEN_NAME.finditer(path.read_text(encoding="utf-8")):
                damaged.append(f"{path.relative_to(SITE)}: {match.group()}")
        self.assertEqual(damaged, [])

    def test_escaped_text_renders_as_itself(self):
        """Generated text with Markdown's special characters renders as the same text."""
        try:
            import markdown
        except ImportError:
            self.skipTest("needs the markdown package: run with .venv-docs/bin/python")
        samples = ["flack/__init__.py", "a *star* and [a](link) | pipe", "<b>not html</b> & co",
                   "`flack/__init__.py` stays code while __main__ does not"]
        for sample in samples:
            rendered = markdown.markdown(stage.markdown_text(sample), extensions=["tables"])
            self.assertNotIn("<strong>", rendered, sample)
            self.assertNotIn("<em>", rendered, sample)
            self.assertNotIn("<a ", rendered, sample)
            self.assertNotIn("<b>", rendered, sample)


class CountsTest(unittest.TestCase):
    """The test counts a page states are the counts recorded for its stage."""

    @classmethod
    def setUpClass(cls):
        """Read the stages and their recorded facts once."""
        os.chdir(TOP)
        cls.stages = stage.stages()
        cls.facts = stage.load_facts()

    def test_every_stage_has_facts_for_its_commit(self):
        """Each stage has counts recorded for the commit it is at now."""
        missing = [s.version for s in self.stages if stage.stage_facts(s, self.facts) is None]
        self.assertEqual(missing, [], "run `python3 tutorial/stage.py facts` and commit "
                         f"{stage.FACTS_FILE}")

    def test_generated_counts_match_the_facts(self):
        """The generated sentence on each stage page states the recorded count."""
        for s in self.stages:
            counts = stage.stage_facts(s, self.facts)
            if counts is None:
                continue
            _, generated = read(stage_page(s.version))
            with self.subTest(stage=s.version):
                self.assertIn(f"collects {counts['tests']} tests", generated)

    def test_counts_stated_by_hand_match_the_facts(self):
        """A total stated in a page's prose is the collected count, or the count run on SQLite.

        A count followed by "added", "new", "more" or "for" counts a part, and is left alone.
        """
        for s in self.stages:
            counts = stage.stage_facts(s, self.facts)
            if counts is None:
                continue
            allowed = {counts["tests"], counts["tests"] - counts["skipped"]}
            prose, _ = read(stage_page(s.version))
            for match in COUNT.finditer(prose):
                if PARTIAL.search(match["after"]):
                    continue
                with self.subTest(stage=s.version, statement=f"{match[1]} tests"):
                    self.assertIn(int(match[1]), allowed)


class LessonTest(unittest.TestCase):
    """The stage map's Lesson column: the first item of each page's "What you will learn"."""

    def test_every_stage_has_a_lesson(self):
        """No stage's row has an empty Lesson, whether or not its commit message has a body."""
        os.chdir(TOP)
        for s in stage.stages():
            with self.subTest(stage=s.version):
                self.assertTrue(stage.lesson(TOP / "docs" / "stages" / f"{s.version}.md"))

    def test_lesson_is_the_first_item_on_one_line(self):
        """An item written over several lines comes out as one line, without the next item."""
        page_text = ("# v9.9: a stage\n\n## What you will learn\n\n- How one thing\n"
                     "  leads to `another`.\n- Not this one.\n\nThe text.\n")
        with tempfile.TemporaryDirectory() as folder:
            page = Path(folder) / "v9.9.md"
            page.write_text(page_text, encoding="utf-8")
            self.assertEqual(stage.lesson(page), "How one thing leads to `another`.")

    def test_a_page_without_the_list_is_refused(self):
        """A page that lacks the list stops the build with its name, not with an empty cell."""
        with tempfile.TemporaryDirectory() as folder:
            page = Path(folder) / "v9.9.md"
            page.write_text("# v9.9: a stage\n\nNo list here.\n", encoding="utf-8")
            with self.assertRaisesRegex(stage.StageError, "v9.9.md"):
                stage.lesson(page)


if __name__ == "__main__":
    unittest.main()
