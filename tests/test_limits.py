"""Rate limits: logins per nickname, failed logins per address, registrations per address,
and messages per user. Over a limit, a 429 that says when to try again, and nothing done."""
import secrets
import time
from types import SimpleNamespace

import limits.storage.memory
import pytest
import redis

from flack import passwords
from flack.models import Message, Token, User
from tests.conftest import Clock
from tests.helpers import (
    PASSWORD,
    app_with_tables,
    assert_error,
    count,
    free_port,
    needs_redis,
    post_message,
    redis_url,
    settings_with_database,
)


@pytest.fixture
def limit_clock(monkeypatch):
    """Stop the clock that the limits' memory storage reads; move it with advance()."""
    clock = Clock(time.time())  # the real time, which Retry-After is counted from
    monkeypatch.setattr(limits.storage.memory, "time", SimpleNamespace(time=clock))
    return clock


def from_address(address):
    """Return the test client's options for a request from another address."""
    return {"environ_base": {"REMOTE_ADDR": address}}


def log_in(client, nickname, password, address="127.0.0.1"):
    """Ask for a token with a nickname and a password; return the response."""
    return client.post("/api/tokens", auth=(nickname, password), **from_address(address))


def assert_limited(response, mentions):
    """Check that a response is a 429 that says why, and when to try again."""
    assert_error(response, 429, mentions=mentions)
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_failed_logins_for_one_nickname_are_limited(client, app, accounts, limit_clock):
    app.config.update(LOGIN_LIMIT_PER_NICKNAME="3 per minute")
    accounts.register("susan")
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):  # from anywhere: one count
        assert_error(log_in(client, "susan", "wrong password", address), 401)
    assert_limited(log_in(client, "susan", "wrong password", "10.0.0.4"), "this nickname")
    # The right password waits too: a guesser cannot tell it from the wrong ones.
    assert_limited(log_in(client, "susan", PASSWORD, "10.0.0.4"), "this nickname")
    assert count(Token) == 0
    assert log_in(client, "david", "wrong password").status_code == 401  # another nickname
    limit_clock.advance(60)
    assert log_in(client, "susan", PASSWORD).status_code == 200


def test_the_forms_of_a_nickname_share_one_count(client, app, accounts, limit_clock):
    app.config.update(LOGIN_LIMIT_PER_NICKNAME="2 per minute")
    accounts.register("zoë")
    assert_error(log_in(client, "zoë", "wrong password"), 401)
    assert_error(log_in(client, "ZOË", "wrong password"), 401)
    assert_limited(log_in(client, "Zoe\u0308", "wrong password"), "this nickname")


def test_every_login_counts_against_its_nickname(client, app, accounts, limit_clock):
    app.config.update(LOGIN_LIMIT_PER_NICKNAME="3 per minute")
    accounts.register("susan")
    # Counted as they arrive, so that logins sent together cannot all pass the check.
    for _ in range(3):
        assert log_in(client, "susan", PASSWORD).status_code == 200
    assert_limited(log_in(client, "susan", PASSWORD), "this nickname")


def test_successful_logins_do_not_count_against_the_address(client, app, accounts,
                                                            limit_clock):
    app.config.update(LOGIN_LIMIT_PER_ADDRESS="2 per minute")
    for nickname in ("anna", "bob", "carl", "dora"):  # an office behind one address
        accounts.register(nickname)
        assert log_in(client, nickname, PASSWORD).status_code == 200


def test_failed_logins_from_one_address_are_limited(client, app, accounts, limit_clock):
    app.config.update(LOGIN_LIMIT_PER_ADDRESS="3 per minute")
    for nickname in ("anna", "bob", "carl"):  # a guess at many users' passwords
        assert_error(log_in(client, nickname, "guess", "10.0.0.9"), 401)
    assert_limited(log_in(client, "dora", "guess", "10.0.0.9"), "this address")
    assert_error(log_in(client, "dora", "guess", "10.0.0.10"), 401)  # another address


def test_a_limited_login_costs_no_password_hash(client, app, accounts, limit_clock,
                                                monkeypatch):
    app.config.update(LOGIN_LIMIT_PER_NICKNAME="2 per minute")
    accounts.register("susan")
    hashed = []
    real_check = passwords.check_password_hash
    monkeypatch.setattr(passwords, "check_password_hash",
                        lambda *args: hashed.append(args) or real_check(*args))
    for _ in range(2):
        log_in(client, "susan", "wrong password")
    assert len(hashed) == 2
    for _ in range(5):
        assert log_in(client, "susan", "wrong password").status_code == 429
    assert len(hashed) == 2


def test_registrations_from_one_address_are_limited(client, app, limit_clock):
    app.config.update(REGISTER_LIMIT_PER_ADDRESS="2 per hour")
    for _ in range(3):  # refused by the schema before any password was hashed: not counted
        response = client.post("/api/users", json={"nickname": "", "password": "short"},
                               **from_address("10.0.0.1"))
        assert response.status_code == 400
    statuses = [client.post("/api/users", json={"nickname": "anna", "password": PASSWORD},
                            **from_address("10.0.0.1")).status_code for _ in range(2)]
    assert statuses == [201, 409]  # a taken nickname cost a hash too: counted
    response = client.post("/api/users", json={"nickname": "carl", "password": PASSWORD},
                           **from_address("10.0.0.1"))
    assert_error(response, 429, mentions="new users")
    assert int(response.headers["Retry-After"]) <= 3600
    assert count(User) == 1
    response = client.post("/api/users", json={"nickname": "carl", "password": PASSWORD},
                           **from_address("10.0.0.2"))
    assert response.status_code == 201


def test_posts_and_edits_of_one_user_share_a_limit(client, app, accounts, limit_clock):
    app.config.update(MESSAGE_LIMIT_PER_USER="3 per 10 seconds")
    susan, david = accounts.login("susan"), accounts.login("david")
    first = post_message(client, susan, "one")
    post_message(client, susan, "two")
    url = f"/api/messages/{first['id']}"
    assert client.put(url, json={"source": "one, edited"}, headers=susan).status_code == 200
    assert_limited(client.post("/api/messages", json={"source": "four"}, headers=susan),
                   "too many messages")
    assert_limited(client.put(url, json={"source": "again"}, headers=susan), "too many")
    assert count(Message) == 2
    assert client.get(url).json["source"] == "one, edited"
    post_message(client, david, "another user is not limited")
    limit_clock.advance(10)
    post_message(client, susan, "four, later")


def test_limits_can_be_turned_off():
    with app_with_tables(type("Unlimited", (settings_with_database("sqlite://"),), {
            "RATELIMIT_ENABLED": False, "REGISTER_LIMIT_PER_ADDRESS": "1 per hour"})) as app:
        client = app.test_client()
        for nickname in ("anna", "bob"):
            response = client.post("/api/users", json={"nickname": nickname,
                                                       "password": PASSWORD})
            assert response.status_code == 201


@pytest.mark.parametrize("proxies, counted_apart", [(0, False), (1, True)])
def test_behind_a_proxy_the_forwarded_address_counts(proxies, counted_apart):
    with app_with_tables(type("Proxied", (settings_with_database("sqlite://"),), {
            "PROXIES": proxies, "LOGIN_LIMIT_PER_ADDRESS": "1 per minute"})) as app:
        client = app.test_client()
        # Two clients whose requests nginx forwards: the same REMOTE_ADDR, nginx's own.
        first = client.post("/api/tokens", auth=("anna", "guess"),
                            headers={"X-Forwarded-For": "203.0.113.1"})
        second = client.post("/api/tokens", auth=("bob", "guess"),
                             headers={"X-Forwarded-For": "203.0.113.2"})
    assert first.status_code == 401
    # With no proxy in front, X-Forwarded-For is the client's own say: not believed.
    assert second.status_code == (401 if counted_apart else 429)


def redis_app(prefix, redis=None):
    """An app whose limits are counted in Redis, under keys of its own, in its app context."""
    return app_with_tables(type("RedisLimits", (settings_with_database("sqlite://"),), {
        "REDIS_URL": redis or redis_url(), "REDIS_PREFIX": prefix,
        "LOGIN_LIMIT_PER_NICKNAME": "2 per minute"}))


@needs_redis
def test_in_redis_every_process_shares_the_count():
    prefix = f"flack-test-{secrets.token_hex(4)}:"
    # A process, then another: a count in memory would start again at 0 in the second.
    with redis_app(prefix) as app:
        assert app.test_client().post("/api/tokens", auth=("susan", "guess")).status_code == 401
    with redis_app(prefix) as app:
        client = app.test_client()
        assert client.post("/api/tokens", auth=("susan", "guess")).status_code == 401
        assert_limited(client.post("/api/tokens", auth=("susan", "guess")), "this nickname")
    keys = redis.Redis.from_url(redis_url()).keys(f"*{prefix}limits*")
    assert keys  # under Flack's prefix, beside its other keys


def test_with_redis_away_the_limits_count_in_memory():
    with redis_app("flack-test:", redis=f"redis://127.0.0.1:{free_port()}/0") as app:
        client = app.test_client()
        statuses = [client.post("/api/tokens", auth=("susan", "guess")).status_code
                    for _ in range(3)]
    assert statuses == [401, 401, 429]  # no 500: the chat goes on, and so do the limits
