"""One allow-list of other sites (ALLOWED_ORIGINS): their pages may use the API, with CORS
headers, and connect to Socket.IO; pages of any other site get neither."""
import pytest

import config
from tests.helpers import PASSWORD, app_with_tables, settings_with_database

FRIEND = "https://chat.example"
STRANGER = "https://evil.example"


@pytest.fixture(params=[f"{FRIEND}, http://friends.example", ""])
def friendly_app(request):
    """An app that allows the pages of two other sites, and one that allows none."""
    with app_with_tables(type("Friendly", (settings_with_database("sqlite://"),), {
            "ALLOWED_ORIGINS": request.param})) as app:
        yield app


def allowed(app):
    """Tell whether the app's settings let FRIEND's pages in."""
    return FRIEND in app.config["ALLOWED_ORIGINS"]


def test_a_preflight_from_an_allowed_site_may_send_a_token(friendly_app):
    response = friendly_app.test_client().options("/api/tokens", headers={
        "Origin": FRIEND, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    if not allowed(friendly_app):
        assert "Access-Control-Allow-Origin" not in response.headers
        return
    assert response.headers["Access-Control-Allow-Origin"] == FRIEND
    assert set(response.headers["Access-Control-Allow-Headers"].lower().split(", ")) == {
        "authorization", "content-type"}
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) == {
        "GET", "POST", "PUT", "DELETE"}
    # Tokens travel in a header: no cookie of Flack's is ever sent to another site's page.
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_an_allowed_site_reads_answers_and_errors(friendly_app):
    client = friendly_app.test_client()
    created = client.post("/api/users", json={"nickname": "susan", "password": PASSWORD},
                          headers={"Origin": FRIEND})
    refused = client.post("/api/tokens", auth=("susan", "wrong"), headers={"Origin": FRIEND})
    assert (created.status_code, refused.status_code) == (201, 401)
    for response in (created, refused):
        if allowed(friendly_app):
            assert response.headers["Access-Control-Allow-Origin"] == FRIEND
            assert set(response.headers["Access-Control-Expose-Headers"].split(", ")) == {
                "Location", "Retry-After"}
        else:
            assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("origin", [STRANGER, "http://chat.example", f"{FRIEND}.evil.example"])
def test_other_sites_get_no_cors_headers(friendly_app, origin):
    client = friendly_app.test_client()
    for response in (client.get("/api/users", headers={"Origin": origin}),
                     client.options("/api/users", headers={
                         "Origin": origin, "Access-Control-Request-Method": "GET"})):
        assert not any(name.startswith("Access-Control-") for name in response.headers.keys())


def test_only_the_api_answers_other_sites(friendly_app):
    response = friendly_app.test_client().get("/", headers={"Origin": FRIEND})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("origin", [FRIEND, STRANGER])
def test_the_same_list_lets_sockets_in(friendly_app, origin):
    response = friendly_app.test_client().get("/socket.io/?EIO=4&transport=polling",
                                              headers={"Origin": origin})
    assert response.status_code == (200 if origin == FRIEND and allowed(friendly_app) else 400)


def test_the_old_setting_is_refused_with_its_new_name(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "not so secret")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SOCKETIO_ORIGINS", FRIEND)
    with pytest.raises(config.ConfigError, match="ALLOWED_ORIGINS"):
        config.load("production")
