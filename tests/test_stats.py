"""Request statistics: requests per second over a sliding window."""
import flack


def test_requests_per_second(client, clock, app):
    window = app.config["STATS_WINDOW"]
    for _ in range(29):
        client.get("/api/users")
    response = client.get("/api/stats")  # the 30th request
    assert response.json == {"requests_per_second": round(30 / window, 2)}
    clock.advance(window / 2)
    client.get("/api/users")
    assert flack.requests_per_second() == 31 / window
    clock.advance(window / 2)
    assert flack.requests_per_second() == 1 / window
    clock.advance(window)
    assert flack.requests_per_second() == 0
