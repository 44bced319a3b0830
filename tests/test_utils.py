"""The helpers in flack.utils."""
import pytest

from flack import utils
from flack.models import User, db


def test_url_for_in_a_request(app):
    with app.test_request_context("/api/stats", base_url="http://chat.example.com"):
        assert utils.url_for("api.get_user", id=7) == "/api/users/7"
        assert utils.url_for("api.get_user", id=7, _external=True) == (
            "http://chat.example.com/api/users/7")


@pytest.mark.parametrize("text, allowed", [
    ("zoë", True), ("", True), ("tab\tand newline\n", True), ("nul\x00", False),
    ("lone surrogate \udc00", False),
])
def test_storable(text, allowed):
    assert utils.storable(text) is allowed


def test_url_for_without_request(app):
    assert utils.url_for("api.get_message", id=3) == "/api/messages/3"


def test_models_build_urls_without_request(app):
    user = User(nickname="susan", password_hash="x")
    db.session.add(user)
    db.session.commit()
    assert user.to_dict()["_links"]["self"] == f"/api/users/{user.id}"
