"""What people read in a browser: one HTML page per output feed (the "river" of its stories,
each with its outlets and place), and OPML lists of our output feeds and of our sources.

The river page needs no JavaScript and reads on a phone; it is rendered once per change like
the feeds. Everything from a source is escaped, and only http(s) URLs become links.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from lxml import etree

from ..types import Config, FeedConfig, ServiceConfig, Story
from .render import CONTENT_TYPES, EXTENSIONS, feed_url

PAGE_CONTENT_TYPE = "text/html; charset=utf-8"
OPML_CONTENT_TYPE = "text/x-opml; charset=utf-8"
SUMMARY_CHARS = 400

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:42rem;margin:1rem auto;padding:0 1rem;"
          "line-height:1.45}article{border-bottom:1px solid #ddd;padding:.75rem 0}"
          "h2{font-size:1.1rem;margin:0 0 .25rem}.meta,.sources{color:#555;font-size:.9rem}")


def river_page(feed: FeedConfig, stories: Sequence[Story], service: ServiceConfig) -> bytes:
    links = "".join(
        f'<link rel="alternate" type="{CONTENT_TYPES[fmt].split(";")[0]}" '
        f'href="{_e(feed_url(service, feed.id, fmt))}" title="{_e(feed.title)}">'
        for fmt in EXTENSIONS)
    items = "\n".join(_story(story) for story in stories)
    subscribe = " · ".join(
        f'<a href="{_e(feed_url(service, feed.id, fmt))}">{fmt.upper()}</a>' for fmt in EXTENSIONS)
    lang = f' lang="{_e(feed.language)}"' if feed.language else ""
    return (f"<!DOCTYPE html>\n<html{lang}><head><meta charset=\"utf-8\">"
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(feed.title)}</title>{links}<style>{_STYLE}</style></head>\n"
            f"<body><header><h1>{_e(feed.title)}</h1><p>{_e(feed.description)}</p>"
            f"<p>Subscribe: {subscribe}</p></header>\n<main>\n{items}\n</main></body></html>\n"
            ).encode()


def _story(story: Story) -> str:
    title = _e(story.title)
    if story.link and _is_http(story.link):
        title = f'<a href="{_e(story.link)}">{title}</a>'
    place = f" · {_e(story.place)}" if story.place else ""
    summary = story.text if len(story.text) <= SUMMARY_CHARS else (
        story.text[:SUMMARY_CHARS].rsplit(" ", 1)[0] + " …")
    outlets = ", ".join(
        f'<a href="{_e(s.url)}">{_e(s.name or s.host)}</a>' if s.url and _is_http(s.url)
        else _e(s.name or s.host) for s in story.sources)
    return (f"<article><h2>{title}</h2><p class=\"meta\">{_date(story.published)}{place}</p>"
            f"<p>{_e(summary)}</p><p class=\"sources\">Sources: {outlets}</p></article>")


def feeds_opml(config: Config) -> bytes:
    """Our output feeds, for a feed reader to import (OPML 2.0)."""
    outlines = [{"type": "rss", "text": f.title, "title": f.title,
                 "xmlUrl": feed_url(config.service, f.id, "atom"),
                 "htmlUrl": page_url(config.service, f.id)} for f in config.feeds]
    return _opml("syndicate: output feeds", outlines)


def sources_opml(config: Config) -> bytes:
    """The sources we read (http(s) ones: a local file means nothing to another reader)."""
    outlines = [{"type": "rss", "text": s.title or s.id, "title": s.title or s.id,
                 "xmlUrl": s.url} for s in config.sources if _is_http(s.url)]
    return _opml("syndicate: sources", outlines)


def page_url(service: ServiceConfig, feed_id: str) -> str:
    return feed_url(service, feed_id, "rss").removesuffix(".rss") + ".html"


def _opml(title: str, outlines: list[dict[str, str]]) -> bytes:
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    body = etree.SubElement(root, "body")
    for attributes in outlines:
        etree.SubElement(body, "outline", attributes)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _date(when: datetime) -> str:
    return f'<time datetime="{when.isoformat()}">{when:%Y-%m-%d %H:%M} UTC</time>'


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _e(text: str) -> str:
    return html.escape(text, quote=True)
