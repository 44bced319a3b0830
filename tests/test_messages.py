"""Messages: posting, Markdown rendering and sanitising, polling and editing."""
import pytest
from bs4 import BeautifulSoup

from flack.models import Message
from tests.helpers import assert_error, assert_inert, count, post_message


def test_post_message(client, clock, accounts):
    auth = accounts.login()
    response = client.post("/api/messages", json={"source": "hello *world*"}, headers=auth)
    assert response.status_code == 201
    message = response.json
    assert set(message) == {"id", "source", "html", "user_id", "previews_pending",
                            "created_at", "updated_at", "edited_at", "change", "_links"}
    assert message["source"] == "hello *world*"
    assert message["previews_pending"] is False  # no link, so no preview to wait for
    assert message["edited_at"] is None
    assert message["html"] == "<p>hello <em>world</em></p>\n"
    assert message["created_at"] == message["updated_at"] == clock.now
    assert response.headers["Location"] == f"/api/messages/{message['id']}"
    assert message["_links"] == {"self": response.headers["Location"],
                                 "author": f"/api/users/{message['user_id']}"}
    assert client.get(response.headers["Location"]).json == message


def test_bare_urls_become_links(client, accounts):
    html = post_message(client, accounts.login(), "see https://example.com/page now")["html"]
    link = BeautifulSoup(html, "html.parser").a
    assert link["href"] == "https://example.com/page"
    assert link["rel"] == ["nofollow", "noopener", "noreferrer"]


def test_only_http_urls_become_links(client, accounts):
    source = "run flack.py, see www.example.com, mailto:me@example.com or ftp://example.com"
    html = post_message(client, accounts.login(), source)["html"]
    assert html == f"<p>{source}</p>\n"


def test_images_become_links(client, accounts):
    html = post_message(client, accounts.login(), "![a cat](https://example.com/cat.png)")["html"]
    link = BeautifulSoup(html, "html.parser").a
    assert link["href"] == "https://example.com/cat.png"
    assert link.get_text() == "a cat"


XSS_SOURCES = [
    "<script>alert('x')</script>",
    "[click me](javascript:alert(1))",
    "[click me](JaVaScRiPt:alert(1))",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<b onclick=\"alert(1)\">bold</b>",
    "<img src=x onerror=alert(1)>",
    "![image](x onerror=alert(1))",
    "<iframe src=\"https://example.com\"></iframe>",
    "[relative](/api/users)",
    "<style>body{display:none}</style>",
]


@pytest.mark.parametrize("source", XSS_SOURCES)
def test_message_html_is_inert(client, source, accounts):
    html = post_message(client, accounts.login(), source)["html"]
    assert_inert(html)


def test_markdown_is_rendered(client, accounts):
    html = post_message(client, accounts.login(), "**bold** `code` ~~gone~~")["html"]
    assert html == "<p><strong>bold</strong> <code>code</code> <s>gone</s></p>\n"


@pytest.mark.parametrize("body", [
    {}, {"source": ""}, {"source": "   \n "}, {"source": 5}, {"source": None},
    {"source": "x" * 2001}, {"source": "nul\x00"},
])
def test_post_message_invalid(client, body, accounts):
    auth = accounts.login()
    assert_error(client.post("/api/messages", json=body, headers=auth), 400, mentions="source",
                 fields={"source"})
    assert count(Message) == 0


def test_a_message_can_set_its_source_only(client, accounts):
    auth = accounts.login()
    body = {"source": "hello", "html": "<script>alert(1)</script>", "user_id": 2}
    response = client.post("/api/messages", json=body, headers=auth)
    assert_error(response, 400, fields={"html", "user_id"})
    assert response.json["fields"]["html"] == ["Unknown field."]
    assert count(Message) == 0


def test_post_message_bad_body(client, accounts):
    auth = accounts.login()
    response = client.post("/api/messages", data="hello", content_type="text/plain",
                           headers=auth)
    assert_error(response, 415)
    response = client.post("/api/messages", data="{", content_type="application/json",
                           headers=auth)
    assert_error(response, 400)
    assert count(Message) == 0


def test_message_length_limit(client, accounts):
    auth = accounts.login()
    post_message(client, auth, "x" * 2000)


def test_get_message_unknown(client):
    assert_error(client.get("/api/messages/1"), 404)


def test_get_messages_latest(client, clock, accounts):
    auth = accounts.login()
    for number in range(5):
        clock.advance(1)
        post_message(client, auth, f"message {number}")
    messages = client.get("/api/messages?limit=3").json["messages"]
    assert [m["source"] for m in messages] == ["message 2", "message 3", "message 4"]
    assert len(client.get("/api/messages").json["messages"]) == 5


def test_polling_never_misses_or_repeats(client, clock, accounts):
    """Several messages at the same time, read by a client polling with a limit."""
    auth = accounts.login()
    sources = [f"message {number}" for number in range(7)]
    for source in sources:
        post_message(client, auth, source)  # the clock stands still: one updated_at
    seen, after = [], 0
    while True:
        page = client.get(f"/api/messages?after={after}&limit=2").json["messages"]
        if not page:
            break
        seen += [message["source"] for message in page]
        after = page[-1]["change"]
    assert seen == sources


def test_polling_sees_edits(client, clock, accounts):
    auth = accounts.login()
    first = post_message(client, auth, "first")
    clock.advance(0.5)
    second = post_message(client, auth, "second")
    clock.advance(0.5)
    client.put(f"/api/messages/{first['id']}", json={"source": "first, edited"}, headers=auth)
    updated = client.get(f"/api/messages?after={second['change']}").json
    assert [m["source"] for m in updated["messages"]] == ["first, edited"]


@pytest.mark.parametrize("query", ["limit=ten", "limit=0", "limit=-1", "limit=1.5",
                                   "after=soon", "after=-1", "after=1.5", "after=",
                                   f"after={2**63}", "updated_since=1800000000"])
def test_get_messages_bad_query(client, query):
    assert_error(client.get(f"/api/messages?{query}"), 400, mentions=query.split("=")[0])


def test_get_messages_limit_is_capped(client, app, accounts):
    app.config["MESSAGES_MAX_LIMIT"] = 2
    auth = accounts.login()
    for _ in range(3):
        post_message(client, auth)
    assert len(client.get("/api/messages?limit=1000000").json["messages"]) == 2
    assert len(client.get("/api/messages?limit=1").json["messages"]) == 1


def test_edit_message(client, clock, accounts):
    auth = accounts.login()
    message = post_message(client, auth, "helo")
    clock.advance(2)
    response = client.put(f"/api/messages/{message['id']}", json={"source": "**hello**"},
                          headers=auth)
    assert response.status_code == 200
    assert response.json["html"] == "<p><strong>hello</strong></p>\n"
    assert response.json["updated_at"] == message["updated_at"] + 2
    assert response.json["edited_at"] == response.json["updated_at"]
    assert response.json["created_at"] == message["created_at"]


def test_edit_message_errors(client, accounts):
    susan = accounts.login("susan")
    david = accounts.login("david")
    message = post_message(client, susan, "mine")
    url = f"/api/messages/{message['id']}"
    assert_error(client.put(url, json={"source": "yours"}, headers=david), 403,
                 mentions="your own message")
    assert_error(client.put(url, json={"source": ""}, headers=susan), 400, fields={"source"})
    assert_error(client.put(url, json=["source"], headers=susan), 400)
    assert_error(client.put(url, json={"source": "x"}), 401)
    assert_error(client.put("/api/messages/999", json={"source": "x"}, headers=susan), 404)
    assert client.get(url).json["source"] == "mine"
