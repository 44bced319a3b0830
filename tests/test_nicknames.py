"""Nicknames compared as RFC 8266 compares them: look-alikes are one nickname."""
import pytest
from sqlalchemy.exc import IntegrityError

from flack.models import NICKNAME_MAX_LENGTH, User, db
from flack.nicknames import nickname_key
from tests.helpers import PASSWORD, assert_error, count

LOOK_ALIKES = [("zoë", "ZOË"), ("ZOË", "zoë"), ("wide", "ｗｉｄｅ"), ("ｗｉｄｅ", "WIDE")]


@pytest.mark.parametrize(("nickname", "key"), [
    ("zoë", "zoë"), ("ZOË", "zoë"), ("Zoë", "zoë"),
    ("wide", "wide"), ("ｗｉｄｅ", "wide"), ("ＷＩＤＥ", "wide"),
    ("zoe\u0308", "zo\u00eb"),  # a combining diaeresis: one character in the key
    ("  Susan\u3000\u3000Q ", "susan q"),  # spaces: ideographic ones too
])
def test_nickname_key(nickname, key):
    assert nickname_key(nickname) == key


@pytest.mark.parametrize("nickname", ["", "   ", "bell\x07", "\u200b", "\u0140"])
def test_a_nickname_the_rfc_refuses_has_no_key(nickname):
    with pytest.raises(ValueError):
        nickname_key(nickname)


def test_setting_a_nickname_sets_its_key():
    user = User(nickname="ZOË")
    assert (user.nickname, user.nickname_key) == ("ZOË", "zoë")
    user.nickname = "ｗｉｄｅ"
    assert (user.nickname, user.nickname_key) == ("ｗｉｄｅ", "wide")


def test_a_user_cannot_get_a_nickname_the_rfc_refuses():
    with pytest.raises(ValueError):
        User(nickname="bell\x07")


def add_user(nickname):
    """Add a user to the database directly, not through the API."""
    user = User(nickname=nickname)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    return user


@pytest.mark.parametrize(("first", "second"), [*LOOK_ALIKES, ("zoë", "zoe\u0308")])
def test_the_database_keeps_one_user_of_look_alikes(app, first, second):
    add_user(first)
    with pytest.raises(IntegrityError):
        add_user(second)
    db.session.rollback()
    assert count(User) == 1


def test_the_longest_key_fits_its_column(app):
    # U+FDFA is one character whose NFKC form is 18: the most that NFKC lengthens any.
    user = add_user("\ufdfa" * NICKNAME_MAX_LENGTH)
    assert len(db.session.get(User, user.id).nickname_key) == 18 * NICKNAME_MAX_LENGTH


def register_and_login(client, nickname):
    """Register a user; return their id and the Authorization header of a token."""
    response = client.post("/api/users", json={"nickname": nickname, "password": PASSWORD})
    assert response.status_code == 201, response.json
    token = client.post("/api/tokens", auth=(nickname, PASSWORD)).json["token"]
    return response.json["id"], {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("first", "second"), LOOK_ALIKES)
def test_a_look_alike_of_a_taken_nickname_is_taken(client, accounts, first, second):
    assert accounts.register(first).status_code == 201
    response = accounts.register(second)
    assert_error(response, 409, "nickname is already taken")
    assert count(User) == 1


def test_the_nickname_is_shown_as_typed(client, accounts):
    response = accounts.register("ZOË")
    assert response.json["nickname"] == "ZOË"
    assert client.get(f"/api/users/{response.json['id']}").json["nickname"] == "ZOË"


@pytest.mark.parametrize("typed", ["Zoë", "zoë", "ZOË", "ｚｏｅ\u0308"])
def test_login_with_a_look_alike_of_the_nickname(client, accounts, typed):
    accounts.register("Zoë")
    assert client.post("/api/tokens", auth=(typed, PASSWORD)).status_code == 200
    assert_error(client.post("/api/tokens", auth=(typed, "wrong password")), 401)


def test_login_with_a_nickname_the_rfc_refuses_finds_nobody(client, accounts):
    accounts.register("susan")
    assert_error(client.post("/api/tokens", auth=("\u200b", PASSWORD)), 401)


def test_renaming_yourself_to_another_case_of_your_nickname(client):
    id, auth = register_and_login(client, "zoë")
    response = client.put(f"/api/users/{id}", json={"nickname": "ZOË"}, headers=auth)
    assert response.status_code == 200
    assert response.json["nickname"] == "ZOË"
    assert client.post("/api/tokens", auth=("zoë", PASSWORD)).status_code == 200


def test_renaming_yourself_to_a_look_alike_of_another_users_nickname(client, accounts):
    accounts.register("wide")
    id, auth = register_and_login(client, "zoë")
    response = client.put(f"/api/users/{id}", json={"nickname": "ＷＩＤＥ"}, headers=auth)
    assert_error(response, 409, "nickname is already taken")
    assert client.get(f"/api/users/{id}").json["nickname"] == "zoë"
