"""Rendering messages: Markdown to safe HTML, and later the previews of its links."""
import nh3
from flask import current_app
from markdown_it import MarkdownIt

from .previews import link_previews, links_in

# Images are off: a message's picture would be fetched by every reader's browser,
# so ![text](url) shows as a link instead.
markdown = MarkdownIt("commonmark", {"html": False, "linkify": True}).enable(
    ["linkify", "strikethrough"]).disable("image")
# Link only http(s) URLs: "flack.py" is a file name, not a site in Paraguay.
markdown.linkify.set({"fuzzy_link": False, "fuzzy_email": False})
for scheme in ("mailto:", "ftp:", "//"):
    markdown.linkify.add(scheme, None)

sanitizer = nh3.Cleaner(
    tags={"a", "abbr", "b", "blockquote", "br", "code", "del", "em", "i", "p",
          "pre", "s", "strong"},
    attributes={"a": {"href", "title"}, "abbr": {"title"}},
    url_schemes={"http", "https"},
    url_relative="deny",
    link_rel="nofollow noopener noreferrer",
)


def render_markdown(source):
    """Render Markdown to HTML with bare URLs made into links, then sanitise it."""
    return sanitizer.clean(markdown.render(source))


def wants_previews(html):
    """Tell whether a message's HTML has links whose previews should be fetched."""
    return current_app.config["LINK_PREVIEWS"] and bool(links_in(html))


def add_link_previews(html):
    """Return a message's HTML followed by a preview of each of its links."""
    return sanitizer.clean(html + "".join(link_previews(html)))
