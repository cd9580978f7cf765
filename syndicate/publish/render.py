"""Render one output feed as RSS 2.0, Atom 1.0 or JSON Feed 1.1 bytes.

``render()`` turns a feed's stories (newest first, rendered in the order given) into the bytes
served for one format. Every story appears once, with its stable GUID and its whole source list:

* RSS 2.0 (feedgen): ``<guid isPermaLink="false">``, one core ``<source>`` (the RSS 2.0 element
  allows only one: the first carried outlet), ``<syn:sources>`` with every outlet, ``dc:creator``
  for authors (RSS ``<author>`` must be an e-mail address), one ``<enclosure>`` (RSS allows one).
* Atom 1.0 (feedgen): ``<link rel="via">`` per outlet with a URL (RFC 4287 §4.2.7.2), one
  ``<source>`` (§4.2.11) for the first carried outlet (its id: the outlet's home page),
  ``<syn:sources>`` with every outlet, ``<link rel="enclosure">`` per enclosure.
* JSON Feed 1.1 (json.dumps): an ``_syndicate`` extension object on each item (JSON Feed 1.1
  "Extensions": keys starting with an underscore).

People get the same list in every format as a footer appended to the content
(``sources_footer_html``), labelled in the feed's language.

Rules this module keeps, because feed readers and the W3C Feed Validator rely on them:

* Only absolute http(s) URLs with a DNS or IPv4 host are ever emitted as links; anything else
  (``javascript:``, relative, malformed, an IPv6-literal host) is dropped, or shown as escaped
  text in the footer. RSS ``<enclosure url>`` is stricter still (``_RSS_ENCLOSURE_URL``).
* Characters that XML 1.0 forbids (C0 controls except tab/newline/CR, lone surrogates, U+FFFE,
  U+FFFF; XML 1.0 §2.2) are removed from every string first: lxml refuses them otherwise. So are
  C1 controls (U+0080-U+009F), which no text means.
* Every atom:id is a valid absolute IRI in the normal form the validator compares it with
  (``_Item.atom_id``).
* Dates are UTC: RFC 822 in RSS (four-digit year, ``+0000``), RFC 3339 in Atom and JSON.
* A GUID already rendered is not rendered again: RSS forbids duplicate ``<guid>`` values.
* RSS writes ``&`` and ``<`` as hexadecimal character references (RSS Best Practices Profile,
  "Encoding"), so a reader applying the profile sees plain text, not escaped markup.
* feedgen 1.0.0 drops ``rel``/``type``/``title``/``length`` from Atom *entry* links, so every
  entry link other than the alternate one is written by our feedgen extension on the lxml element.
"""

from __future__ import annotations

import html
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from syndicate import __version__
from syndicate.languages import normalize_language
from syndicate.types import Enclosure, FeedConfig, ServiceConfig, Story, StorySource

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
EXTENSIONS = {"rss": "rss", "atom": "atom", "json": "json"}

# The namespace of our source-list extension (docs/output-formats.md). It is an identifier, not
# a page: the .invalid TLD (RFC 6761 §6.4) guarantees it never names someone else's resource.
# It must never change once feeds are published: readers match on it.
SOURCES_NS = "https://syndicate.invalid/ns/sources/1.0"
SOURCES_PREFIX = "syn"
JSON_EXTENSION_KEY = "_syndicate"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = f"syndicate {__version__}"

DC_NS = "http://purl.org/dc/elements/1.1/"
# RFC 5005 (Feed Paging and Archiving): archive documents say so with fh:archive.
HISTORY_NS = "http://purl.org/syndication/history/1.0"
ARCHIVE_FORMATS = ("atom", "rss")  # JSON Feed has no archive form
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DEFAULT_MIME_TYPE = "application/octet-stream"
SUMMARY_TEXT_LIMIT = 300  # characters of plain text in JSON Feed's "summary"

# Footer labels by primary language subtag (RFC 5646 §2.2.1); anything else gets English.
FOOTER_LABELS: dict[str, tuple[str, str]] = {
    "en": ("Sources", "Place"),
    "de": ("Quellen", "Ort"),
    "fr": ("Sources", "Lieu"),
    "es": ("Fuentes", "Lugar"),
    "it": ("Fonti", "Luogo"),
}

# XML 1.0 §2.2 Char: tab, LF and CR are the only C0 controls allowed; surrogates, U+FFFE and
# U+FFFF are not characters at all. C1 controls (U+0080-U+009F) are allowed by XML but mean
# nothing in text: they are what a decoder leaves for a windows-1252 byte that has no character
# (0x81, 0x8D, 0x8F, 0x90, 0x9D), and the W3C validator warns about them (BadCharacters).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x80-\x9f\ud800-\udfff\ufffe\uffff]")
_WHITESPACE = re.compile(r"\s+")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})+$")
# No "[" or "]": an IP-literal host (RFC 3986 §3.2.2) is refused. The W3C validator rejects it
# in every RSS URL and in atom:id, and news links do not use one.
_NETLOC = re.compile(r"^[A-Za-z0-9.\-_~%!$&'()*+,;=:@]+$")
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][\w!#$&^.+-]*/[A-Za-z0-9][\w!#$&^.+-]*$")
# RFC 3986 §2.2 reserved characters but "[" and "]" (which only an IP-literal host may hold,
# §3.2.2), plus "%" (existing escapes) and "~": left as they are; the rest is percent-encoded.
_URL_SAFE = "!#$&'()*+,/:;=?@~%"
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a "%" that starts no escape
# What the W3C validator accepts in RSS <enclosure url> (its "httpURL"): http(s), no user info,
# a host of two or more DNS labels without "_" (or a dotted IPv4 address), an optional port.
_RSS_ENCLOSURE_URL = re.compile(
    r"^https?://(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.|(?:[A-Za-z0-9-]+\.)+)[A-Za-z0-9][A-Za-z0-9-]*"
    r"(?::\d+)?(?:/|$)"
)

# atom:id forms written as the GUID is (RFC 4287 §4.2.6 wants an absolute IRI). The validator
# also compares an atom:id with its RFC 3986 §6.2.2 normal form and warns (NonCanonicalURI)
# when they differ, so only normal forms pass: a lower-case host, no default port, no dot
# segments, escapes only of ASCII characters that are not unreserved (it decodes "%7E").
_UUID_URN = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_ID_CHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})"
_HTTP_ID = re.compile(
    rf"^(https?)://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::([1-9][0-9]{{0,4}}))?(/{_ID_CHAR}*)"
    rf"(?:\?(?:{_ID_CHAR}|\?)*)?(?:#(?:{_ID_CHAR}|\?)*)?$"
)
# RFC 4151 §2.1: tag:authorityName,date:specific[#fragment].
_TAG_ID = re.compile(
    r"^tag:(?:[a-z0-9._-]+@)?[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?,\d{4}(?:-\d{2}(?:-\d{2})?)?:"
    rf"(?:{_ID_CHAR}|\?)*(?:#(?:{_ID_CHAR}|\?)*)?$"
)
_DEFAULT_PORT = {"http": "80", "https": "443"}
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?:/|$)")
_ESCAPE = re.compile(r"%([0-9A-F]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# The atom:id of any other GUID is a name-based UUID of it (RFC 4122 §4.3) in this namespace.
# Never change it: every such entry would get a new id.
ATOM_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://syndicate.invalid/ns/guid/1.0")


# --- cleaning -----------------------------------------------------------------------------


def _clean(text: str | None) -> str:
    """The text without characters XML 1.0 cannot carry, nor C1 controls; "" for None."""
    return _XML_ILLEGAL.sub("", text) if text else ""


def _clean_line(text: str | None) -> str:
    """Cleaned text on one line, whitespace collapsed (titles, names, attribute values)."""
    return _WHITESPACE.sub(" ", _clean(text)).strip()


def _http_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL, with unsafe characters percent-encoded; else None.

    Encoding spaces, quotes, brackets, a "%" that starts no escape and non-ASCII keeps the result
    a valid URI (RFC 3986) for RSS 2.0, which, unlike Atom, has no IRIs. An IP-literal host
    (``http://[2001:db8::1]/``) gives None (see ``_NETLOC``).
    """
    candidate = _STRAY_PERCENT.sub("%25", _clean(url).strip())
    if not candidate:
        return None
    try:
        parts = urlsplit(candidate)
        _ = parts.port  # raises ValueError on a malformed port
        netloc = parts.netloc.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if not _NETLOC.match(netloc):
        return None
    return urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            quote(parts.path, safe=_URL_SAFE) or "/",
            quote(parts.query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )


def _host_url(host: str) -> str | None:
    """``https://{host}/`` for a plain DNS host name (as normalize stores them), else None."""
    host = _clean(host).strip().lower()
    return f"https://{host}/" if _HOSTNAME.match(host) else None


def _utc(moment: datetime) -> datetime:
    """The time in UTC to the second; a naive time is taken to be UTC already (see types.py)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _rfc3339(moment: datetime) -> str:
    return _utc(moment).isoformat().replace("+00:00", "Z")


def _language_tag(language: str | None) -> str | None:
    """The tag as ingest normalizes it (a primary subtag of ISO 639-1 or 639-2, which xml:lang
    and RSS <language> need), whatever the store or a caller holds; else None."""
    return normalize_language(_clean(language))


def _primary_subtag(language: str | None) -> str:
    tag = _language_tag(language)
    return tag.split("-", 1)[0].lower() if tag else "en"


def _shorten(text: str, limit: int) -> str:
    """Plain text on one line, cut at a word boundary to at most ``limit`` characters."""
    line = _clean_line(text)
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


def _mime_type(value: str | None) -> str | None:
    mime = _clean(value).split(";", 1)[0].strip().lower()
    return mime if _MIME_TYPE.match(mime) else None


# --- the prepared view of a story -------------------------------------------------------------


@dataclass(frozen=True)
class _Outlet:
    host: str
    name: str  # display name: the outlet's name, else its host
    url: str | None  # the outlet's own URL, http(s) only
    carried: bool

    @property
    def href(self) -> str | None:
        """Where a machine-readable link to the outlet points: its URL, else its home page."""
        return self.url or _host_url(self.host)

    @property
    def home(self) -> str | None:
        """The outlet's home page, ``https://{host}/``, from its host or else its URL's host: the
        same for every story it carries, so it can name the outlet (atom:source's id)."""
        url_host = urlsplit(self.url).hostname if self.url else None
        return _host_url(self.host) or _host_url(url_host or "")


@dataclass(frozen=True)
class _Attachment:
    url: str
    mime_type: str | None
    length: int | None


@dataclass(frozen=True)
class _Item:
    guid: str
    title: str
    link: str | None
    summary_html: str
    content_html: str  # the story's content with the footer appended
    summary_text: str
    published: datetime
    updated: datetime
    language: str | None
    place: str | None
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    attachments: tuple[_Attachment, ...]
    outlets: tuple[_Outlet, ...]

    @property
    def atom_id(self) -> str:
        """The GUID when it is a ``urn:uuid:`` (as the store mints them), an http(s) URL or a
        ``tag:`` URI in normal form; else ``urn:uuid:`` and a name-based UUID of the GUID.

        atom:id must be an absolute IRI (RFC 4287 §4.2.6), and the validator checks ``urn:``,
        ``tag:`` and unregistered schemes further. A UUID derived from the GUID alone is as
        stable as the GUID and valid whatever characters it holds; a URN with the GUID spelled
        out cannot be: RFC 2141 forbids "~" in it, and an escaped "~" is not in normal form.
        """
        if _UUID_URN.match(self.guid) or _normal_http_id(self.guid) or _normal_tag_id(self.guid):
            return self.guid
        return f"urn:uuid:{uuid.uuid5(ATOM_ID_NAMESPACE, self.guid)}"

    @property
    def first_carried(self) -> _Outlet | None:
        return next((o for o in self.outlets if o.carried), None)


def _normal_http_id(value: str) -> bool:
    """An http(s) URL the validator takes as a valid atom:id in normal form."""
    match = _HTTP_ID.match(value)
    if match is None:
        return False
    scheme, port, path = match.groups()
    return (port != _DEFAULT_PORT[scheme] and not _DOT_SEGMENT.search(path)
            and _escapes_are_normal(value))


def _normal_tag_id(value: str) -> bool:
    return _TAG_ID.match(value) is not None and _escapes_are_normal(value)


def _escapes_are_normal(value: str) -> bool:
    """Every escape is of an ASCII character outside "unreserved" (RFC 3986 §6.2.2.2 decodes
    those), so normalizing leaves it; non-ASCII escapes are left to the UUID form."""
    return all(int(code, 16) < 0x80 and chr(int(code, 16)) not in _UNRESERVED
               for code in _ESCAPE.findall(value))


def _outlets(sources: Sequence[StorySource]) -> tuple[_Outlet, ...]:
    outlets = []
    for source in sources:
        host = _clean_line(source.host)
        name = _clean_line(source.name) or host
        if name:
            outlets.append(_Outlet(host, name, _http_url(source.url), source.carried))
    return tuple(outlets)


def _attachments(enclosures: Sequence[Enclosure]) -> tuple[_Attachment, ...]:
    attachments = []
    for enclosure in enclosures:
        url = _http_url(enclosure.url)
        if url is None:
            continue
        length = enclosure.length
        if length is not None and length < 0:
            length = None
        attachments.append(_Attachment(url, _mime_type(enclosure.type), length))
    return tuple(attachments)


def _unique_lines(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in (_clean_line(x) for x in values) if v))


def _prepare(story: Story, feed_language: str | None) -> _Item:
    outlets = _outlets(story.sources)
    place = _clean_line(story.place) or None
    title = _clean_line(story.title) or _shorten(story.text, 80) or "(untitled)"
    # Atom needs content or an alternate link; content always exists this way.
    body = (
        _clean(story.content_html).strip()
        or _clean(story.summary_html).strip()
        or f"<p>{html.escape(title)}</p>"
    )
    return _Item(
        guid=_clean(story.guid).strip(),
        title=title,
        link=_http_url(story.link),
        summary_html=_clean(story.summary_html).strip(),
        content_html=body + _footer_html(outlets, place, feed_language),
        summary_text=_shorten(story.text, SUMMARY_TEXT_LIMIT),
        published=_utc(story.published),
        updated=_utc(story.updated),
        language=_language_tag(story.language),
        place=place,
        authors=_unique_lines(story.authors),
        categories=_unique_lines(story.categories),
        attachments=_attachments(story.enclosures),
        outlets=outlets,
    )


def _prepare_all(stories: Sequence[Story], feed_language: str | None) -> list[_Item]:
    """Prepared items in the given order, each GUID once (the first, newest, copy wins)."""
    items: list[_Item] = []
    seen: set[str] = set()
    for story in stories:
        item = _prepare(story, feed_language)
        if not item.guid or item.guid in seen:
            log.warning("story %s skipped: empty or duplicate GUID %r", story.id, item.guid)
            continue
        seen.add(item.guid)
        items.append(item)
    return items


# --- the human footer ---------------------------------------------------------------------------


def sources_footer_html(story: Story, language: str | None) -> str:
    """The "Sources: …" footer (after a "Place: …" line when the story has a place) as HTML.

    Labels follow ``language``'s primary subtag (FOOTER_LABELS, English otherwise). Names are
    HTML-escaped; an outlet becomes a link only when its own URL is http(s). "" when the story
    has neither sources nor place.
    """
    return _footer_html(_outlets(story.sources), _clean_line(story.place) or None, language)


def _footer_html(outlets: Sequence[_Outlet], place: str | None, language: str | None) -> str:
    sources_label, place_label = FOOTER_LABELS.get(_primary_subtag(language), FOOTER_LABELS["en"])
    lines = []
    if place:
        lines.append(f"<p><strong>{place_label}:</strong> {html.escape(place)}</p>")
    if outlets:
        names = ", ".join(_outlet_html(outlet) for outlet in outlets)
        lines.append(f"<p><strong>{sources_label}:</strong> {names}</p>")
    return "<hr/>" + "".join(lines) if lines else ""


def _outlet_html(outlet: _Outlet) -> str:
    name = html.escape(outlet.name)
    if outlet.url is None:
        return name
    return f'<a href="{html.escape(outlet.url, quote=True)}">{name}</a>'


# --- feed head ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    title: str
    description: str
    home_url: str
    feed_url: str  # the current feed's: the id of the feed, and every archive page's
    self_url: str  # this document's (an archive page's own, or feed_url)
    hub_url: str | None
    language: str | None
    updated: datetime
    history_links: tuple[tuple[str, str], ...] = ()  # RFC 5005 (rel, href)
    archive: bool = False  # an archive document (fh:archive)


@dataclass(frozen=True)
class History:
    """Where a document stands in its feed's archive (RFC 5005 §4): how many full archive
    pages the feed has, and which one this is (None: the current feed)."""

    pages: int
    page: int | None = None

    def links(self, service: ServiceConfig, feed_id: str, fmt: str
              ) -> tuple[tuple[str, str], ...]:
        if self.page is None:  # the current feed points at the newest archive
            return (("prev-archive", archive_url(service, feed_id, self.pages, fmt)),) \
                if self.pages else ()
        links = [("current", feed_url(service, feed_id, fmt))]
        if self.page > 1:
            links.append(("prev-archive", archive_url(service, feed_id, self.page - 1, fmt)))
        if self.page < self.pages:
            links.append(("next-archive", archive_url(service, feed_id, self.page + 1, fmt)))
        return tuple(links)


def archive_url(service: ServiceConfig, feed_id: str, page: int, fmt: str) -> str:
    """The public URL of an archive page: ``{base_url}/feeds/{id}/archive/{page}.{ext}``."""
    return (f"{service.base_url.rstrip('/')}/feeds/{quote(feed_id, safe='')}/archive/"
            f"{page}.{EXTENSIONS[fmt]}")


def feed_url(service: ServiceConfig, feed_id: str, fmt: str) -> str:
    """The public URL of one feed in one format: ``{base_url}/feeds/{id}.{ext}``."""
    if fmt not in EXTENSIONS:
        raise ValueError(f"unknown feed format {fmt!r}; expected one of {sorted(EXTENSIONS)}")
    return f"{service.base_url.rstrip('/')}/feeds/{quote(feed_id, safe='')}.{EXTENSIONS[fmt]}"


def _head(feed: FeedConfig, fmt: str, service: ServiceConfig, updated: datetime,
          history: History | None) -> _Head:
    title = _clean_line(feed.title) or feed.id
    current = feed_url(service, feed.id, fmt)
    paged = history is not None and fmt in ARCHIVE_FORMATS
    archive = paged and history is not None and history.page is not None
    return _Head(
        title=title,
        description=_clean_line(feed.description) or title,
        home_url=f"{service.base_url.rstrip('/')}/",
        feed_url=current,
        self_url=archive_url(service, feed.id, history.page, fmt)
        if archive and history is not None and history.page is not None else current,
        # WebSub pings name the current feed; archive pages are not subscribed to.
        hub_url=None if archive else _http_url(service.websub_hub),
        language=_language_tag(feed.language),
        updated=_utc(updated),
        history_links=history.links(service, feed.id, fmt)
        if paged and history is not None else (),
        archive=archive,
    )


# --- RSS 2.0 and Atom 1.0 through feedgen -------------------------------------------------------


def _ns(tag: str) -> str:
    return f"{{{SOURCES_NS}}}{tag}"


def _sources_element(parent: Any, item: _Item) -> None:
    """``<syn:sources>`` with every outlet in order, and ``<syn:place>`` when there is one."""
    if item.outlets:
        sources = etree.SubElement(parent, _ns("sources"), nsmap={SOURCES_PREFIX: SOURCES_NS})
        for outlet in item.outlets:
            element = etree.SubElement(sources, _ns("outlet"))
            if outlet.host:
                element.set("host", outlet.host)
            if outlet.url:
                element.set("url", outlet.url)
            element.set("carried", "true" if outlet.carried else "false")
            element.text = outlet.name
    if item.place:
        place = etree.SubElement(parent, _ns("place"), nsmap={SOURCES_PREFIX: SOURCES_NS})
        place.text = item.place


class _FeedExtension(BaseExtension):  # type: ignore[misc]  # feedgen has no type hints
    """Feed-level additions: namespace prefixes, RSS generator version, WebSub hub link in RSS."""

    hub_url: str | None = None
    history_links: tuple[tuple[str, str], ...] = ()
    archive = False

    def extend_ns(self) -> dict[str, str]:
        namespaces = {SOURCES_PREFIX: SOURCES_NS, "dc": DC_NS}
        if self.archive:
            namespaces["fh"] = HISTORY_NS
        return namespaces

    def extend_atom(self, atom: Any) -> Any:
        if self.archive:
            _archive_marker(atom)
        return atom

    def extend_rss(self, rss: Any) -> Any:
        # RSS <generator> has no version attribute (Atom's has one), so the text carries it.
        rss.find("channel/generator").text = GENERATOR
        # feedgen writes only rel="self" as atom:link in RSS; WebSub §4 also wants rel="hub",
        # RFC 5005 its archive links.
        channel = rss.find("channel")
        last = channel.find("{http://www.w3.org/2005/Atom}link")
        extra = ([("hub", self.hub_url)] if self.hub_url else []) + [
            (rel, href) for rel, href in self.history_links]
        for rel, href in extra:
            link = etree.Element("{http://www.w3.org/2005/Atom}link", href=href, rel=rel)
            last.addnext(link)
            last = link
        if self.archive:
            _archive_marker(channel)
        return rss


def _archive_marker(parent: Any) -> None:
    """<fh:archive/>: this document is an archive page and will not change (RFC 5005 §4)."""
    parent.insert(0, etree.Element(f"{{{HISTORY_NS}}}archive"))


class _EntryExtension(BaseEntryExtension):  # type: ignore[misc]  # feedgen has no type hints
    """Entry-level additions feedgen lacks or writes wrongly; ``item`` is set per entry."""

    item: _Item | None = None

    def extend_atom(self, entry: Any) -> Any:
        item = self.item
        if item is None:
            return entry
        # Elements feedgen builds are in no namespace; the root's default xmlns makes them Atom,
        # so ours are made the same way (plain tag names).
        if item.atom_id != item.guid:
            # feedgen sets guid and atom:id together; only Atom needs the IRI form.
            entry.find("id").text = item.atom_id
        if item.language:
            entry.set(XML_LANG, item.language)
        for href, title in _via_links(item):
            etree.SubElement(entry, "link", rel="via", href=href, title=title)
        for attachment in item.attachments:
            link = etree.SubElement(entry, "link", rel="enclosure", href=attachment.url)
            if attachment.mime_type:
                link.set("type", attachment.mime_type)
            if attachment.length is not None:
                link.set("length", str(attachment.length))
        first = item.first_carried
        if first is not None and first.home:
            # RFC 4287 §4.2.11: the feed the entry came from, with the id, title and updated it
            # recommends. We do not keep that feed's own atom:id, so the outlet's home page
            # names it, the same in every entry; updated is when the story last changed.
            source = etree.SubElement(entry, "source")
            etree.SubElement(source, "id").text = first.home
            etree.SubElement(source, "title").text = first.name
            etree.SubElement(source, "updated").text = _rfc3339(item.updated)
            etree.SubElement(source, "link", rel="alternate", href=first.href or first.home)
        _sources_element(entry, item)
        return entry

    def extend_rss(self, entry: Any) -> Any:
        item = self.item
        if item is None:
            return entry
        # RSS <author> must be an e-mail address; dc:creator takes a name.
        for author in item.authors:
            etree.SubElement(entry, f"{{{DC_NS}}}creator", nsmap={"dc": DC_NS}).text = author
        # RSS 2.0 allows one enclosure per item, with url, length and type all required; the
        # first whose URL the validator takes there (Atom and JSON keep the others).
        first = next((a for a in item.attachments if _RSS_ENCLOSURE_URL.match(a.url)), None)
        if first is not None:
            etree.SubElement(
                entry,
                "enclosure",
                url=first.url,
                length=str(first.length or 0),
                type=first.mime_type or DEFAULT_MIME_TYPE,
            )
        carried = item.first_carried
        if carried is not None and carried.href:
            # RSS 2.0 <source> allows one outlet and requires an http(s) url attribute.
            etree.SubElement(entry, "source", url=carried.href).text = carried.name
        _sources_element(entry, item)
        return entry


def _via_links(item: _Item) -> list[tuple[str, str]]:
    """(href, title) of the rel="via" links: one per outlet with a URL, each URL once."""
    links: dict[str, str] = {}
    for outlet in item.outlets:
        if outlet.href and outlet.href not in links:
            links[outlet.href] = outlet.name
    return list(links.items())


def _feed_generator(head: _Head, items: Sequence[_Item]) -> FeedGenerator:
    fg = FeedGenerator()
    fg.register_extension("syndicate", _FeedExtension, _EntryExtension)
    fg.syndicate.hub_url = head.hub_url
    fg.syndicate.history_links = head.history_links
    fg.syndicate.archive = head.archive
    fg.id(head.feed_url)
    fg.title(head.title)
    fg.description(head.description)
    fg.updated(head.updated)
    # Atom §4.1.1: without an author on every entry the feed needs one; the feed speaks for itself.
    fg.author({"name": head.title})
    fg.generator("syndicate", version=__version__)  # RSS gets GENERATOR (_FeedExtension)
    if head.language:
        fg.language(head.language)
    fg.link(href=head.self_url, rel="self")
    if head.hub_url:
        fg.link(href=head.hub_url, rel="hub")
    for rel, href in head.history_links:  # Atom only: RSS gets them from _FeedExtension
        fg.link(href=href, rel=rel)
    fg.link(href=head.home_url, rel="alternate")  # last: feedgen uses the last link for RSS
    for item in items:
        _add_entry(fg, item)
    return fg


def _add_entry(fg: FeedGenerator, item: _Item) -> None:
    entry = fg.add_entry(order="append")
    entry.syndicate.item = item
    entry.guid(item.guid, permalink=False)  # also atom:id; _EntryExtension wraps a non-IRI one
    entry.title(item.title)
    if item.link:
        entry.link(href=item.link, rel="alternate")
    if item.summary_html:
        entry.summary(item.summary_html, type="html")
    entry.content(item.content_html, type="html")
    entry.published(item.published)
    entry.updated(item.updated)
    for author in item.authors:
        entry.author({"name": author})
    for category in item.categories:
        entry.category(term=category)


def _render_rss(head: _Head, items: Sequence[_Item]) -> bytes:
    body = bytes(_feed_generator(head, items).rss_str(pretty=True, encoding="UTF-8"))
    return _hex_references(body)


def _hex_references(body: bytes) -> bytes:
    """``&amp;`` → ``&#x26;``, ``&lt;`` → ``&#x3C;``: the same XML (XML 1.0 §4.1), in the form
    the RSS Best Practices Profile asks of text, so "1&1" or "a <b" in a title reads as plain
    text. lxml writes those two only as escapes (feedgen writes no CDATA for us), so replacing
    them in the serialized bytes changes no character of the document's content."""
    return body.replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")


def _render_atom(head: _Head, items: Sequence[_Item]) -> bytes:
    return bytes(_feed_generator(head, items).atom_str(pretty=True, encoding="UTF-8"))


# --- JSON Feed 1.1 --------------------------------------------------------------------------


def _render_json(head: _Head, items: Sequence[_Item]) -> bytes:
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": head.title,
        "home_page_url": head.home_url,
        "feed_url": head.self_url,
        "description": head.description,
        "authors": [{"name": head.title}],
    }
    if head.language:
        document["language"] = head.language
    if head.hub_url:
        document["hubs"] = [{"type": "WebSub", "url": head.hub_url}]
    document["items"] = [_json_item(item) for item in items]
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def _json_item(item: _Item) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": item.guid}
    if item.link:
        entry["url"] = item.link
    entry["title"] = item.title
    entry["content_html"] = item.content_html
    if item.summary_text:
        entry["summary"] = item.summary_text  # JSON Feed: plain text
    entry["date_published"] = _rfc3339(item.published)
    entry["date_modified"] = _rfc3339(item.updated)
    if item.authors:
        entry["authors"] = [{"name": author} for author in item.authors]
    if item.categories:
        entry["tags"] = list(item.categories)
    if item.language:
        entry["language"] = item.language
    if item.attachments:
        entry["attachments"] = [_json_attachment(a) for a in item.attachments]
    entry[JSON_EXTENSION_KEY] = {
        "about": SOURCES_NS,
        "sources": [
            {"host": o.host, "name": o.name, "url": o.url, "carried": o.carried}
            for o in item.outlets
        ],
        "place": item.place,
    }
    return entry


def _json_attachment(attachment: _Attachment) -> dict[str, Any]:
    result: dict[str, Any] = {
        "url": attachment.url,
        "mime_type": attachment.mime_type or DEFAULT_MIME_TYPE,  # required by JSON Feed 1.1
    }
    if attachment.length is not None:
        result["size_in_bytes"] = attachment.length
    return result


# --- entry point ----------------------------------------------------------------------------

_RENDERERS: dict[str, Callable[[_Head, Sequence[_Item]], bytes]] = {
    "rss": _render_rss,
    "atom": _render_atom,
    "json": _render_json,
}


def render(
    feed: FeedConfig,
    stories: Sequence[Story],
    fmt: str,
    *,
    service: ServiceConfig,
    updated: datetime,
    history: History | None = None,
) -> bytes:
    """The feed as UTF-8 bytes in ``fmt`` ("rss", "atom" or "json"), stories in the given order.

    ``updated`` is the feed's last change (RSS lastBuildDate, Atom updated); ``history``, its
    RFC 5005 archive links (Atom and RSS), or an archive page's. Raises ValueError for an
    unknown format.
    """
    if fmt not in _RENDERERS:
        raise ValueError(f"unknown feed format {fmt!r}; expected one of {sorted(_RENDERERS)}")
    head = _head(feed, fmt, service, updated, history)
    return _RENDERERS[fmt](head, _prepare_all(stories, feed.language))
