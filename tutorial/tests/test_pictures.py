"""Tests of the request-path picture: each stage's is drawn from that stage's own files.

The first tests read the stages' files from git, the last ones the built site (run
`make docs` first):

    .venv-docs/bin/python -m unittest discover -s tutorial/tests -v
"""
import itertools
import os
import re
import sys
import unittest
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TUTORIAL))

import pictures  # noqa: E402  (found through the line above)
import serving  # noqa: E402
import stage  # noqa: E402
from test_site import stage_page  # noqa: E402

TOP = TUTORIAL.parent
FIGURE = re.compile(r'<figure class="flack-picture">.*?</figure>', re.S)


def request_path_figure(version):
    """Return the request-path figure on a stage's built page, or None."""
    found = [f for f in FIGURE.findall(stage_page(version)) if "The path of a request" in f]
    return found[0] if found else None


def svg_text(figure):
    """Return the words a figure's SVG shows, one text element a line, entities decoded."""
    texts = re.findall(r"<text[^>]*>(.*?)</text>", figure, re.S)
    return "\n".join(re.sub(r"&#45;", "-", text).replace("&amp;", "&") for text in texts)


class RequestPathTest(unittest.TestCase):
    """What counts in each stage's serving files, and the picture drawn from them."""

    @classmethod
    def setUpClass(cls):
        """Read every stage that is served as in production, and draw its picture."""
        os.chdir(TOP)
        cls.stages = {}  # version -> (what counts, dot source)
        for s in stage.stages():
            read = pictures.request_path_read(s, stage.git)
            if read:
                cls.stages[s.version] = (serving.counted(read), pictures.request_path_dot(read))
        if "v0.18" not in cls.stages:
            raise unittest.SkipTest("needs the history up to v0.18 at least")

    def test_stages_served_differently_get_different_pictures(self):
        """Two stages whose serving files say different things never share a picture."""
        for (a, (counted_a, dot_a)), (b, (counted_b, dot_b)) in \
                itertools.combinations(self.stages.items(), 2):
            files = [path for path in serving.FILES if counted_a[path] != counted_b[path]]
            if files:
                with self.subTest(stages=f"{a} and {b}", files=files):
                    self.assertNotEqual(dot_a, dot_b, f"{a} and {b} differ in {files}, "
                                        "but their pictures are the same")

    def test_v0_18_shows_its_processes_redis_and_websockets(self):
        """v0.18's picture has its Celery worker and beat, Redis, ip_hash and /socket.io/."""
        dot = self.stages["v0.18"][1]
        for words in ("Celery worker", "Celery beat", "Redis", "Celery broker",
                      "Socket.IO message queue", "ip_hash over 2 servers", "/socket.io/",
                      "127.0.0.1:5000", "127.0.0.1:5001", "eventlet"):
            with self.subTest(words=words):
                self.assertIn(words, dot)

    def test_v0_13_has_one_web_process_and_no_redis(self):
        """v0.13 runs one gunicorn behind nginx, with no Celery, Redis or WebSocket."""
        dot = self.stages["v0.13"][1]
        self.assertEqual(dot.count("gunicorn (Procfile web:)"), 1)
        for words in ("Celery", "Redis", "WebSocket", "ip_hash"):
            with self.subTest(words=words):
                self.assertNotIn(words, dot)

    def test_comments_do_not_count(self):
        """A comment changed in a serving file changes nothing that counts."""
        v13 = next(s for s in stage.stages() if s.version == "v0.13")
        read = pictures.request_path_read(v13, stage.git)

        def commented(path):
            """Return the file with a comment line added, and one after a directive."""
            text = read(path)
            if path.endswith(".conf"):
                text = text.replace(";", "; # after a directive", 1)
            if path.endswith((".conf", "Procfile", "Makefile")):
                return "# a new comment\n" + text
            return text.replace("\nimport ", "\n# a new comment\nimport ", 1)
        self.assertEqual(serving.counted(commented), serving.counted(read))


class RequestPathPageTest(unittest.TestCase):
    """The built pages show the request path where it changes, and only there."""

    def test_each_change_of_what_counts_has_its_picture(self):
        """A stage page has a request-path picture if and only if what counts changed."""
        os.chdir(TOP)
        all_stages = stage.stages()
        for s in all_stages:
            before = stage.previous_stage(s, all_stages)
            now = pictures.request_path_counts(s, stage.git)
            changed = now is not None and now != pictures.request_path_counts(before, stage.git)
            with self.subTest(stage=s.version):
                self.assertEqual(request_path_figure(s.version) is not None, changed)

    def test_v0_21_page_shows_gevent_and_its_redis(self):
        """v0.21's page draws the gevent worker, with beat, Redis and the WebSocket location."""
        text = svg_text(request_path_figure("v0.21") or "")
        for words in ("gevent worker", "Celery beat", "Redis", "/socket.io/", "ip_hash"):
            with self.subTest(words=words):
                self.assertIn(words, text)


if __name__ == "__main__":
    unittest.main()
