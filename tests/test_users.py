"""The API's users: registering, reading and editing them."""
import pytest
from sqlalchemy import select

from flack.api import users as user_api
from flack.models import Token, User, db
from tests.helpers import PASSWORD, assert_error, count


def test_register(accounts):
    response = accounts.register()
    assert response.status_code == 201
    user = response.json
    assert set(user) == {"id", "nickname", "online", "created_at", "updated_at",
                         "last_seen_at", "_links"}
    assert user["nickname"] == "susan"
    assert user["online"] is False
    assert user["created_at"] == user["updated_at"]
    assert response.headers["Location"] == f"/api/users/{user['id']}"
    assert user["_links"]["self"] == response.headers["Location"]
    assert "password" not in str(user)


def test_password_is_hashed(accounts):
    accounts.register()
    user = db.session.scalar(select(User))
    assert PASSWORD not in user.password_hash
    assert user.check_password(PASSWORD)
    assert not user.check_password("wrong password")


@pytest.mark.parametrize("password", ["another password", "short"])
def test_register_duplicate_nickname(password, accounts):
    accounts.register()
    response = accounts.register(password=password)
    assert_error(response, 400)
    assert "taken" in response.json["message"]
    assert count(User) == 1


def test_unique_nickname_is_enforced_by_the_database(monkeypatch, accounts):
    # Two registrations racing past the check: the unique constraint catches it.
    accounts.register()
    monkeypatch.setattr(user_api, "nickname_taken", lambda nickname: False)
    assert_error(accounts.register(), 400)
    assert count(User) == 1


@pytest.mark.parametrize("body", [
    {"password": PASSWORD},
    {"nickname": "", "password": PASSWORD},
    {"nickname": "x" * 33, "password": PASSWORD},
    {"nickname": "<script>alert(1)</script>", "password": PASSWORD},
    {"nickname": "two words", "password": PASSWORD},
    {"nickname": 42, "password": PASSWORD},
    {"nickname": ["susan"], "password": PASSWORD},
    {"nickname": "nul\x00", "password": PASSWORD},
    {"nickname": "surrogate\ud800", "password": PASSWORD},
    {"nickname": "susan"},
    {"nickname": "susan", "password": "short"},
    {"nickname": "susan", "password": "x" * 129},
    {"nickname": "susan", "password": 12345678},
    {"nickname": "susan", "password": None},
])
def test_register_invalid_fields(client, body):
    assert_error(client.post("/api/users", json=body), 400)
    assert count(User) == 0


def test_nickname_limits(accounts):
    assert accounts.register("x" * 32).status_code == 201
    assert accounts.register("a").status_code == 201
    assert accounts.register("zoë_o.k-1").status_code == 201


@pytest.mark.parametrize("data, content_type, status", [
    ('{"nickname": "susan",', "application/json", 400),
    ("[1, 2, 3]", "application/json", 400),
    ('"susan"', "application/json", 400),
    ("null", "application/json", 400),
    ("", "application/json", 400),
    ("nickname=susan", "application/x-www-form-urlencoded", 415),
    ('{"nickname": "susan"}', "text/plain", 415),
])
def test_register_bad_body(client, data, content_type, status):
    response = client.post("/api/users", data=data, content_type=content_type)
    assert_error(response, status)
    assert count(User) == 0


def test_oversized_body(client, app):
    body = {"nickname": "susan", "password": "x" * (app.config["MAX_CONTENT_LENGTH"])}
    assert_error(client.post("/api/users", json=body), 413)
    assert count(User) == 0


def test_get_user(client, accounts):
    user_id = accounts.register().json["id"]
    response = client.get(f"/api/users/{user_id}")
    assert response.status_code == 200
    assert response.json["nickname"] == "susan"
    assert_error(client.get("/api/users/999"), 404)


def test_get_users(client, accounts):
    accounts.register("susan")
    accounts.register("david")
    response = client.get("/api/users")
    assert response.status_code == 200
    assert [user["nickname"] for user in response.json["users"]] == ["david", "susan"]


def test_get_users_online_filter(client, accounts):
    accounts.login("susan")
    accounts.register("david")
    online = client.get("/api/users?online=1").json["users"]
    offline = client.get("/api/users?online=0").json["users"]
    assert [user["nickname"] for user in online] == ["susan"]
    assert [user["nickname"] for user in offline] == ["david"]


def test_get_users_updated_since(client, clock, accounts):
    accounts.register("susan")
    clock.advance(0.25)
    david = accounts.register("david").json
    since = david["updated_at"] - 0.1
    users = client.get(f"/api/users?updated_since={since}").json["users"]
    assert [user["nickname"] for user in users] == ["david"]
    assert client.get(f"/api/users?updated_since={david['updated_at']}").json["users"] == []


@pytest.mark.parametrize("query", [
    "online=yes", "online=2", "updated_since=yesterday", "updated_since=nan",
    "updated_since=inf", "updated_since=",
])
def test_get_users_bad_query(client, query):
    assert_error(client.get(f"/api/users?{query}"), 400)


def test_edit_nickname(client, accounts):
    auth = accounts.login()
    user_id = client.get("/api/users").json["users"][0]["id"]
    before = client.get(f"/api/users/{user_id}").json
    response = client.put(f"/api/users/{user_id}", json={"nickname": "sue"}, headers=auth)
    assert response.status_code == 200
    assert response.json["nickname"] == "sue"
    assert response.json["updated_at"] > before["updated_at"]
    assert client.post("/api/tokens", auth=("sue", PASSWORD)).status_code == 200


def test_edit_password_revokes_tokens(client, accounts):
    auth = accounts.login()
    other_token = client.post("/api/tokens", auth=("susan", PASSWORD)).json["token"]
    user_id = client.get("/api/users").json["users"][0]["id"]
    response = client.put(f"/api/users/{user_id}", json={"password": "new password"},
                          headers=auth)
    assert response.status_code == 200
    assert count(Token) == 0
    assert_error(client.get("/api/users", headers=auth), 401)
    assert_error(client.get("/api/users", headers={"Authorization": f"Bearer {other_token}"}),
                 401)
    assert_error(client.post("/api/tokens", auth=("susan", PASSWORD)), 401)
    assert client.post("/api/tokens", auth=("susan", "new password")).status_code == 200


def test_edit_other_user_forbidden(client, accounts):
    auth = accounts.login("susan")
    david = accounts.register("david").json
    response = client.put(f"/api/users/{david['id']}", json={"nickname": "evil"}, headers=auth)
    assert_error(response, 403)
    assert client.get(f"/api/users/{david['id']}").json["nickname"] == "david"


@pytest.mark.parametrize("body, status", [
    ({}, 400),
    ({"nickname": "david"}, 400),
    ({"nickname": "bad nickname"}, 400),
    ({"nickname": "fine", "password": "short"}, 400),
    ({"password": ["not", "a", "string"]}, 400),
])
def test_edit_user_invalid(client, body, status, accounts):
    auth = accounts.login("susan")
    accounts.register("david")
    user_id = client.get("/api/users?online=1").json["users"][0]["id"]
    assert_error(client.put(f"/api/users/{user_id}", json=body, headers=auth), status)
    assert client.get(f"/api/users/{user_id}").json["nickname"] == "susan"
    assert count(Token) == 1


def test_edit_user_needs_token(client, accounts):
    user_id = accounts.register().json["id"]
    assert_error(client.put(f"/api/users/{user_id}", json={"nickname": "x"}), 401)
    auth = accounts.login("david")
    assert_error(client.put("/api/users/999", json={"nickname": "x"}, headers=auth), 404)


@pytest.mark.parametrize("method, url", [
    ("GET", "/api/users/0"), ("GET", "/api/users/2147483648"),
    ("GET", "/api/users/99999999999999999999999"), ("GET", "/api/users/-1"),
    ("GET", "/api/messages/99999999999999999999999"),
    ("PUT", "/api/users/99999999999999999999999"),
    ("PUT", "/api/messages/99999999999999999999999"),
])
def test_ids_out_of_range(client, method, url, accounts):
    auth = accounts.login()
    assert_error(client.open(url, method=method, json={"source": "x"}, headers=auth), 404)


def test_wrong_method_and_unknown_url(client):
    response = client.delete("/api/users")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]
    assert_error(client.get("/api/nothing-here"), 404)
