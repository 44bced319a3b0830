"""Request statistics: requests per second over a sliding window."""
from flack import stats


def test_requests_per_second(client, clock, app):
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


def test_every_request_counts_not_only_the_api(client, clock, app):
    client.get("/")
    client.get("/no-such-page")
    client.get("/api/users")
    assert stats.requests_per_second() == 3 / app.config["STATS_WINDOW"]
