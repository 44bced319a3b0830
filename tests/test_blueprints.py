"""How the application is put together from blueprints, as a client sees it."""
from tests.helpers import assert_error


def test_the_api_is_served_under_api(client):
    assert client.get("/api/users").json == {"users": []}
    assert_error(client.get("/users"), 404)
    assert client.get("/").mimetype == "text/html"  # the main blueprint's page, at the top
