"""API tokens: getting one with a password, using it, expiry and logout."""
import hashlib

import pytest
from sqlalchemy import select

from flack import background, tasks
from flack.models import Token, db
from tests.helpers import PASSWORD, assert_error, count


def test_new_token(client, clock, app, accounts):
    accounts.register()
    response = client.post("/api/tokens", auth=("susan", PASSWORD))
    assert response.status_code == 200
    assert set(response.json) == {"token", "expires_at"}
    assert response.json["expires_at"] == clock.now + app.config["TOKEN_LIFETIME"]
    token = response.json["token"]
    stored = db.session.scalar(select(Token))
    assert stored.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (stored.digest, str(stored.id))


@pytest.mark.parametrize("auth", [("susan", "wrong password"), ("nobody", PASSWORD),
                                  ("", ""), ("susan", ""), ("su\x00san", PASSWORD), None])
def test_new_token_bad_credentials(client, auth, accounts):
    accounts.register()
    response = client.post("/api/tokens", auth=auth)
    assert_error(response, 401)
    # No "Basic" challenge, or the browser would pop up its own login dialog.
    assert not response.headers["WWW-Authenticate"].lower().startswith("basic")
    assert count(Token) == 0


def test_token_expiry(client, clock, app, accounts):
    auth = accounts.login()
    clock.advance(app.config["TOKEN_LIFETIME"] - 1)
    assert client.get("/api/users", headers=auth).status_code == 200
    clock.advance(1)
    assert_error(client.get("/api/users", headers=auth), 401)
    assert count(Token) == 1  # refused, and left for the purge: a read writes nothing
    tasks.purge_expired_tokens()
    assert count(Token) == 0


def test_revoke_token(client, clock, accounts):
    auth = accounts.login()
    [before] = client.get("/api/users").json["users"]
    clock.advance(1)
    response = client.delete("/api/tokens", headers=auth)
    assert response.status_code == 204
    assert_error(client.get("/api/users", headers=auth), 401)
    assert_error(client.delete("/api/tokens", headers=auth), 401)
    # A client polling for changes sees the user go offline.
    [user] = client.get(f"/api/users?after={before['change']}").json["users"]
    assert user["online"] is False
    assert user["updated_at"] == clock.now


def test_revoke_needs_token(client):
    assert_error(client.delete("/api/tokens"), 401)


def test_token_auth_errors(client):
    response = client.post("/api/messages", json={"source": "hi"})
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.post("/api/messages", json={"source": "hi"},
                           headers={"Authorization": "Bearer not-a-token"})
    assert_error(response, 401)


def test_optional_token(client, accounts):
    auth = accounts.login()
    assert client.get("/api/messages").status_code == 200
    assert client.get("/api/messages", headers=auth).status_code == 200
    assert_error(client.get("/api/messages", headers={"Authorization": "Bearer nope"}), 401)


def test_expired_tokens_are_purged_by_a_periodic_task(client, clock, app, accounts):
    accounts.login("susan")
    clock.advance(app.config["TOKEN_LIFETIME"] / 2)
    accounts.login("david")
    clock.advance(app.config["TOKEN_LIFETIME"] / 2)  # susan's expires now, david's later
    tasks.purge_expired_tokens.apply()
    assert [token.user.nickname for token in db.session.scalars(select(Token))] == ["david"]
    schedule = background.periodic_tasks(app.config)["flack.tasks.purge_expired_tokens"]
    assert schedule["schedule"] == app.config["TOKEN_PURGE_INTERVAL"]
