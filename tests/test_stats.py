"""Request statistics: requests per second over a sliding window, in this process or Redis."""
import secrets

import pytest

import config
from flack import create_app, stats
from tests.helpers import assert_error, free_port, needs_redis, redis_url


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def counts(request, app):
    """The app's request counts: in its own memory, or in Redis under a prefix of its own."""
    if request.param == "redis":
        app.extensions["flack_stats"] = stats.RedisCounts(
            redis_url(), f"test-{secrets.token_hex(4)}:")
    return app.extensions["flack_stats"]


def test_requests_per_second(client, clock, app, counts):
    window = app.config["STATS_WINDOW"]
    for _ in range(29):
        client.get("/api/users")
    response = client.get("/api/stats")  # the 30th request
    assert response.json == {"requests_per_second": round(30 / window, 2)}
    clock.advance(window / 2)
    client.get("/api/users")
    assert stats.requests_per_second() == 31 / window
    clock.advance(window / 2)
    assert stats.requests_per_second() == 1 / window
    clock.advance(window)
    assert stats.requests_per_second() == 0


def test_every_request_counts_not_only_the_api(client, clock, app, counts):
    client.get("/")
    client.get("/no-such-page")
    client.get("/api/users")
    assert stats.requests_per_second() == 3 / app.config["STATS_WINDOW"]


def test_without_redis_each_app_counts_in_its_own_memory(app):
    assert isinstance(app.extensions["flack_stats"], stats.LocalCounts)


def test_with_redis_url_the_app_counts_in_redis():
    settings = type("WithRedis", (config.TestingConfig,), {
        "REDIS_URL": "redis://127.0.0.1:6379/0", "REDIS_PREFIX": "chat:"})
    counts = create_app(settings).extensions["flack_stats"]  # no connection made yet
    assert isinstance(counts, stats.RedisCounts)
    assert counts.prefix == "chat:requests:"


@needs_redis
def test_two_apps_on_one_redis_give_one_figure(clock):
    prefix = f"test-{secrets.token_hex(4)}:"
    first, second = stats.RedisCounts(redis_url(), prefix), stats.RedisCounts(redis_url(), prefix)
    first.add(clock.now, 60)
    second.add(clock.now, 60)
    second.add(clock.now - 0.5, 60)
    assert first.count(clock.now, 60) == second.count(clock.now, 60) == 3


@needs_redis
def test_redis_keeps_a_counter_only_as_long_as_the_window(clock):
    counts = stats.RedisCounts(redis_url(), f"test-{secrets.token_hex(4)}:")
    counts.add(clock.now, 60)
    assert 0 < counts.redis.ttl(f"{counts.prefix}{int(clock.now)}") <= 61


def test_redis_away_loses_no_request_and_stats_say_so(client, app, caplog):
    app.extensions["flack_stats"] = stats.RedisCounts(
        f"redis://127.0.0.1:{free_port()}/0", "flack:")
    assert client.get("/api/users").status_code == 200
    assert "request not counted: Error 111 connecting to 127.0.0.1" in caplog.text
    assert_error(client.get("/api/stats"), 503, mentions="Redis")
