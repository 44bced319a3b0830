"""The API's users: registering, reading and editing them."""
import pytest
from sqlalchemy import select

from flack.models import Token, User, db
from flack.passwords import password_matches
from tests.helpers import PASSWORD, assert_error, count


def test_register(accounts):
    response = accounts.register()
    assert response.status_code == 201
    user = response.json
    assert set(user) == {"id", "nickname", "online", "created_at", "updated_at",
                         "change", "last_seen_at", "_links"}
    assert user["nickname"] == "susan"
    assert user["online"] is False
    assert user["created_at"] == user["updated_at"]
    assert response.headers["Location"] == f"/api/users/{user['id']}"
    assert user["_links"]["self"] == response.headers["Location"]
    assert "password" not in str(user)


@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256:1"])
def test_password_is_hashed(app, accounts, method):
    app.config["PASSWORD_HASH_METHOD"] = method  # scrypt is the default outside the tests
    accounts.register()
    user = db.session.scalar(select(User))
    assert user.password_hash.startswith(method)
    assert PASSWORD not in user.password_hash
    assert password_matches(user.password_hash, PASSWORD)
    assert not password_matches(user.password_hash, "wrong password")


def test_register_taken_nickname_is_a_conflict(accounts):
    accounts.register()
    response = accounts.register(password="another password")
    assert_error(response, 409)
    assert "taken" in response.json["message"]
    assert count(User) == 1


def test_invalid_fields_are_found_before_a_taken_nickname(accounts):
    accounts.register()
    assert_error(accounts.register(password="short"), 400, fields={"password"})
    assert count(User) == 1


@pytest.mark.parametrize("body, field", [
    ({"password": PASSWORD}, "nickname"),
    ({"nickname": "", "password": PASSWORD}, "nickname"),
    ({"nickname": "x" * 33, "password": PASSWORD}, "nickname"),
    ({"nickname": "<script>alert(1)</script>", "password": PASSWORD}, "nickname"),
    ({"nickname": "two words", "password": PASSWORD}, "nickname"),
    ({"nickname": " susan", "password": PASSWORD}, "nickname"),
    ({"nickname": "susan\u3000", "password": PASSWORD}, "nickname"),
    ({"nickname": 42, "password": PASSWORD}, "nickname"),
    ({"nickname": ["susan"], "password": PASSWORD}, "nickname"),
    ({"nickname": "nul\x00", "password": PASSWORD}, "nickname"),
    ({"nickname": "surrogate\ud800", "password": PASSWORD}, "nickname"),
    ({"nickname": "susan"}, "password"),
    ({"nickname": "susan", "password": "short"}, "password"),
    ({"nickname": "susan", "password": "x" * 129}, "password"),
    ({"nickname": "susan", "password": 12345678}, "password"),
    ({"nickname": "susan", "password": None}, "password"),
])
def test_register_invalid_fields(client, body, field):
    assert_error(client.post("/api/users", json=body), 400, mentions=field, fields={field})
    assert count(User) == 0


def test_fields_the_api_does_not_know_are_refused(client):
    body = {"nickname": "susan", "password": PASSWORD, "admin": True}
    assert_error(client.post("/api/users", json=body), 400, mentions="admin",
                 fields={"admin"})
    assert count(User) == 0


def test_every_bad_field_is_named_at_once(client):
    response = client.post("/api/users", json={"nickname": "two words", "password": "short"})
    assert_error(response, 400, fields={"nickname", "password"})
    assert response.json["fields"]["password"] == ["Length must be between 8 and 128."]
    assert "nickname: " in response.json["message"] and "password: " in response.json["message"]
    response = client.post("/api/users", json={"nickname": "", "password": PASSWORD})
    assert response.json["fields"] == {"nickname": ["Length must be between 1 and 32."]}


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
    assert_error(response, status, mentions="JSON")
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
    # In the order they changed, as a client pages through them with after=<change>.
    assert [user["nickname"] for user in response.json["users"]] == ["susan", "david"]


def test_get_users_online_filter(client, accounts):
    accounts.login("susan")
    accounts.register("david")
    online = client.get("/api/users?online=1").json["users"]
    offline = client.get("/api/users?online=0").json["users"]
    assert [user["nickname"] for user in online] == ["susan"]
    assert [user["nickname"] for user in offline] == ["david"]


def test_get_users_changed_after(client, accounts):
    susan = accounts.register("susan").json
    david = accounts.register("david").json
    assert david["change"] > susan["change"]
    users = client.get(f"/api/users?after={susan['change']}").json["users"]
    assert [user["nickname"] for user in users] == ["david"]
    assert client.get(f"/api/users?after={david['change']}").json["users"] == []


def test_users_come_in_pages(client, app, accounts):
    app.config.update(USERS_DEFAULT_LIMIT=2, USERS_MAX_LIMIT=3)
    for nickname in ("anna", "bob", "carl", "dora", "emil"):
        accounts.register(nickname)
    first = client.get("/api/users").json["users"]
    assert [user["nickname"] for user in first] == ["anna", "bob"]
    after = first[-1]["change"]
    rest = client.get(f"/api/users?after={after}&limit=10").json["users"]  # capped at 3
    assert [user["nickname"] for user in rest] == ["carl", "dora", "emil"]
    last = client.get(f"/api/users?after={rest[-1]['change']}&limit=3").json["users"]
    assert last == []


def test_a_page_of_users_online(client, app, accounts):
    for nickname in ("anna", "bob", "carl"):
        accounts.login(nickname)
    accounts.register("dora")
    page = client.get("/api/users?online=1&limit=2").json["users"]
    assert [user["nickname"] for user in page] == ["anna", "bob"]


@pytest.mark.parametrize("query", [
    "online=yes", "online=2", "after=yesterday", "after=nan", "after=inf", "after=",
    "updated_since=1800000000", "limit=0", "limit=many",
])
def test_get_users_bad_query(client, query):
    assert_error(client.get(f"/api/users?{query}"), 400, mentions=query.split("=")[0])


def test_edit_nickname(client, clock, accounts):
    auth = accounts.login()
    user_id = client.get("/api/users").json["users"][0]["id"]
    clock.advance(1)
    response = client.put(f"/api/users/{user_id}", json={"nickname": "sue"}, headers=auth)
    assert response.status_code == 200
    assert response.json["nickname"] == "sue"
    assert response.json["updated_at"] == clock.now
    assert client.post("/api/tokens", auth=("sue", PASSWORD)).status_code == 200


def test_keeping_your_own_nickname_is_no_conflict(client, accounts):
    auth = accounts.login()
    user_id = client.get("/api/users").json["users"][0]["id"]
    response = client.put(f"/api/users/{user_id}", json={"nickname": "susan"}, headers=auth)
    assert response.status_code == 200


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
    assert_error(response, 403, mentions="your own user")
    assert client.get(f"/api/users/{david['id']}").json["nickname"] == "david"


@pytest.mark.parametrize("body, status, fields", [
    ({}, 400, {"_schema"}),
    ({"nickname": "david"}, 409, None),
    ({"nickname": "david", "password": "new password"}, 409, None),
    ({"nickname": "bad nickname"}, 400, {"nickname"}),
    ({"nickname": "fine", "password": "short"}, 400, {"password"}),
    ({"password": ["not", "a", "string"]}, 400, {"password"}),
    ({"nickname": "fine", "online": False}, 400, {"online"}),
])
def test_edit_user_invalid(client, body, status, fields, accounts):
    auth = accounts.login("susan")
    accounts.register("david")
    user_id = client.get("/api/users?online=1").json["users"][0]["id"]
    assert_error(client.put(f"/api/users/{user_id}", json=body, headers=auth), status,
                 fields=fields)
    # Nothing was written: the nickname, the password and the tokens are as they were.
    assert client.get(f"/api/users/{user_id}").json["nickname"] == "susan"
    assert client.post("/api/tokens", auth=("susan", PASSWORD)).status_code == 200
    assert client.get("/api/users", headers=auth).status_code == 200


def test_edit_user_needs_token(client, accounts):
    user_id = accounts.register().json["id"]
    assert_error(client.put(f"/api/users/{user_id}", json={"nickname": "x"}), 401)
    auth = accounts.login("david")
    assert_error(client.put("/api/users/999", json={"nickname": "x"}, headers=auth), 404,
                 mentions="user not found")


@pytest.mark.parametrize("method, url, message", [
    ("GET", "/api/users/0", "user not found"),
    ("GET", "/api/users/2147483648", "user not found"),
    ("GET", "/api/users/99999999999999999999999", "user not found"),
    ("GET", "/api/users/-1", "URL was not found"),  # no route takes a sign
    ("GET", "/api/messages/99999999999999999999999", "message not found"),
    ("PUT", "/api/users/99999999999999999999999", "user not found"),
    ("PUT", "/api/messages/99999999999999999999999", "message not found"),
])
def test_ids_out_of_range(client, method, url, message, accounts):
    auth = accounts.login()
    response = client.open(url, method=method, json={"source": "x"}, headers=auth)
    assert_error(response, 404, mentions=message)


def test_wrong_method_and_unknown_url(client):
    response = client.delete("/api/users")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]
    assert_error(client.get("/api/nothing-here"), 404)
