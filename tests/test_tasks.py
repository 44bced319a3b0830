"""Background tasks: the link preview task's logic, and how the API sends it.

Here the tasks go to a broker in this process's memory that no worker reads, and
each test runs them itself, when it wants to. tests/test_servers.py runs a real
worker, with a folder and with Redis as the broker.
"""
import logging
import os

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from config import ConfigError
from flack import background, create_app, sockets, tasks
from flack.models import Message, db
from tests.helpers import (
    app_with_tables,
    count,
    free_port,
    html_page,
    post_message,
    settings_with_database,
)


@pytest.fixture
def no_worker(app):
    """Send tasks to a broker that nobody reads, instead of running them at once."""
    app.extensions["celery"].conf.task_always_eager = False


@pytest.fixture
def sent(monkeypatch):
    """The message ids of the preview tasks that the API sends."""
    ids = []
    monkeypatch.setattr(tasks.fetch_link_previews, "delay", ids.append)
    return ids


def run_task(message_id):
    """Run the preview task for a message here, as a worker would."""
    tasks.fetch_link_previews.apply(args=[message_id])


def get_message(client, message):
    """Return a message as the API shows it now."""
    return client.get(f"/api/messages/{message['id']}").json


def flaky(*statuses):
    """Return a page body that answers with each status in turn, then with a page."""
    answers = list(statuses)

    def answer(handler):
        if answers:
            handler.send_response(answers.pop(0))
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        body = html_page("Back again").encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return answer


def test_post_returns_before_the_previews_and_the_task_adds_them(
        no_worker, web, client, accounts, clock):
    web.page("/article", html_page("An article").encode())
    posted = post_message(client, accounts.login(), f"see {web.url('/article')}")
    assert posted["previews_pending"] is True
    assert "<blockquote>" not in posted["html"]
    assert web.requested == []  # nothing was fetched by the request
    clock.advance(1)
    run_task(posted["id"])
    message = get_message(client, posted)
    assert message["previews_pending"] is False
    assert "An article" in message["html"]
    assert message["html"].startswith(posted["html"])
    # A new updated_at, so that polling clients fetch the message again; not an edit.
    assert message["updated_at"] == posted["updated_at"] + 1
    assert message["change"] > posted["change"]
    assert message["edited_at"] is None


def test_only_messages_with_links_send_a_task(client, app, accounts, sent):
    app.config["LINK_PREVIEWS"] = True
    auth = accounts.login()
    assert post_message(client, auth, "no link here")["previews_pending"] is False
    assert sent == []
    with_link = post_message(client, auth, "see https://example.com/")
    assert with_link["previews_pending"] is True
    assert sent == [with_link["id"]]
    app.config["LINK_PREVIEWS"] = False
    assert post_message(client, auth, "see https://example.com/")["previews_pending"] is False
    assert sent == [with_link["id"]]


def test_an_edit_sends_a_task_for_the_new_text(client, app, accounts, sent, clock):
    app.config["LINK_PREVIEWS"] = True
    auth = accounts.login()
    posted = post_message(client, auth, "plain")
    clock.advance(5)
    edited = client.put(f"/api/messages/{posted['id']}", json={"source": "https://a.example/"},
                        headers=auth).json
    assert edited["previews_pending"] is True
    assert edited["edited_at"] == posted["created_at"] + 5
    assert sent == [posted["id"]]


def test_running_the_task_twice_changes_nothing(no_worker, web, client, accounts, clock):
    web.page("/once", html_page("Once").encode())
    posted = post_message(client, accounts.login(), web.url("/once"))
    run_task(posted["id"])
    first = get_message(client, posted)
    clock.advance(1)
    run_task(posted["id"])
    assert get_message(client, posted) == first
    assert web.requested == ["/once"]


def test_the_task_changes_only_its_own_message(no_worker, web, client, accounts):
    web.page("/same", html_page("Same").encode())
    auth = accounts.login()
    first, second = (post_message(client, auth, web.url("/same")) for _ in range(2))
    assert first["html"] == second["html"]
    run_task(first["id"])
    assert get_message(client, first)["previews_pending"] is False
    assert get_message(client, second)["previews_pending"] is True


def test_a_task_for_a_message_that_is_gone_does_nothing(no_worker, web):
    run_task(12345)
    assert web.requested == []


def test_an_edit_during_the_fetch_keeps_the_newer_text(
        no_worker, web, client, accounts, monkeypatch):
    web.page("/old", html_page("Old page").encode())
    auth = accounts.login()
    posted = post_message(client, auth, f"old {web.url('/old')}")
    fetch = tasks.add_link_previews

    def fetch_while_the_author_edits(html):
        with_previews = fetch(html)
        client.put(f"/api/messages/{posted['id']}", json={"source": f"new {new_link}"},
                   headers=auth)
        return with_previews

    new_link = web.url("/new")
    monkeypatch.setattr(tasks, "add_link_previews", fetch_while_the_author_edits)
    run_task(posted["id"])
    message = get_message(client, posted)
    assert message["source"] == f"new {new_link}"
    assert "Old page" not in message["html"] and "/old" not in message["html"]
    assert message["previews_pending"] is True  # the edit's own task brings its previews
    assert message["edited_at"] is not None


def test_an_unavailable_page_is_tried_again_later(web, app, client, accounts, monkeypatch):
    app.config["LINK_PREVIEW_RETRIES"] = 2
    delays = []
    task_class = type(tasks.fetch_link_previews._get_current_object())
    retry = task_class.retry

    def recording_retry(task, *args, **kwargs):
        delays.append(kwargs["countdown"])
        return retry(task, *args, **kwargs)

    monkeypatch.setattr(task_class, "retry", recording_retry)
    web.pages["/flaky"] = (200, {}, flaky(503, 502))
    posted = post_message(client, accounts.login(), web.url("/flaky"))
    assert "Back again" in get_message(client, posted)["html"]
    assert web.requested == ["/flaky"] * 3
    assert delays == [1, 2]  # seconds: each wait twice the one before


def test_no_transaction_stays_open_while_the_pages_are_fetched(no_worker, app, client,
                                                               accounts, monkeypatch):
    # A transaction held for seconds would keep PostgreSQL's snapshot, and SQLite's lock.
    app.config["LINK_PREVIEWS"] = True
    posted = post_message(client, accounts.login(), "see https://example.com/")
    open_while_fetching = []

    def fetch(html):
        open_while_fetching.append(db.session().in_transaction())
        return html

    monkeypatch.setattr(tasks, "add_link_previews", fetch)
    run_task(posted["id"])
    assert open_while_fetching == [False]


def test_every_retry_that_the_settings_give_is_made(web, app, client, accounts):
    # More than Celery's own default of 3: the setting decides, not the default.
    app.config["LINK_PREVIEW_RETRIES"] = 5
    web.pages["/flaky"] = (200, {}, flaky(503, 503, 503, 503, 503))
    posted = post_message(client, accounts.login(), web.url("/flaky"))
    message = get_message(client, posted)
    assert message["previews_pending"] is False and "Back again" in message["html"]
    assert web.requested == ["/flaky"] * 6


def test_previews_pending_too_long_are_given_up_and_pushed(client, clock, app, accounts,
                                                           sent, monkeypatch):
    # A task that was lost, and never came back: the message goes on without previews.
    app.config["LINK_PREVIEWS"] = True
    auth = accounts.login()
    stuck = post_message(client, auth, "see https://example.com/")
    clock.advance(app.config["LINK_PREVIEW_GIVE_UP_AFTER"] - 1)
    recent = post_message(client, auth, "see https://example.org/")
    tasks.repair_pending_previews()
    assert get_message(client, stuck)["previews_pending"] is True  # sent again, not given up
    clock.advance(2)
    pushed = []
    monkeypatch.setattr(sockets, "push", lambda name, data: pushed.append((name, data)))
    tasks.repair_pending_previews()
    given_up = get_message(client, stuck)
    assert given_up["previews_pending"] is False and given_up["html"] == stuck["html"]
    assert given_up["change"] > recent["change"]
    assert pushed == [("message_changed", given_up)]
    assert get_message(client, recent)["previews_pending"] is True
    assert sent.count(stuck["id"]) == 2  # the post's, and the first repair's


def test_the_repair_sends_only_tasks_pending_long_enough(client, clock, app, accounts, sent):
    app.config["LINK_PREVIEWS"] = True
    auth = accounts.login()
    older = post_message(client, auth, "see https://example.com/")
    clock.advance(app.config["LINK_PREVIEW_RESEND_AFTER"])
    newer = post_message(client, auth, "see https://example.org/")
    post_message(client, auth, "no link")
    sent.clear()
    tasks.repair_pending_previews()
    assert sent == []  # pending exactly RESEND_AFTER: not yet
    clock.advance(0.001)
    tasks.repair_pending_previews()
    assert sent == [older["id"]]
    assert newer["id"] not in sent


def test_celery_beat_sends_the_repair(app):
    schedule = background.periodic_tasks(app.config)["flack.tasks.repair_pending_previews"]
    assert schedule["schedule"] == app.config["LINK_PREVIEW_REPAIR_INTERVAL"]
    assert schedule["options"]["expires"] == schedule["schedule"]


def test_a_page_that_stays_unavailable_leaves_no_preview(web, app, client, accounts, caplog):
    app.config["LINK_PREVIEW_RETRIES"] = 1
    web.pages["/down"] = (200, {}, flaky(503, 503, 503))
    with caplog.at_level(logging.INFO, logger=app.logger.name):
        posted = post_message(client, accounts.login(), f"down: {web.url('/down')}")
    message = get_message(client, posted)
    assert message["previews_pending"] is False
    assert message["html"] == posted["html"]
    assert web.requested == ["/down"] * 2
    assert f"no previews for message {posted['id']}" in caplog.text


def test_a_closed_port_is_unavailable_too(web, app, client, accounts):
    app.config["LINK_PREVIEW_RETRIES"] = 0
    posted = post_message(client, accounts.login(), f"http://127.0.0.1:{free_port()}/")
    assert get_message(client, posted)["previews_pending"] is False


def test_a_task_out_of_time_leaves_the_message_without_previews(
        web, app, client, accounts, monkeypatch, caplog):
    def too_slow(html):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tasks, "add_link_previews", too_slow)
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        posted = post_message(client, accounts.login(), web.url("/slow"))
    message = get_message(client, posted)
    assert message["previews_pending"] is False
    assert message["html"] == posted["html"]
    assert "out of time" in caplog.text


def test_the_task_has_time_limits():
    task = tasks.fetch_link_previews
    assert 0 < task.soft_time_limit < task.time_limit


def test_a_broker_that_is_away_loses_no_message(client, clock, app, accounts, caplog):
    app.config["LINK_PREVIEWS"] = True
    celery = app.extensions["celery"]
    celery.conf.update(task_always_eager=False, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        posted = post_message(client, accounts.login(), "see https://example.com/")
    assert count(Message) == 1
    assert "the broker is away" in caplog.text
    # The message waits for its previews, and the repair sends the task once the broker is back.
    assert get_message(client, posted)["previews_pending"] is True
    celery.conf.task_always_eager = True
    clock.advance(app.config["LINK_PREVIEW_RESEND_AFTER"] + 1)
    tasks.repair_pending_previews()
    assert get_message(client, posted)["previews_pending"] is False


class FolderBroker(settings_with_database("sqlite://")):
    """Testing settings with a real broker: files in a folder, set by each test."""
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_URL = None


def test_a_folder_broker_carries_tasks(tmp_path, monkeypatch):
    monkeypatch.setattr(FolderBroker, "LOCAL_BROKER_FOLDER", str(tmp_path / "broker"))
    renames = []
    replace = os.replace

    def recording_replace(source, destination):
        renames.append((source, destination))
        replace(source, destination)

    monkeypatch.setattr(os, "replace", recording_replace)
    with app_with_tables(FolderBroker) as app:
        background.check_broker(app)
        tasks.fetch_link_previews.delay(7)
    [sent] = (tmp_path / "broker" / "queue").iterdir()  # one file per task
    assert b"flack.tasks.fetch_link_previews" in sent.read_bytes()
    # Written beside it under a name that workers skip, then renamed whole to the one
    # they take: the text after the first dot names the queue.
    assert renames == [(str(sent.parent / f".{sent.name}.part"), str(sent))]
    assert sent.name.partition(".")[2] == "celery.msg"


@pytest.mark.parametrize("settings, chosen", [
    ({"CELERY_BROKER_URL": "redis://a/0", "REDIS_URL": "redis://b/0"}, "redis://a/0"),
    ({"REDIS_URL": "redis://b/0", "LOCAL_BROKER_FOLDER": "/tmp/x"}, "redis://b/0"),
])
def test_the_broker_url_wins_over_redis_url_and_the_folder(settings, chosen):
    config = {"CELERY_BROKER_URL": None, "REDIS_URL": None, "LOCAL_BROKER_FOLDER": None,
              **settings}
    assert background.broker_settings(config) == {"broker_url": chosen}


@pytest.mark.parametrize("setting", ["CELERY_BROKER_URL", "REDIS_URL"])
def test_an_unreachable_broker_is_named_by_its_setting(monkeypatch, tmp_path, setting):
    monkeypatch.setattr(FolderBroker, setting, f"redis://127.0.0.1:{free_port()}/0")
    # The first of the settings wins: the folder only carries Socket.IO's pushes.
    monkeypatch.setattr(FolderBroker, "LOCAL_BROKER_FOLDER", str(tmp_path / "broker"))
    with pytest.raises(ConfigError) as error:
        background.check_broker(create_app(FolderBroker))
    assert error.value.message.startswith(f"{setting}: the broker at redis://127.0.0.1:")
    assert "cannot be reached" in error.value.message


def test_tasks_travel_as_json_never_pickle(app):
    conf = app.extensions["celery"].conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
