"""Tests of the links from a stage page's prose into its diff, and of the diff's order:
the mkdocs hook (tutorial/mkdocs_hooks.py), the names and order that diffview gives the
changed files, and, once `make docs` has built the site, the links of a built page.

    .venv-docs/bin/python -m unittest discover -s tutorial/tests -v
"""
import json
import re
import sys
import tempfile
import unittest
from pathlib import Path
from types import SimpleNamespace

TUTORIAL = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TUTORIAL))

import diffview  # noqa: E402  (found through the line above)
import mkdocs_hooks  # noqa: E402
import stage  # noqa: E402
from test_site import stage_page  # noqa: E402

NAMES = {"flack/models.py": ("diff-flack-models-py", "flack/models.py"),
         "models.py": ("diff-flack-models-py", "flack/models.py"),
         "Makefile": ("diff-makefile", "Makefile")}
MODELS_LINK = '<a class="diff-link" href="#diff-flack-models-py"'


def file_diff(path, churn=1, old_path=None):
    """Return a FileDiff of one added line, as diffview.parse makes them."""
    change = stage.FileChange(path, old_path or path, churn, 0, False)
    line = diffview.Line("add", False, None, 1, "x = 1")
    return diffview.FileDiff(change, [diffview.Hunk(1, 1, "", [line])])


def file_ids(page_html):
    """Return the ids of the file blocks of a diff, in order, with whether each is open."""
    return re.findall(r'<details class="fd-file" id="([^"]+)"( open)?', page_html)


class LinkCodeSpansTest(unittest.TestCase):
    def link(self, text):
        return mkdocs_hooks.link_code_spans(text, NAMES)

    def test_a_code_span_naming_a_changed_file_links_to_its_anchor(self):
        out = self.link("<p>The model is in <code>flack/models.py</code>.</p>")
        self.assertIn(MODELS_LINK, out)
        self.assertIn("><code>flack/models.py</code></a>.</p>", out)

    def test_each_name_of_the_file_links(self):
        out = self.link("<p><code>models.py</code> and <code>Makefile</code></p>")
        self.assertIn(MODELS_LINK, out)
        self.assertIn('href="#diff-makefile"', out)

    def test_a_file_the_stage_did_not_change_is_not_linked(self):
        text = "<p><code>flack/auth.py</code> and <code>make test</code></p>"
        self.assertEqual(self.link(text), text)

    def test_code_in_a_code_block_is_not_linked(self):
        text = ('<div class="highlight"><pre><span></span><code>vi <span>flack/models.py</span>'
                "</code></pre></div><pre><code>flack/models.py</code></pre>")
        self.assertEqual(self.link(text), text)

    def test_code_in_a_link_is_not_linked_again(self):
        text = '<p><a href="../v0.3.html"><code>flack/models.py</code></a></p>'
        self.assertEqual(self.link(text), text)

    def test_code_inside_the_diff_is_not_linked_but_after_it_is(self):
        diff = ('<div class="flack-diff"><div class="fd-diffstat"><table><tr><td>'
                "<code>flack/models.py</code></td></tr></table></div>"
                '<details class="fd-file"><summary><code>flack/models.py</code></summary>'
                '<div class="highlight"></div></details></div>')
        out = self.link(diff + "<p><code>flack/models.py</code></p>")
        self.assertTrue(out.startswith(diff))
        self.assertEqual(out.count("diff-link"), 1)

    def test_code_in_a_generated_picture_is_not_linked(self):
        text = ('<figure class="flack-picture"><svg></svg><figcaption>'
                "<code>flack/models.py</code></figcaption></figure>")
        self.assertEqual(self.link(text), text)


class OnPageContentTest(unittest.TestCase):
    def setUp(self):
        folder = tempfile.TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        self.docs = Path(folder.name)
        files = [{"path": "Makefile", "anchor": "diff-makefile", "names": ["Makefile"]}]
        listing = self.docs / "_generated" / "stages" / "v0.3-files.json"
        listing.parent.mkdir(parents=True)
        listing.write_text(json.dumps(files), encoding="utf-8")

    def content(self, src_uri):
        page = SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))
        config = {"docs_dir": str(self.docs)}
        return mkdocs_hooks.on_page_content("<p><code>Makefile</code></p>", page, config, None)

    def test_a_stage_page_links_the_files_its_stage_changed(self):
        self.assertIn('href="#diff-makefile"', self.content("stages/v0.3.md"))

    def test_other_pages_are_left_alone(self):
        for src_uri in ("index.md", "stages/v0.1/data.md", "stages/v0.4.md"):
            with self.subTest(src_uri):
                self.assertEqual(self.content(src_uri), "<p><code>Makefile</code></p>")


class FileNamesTest(unittest.TestCase):
    def test_a_path_a_unique_tail_and_a_folder_with_one_change_name_a_file(self):
        diffs = [file_diff("flack/models.py"), file_diff("migrations/versions/1a_users.py")]
        paths = ["flack/models.py", "flack/__init__.py", "flack/api/__init__.py", "manage.py",
                 "migrations/env.py", "migrations/versions/1a_users.py"]
        names = diffview.file_names(diffs, paths)
        for name in ("flack/models.py", "models.py", "migrations/versions/", "1a_users.py"):
            self.assertIn(name, names)
        self.assertEqual(names["models.py"], "flack/models.py")
        self.assertNotIn("migrations/", names)  # it holds env.py too

    def test_a_tail_that_two_files_share_names_neither(self):
        diffs = [file_diff("flack/__init__.py")]
        names = diffview.file_names(diffs, ["flack/__init__.py", "flack/api/__init__.py"])
        self.assertNotIn("__init__.py", names)
        self.assertIn("flack/__init__.py", names)

    def test_the_old_name_of_a_renamed_file_names_it(self):
        names = diffview.file_names([file_diff("flack/__init__.py", old_path="flack.py")], [])
        self.assertEqual(names["flack.py"], "flack/__init__.py")


class ProseSpansTest(unittest.TestCase):
    def test_the_spans_of_the_prose_in_order_not_those_of_code_blocks_or_the_change(self):
        page = ("# v0.3\n\nThe models move to `flack/models.py`, and `flack.py` imports\n"
                "them.\n\n```bash\ncat `Makefile`\n```\n\n!!! tip\n    ```python\n"
                "    `tests.py`\n    ```\n    Then `make\n    test`.\n\n"
                "## The change\n\n`manage.py`\n")
        self.assertEqual(diffview.prose_spans(page), ["flack/models.py", "flack.py", "make test"])


class OrderTest(unittest.TestCase):
    def setUp(self):
        self.diffs = [file_diff("flack/api.py", churn=50), file_diff("flack/models.py", churn=40),
                      file_diff("tests/test_api.py", churn=30), file_diff("Makefile", churn=2),
                      file_diff("package-lock.json", churn=900), file_diff("config.py", churn=20),
                      file_diff("migrations/versions/1a_users.py", churn=60)]

    def test_the_files_the_page_names_come_first_in_its_order_then_the_rest_as_before(self):
        page_html = diffview.stage_html(self.diffs, ["Makefile", "flack/models.py"])
        self.assertEqual([anchor for anchor, _ in file_ids(page_html)],
                         ["diff-makefile", "diff-flack-models-py", "diff-flack-api-py",
                          "diff-config-py", "diff-tests-test-api-py", "diff-package-lock-json",
                          "diff-migrations-versions-1a-users-py"])
        stat = page_html[page_html.index('class="fd-diffstat"'):page_html.index("fd-file")]
        self.assertEqual(re.findall(r'href="#([^"]+)"', stat)[:4],
                         ["diff-makefile", "diff-flack-models-py", "diff-flack-api-py",
                          "diff-config-py"])

    def test_lock_files_and_unnamed_migrations_are_a_closed_group_of_their_own(self):
        page_html = diffview.stage_html(self.diffs, ["flack/models.py"])
        blocks = dict(file_ids(page_html))
        self.assertEqual(blocks["diff-package-lock-json"], "")
        self.assertEqual(blocks["diff-migrations-versions-1a-users-py"], "")
        self.assertEqual(blocks["diff-flack-api-py"], " open")
        group = re.search(r"<summary>Lock and generated files: 2 files</summary>(.*?)</details>",
                          page_html)
        self.assertIsNotNone(group)
        self.assertIn("package-lock.json", group[1])

    def test_a_migration_the_page_names_is_a_core_file(self):
        page_html = diffview.stage_html(self.diffs, ["migrations/versions/1a_users.py"])
        ids = file_ids(page_html)
        self.assertEqual(ids[0], ("diff-migrations-versions-1a-users-py", " open"))
        self.assertIn("Lock and generated files: 1 file<", page_html)

    def test_without_the_page_the_order_is_the_old_one(self):
        anchors = [anchor for anchor, _ in file_ids(diffview.stage_html(self.diffs))]
        self.assertEqual(anchors[:4], ["diff-flack-api-py", "diff-flack-models-py",
                                       "diff-config-py", "diff-makefile"])


class BuiltPageLinksTest(unittest.TestCase):
    """Needs the site that `make docs` builds."""

    def links_and_ids(self, version):
        """Return the anchors of a built stage page's prose links, and its ids."""
        page_html = stage_page(version)
        links = re.findall(r'<a class="diff-link" href="#([^"]+)"', page_html)
        return links, set(re.findall(r'\bid="([^"]+)"', page_html))

    def test_a_stage_page_links_its_prose_to_files_of_its_diff(self):
        links, ids = self.links_and_ids("v0.14")
        self.assertTrue(links, "v0.14 has no link from its prose to its diff")
        self.assertIn("diff-flack-models-py", links)
        self.assertTrue(set(links) <= ids, set(links) - ids)

    def test_every_prose_link_of_every_stage_page_lands_on_its_page(self):
        for stage_md in sorted((TUTORIAL.parent / "docs" / "stages").glob("v*.md")):
            with self.subTest(stage_md.stem):
                links, ids = self.links_and_ids(stage_md.stem)
                self.assertTrue(set(links) <= ids, set(links) - ids)


if __name__ == "__main__":
    unittest.main()
