"""Background tasks: a Celery application for each Flask application.

The web process sends a task to a broker (Redis, or files in a folder on a machine
without Redis) and answers at once; a worker process, `celery -A flack.worker worker`,
takes the task from the broker and runs it inside an app context of its own.
"""
import os
import time
import uuid

from celery import Celery, Task
from kombu.exceptions import OperationalError
from kombu.transport import filesystem
from kombu.utils.json import dumps
from kombu.utils.url import maybe_sanitize_url

from config import ConfigError

# The settings that can choose the broker, the first one set wins.
BROKER_SETTINGS = ("CELERY_BROKER_URL", "REDIS_URL", "LOCAL_BROKER_FOLDER")


def broker_setting(config):
    """Return the name of the setting that chooses the broker."""
    return next(name for name in BROKER_SETTINGS if config[name])


class FolderChannel(filesystem.Channel):
    """kombu's folder channel, but a task's file appears only once it is whole."""

    def _put(self, queue, payload, **kwargs):
        """Write a task under a hidden name, then rename it to the name workers look for."""
        # kombu's own _put creates the file, then writes it: a worker that looks in
        # between reads an empty file, and stops with a JSONDecodeError
        # (celery/kombu#1551). A rename within a folder is atomic.
        name = f"{time.monotonic_ns() // 1_000_000}_{uuid.uuid4()}.{queue}.msg"
        hidden = os.path.join(self.data_folder_out, f".{name}.part")  # workers skip it
        with open(hidden, "wb") as file:
            file.write(dumps(payload).encode())
        os.replace(hidden, os.path.join(self.data_folder_out, name))


class FolderTransport(filesystem.Transport):
    """kombu's filesystem transport, with the channel above."""
    Channel = FolderChannel


def broker_settings(config):
    """Return the Celery settings of the broker that an application's config chooses."""
    name = broker_setting(config)
    if name != "LOCAL_BROKER_FOLDER":
        return {"broker_url": config[name]}
    # kombu's filesystem transport: each task is a file in the folder. It needs no
    # server, but only processes on this one machine can share it.
    folder = config["LOCAL_BROKER_FOLDER"]
    queue, control = os.path.join(folder, "queue"), os.path.join(folder, "control")
    for path in (queue, control):
        os.makedirs(path, exist_ok=True)
    # The host name means nothing to this transport, but kombu warns without one.
    return {"broker_url": "filesystem://localhost/",
            "broker_transport": f"{__name__}:FolderTransport",
            "broker_transport_options": {
        "data_folder_in": queue, "data_folder_out": queue, "control_folder": control,
        "polling_interval": 0.1}}  # seconds between looks at the folder


def periodic_tasks(config):
    """Return what Celery beat sends to the workers, and how often (in seconds)."""
    every = {"flack.tasks.mark_offline_users": config["PRESENCE_CHECK_INTERVAL"],
             "flack.tasks.purge_expired_tokens": config["TOKEN_PURGE_INTERVAL"],
             "flack.tasks.repair_pending_previews": config["LINK_PREVIEW_REPAIR_INTERVAL"]}
    # A task that no worker took before the next one was sent is dropped: after a
    # worker's absence, one sweep catches up, not a queue of them.
    return {name: {"task": name, "schedule": seconds, "options": {"expires": seconds}}
            for name, seconds in every.items()}


def init_app(app):
    """Make the Celery application that sends and runs the tasks of a Flask app."""

    class AppContextTask(Task):
        """A task that runs inside an app context, as a view runs inside a request."""

        def __call__(self, *args, **kwargs):
            with app.app_context():
                return super().__call__(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=AppContextTask)
    celery.conf.update(
        **broker_settings(app.config),
        # JSON, never pickle: a pickled message runs code of the sender's choosing
        # in the worker, so anyone who can write to the broker could take it over.
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # no task returns anything that the web process reads
        # The tasks are safe to run twice, so one is acknowledged only when it ends,
        # and a task whose pool process was killed goes back to the queue for another
        # one. A task that kills its process every time would come back for ever, but
        # the repair (flack.tasks) ends its message's wait, and then it does nothing.
        # A worker's main process that dies leaves its task unacknowledged in Redis
        # for an hour (the visibility timeout); the repair sends it again before that.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_always_eager=app.config["CELERY_TASK_ALWAYS_EAGER"],
        beat_schedule=periodic_tasks(app.config),
        beat_schedule_filename=app.config["BEAT_SCHEDULE_FILE"],
        # A broker that does not answer fails the send after about a second, and
        # the request goes on without its task instead of hanging.
        broker_connection_timeout=1,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0,
                                   "interval_step": 0.2, "interval_max": 0.5},
    )
    celery.set_default()  # the tasks of flack.tasks, made with shared_task, use this app
    app.extensions["celery"] = celery
    return celery


def check_broker(app):
    """Stop with a one-line error naming the setting if the broker cannot be reached."""
    celery = app.extensions["celery"]
    with celery.connection_for_write() as connection:
        try:
            connection.ensure_connection(max_retries=1)
        except (OperationalError, OSError) as error:
            url = maybe_sanitize_url(celery.conf.broker_url)  # no password in the logs
            raise ConfigError(f"{broker_setting(app.config)}: the broker at {url} "
                              f"cannot be reached: {error}") from None
