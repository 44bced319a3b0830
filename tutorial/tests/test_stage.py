"""Tests of the stage tool's own logic that need no git history: which failed tests it
runs again alone, and what it reports when they fail again.

    python3 -m unittest discover -s tutorial/tests -v
"""
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

TUTORIAL = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TUTORIAL))

import stage  # noqa: E402  (the stage tool, found through the line above)

SUMMARY = """\
=========================== short test summary info ============================
SKIPPED [1] tests/test_migrations.py:329: only SQLite copies the table
FAILED tests/test_faults.py::test_nothing_is_lost[redis] - AssertionError: the clients
FAILED tests/test_servers.py::test_nginx_serves_the_chat_over_https
ERROR tests/test_cluster.py::test_two_processes - TimeoutError
FAILED tests/test_faults.py::test_nothing_is_lost[redis] - AssertionError: the clients
================== 3 failed, 644 passed in 266.19s (0:04:26) ===================
"""


class FailedTestsTest(unittest.TestCase):
    def failed(self, text):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as log:
            log.write(text)
        self.addCleanup(Path(log.name).unlink)
        return stage.failed_tests(log.name)

    def test_each_failed_or_erroring_test_once_with_or_without_its_message(self):
        self.assertEqual(self.failed(SUMMARY), [
            "tests/test_cluster.py::test_two_processes",
            "tests/test_faults.py::test_nothing_is_lost[redis]",
            "tests/test_servers.py::test_nginx_serves_the_chat_over_https",
        ])

    def test_a_run_that_names_no_failed_test(self):
        self.assertEqual(self.failed("ERROR collecting tests/test_api.py\nmake: *** Error 2\n"),
                         [])


KNOWN_TEST = ("tests/test_faults.py::test_nothing_is_lost_stuck_or_logged_out_when_a_process_dies"
              "[redis]")


class RerunFailedTest(unittest.TestCase):
    """rerun_failed() with the test runs replaced: each returns the results given."""

    def rerun(self, version, failed, results):
        folder = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, folder)
        log = folder / f"{version}.log"
        log.write_text("".join(f"FAILED {test} - AssertionError\n" for test in failed))
        runs = iter(results)
        commands = []

        def run_logged(command, cwd, log_path, timeout):
            commands.append(command)
            Path(log_path).write_text(log.read_text())
            return next(runs)

        stage_ = stage.Stage(version=version, commits=[])
        with mock.patch.object(stage, "run_logged", run_logged), \
                mock.patch("builtins.print"):
            result = stage.rerun_failed(stage_, folder, Path("/venv"), log, 60)
        return result, commands

    def test_a_test_that_passes_alone_is_flaky(self):
        result, commands = self.rerun("v0.18", ["tests/test_a.py::test_b"], ["fail", "pass"])
        self.assertEqual(result, "flaky")
        self.assertEqual(len(commands), 2)
        self.assertEqual(commands[0][-1], "tests/test_a.py::test_b")

    def test_a_known_failure_of_its_own_stage_is_known(self):
        self.assertEqual(self.rerun("v0.19", [KNOWN_TEST], ["fail", "fail"])[0], "known")

    def test_the_same_test_fails_another_stage(self):
        self.assertEqual(self.rerun("v0.20", [KNOWN_TEST], ["fail", "fail"])[0], "fail")

    def test_a_known_failure_beside_another_fails(self):
        failed = [KNOWN_TEST, "tests/test_api.py::test_post"]
        self.assertEqual(self.rerun("v0.19", failed, ["fail", "fail"])[0], "fail")

    def test_too_many_failed_tests_are_not_run_again(self):
        failed = [f"tests/test_api.py::test_{number}" for number in range(4)]
        self.assertEqual(self.rerun("v0.18", failed, []), ("fail", []))


if __name__ == "__main__":
    unittest.main()
