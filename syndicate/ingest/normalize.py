"""Turn one parsed entry into a normalized ``Entry``: pure functions, no I/O, no clock.

What this module guarantees, so later stages (dedupe, store, publish) can rely on it:

* URLs are canonical (``canonical_url``): absolute http(s) only, lower-case scheme and host,
  IDNA host, no default port, userinfo, fragment or tracking parameters. Two spellings of the
  same article link compare equal, and nothing else (``javascript:``, ``data:``) gets through.
* HTML is safe to embed (``sanitize_html``): an allow-list of formatting tags and attributes,
  run through nh3 (Rust's ammonia, an html5ever parser, so it sees markup as a browser does).
  Active content is removed *with* its content; link and image URLs are absolute
  http(s)/mailto or gone; every link gets ``rel="noopener noreferrer nofollow"``.
* Text (``html_to_text``, ``plain_title``) is what a reader sees: entities decoded, blocks on
  their own lines, whitespace collapsed.
* ``content_hash`` identifies a story's text across outlets that differ only in case,
  punctuation and spacing, and refuses to identify texts too short to tell stories apart.
* Dates are timezone-aware UTC and never more than a day in the future.

Everything here must never raise on hostile or broken input: a feed is untrusted data.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit

import idna
import nh3
from lxml import etree
from lxml import html as lxml_html

from syndicate.ingest import dedupe, similarity
from syndicate.ingest.citations import MAX_REFS, extract_citations, source_ref_from_url
from syndicate.languages import normalize_language
from syndicate.types import (
    Enclosure,
    Entry,
    ParsedEntry,
    ParsedFeed,
    SourceConfig,
    SourceRef,
)

# --- canonical URLs ---------------------------------------------------------------------------

# Query parameters that only say how a reader reached a page, never which page it is.
# Compared case-insensitively; every ``utm_*`` name is removed as well (TRACKING_PREFIXES).
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        # Click identifiers appended by ad and social platforms.
        "fbclid",  # Facebook / Meta
        "gclid", "gclsrc", "dclid", "gbraid", "wbraid",  # Google Ads / DoubleClick
        "srsltid",  # Google Merchant Center
        "msclkid",  # Microsoft Advertising
        "yclid", "_openstat",  # Yandex
        "twclid", "__twitter_impression",  # Twitter / X
        "ttclid",  # TikTok
        "li_fat_id",  # LinkedIn
        "epik",  # Pinterest
        "igshid",  # Instagram share links
        # E-mail and marketing automation.
        "mc_cid", "mc_eid",  # Mailchimp
        "_hsenc", "_hsmi", "__hssc", "__hstc", "__hsfp", "hsctatracking",  # HubSpot
        "mkt_tok",  # Marketo
        "oly_anon_id", "oly_enc_id",  # Omeda
        "vero_id", "vero_conv",  # Vero
        "_ga", "_gl",  # Google Analytics cross-domain linker
        # Analytics campaign codes that news sites put on their RSS and share links.
        "wt_mc", "wt.mc_id",  # Webtrends
        "s_cid",  # Adobe Analytics
        "at_medium", "at_campaign",  # AT Internet / Piano (e.g. BBC's "?at_medium=RSS")
        "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee",  # comScore
        "cmpid",  # campaign id used by many publishers
        "ncid", "ocid",  # Yahoo / AOL / MSN syndication
        "guccounter", "guce_referrer", "guce_referrer_sig",  # Yahoo consent redirect
        "smid",  # New York Times social share id
        "ref_src", "ref_url",  # Twitter embed referrers
    }
)  # fmt: skip
TRACKING_PREFIXES: tuple[str, ...] = ("utm_",)  # Google Analytics campaign parameters

_HTTP_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# WHATWG URL §4.4 (basic URL parser): leading/trailing C0 controls and spaces are stripped,
# tabs and newlines inside are removed. Any other control character means garbage.
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # lone surrogates: not even text
_ASCII_HOST = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$")
# RFC 3986 §2.2/§2.3: reserved and unreserved characters stay as they are ("%" too, so
# existing escapes are kept); anything else (spaces, non-ASCII, "<", '"'...) is %-encoded.
_URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


_C0_OR_SPACE = "".join(chr(code) for code in range(0x21))


def _strip_url(url: str) -> str:
    return _TAB_OR_NEWLINE.sub("", url.strip(_C0_OR_SPACE))


def _is_tracking_param(name: str) -> bool:
    lowered = unquote(name.replace("+", " ")).strip().lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _clean_query(query: str) -> str:
    """Drop tracking parameters; the others keep their order and their exact encoding."""
    kept = [
        pair for pair in query.split("&") if pair and not _is_tracking_param(pair.partition("=")[0])
    ]
    return quote("&".join(kept), safe=_URL_SAFE)


def _canonical_host(hostname: str) -> str | None:
    """A lower-case ASCII host (IDNA for names, compressed form for IPv6), or None."""
    host = hostname.rstrip(".")  # "example.com." names the same host (RFC 1034 §3.1)
    if not host:
        return None
    if ":" in host:  # only an IPv6 literal can hold a colon once the port is split off
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
    if not host.isascii():
        try:
            # UTS #46 non-transitional processing, as browsers do: "ß" stays a "ß".
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    host = host.lower()
    return host if _ASCII_HOST.match(host) else None


def _is_absolute_http(parts: SplitResult, url: str) -> bool:
    """Would ``urljoin`` give this URL back as it is, whatever the base? It does for an
    http(s) URL with a host (or re-assembles the same parts), but for ";" params, which its
    re-assembly may change ("/a;" becomes "/a"). Most links are such URLs, and joining costs
    two more parses."""
    return parts.scheme in _HTTP_SCHEMES and bool(parts.netloc) and ";" not in url


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical absolute http(s) form of ``url`` (resolved against ``base``), or None.

    None for anything that is not, or does not resolve to, an http(s) URL with a valid host:
    other schemes, a relative URL without a base, and garbage. Never raises.
    """
    if not url or not isinstance(url, str):
        return None
    url = _strip_url(url)
    if not url or _CONTROL.search(url):
        return None
    try:
        parts = urlsplit(url)
        if base and not _is_absolute_http(parts, url):
            parts = urlsplit(urljoin(_strip_url(base), url))  # RFC 3986 §5.2 resolution
        scheme = parts.scheme.lower()
        if scheme not in _HTTP_SCHEMES or not parts.hostname:
            return None
        host = _canonical_host(parts.hostname)  # userinfo is left behind here
        port = parts.port  # raises ValueError on a port out of range or not a number
    except ValueError:
        return None
    if host is None:
        return None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = quote(parts.path, safe=_URL_SAFE) or "/"  # RFC 3986 §6.2.3: empty path is "/"
    query = _clean_query(parts.query)
    # The fragment is dropped: it names a place inside the page, not another page.
    return f"{scheme}://{netloc}{path}?{query}" if query else f"{scheme}://{netloc}{path}"


# --- HTML sanitizing --------------------------------------------------------------------------

_ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "br", "hr", "div", "span",
        "a", "b", "strong", "i", "em", "u", "s", "del", "ins", "small", "mark", "sub", "sup",
        "abbr", "time", "cite", "q", "blockquote", "code", "pre", "kbd", "samp", "var",
        "ul", "ol", "li", "dl", "dt", "dd",
        "h1", "h2", "h3", "h4", "h5", "h6",
        "table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td", "colgroup", "col",
        "img", "figure", "figcaption",
    }
)  # fmt: skip
# <picture>/<source> are left out: their srcset lists need a parser of their own, and the
# <img> inside a <picture> carries the image anyway.

_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "time": {"datetime", "title"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "reversed"},
}

# Removed together with everything inside: their content is code, a foreign document or
# widget, or (noscript, title) text that makes no sense outside its original page.
_REMOVED_WITH_CONTENT: frozenset[str] = frozenset(
    {
        "script", "style", "iframe", "frame", "frameset", "noframes", "object", "embed",
        "applet", "form", "button", "select", "textarea", "template", "noscript", "noembed",
        "svg", "math", "title",
    }
)  # fmt: skip

_LINK_REL = "noopener noreferrer nofollow"
_SAFE_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
_SURROGATE = re.compile(r"[\ud800-\udfff]")


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")  # RFC 3986 §3.1


class _AttributeUrls:
    """nh3's attribute_filter: href/src/cite values become absolute http(s)/mailto URLs,
    resolved against the base, or are dropped. Runs for every URL of every entry, so the
    common shapes ("https://…", "/path", "//host/path") avoid the generic urljoin."""

    __slots__ = ("base", "directory", "origin", "scheme")

    def __init__(self, base_url: str | None) -> None:
        self.base: str | None = None
        self.origin = self.scheme = self.directory = ""
        if not base_url:
            return
        base = _strip_url(base_url)
        try:
            parts = urlsplit(base)
            usable = parts.scheme.lower() in _HTTP_SCHEMES and bool(parts.hostname)
        except ValueError:
            return
        # Only an http(s) base: a local feed's path must not turn links into file: URLs.
        if usable:
            self.base = base
            self.scheme = parts.scheme.lower()
            self.origin = f"{self.scheme}://{parts.netloc}"
            if "/." not in parts.path:  # else leave dot segments to urljoin
                self.directory = self.origin + (parts.path[: parts.path.rfind("/") + 1] or "/")

    def __call__(self, tag: str, attribute: str, value: str) -> str | None:
        # nh3 reports an exception from here as "unraisable", so nothing below may raise.
        if attribute not in _URL_ATTRIBUTES:
            return value
        return self.absolute(value)

    def absolute(self, value: str) -> str | None:
        value = _strip_url(value)
        if not value or _CONTROL.search(value):
            return None
        scheme = _SCHEME.match(value)
        if scheme:
            return value if scheme.group(1).lower() in _SAFE_URL_SCHEMES else None
        if self.base is None:
            return None  # relative, and nothing to resolve it against
        if value.startswith("//"):  # network-path reference: only the scheme is inherited
            return self._with_host(f"{self.scheme}:{value}")
        if "/." not in value and "\\" not in value:  # no dot segments to remove
            if value[0] == "/":
                return self.origin + value
            if value[0].isalnum() and self.directory:
                return self.directory + value
        try:
            return urljoin(self.base, value)  # RFC 3986 §5.2, dot segments and all
        except ValueError:
            return None

    @staticmethod
    def _with_host(url: str) -> str | None:
        try:
            return url if urlsplit(url).hostname else None
        except ValueError:
            return None


def sanitize_html(html: str | None, base_url: str | None = None) -> str:
    """Safe HTML for ``html``: allowed formatting only, absolute http(s)/mailto URLs."""
    if not html:
        return ""
    # PyO3 cannot hand lone surrogates (from broken numeric entities) to Rust.
    if not html.isascii():
        html = _SURROGATE.sub("\ufffd", html)
    return _cleaner(base_url).clean(html)


@functools.lru_cache(maxsize=256)
def _cleaner(base_url: str | None) -> nh3.Cleaner:
    """The sanitizer for one base URL. Building one cost more than cleaning an average
    article with it, and the entries of a feed share their base."""
    return nh3.Cleaner(
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_REMOVED_WITH_CONTENT),
        attributes=_ALLOWED_ATTRIBUTES,
        attribute_filter=_AttributeUrls(base_url),
        strip_comments=True,
        link_rel=_LINK_REL,
        # ammonia drops other schemes itself; the filter above checks again after resolving.
        url_schemes=set(_SAFE_URL_SCHEMES),
    )


# --- plain text -------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div",
        "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
        "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
_INVISIBLE_TAGS = frozenset({"script", "style", "template", "noscript", "title", "head"})
# XML 1.0 §2.2 forbids these characters; libxml2 refuses strings holding them.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# huge_tree lifts libxml2's nesting limit from 256 to 2048 levels, which real content (tables
# in tables) can approach; past that libxml2 gives up and the text comes out empty.
_TEXT_PARSER = lxml_html.HTMLParser(
    remove_comments=True, remove_pis=True, no_network=True, huge_tree=True
)


def _mark_line_breaks(root: lxml_html.HtmlElement) -> None:
    """Put the line breaks a browser would show into the tree, so lxml's (C-speed) itertext
    yields them: blocks on their own lines, table cells apart."""
    etree.strip_elements(root, *_INVISIBLE_TAGS, with_tail=False)
    for block in root.iter(*_BLOCK_TAGS):
        block.text = "\n" + (block.text or "")
        block.tail = "\n" + (block.tail or "")
    for cell in root.iter(*_CELL_TAGS):
        cell.tail = " " + (cell.tail or "")


def _collapse_lines(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: one line per block, whitespace collapsed."""
    html = _XML_ILLEGAL.sub("", html or "")
    if "<" not in html and "&" not in html:
        return _collapse_lines(html)
    root = _fragment_root(html)
    if root is None:
        return ""
    _mark_line_breaks(root)
    return _collapse_lines(etree.tostring(root, method="text", encoding="unicode",
                                          with_tail=False))


_FULL_DOCUMENT = re.compile(r"^\s*<(?:html|!doctype)", re.IGNORECASE)  # as lxml.html tells


def _fragment_root(html: str) -> Any | None:
    """The element holding the fragment's nodes, or None when lxml cannot parse it.

    What lxml.html.fragment_fromstring does (wrap in <html><body>, parse, move the body's
    nodes under a new <div>) without its Python layers, which cost a third of the parse:
    the <body> itself is returned. The text is the same: only a leading text that is all
    whitespace, which _collapse_lines drops anyway, is left out of lxml's <div>."""
    wrapped = html if _FULL_DOCUMENT.match(html) else f"<html><body>{html}</body></html>"
    try:
        document = etree.fromstring(wrapped, _TEXT_PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    if document is None:  # nothing but comments or processing instructions
        return None
    bodies = [child for child in document if child.tag == "body"]
    if len(bodies) == 1:
        return bodies[0]
    # "<svg></body><body>" makes two bodies (and lxml.html fail an assertion): keep the
    # text of each, and still nothing of the <head> (title, style).
    for child in list(document):
        if child.tag != "body":
            document.remove(child)
    return document


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, marked with "…"."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if not text[limit - 1].isspace():  # the cut falls inside a word: back off to its start
        space = head.rfind(" ")
        if space > 0:
            head = head[:space]
    return head.rstrip(" ,;:-–—") + "…"


def _plain(text: str | None, limit: int) -> str:
    """Markup and entities gone (twice-escaped entities too), one line, at most limit chars."""
    if not text:
        return ""
    if "<" in text or "&" in text:
        text = unescape(html_to_text(text))  # feeds often escape titles twice ("&amp;amp;")
    return _shorten(_one_line(text), limit)


TITLE_MAX_CHARS = 300


def plain_title(title: str | None) -> str:
    """A title as plain text on one line, at most 300 characters."""
    return _plain(title, TITLE_MAX_CHARS)


# --- content hash -----------------------------------------------------------------------------

MIN_HASH_WORDS = 25  # below this, texts (teasers, one-liners) are too alike across stories
_NOT_WORD = re.compile(r"[\W_]+")


def content_hash(text: str, words: list[str] | None = None) -> str | None:
    """sha256 of the text's words, case-folded, ignoring punctuation and spacing; None when
    the text has fewer than MIN_HASH_WORDS words. ``words``: the text's ``similarity.words``
    when the caller has them, which spares a pass over the text when it is NFKC already."""
    text = text or ""
    if words is not None and unicodedata.is_normalized("NFKC", text):
        # Runs of word characters without "_" are the words below; "_" is rare in prose, and
        # no character case-folds into one, so the words need a look only if the text has it.
        if "_" in text and any("_" in word for word in words):
            words = [part for word in words for part in word.split("_") if part]
    else:
        # NFKC first so composed and decomposed accents, and full-width forms, compare equal.
        words = _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()
    if len(words) < MIN_HASH_WORDS:
        return None
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()


# --- entries ----------------------------------------------------------------------------------

UNTITLED = "(untitled)"
TITLE_FROM_TEXT_CHARS = 80
MAX_NAMES = 20  # authors, categories
NAME_MAX_CHARS = 100
MAX_ENCLOSURES = 10
FUTURE_TOLERANCE = timedelta(days=1)

# BCP 47 (RFC 5646 §2.1), the parts feeds use: a 2–3 letter language, then subtags.
def _utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already (feedparser's convention)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)  # before the web: a broken date (often 1970)


def _plausible(moment: datetime | None) -> datetime | None:
    return moment if moment is not None and _utc(moment) >= EARLIEST_DATE else None


def _not_in_future(moment: datetime, now: datetime) -> datetime:
    return now if moment > now + FUTURE_TOLERANCE else moment


def _entry_dates(parsed: ParsedEntry, now: datetime) -> tuple[datetime, datetime, bool]:
    """(published, updated, dated): the feed's dates, else first-seen time; never far in the
    future; updated never before published. ``dated`` is False when ``published`` is not
    the feed's own (missing, implausible or in the future): the store then keeps the date
    it first gave the entry, so an undated entry does not jump to the top on every fetch."""
    now = _utc(now)
    given_updated = _plausible(parsed.updated)
    given_published = _plausible(parsed.published) or given_updated
    published = _not_in_future(_utc(given_published), now) if given_published else now
    updated = _not_in_future(_utc(given_updated), now) if given_updated else published
    dated = given_published is not None and published == _utc(given_published)
    return published, max(published, updated), dated


def _plain_names(names: Iterable[str | None]) -> tuple[str, ...]:
    """Plain-text names, empty ones dropped, each once (case-insensitively, first spelling)."""
    seen: set[str] = set()
    kept: list[str] = []
    for name in names:
        plain = _plain(name, NAME_MAX_CHARS)
        key = plain.casefold()
        if plain and key not in seen:
            seen.add(key)
            kept.append(plain)
            if len(kept) == MAX_NAMES:
                break
    return tuple(kept)


def _enclosures(enclosures: Iterable[Enclosure], base_url: str | None) -> tuple[Enclosure, ...]:
    seen: set[str] = set()
    kept: list[Enclosure] = []
    for enclosure in enclosures:
        url = canonical_url(enclosure.url, base_url)
        if url is None or url in seen:
            continue
        seen.add(url)
        media_type = (enclosure.type or "").strip().lower() or None
        length = enclosure.length
        if length is not None and length <= 0:  # 0 is what feeds write when they do not know
            length = None
        kept.append(Enclosure(url=url, type=media_type, length=length))
        if len(kept) == MAX_ENCLOSURES:
            break
    return tuple(kept)


def _entry_guid(parsed: ParsedEntry, link: str | None) -> str:
    """The feed's GUID, else the canonical link, else a hash of what the entry says."""
    guid = (parsed.guid or "").strip()
    if guid:
        return guid
    if link:
        return link
    said = (parsed.title or "") + (parsed.summary_html or parsed.content_html or "")
    digest = hashlib.sha1(said.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()
    return "sha1:" + digest  # an identifier, not a security measure


def _entry_title(parsed: ParsedEntry, text: str) -> str:
    return plain_title(parsed.title) or _shorten(_one_line(text), TITLE_FROM_TEXT_CHARS) or UNTITLED


def _unique_outlets(refs: Iterable[SourceRef | None]) -> tuple[SourceRef, ...]:
    seen: set[str] = set()
    kept: list[SourceRef] = []
    for ref in refs:
        if ref is not None and ref.key not in seen:
            seen.add(ref.key)
            kept.append(ref)
            if len(kept) == MAX_REFS:  # a feed element per outlet is as hostile as a block
                break
    return tuple(kept)


def _first_language(*tags: str | None) -> str | None:
    for tag in tags:
        language = normalize_language(tag)
        if language:
            return language
    return None


def input_digest(parsed: ParsedEntry, feed: ParsedFeed, source: SourceConfig,
                 base_url: str | None) -> str:
    """A digest of everything ``normalize_entry`` reads (but the clock): equal digests give
    equal entries, so an entry the feed repeats unchanged need not be normalized again.

    The HTML, most of what an entry says, is hashed as it is, after its length: a ``repr``
    of it (escaping every character) cost more than the rest of the digest. A test checks
    that every field of ``ParsedEntry`` changes the digest."""
    said = repr((parsed.guid, parsed.link, parsed.title, parsed.published, parsed.updated,
                 parsed.authors, parsed.categories, parsed.enclosures, parsed.language,
                 parsed.cited, feed.language, base_url, source.language,
                 source.citation_labels, source.strip_patterns))
    digest = hashlib.sha256(said.encode("utf-8", "surrogatepass"))
    for html in (parsed.summary_html, parsed.content_html):
        written = "-" if html is None else f"{len(html)}:{html}"
        digest.update(written.encode("utf-8", "surrogatepass"))  # lone surrogates and all
    return digest.hexdigest()


def normalize_entry(
    parsed: ParsedEntry,
    feed: ParsedFeed,
    source: SourceConfig,
    base_url: str | None,
    now: datetime,
) -> Entry:
    """One normalized ``Entry`` from what a feed said; ``now`` stands in for missing dates."""
    return normalize_entries([parsed], feed, source, base_url, now)[0]


def normalize_entries(
    parsed_entries: Sequence[ParsedEntry],
    feed: ParsedFeed,
    source: SourceConfig,
    base_url: str | None,
    now: datetime,
) -> list[Entry]:
    """``normalize_entry`` of each, with the MinHash signatures of all computed together:
    signed one by one, a short text cost more in numpy calls than in hashing."""
    drafts = [_draft(parsed, feed, source, base_url, now) for parsed in parsed_entries]
    texts = [words for draft in drafts for words in draft.texts()]
    signatures = iter(similarity.signatures_of_words(texts))
    return [draft.entry(signatures) for draft in drafts]


@dataclass(frozen=True)
class _Draft:
    """An entry but its signatures: the ``Entry`` fields, and the words to sign."""

    fields: dict[str, Any]
    body_words: list[str]
    lead_words: list[str] | None  # None: the lead is the whole text

    def texts(self) -> list[list[str]]:
        return [self.body_words] if self.lead_words is None else [self.body_words,
                                                                  self.lead_words]

    def entry(self, signatures: Iterator[bytes | None]) -> Entry:
        """The ``Entry``, taking the signatures of ``texts()`` from ``signatures``."""
        body_signature = next(signatures)
        lead_signature = body_signature if self.lead_words is None else next(signatures)
        band_keys = similarity.entry_band_keys(lead_signature, body_signature)
        entry = Entry(**self.fields, lead_signature=lead_signature,
                      body_signature=body_signature, band_keys=tuple(band_keys))
        return replace(entry, digest=dedupe.digest_of_fields(entry))


def _draft(
    parsed: ParsedEntry,
    feed: ParsedFeed,
    source: SourceConfig,
    base_url: str | None,
    now: datetime,
) -> _Draft:
    link = canonical_url(parsed.link, base_url)
    summary_html = sanitize_html(parsed.summary_html, base_url)
    # Without content the summary is the full text: sanitizing it once is enough.
    full_html = (sanitize_html(parsed.content_html, base_url) if parsed.content_html
                 else summary_html)
    citations = extract_citations(
        full_html, labels=source.citation_labels, strip_patterns=source.strip_patterns
    )
    if summary_html == full_html:  # the summary is the content: it loses the block too
        summary_html = citations.body_html
    text = html_to_text(citations.body_html)
    words = similarity.words(text)
    published, updated, dated = _entry_dates(parsed, now)
    # The feed's own <source>/via elements name outlets on purpose: they come first.
    feed_refs = (
        source_ref_from_url(canonical_url(cited.url, base_url), _plain(cited.title, NAME_MAX_CHARS))
        for cited in parsed.cited
    )
    # Copies of a story often differ in what they carry: one feed sends only a summary,
    # another the full article. The lead's signature (the summary's, else the text's) matches
    # those; the body's matches copies whose summaries were rewritten.
    has_lead = bool(summary_html) and summary_html != citations.body_html
    lead = html_to_text(summary_html) if has_lead else text
    fields = {
        "source_id": source.id,
        "guid": _entry_guid(parsed, link),
        "link": link,
        "title": _entry_title(parsed, text),
        "summary_html": summary_html,
        "content_html": citations.body_html,
        "text": text,
        "published": published,
        "updated": updated,
        "authors": _plain_names(parsed.authors),
        "categories": _plain_names(parsed.categories),
        "enclosures": _enclosures(parsed.enclosures, base_url),
        "language": _first_language(parsed.language, feed.language, source.language),
        "cited": _unique_outlets([*feed_refs, *citations.refs]),
        "place": citations.place,
        "content_hash": content_hash(text, words),
        "dated": dated,
        "numbers": similarity.numbers(" ".join((parsed.title or "", lead, text))),
    }
    return _Draft(fields, words, None if lead == text else similarity.words(lead))
