"""Scenario 2: posting a message with a slow link, previews in the request (v0.13) or a task."""
import contextlib
import http.server
import itertools
import threading
import time
import urllib.error
from dataclasses import dataclass

from .. import chart, flackapp
from ..numbers import distribution
from . import Scenario

STAGES = BEFORE, AFTER = ("v0.13", "v0.15")
SERVER = flackapp.Server("gunicorn + eventlet", "procfile-web")
PAGE_DELAY_SECONDS = 1.0
POLL_SECONDS = 0.05  # between a client's looks at a message whose preview is pending
PREVIEW_WAIT_SECONDS = 20
# Previews on, allowed to reach the slow page on 127.0.0.1, and one try per page: a
# retry would only add seconds to a failure. v0.13 has no LINK_PREVIEW_RETRIES, and ignores it.
APP_SETTINGS = {"LINK_PREVIEWS": "1", "LINK_PREVIEW_ALLOW_PRIVATE": "1",
                "LINK_PREVIEW_RETRIES": "0"}
FULL = {"posts": 10, "warmup_posts": 1, "repetitions": 2}
SMOKE = {"posts": 3, "warmup_posts": 1, "repetitions": 1}
WHERE = {BEFORE: "in the request", AFTER: "in a Celery task"}


class SlowPages:
    """A web server on 127.0.0.1 whose every page answers after a delay, counting requests."""

    def __init__(self, delay):
        self.fetches = {}  # path -> how many times it was asked for
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                """Answer after the delay, with a page whose title names its path."""
                pages.count_fetch(self.path)
                time.sleep(delay)
                body = (f"<html><head><title>{page_title(self.path)}</title></head>"
                        "<body><p>Worth the wait.</p></body></html>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args):
                """Log nothing: the bench prints only its progress."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def count_fetch(self, path):
        """Count one request for path; the server answers each in a thread of its own."""
        with self._lock:
            self.fetches[path] = self.fetches.get(path, 0) + 1

    def new_path(self):
        """Return the path of a page nobody has asked for yet, so that nothing is cached."""
        return f"/page/{next(self._numbers)}"


def page_title(path):
    """Return the title of the slow page at path, which its preview shows."""
    return f"Slow page {path.rsplit('/', 1)[-1]}"


@contextlib.contextmanager
def slow_pages(delay):
    """Serve SlowPages from a thread of this process while the block runs."""
    pages = SlowPages(delay)
    thread = threading.Thread(target=pages.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield pages
    finally:
        pages.server.shutdown()
        pages.server.server_close()


@dataclass
class Poster:
    """A logged-in client of one stage's running server."""

    version: str
    app: object  # a flackapp.RunningApp
    worker: object  # a flackapp.RunningWorker, or None for a stage without one
    auth: dict

    def call(self, method, path, body=None, headers=None):
        """Send one request; turn any failure into a RuntimeError that names the stage."""
        try:
            return flackapp.call(method, self.app.base_url + path, body, headers)
        except (urllib.error.URLError, OSError) as error:
            raise RuntimeError(f"{self.version}: {method} {path} failed: {error} "
                               f"(log: {self.app.log_path})") from None

    def check_worker(self):
        """Raise RuntimeError if the stage's worker has stopped: no preview would come."""
        problem = self.worker.problem() if self.worker else ""
        if problem:
            raise RuntimeError(f"{self.version}: the Celery worker stopped: {problem} "
                               f"(log: {self.worker.log_path})")


def measure(run):
    """Start both stages side by side, then time each one's posts in turn, round after round."""
    settings = run.settings(FULL, SMOKE)
    samples = {version: [] for version in STAGES}
    with contextlib.ExitStack() as stack:
        pages = stack.enter_context(slow_pages(PAGE_DELAY_SECONDS))
        posters = [stack.enter_context(started(run, version)) for version in STAGES]
        for poster in posters:  # the first requests load code and open the database
            for _ in range(settings["warmup_posts"]):
                post(poster, pages)
        # Round after round, so that a change in the machine's other load hits both stages.
        for repetition in range(settings["repetitions"]):
            for poster in posters:
                batch = [post(poster, pages) for _ in range(settings["posts"])]
                samples[poster.version].extend(batch)
                run.progress(f"{poster.version}, run {repetition + 1} of "
                             f"{settings['repetitions']}: {describe(batch)}")
    runs = [{"label": f"{version}: previews {WHERE[version]}", "stage": version,
             "server": SERVER.kind, "samples": samples[version],
             "summary": summarize(samples[version])} for version in STAGES]
    return {"settings": {**settings, "page_delay_seconds": PAGE_DELAY_SECONDS,
                         "poll_interval_seconds": POLL_SECONDS,
                         "preview_wait_seconds": PREVIEW_WAIT_SECONDS,
                         "server": "the Procfile's web: gunicorn with eventlet",
                         "worker": "the Procfile's worker at v0.15: Celery with a folder as "
                                   "its broker (`LOCAL_BROKER_FOLDER`)",
                         "app_settings": " ".join(f"`{name}={value}`"
                                                  for name, value in APP_SETTINGS.items())},
            "runs": runs, "failures": failures(runs)}


@contextlib.contextmanager
def started(run, version):
    """Start a stage's Procfile web process, and its worker if it has one; yield a Poster."""
    stage_copy = run.checkout(version)
    work_dir = run.work_dir(f"link-previews-{version}")
    # A folder as the broker, as the tests use: no Redis needed. v0.13 ignores it.
    settings = {**APP_SETTINGS, "LOCAL_BROKER_FOLDER": str(work_dir / "broker")}
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(flackapp.running(stage_copy, SERVER, work_dir, settings))
        worker = None
        if "worker" in flackapp.procfile_processes(stage_copy.tree):
            worker = stack.enter_context(flackapp.worker_running(stage_copy, app, work_dir))
        yield Poster(version, app, worker, flackapp.login(app.base_url))


def post(poster, pages):
    """Post a message linking to a new slow page; time the POST and the preview's arrival."""
    path = pages.new_path()
    source = f"Have a look at {pages.base_url}{path} when you have a second."
    started_at = time.perf_counter()
    message = poster.call("POST", "/api/messages", {"source": source}, poster.auth)
    post_seconds = time.perf_counter() - started_at
    in_answer = page_title(path) in message["html"]
    if message.get("previews_pending"):  # v0.15: a worker fetches it; poll as a client does
        message = wait_for_preview(poster, message)
    shown_seconds = time.perf_counter() - started_at
    shown = page_title(path) in message["html"]
    return {"post_ms": round(post_seconds * 1000, 2),
            "preview_ms": round(shown_seconds * 1000, 2) if shown else None,
            "preview_in_answer": in_answer, "page_fetches": pages.fetches.get(path, 0)}


def wait_for_preview(poster, message):
    """Poll GET /api/messages/<id> until its preview is no longer pending, or give up."""
    deadline = time.monotonic() + PREVIEW_WAIT_SECONDS
    while message["previews_pending"] and time.monotonic() < deadline:
        poster.check_worker()
        time.sleep(POLL_SECONDS)
        message = poster.call("GET", f"/api/messages/{message['id']}")
    return message


def describe(batch):
    """Say in a few words how one stage's batch of posts went, for the progress line."""
    summary = summarize(batch)
    if summary["state"] != "measured":
        return f"FAILED: {summary['problem']}"
    post_ms, preview_ms = summary["post_ms"], summary["preview_ms"]
    text = f"POST p50 {post_ms['p50']:.0f} ms, p95 {post_ms['p95']:.0f} ms"
    if summary["previews_in_answer"] < summary["posts"]:
        text += f"; preview shown after {preview_ms['p50']:.0f} ms (p50)"
    return text


def summarize(samples):
    """Sum a stage's posts up: POST latency and preview arrival; failed if a preview is missing."""
    missing = sum(1 for s in samples if s["preview_ms"] is None)
    summary = {"state": "measured", "posts": len(samples),
               "post_ms": distribution([s["post_ms"] for s in samples]),
               "preview_ms": distribution([s["preview_ms"] for s in samples
                                           if s["preview_ms"] is not None]),
               "previews_in_answer": sum(s["preview_in_answer"] for s in samples),
               "page_fetches": sum(s["page_fetches"] for s in samples)}
    if missing:
        summary.update(state="failed", problem=f"{missing} of {len(samples)} messages got no "
                                               f"preview within {PREVIEW_WAIT_SECONDS} s")
    return summary


def failures(runs):
    """List the stages whose previews went missing, one line each."""
    return [f"{run['stage']}: {run['summary']['problem']}" for run in runs
            if run["summary"]["state"] == "failed"]


def speed_up(summaries):
    """Return how many times shorter v0.15's median POST was than v0.13's."""
    return summaries[BEFORE]["post_ms"]["p50"] / max(summaries[AFTER]["post_ms"]["p50"], 0.01)


def draw(results, path):
    """Chart each stage's POST p50 and p95, and how long its preview took to show."""
    summaries = {run["stage"]: run["summary"] for run in results["runs"]}
    if any(s["state"] != "measured" for s in summaries.values()):
        return  # nothing valid to draw: the page shows the table and the failures
    labels = [f"{version}: {WHERE[version]}" for version in STAGES]

    def series(name, key, percentile):
        return chart.Series(name, [summaries[version][key][percentile] for version in STAGES])

    settings = results["settings"]
    chart.bar_chart(path, f"POST /api/messages with a link to a page that answers after "
                          f"{settings['page_delay_seconds']:g} s", labels, [
        chart.Panel("The POST", "milliseconds",
                    [series("p50", "post_ms", "p50"), series("p95", "post_ms", "p95")],
                    ["", f"p50: {speed_up(summaries):.0f}× shorter"]),
        chart.Panel("Until the preview shows", "milliseconds",
                    [series("p50", "preview_ms", "p50")]),
    ], note=f"{summaries[AFTER]['posts']} posts per stage in {settings['repetitions']} "
            f"round(s), stages alternating; {BEFORE}'s preview comes in the POST's answer")


def table(results):
    """Return each stage's POST latency and preview arrival as a markdown table."""
    rows = ["| Stage | Previews | POST p50 (ms) | POST p95 (ms) | Mean / max (ms) | Posts "
            "| Preview shown, p50 (ms) |",
            "|---|---|--:|--:|--:|--:|--:|"]
    for run in results["runs"]:
        s = run["summary"]
        where = WHERE[run["stage"]]
        if s["state"] != "measured":
            rows.append(f"| {run['stage']} | {where} | **failed** | {s['problem']} | | | |")
            continue
        post_ms = s["post_ms"]
        shown = "in the answer" if s["previews_in_answer"] == s["posts"] else \
            f"{s['preview_ms']['p50']:.0f}"
        rows.append(f"| {run['stage']} | {where} | {post_ms['p50']:.1f} | {post_ms['p95']:.1f} "
                    f"| {post_ms['mean']:.1f} / {post_ms['max']:.1f} | {s['posts']} "
                    f"| {shown} |")
    return "\n".join(rows) + "\n"


def reading(results):
    """Say in numbers how long the poster waited at each stage, and when the preview came."""
    summaries = {run["stage"]: run["summary"] for run in results["runs"]}
    delay_ms = results["settings"]["page_delay_seconds"] * 1000
    lines = []
    for version in STAGES:
        s = summaries[version]
        if s["state"] != "measured":
            lines.append(f"- {version}: no numbers, since {s['problem']}.")
            continue
        post_ms = s["post_ms"]
        text = (f"{version}, previews {WHERE[version]}: half of the POSTs took "
                f"{post_ms['p50']:.1f} ms or less, and the slowest 5% {post_ms['p95']:.1f} ms "
                f"or more, against the page's {delay_ms:.0f} ms.")
        if s["previews_in_answer"] < s["posts"]:
            text += (f" The preview showed {s['preview_ms']['p50']:.0f} ms after the POST was "
                     f"sent (p50), found by polling the message every "
                     f"{results['settings']['poll_interval_seconds'] * 1000:.0f} ms.")
        lines.append("- " + text)
    if all(s["state"] == "measured" for s in summaries.values()):
        lines.append(f"- The POST at {AFTER} took {speed_up(summaries):.0f}× less time than at "
                     f"{BEFORE} (p50). The page's second did not go away: the worker waits for "
                     "it instead of the poster, and the preview arrives as an update.")
    fetches = sum(s["page_fetches"] for s in summaries.values())
    posts = sum(s["posts"] for s in summaries.values())
    lines.append(f"- Each message linked to a page of its own: the slow server was asked "
                 f"{fetches} times for {posts} messages.")
    return "\n".join(lines) + "\n"


SCENARIO = Scenario(
    name="link-previews", number=2,
    title="Link previews inside the request, or in a background task",
    question="How long POST /api/messages takes (p50 and p95) when the message links to a "
             "local page that answers after one second, at v0.13 and at v0.15, and how long "
             "the preview then takes to show.",
    stages=STAGES, needs_wrk=False,
    measure=measure, chart=draw, table=table, reading=reading)
