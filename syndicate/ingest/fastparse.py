"""A fast path for well-formed RSS 2.0 and Atom 1.0: lxml instead of feedparser, same result.

``parse_fast(content, url, content_type)`` returns the ``ParsedFeed`` that
``parse.parse_feed(content, url, content_type)`` returns for the same bytes, or None when the
document is not one it reads *with certainty*; the caller then uses feedparser. libxml2 builds
the tree in C and one Python pass reads it: about a tenth of feedparser's time.

It mirrors parse.py as it calls feedparser: no Content-Location (so nothing is resolved
against the document URL; normalize does that) and ``sanitize_html=False``. The only warning
a document it accepts can carry is feedparser's complaint about the Content-Type (not an XML
media type, or a charset it had to override), worded as parse.py words it.

What it refuses (returns None for), so feedparser's recovery and resolution rules apply:

* anything that is not well-formed XML, or whose parse logs any error or warning;
* a DOCTYPE or any entity declaration. The prolog is checked before libxml2 sees the bytes,
  and the parse runs with ``resolve_entities=False, no_network=True, load_dtd=False,
  huge_tree=False``: entities are never expanded and nothing is fetched;
* roots other than ``<rss version="2.0|0.91|0.92">`` and ``{http://www.w3.org/2005/Atom}feed``
  (so RSS 1.0/RDF, Atom 0.3, CDF, ...), and an Atom root that also declares RSS 1.0;
* ``xml:base`` (or a plain ``base`` attribute, which feedparser honours too) anywhere;
* content types other than text, html and xhtml (base64, ``src=`` content, ``mode=``), xhtml
  content that is not one XHTML ``<div>`` (no SVG or MathML inside), and text elements
  holding elements ("escaped markup that isn't", which feedparser re-serializes);
* an encoding that feedparser would choose differently from libxml2 (RFC 3023: a
  Content-Type charset wins over the XML declaration) or that is not utf-8, us-ascii,
  iso-8859-1/15 or windows-1252;
* an entry with neither a GUID nor an http(s) link: normalize's stand-in GUID is a hash of
  the entry's HTML as parsed, which is raw here and re-serialized by feedparser;
* structures where feedparser's state machine does surprising things: nested entries, an
  ``<image>``, ``<textinput>`` or ``<itunes:owner>`` inside an entry, ``<xhtml:body>``, a
  declared prefix that feedparser would map onto another of its own.

What it reproduces from feedparser 6 (``feedparser/mixin.py``, ``namespaces/*.py``), because
the goal is the same records, not a better reading: element names are matched
case-insensitively through feedparser's namespace table (an unknown namespace by its
prefix); the first ``<title>`` at the shallowest depth wins; an ``<itunes:summary>`` or
second ``<description>`` after a summary becomes the content; a ``<guid>`` (isPermaLink
absent or "true") or Atom ``<id>`` stands in for a missing link; RSS author strings lose an
e-mail address by feedparser's pattern; categories are de-duplicated as feedparser does; dates
come out of feedparser's own date parser unless they are plain RFC 822 or RFC 3339; every text
value gets feedparser's repair of UTF-8 read as ISO-8859-1 and its windows-1252 reading of C1
control characters.

What it deliberately does NOT do: run HTML through feedparser's SGML re-serializer.
``summary_html`` and ``content_html`` are the feed's raw, unsanitized HTML (feedparser's
differ only in form: attributes sorted, ``<br />``). That is safe only because
``normalize.normalize_entry`` runs every HTML field through ``sanitize_html`` (nh3, an
allow-list) with the document URL as the base: never show these fields without that step.
Titles, being short and passed on as they are for the feed's own title, do get feedparser's
treatment. Text (``type="text"``) content is the text, unescaped, exactly like feedparser.
"""

from __future__ import annotations

import calendar
import codecs
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from feedparser.datetimes import _parse_date as _feedparser_parse_date
from feedparser.html import _cp1252 as _FEEDPARSER_CP1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import resolve_relative_uris as _feedparser_resolve_uris
from lxml import etree

from ..types import ParsedFeed
from .entrydict import optional_text, parsed_feed

__all__ = ["parse_fast"]


ATOM_NS = "http://www.w3.org/2005/Atom"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XML_NS = "http://www.w3.org/XML/1998/namespace"
_XML_PREFIX = f"{{{XML_NS}}}"
_RSS_VERSIONS = frozenset({"2.0", "0.91", "0.92"})


class _Refuse(Exception):
    """The document needs feedparser: something here is outside what this module mirrors."""


def parse_fast(content: bytes, url: str, content_type: str | None = None) -> ParsedFeed | None:
    """The ``ParsedFeed`` that ``parse_feed(content, url, content_type)`` would give, with raw
    (unsanitized) HTML in summaries and content; None when feedparser must decide.

    ``content_type`` is the HTTP Content-Type: feedparser lets its charset override the XML
    declaration (RFC 3023), so pass the same value parse_feed gets. ``url`` is not read: like
    parse_feed, this leaves links as the feed wrote them, for normalize to resolve against it.
    """
    decoding = _decoding(content, content_type)
    if decoding is None:
        return None
    root = _parse_xml(content)
    if root is None:
        return None
    kind = _feed_kind(root)
    if kind is None or _has_base_attribute(content, root):
        return None
    with_lang = _LANG_ATTRIBUTE.search(content) is not None
    reader = _Reader(atom=kind == "atom", with_lang=with_lang)
    try:
        reader.read(root)
    except _Refuse:
        return None
    return reader.result(warning=decoding.warning)


# --- the document: encoding, prolog, well-formedness, kind -------------------------------------

_UTF8_BOM = b"\xef\xbb\xbf"
# The prolog we accept: an optional BOM and XML declaration, then only whitespace, comments
# and processing instructions up to the root element. A DOCTYPE (and with it every entity
# declaration) does not match, so such a document is refused before libxml2 sees it.
# Each alternative is unambiguous, so matching stays linear on long runs of whitespace.
_PROLOG = re.compile(
    rb"(?:\xef\xbb\xbf)?(<\?xml\s[^>]*\?>)?(?:\s|<!--.*?-->|<\?[A-Za-z_][^?]*(?:\?(?!>)[^?]*)*\?>)*"
    rb"<[A-Za-z_]",
    re.DOTALL,
)
# XML 1.0 §2.8 EncodingDecl, as libxml2 reads it.
_DECLARED_ENCODING = re.compile(rb"""\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")
# feedparser finds the encoding with ^<\?.*encoding=['"](.*?)['"].*\?> on the first line
# (encodings.RE_XML_PI_ENCODING); this is the same when "encoding=" occurs once there.
_FEEDPARSER_ENCODING = re.compile(rb"""encoding=['"]([^'"]*)['"]""")
# Encodings libxml2 and Python decode alike (codecs names); all ASCII supersets.
_SAFE_CODECS = frozenset({"utf-8", "ascii", "iso8859-1", "iso8859-15", "cp1252"})


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _content_type_charset(content_type: str) -> tuple[str, str]:
    """(media type, charset) the way feedparser's encodings.parse_content_type reads them."""
    media_type, *params = content_type.split(";")
    charset = ""
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
    return media_type.strip(), charset


@dataclass(frozen=True)
class _Decoding:
    """How feedparser decodes the document (encodings.convert_to_utf8, RFC 3023 §3)."""

    first: str  # the encoding it tries first
    xml_media_type: bool  # a media type it accepts as XML (else it complains)


def _feedparser_decoding(xml_encoding: str, content_type: str | None) -> _Decoding:
    """With no response headers at all (parse.py sends only the Content-Type, if any) the
    declared encoding or utf-8; else as the media type and its charset say."""
    if not content_type:
        return _Decoding(xml_encoding or "utf-8", True)
    media_type, charset = _content_type_charset(content_type)
    if media_type in ("application/xml", "application/xml-dtd",
                      "application/xml-external-parsed-entity") or (
            media_type.startswith("application/") and media_type.endswith("+xml")):
        return _Decoding(charset or xml_encoding or "utf-8", True)
    if media_type in ("text/xml", "text/xml-external-parsed-entity") or (
            media_type.startswith("text/") and media_type.endswith("+xml")):
        return _Decoding(charset or "us-ascii", True)
    if media_type.startswith("text/"):
        return _Decoding(charset or "us-ascii", False)
    return _Decoding(xml_encoding or "utf-8", False)


@dataclass(frozen=True)
class _Verdict:
    """The document decodes alike; ``warning`` is what parse_feed reports for feedparser's
    complaint about the media type or charset, if it has one."""

    warning: str | None


# parse.py's wording for a feedparser "bozo" complaint.
_WARNING = "feed is not well-formed, recovered what could be read: {}"


def _feedparser_declared_encoding(content: bytes, declaration: bytes) -> str | None:
    """The encoding name feedparser reads from the XML declaration ('' for none), or None
    when its pattern could pick up something else on the first line."""
    body = content[3:] if content.startswith(_UTF8_BOM) else content
    end = body.find(b"\n")
    first_line = body if end < 0 else body[:end]
    occurrences = first_line.count(b"encoding=")
    if occurrences == 0:
        return ""
    if occurrences > 1 or not first_line.startswith(b"<?"):
        return None
    match = _FEEDPARSER_ENCODING.search(declaration)
    if match is None or b"\n" in declaration:
        return None  # its pattern needs the whole declaration on the first line
    return match.group(1).decode("ascii", "replace").lower()


def _decoding(content: bytes, content_type: str | None) -> _Verdict | None:
    """None unless libxml2 decodes the bytes as feedparser does (the prolog shape is checked
    too); else feedparser's complaint about the media type or charset, worded as parse.py
    words it."""
    prolog = _PROLOG.match(content)
    if prolog is None:
        return None
    declaration = prolog.group(1) or b""
    declared = _DECLARED_ENCODING.search(declaration)
    declared_name = declared.group(1).decode("ascii").lower() if declared else ""
    if _feedparser_declared_encoding(content, declaration) != declared_name:
        return None  # a declaration spread over lines, or odd spacing: feedparser misreads it
    libxml_codec = _codec(declared_name or "utf-8")
    if libxml_codec not in _SAFE_CODECS:
        return None
    if content.startswith(_UTF8_BOM) and libxml_codec != "utf-8":
        return None
    decoding = _feedparser_decoding(declared_name, content_type)
    complaint = None if decoding.xml_media_type else f"{content_type} is not an XML media type"
    first = _codec(decoding.first)
    if first not in _SAFE_CODECS:
        return None
    if not content.isascii():  # else every candidate, all ASCII supersets, reads it alike
        if first == "ascii" and declared_name:
            # us-ascii fails on these bytes; feedparser goes on to the declared encoding.
            first = libxml_codec
            complaint = f"document declared as {decoding.first}, but parsed as {declared_name}"
        if first != libxml_codec:
            return None
        if libxml_codec == "cp1252":
            # Python's cp1252 leaves five bytes undefined, where feedparser would try others.
            try:
                content.decode("cp1252")
            except UnicodeDecodeError:
                return None
    return _Verdict(_WARNING.format(complaint) if complaint else None)


def _parse_xml(content: bytes) -> Any | None:
    """The root element, or None when libxml2 finds the document ill-formed in any way."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        remove_comments=True, remove_pis=True, collect_ids=False,
    )
    try:
        root = etree.fromstring(content, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if len(parser.error_log) or root.getroottree().docinfo.doctype:
        return None  # warnings (XML 1.1, odd declarations) mean expat may disagree
    return root


_RSS1_NAMESPACES = frozenset({"http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/"})


def _feed_kind(root: Any) -> str | None:
    if root.tag == "rss":
        return "rss" if root.get("version") in _RSS_VERSIONS else None
    if root.tag == f"{{{ATOM_NS}}}feed":
        # feedparser takes its version from the first known namespace declared: an RSS 1.0
        # declaration on the root could make it read this feed as RSS.
        if any(uri and uri.lower() in _RSS1_NAMESPACES for uri in root.nsmap.values()):
            return None
        return "atom"
    return None


_BASE_ATTRIBUTE = re.compile(rb"base\s*=")
_LANG_ATTRIBUTE = re.compile(rb"lang\s*=")


def _has_base_attribute(content: bytes, root: Any) -> bool:
    """xml:base, or a plain ``base`` attribute, which feedparser honours as well."""
    if not _BASE_ATTRIBUTE.search(content):
        return False
    return bool(root.xpath("boolean(//@*[local-name()='base'])"))


# --- feedparser's conventions -------------------------------------------------------------------

# feedparser's namespace table: URI (lower-case) → the prefix its handlers are named with;
# "" for the formats' own namespaces (Atom, RSS 0.9x/1.0, Userland).
_PREFIX_OF: dict[str, str] = {uri.lower(): prefix
                              for uri, prefix in _FeedParserMixin.namespaces.items()}
_STANDARD_PREFIXES = frozenset(p for p in _PREFIX_OF.values() if p)

_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")  # feedparser urls._urifixer


def _fix_uri(uri: str) -> str:
    """What feedparser's resolve_uri does to a link, guid or href: urls._urljoin against its
    base, and parse.py gives it no Content-Location (normalize resolves against the document
    URL instead), so with xml:base refused the base is empty and urljoin returns the URI as
    it is: only the collapsing of 'http:///x' into 'http://x' remains."""
    return _URI_FIXER.sub(r"\1\3", uri) if ":///" in uri else uri


def _finish(raw: str, is_uri: bool = False) -> str:
    """The processing feedparser's pop gives a text value: strip, fix a URI, repair."""
    output = raw.strip()
    if is_uri:
        output = _fix_uri(output)
    return output if output.isascii() else _repair(output)


_C1_CONTROL = re.compile("[\x80-\x9f]")


def _repair(text: str) -> str:
    """feedparser's last steps for every text value (mixin.pop): undo UTF-8 that was read as
    ISO-8859-1, then map C1 controls to the windows-1252 characters they usually meant."""
    if text.isascii():
        return text
    try:  # noqa: SIM105 (contextlib.suppress costs more, and this runs for every value)
        text = text.encode("iso-8859-1").decode("utf-8")
    except UnicodeError:
        pass
    if _C1_CONTROL.search(text):
        text = text.translate(_FEEDPARSER_CP1252)
    return text


def _own_languages(root: Any) -> dict[Any, str | None]:
    """The elements that set their own language: xml:lang, or a plain lang attribute, which
    feedparser honours too; "" clears the inherited one (XML 1.0 §2.12)."""
    found: dict[Any, str | None] = {}
    for element in root.xpath("//*[@*[local-name()='lang']]"):
        attributes = _Reader._attributes(element)
        value = attributes.get("xml:lang", attributes.get("lang"))
        if value is not None:
            found[element] = value or None
    return found


# Content types feedparser handles as text or markup; anything else may be base64 or foreign.
_CONTENT_TYPES = {
    "text": "text/plain", "plain": "text/plain", "text/plain": "text/plain",
    "html": "text/html", "text/html": "text/html",
    "xhtml": "application/xhtml+xml", "application/xhtml+xml": "application/xhtml+xml",
}
_XHTML = "application/xhtml+xml"
_HTML_TYPES = frozenset({"text/html", _XHTML})
_LINK_TYPES = {"text": "text/plain", "plain": "text/plain", "html": "text/html", "xhtml": _XHTML}


# feedparser's e-mail pattern for "jane@example.com (Jane)" author strings (mixin).
_AUTHOR_EMAIL = re.compile(
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"""
    r"""([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?""")
_ENTITY_LIKE = re.compile(r"&([A-Za-z0-9_]+);")

_ITUNES_SCHEME = "http://www.itunes.com/"
_MRSS_CATEGORY_SCHEME = "http://search.yahoo.com/mrss/category_schema"

# Elements without a feedparser handler whose generic storage would overwrite keys parse.py
# reads (or that feedparser crashes on).
_COLLIDING = frozenset({"authors", "tags", "links", "published_parsed", "updated_parsed",
                        "guidislink", "contributors", "sourcedata"})

# Elements feedparser pushes as content and whose children it re-serializes instead of
# reading: we never look inside them.
_OPAQUE = frozenset({"subtitle", "tagline", "rights", "copyright", "dc_rights", "info",
                     "feedburner_browserfriendly", "itunes_subtitle"})

_VOID_ELEMENTS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                            "meta", "param", "source", "track", "wbr"})

# --- dates ----------------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
# RFC 822 §5 / RFC 2822 §3.3 in the form nearly every feed writes it; anything else goes to
# feedparser's date parser, so the result is always the one feedparser gives.
_RFC822 = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun),?\s+)?(\d{1,2})\s+([a-z]{3})\s+(\d{4})\s+"
    r"(\d\d):(\d\d)(?::(\d\d))?\s+(?:([+-])(\d\d)(\d\d)|gmt|ut|utc|z)",
    re.IGNORECASE)
# RFC 3339 §5.6 (W3C-DTF with a full time).
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:[Zz]|([+-])(\d\d):(\d\d))")


def _to_utc(local: datetime, sign: str | None, hours: str | None, minutes: str | None) -> datetime:
    """``local`` (tagged UTC) moved by the numeric offset it was written with."""
    if not sign or (hours == "00" and minutes == "00"):
        return local
    offset = timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
    return local - offset if sign == "+" else local + offset


def _fast_date(value: str) -> datetime | None:
    match = _RFC3339.fullmatch(value)
    if match:
        y, mo, d, h, mi, s, sign, oh, om = match.groups()
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
        return _to_utc(local, sign, oh, om)
    match = _RFC822.fullmatch(value)
    if match:
        d, month, y, h, mi, s, sign, oh, om = match.groups()
        local = datetime(int(y), _MONTHS[month.lower()], int(d), int(h), int(mi), int(s or 0),
                         tzinfo=UTC)
        return _to_utc(local, sign, oh, om)
    return None


def _parse_date(value: str) -> datetime | None:
    """An aware UTC datetime, exactly as feedparser's _parse_date + parse.py's _date give it."""
    if not value:
        return None
    try:
        fast = _fast_date(value)
    except (ValueError, OverflowError, KeyError):
        fast = None
    if fast is not None:
        return fast
    parsed = _feedparser_parse_date(value)
    if not isinstance(parsed, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


# --- xhtml ----------------------------------------------------------------------------------------

def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xhtml_element(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(f"{{{XHTML_NS}}}"):
        raise _Refuse  # SVG, MathML, foreign elements: feedparser has special cases for them
    name = tag[len(XHTML_NS) + 2:].lower()
    attributes = []
    for key, value in element.attrib.items():
        if key.startswith(_XML_PREFIX):
            continue  # xml:lang and the like: the sanitizer drops them either way
        if key.startswith("{"):
            raise _Refuse  # feedparser folds unknown-namespace attributes onto plain names
        attributes.append(f' {key.lower()}="{_escape_text(value).replace(chr(34), "&quot;")}"')
    start = f"<{name}{''.join(attributes)}>"
    if name in _VOID_ELEMENTS:
        if element.text or len(element):
            raise _Refuse
        return start
    inner = _escape_text(element.text or "") + "".join(
        _xhtml_element(child) + _escape_text(child.tail or "") for child in element)
    return f"{start}{inner}</{name}>"


def _xhtml_content(element: Any) -> str:
    """Atom type="xhtml" (RFC 4287 §3.1.1.3): the markup inside the one XHTML div."""
    children = list(element)
    if len(children) != 1 or (element.text or "").strip():
        raise _Refuse
    div = children[0]
    if div.tag != f"{{{XHTML_NS}}}div" or (div.tail or "").strip():
        raise _Refuse
    inner = _escape_text(div.text or "") + "".join(
        _xhtml_element(child) + _escape_text(child.tail or "") for child in div)
    return inner.strip()


# --- the reader -----------------------------------------------------------------------------------

Context = dict[str, Any]
Handler = Callable[["_Reader", Any, str, "str | None"], None]


class _Reader:
    """One pass over the tree with feedparser's state: which context a value goes to
    (feed, entry, source, image, text input), depths, and the content/summary switch."""

    def __init__(self, *, atom: bool, with_lang: bool) -> None:
        self.atom = atom
        self.with_lang = with_lang
        self.names: dict[str, tuple[str, bool]] = {}
        self.prefixed_uris: set[str] = set()
        self.languages: dict[Any, str | None] | None = None  # elements with their own xml:lang
        self.dates: dict[str, Any] = {}
        self.feed: Context = {}
        self.entries: list[Context] = []
        self.entry: Context = {}
        self.entry_depths: dict[str, int] = {}  # feedparser's property_depth_map, this entry
        self.source: Context = {}
        self.depth = 0
        self.title_depth = -1
        self.in_feed = self.in_entry = self.in_source = False
        self.in_image = self.in_textinput = False
        self.in_author = self.in_contributor = self.in_publisher = False
        self.has_content = False
        self.guid_is_link = False

    # -- walking

    def read(self, root: Any) -> None:
        self.prefixed_uris = {uri for prefix, uri in root.nsmap.items() if prefix}
        for prefix, uri in root.nsmap.items():
            standard = _PREFIX_OF.get(uri.lower())
            if prefix and standard is not None and prefix != standard and (
                    prefix in _STANDARD_PREFIXES):
                # feedparser maps declared prefixes onto its own: xmlns:media="<Dublin Core>"
                # would turn every real media: element into a dc: one.
                raise _Refuse
        if self.with_lang:
            self.languages = _own_languages(root)
            lang = self.languages.get(root)
            if lang:
                self.feed["language"] = lang.replace("_", "-")
        self._visit(root, None)

    def _visit(self, element: Any, lang: str | None) -> None:
        known = self.names.get(element.tag)
        name, prefixed = known if known is not None else self._name(element)
        self.depth += 1
        if self.languages is not None:
            lang = self.languages.get(element, lang)  # xml:lang is inherited (XML 1.0 §2.12)
        if (self.in_image or self.in_textinput) and not prefixed:
            # feedparser's hack for ill-formed image/textinput: other elements end them.
            if name not in ("title", "link", "description", "name"):
                self.in_textinput = False
            if name not in ("title", "link", "description", "url", "href", "width", "height"):
                self.in_image = False
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, element, name, lang)
        elif name in _OPAQUE:
            pass
        elif name in _COLLIDING:
            raise _Refuse
        else:
            self._children(element, lang)
        self.depth -= 1

    def _children(self, element: Any, lang: str | None) -> None:
        for child in element:
            self._visit(child, lang)

    def _name(self, element: Any) -> tuple[str, bool]:
        """feedparser's element name: its prefix for the namespace, '_', lower-case local
        name; (name, whether it has a prefix)."""
        tag = element.tag
        known = self.names.get(tag)
        if known is not None:
            return known
        if tag[0] != "{":
            result = (tag.lower(), False)
            self.names[tag] = result
            return result
        uri, _, local = tag[1:].partition("}")
        lowered = uri.lower()
        prefix = "" if "backend.userland.com/rss" in lowered else _PREFIX_OF.get(lowered)
        if prefix is None:
            # An unknown namespace is named by the prefix it was declared with, so an unknown
            # default namespace reads as the format's own elements (WordPress's
            # <site xmlns="com-wordpress:feed-additions:1">), and a dc: prefix bound to a
            # mistyped URI still reads as Dublin Core. Not cached: it depends on the prefix.
            given = element.prefix
            if not given:
                if uri in self.prefixed_uris:
                    raise _Refuse  # feedparser would name it by that other prefix
                return (local.lower(), False)
            return (f"{given.lower()}_{local.lower()}", True)
        result = (f"{prefix}_{local.lower()}" if prefix else local.lower(), bool(prefix))
        self.names[tag] = result
        return result

    @staticmethod
    def _attributes(element: Any) -> dict[str, str]:
        """Attributes as feedparser keys them: lower-case names, 'xml:lang'-style prefixes for
        known namespaces, plain names for others; rel and type values lower-cased."""
        if not element.keys():
            return {}
        attributes: dict[str, str] = {}
        plain: dict[str, str] = {}
        for key, value in element.attrib.items():
            if key[0] == "{":
                uri, _, local = key[1:].partition("}")
                prefix = _PREFIX_OF.get(uri.lower(), "")
                key = f"{prefix}:{local}" if prefix else local
                target = attributes
            else:
                target = plain
            key = key.lower()
            target[key] = value.lower() if key in ("rel", "type") else value
        attributes.update(plain)  # a plain attribute wins over a foreign one of the same name
        return attributes

    # -- contexts and storage (feedparser's _get_context, pop, _save)

    def _context(self) -> Context:
        if self.in_source:
            return self.source
        if self.in_image and "image" in self.feed:
            image: Context = self.feed["image"]
            return image
        if self.in_textinput:
            textinput: Context = self.feed["textinput"]
            return textinput
        if self.in_entry:
            return self.entry
        return self.feed

    def _store(self, element: str, output: str, language: str | None = None) -> None:
        """Where feedparser's pop puts a finished value."""
        if self.in_entry and not self.in_source:
            entry = self.entry
            if element == "content":
                entry.setdefault("content", []).append({"value": output, "language": language})
            elif element == "link":
                output = _ENTITY_LIKE.sub(r"&\g<1>", output.replace("&amp;", "&"))
                entry["link"] = output
                if output:
                    entry["links"][-1]["href"] = output
            else:
                if element == "description":
                    element = "summary"
                old_depth = self.entry_depths.get(element)
                if old_depth is None or self.depth <= old_depth:
                    self.entry_depths[element] = self.depth
                    entry[element] = output
        elif self.in_feed or self.in_source:
            context = self._context()
            if element == "description":
                element = "subtitle"
            context[element] = output
            if element == "link":
                output = _ENTITY_LIKE.sub(r"&\g<1>", output)
                context["link"] = output
                context["links"][-1]["href"] = output

    def _finish_title(self, output: str, content_type: str) -> str:
        """A title is short, and parse.py passes the feed's own title on as feedparser left
        it, so HTML titles get the one markup pass feedparser still makes there: its
        relative-URI resolver, which re-serializes the markup (mixin.pop)."""
        maybe_markup = "<" in output or "&" in output
        if not self.atom and content_type == "text/plain" and maybe_markup and (
                _FeedParserMixin.looks_like_html(output)):
            content_type = "text/html"  # RSS titles are guessed at (mixin.looks_like_html)
        if content_type in _HTML_TYPES and maybe_markup:
            output = _feedparser_resolve_uris(output, "", "utf-8", content_type)  # no base
        return _repair(output)

    @staticmethod
    def _text(element: Any) -> str:
        if len(element):
            raise _Refuse  # markup inside a text element: feedparser re-serializes it
        text: str = element.text or ""
        return text

    @staticmethod
    def _plain(element: Any, is_uri: bool = False) -> str:
        """A text element's value as feedparser's pop finishes it: _text, then _finish."""
        if len(element):
            raise _Refuse
        text = element.text
        return _finish(text, is_uri) if text else ""

    @staticmethod
    def _direct_text(element: Any) -> str:
        """The text feedparser collects for an element whose children push their own values."""
        return (element.text or "") + "".join(child.tail or "" for child in element)

    def _content_value(self, element: Any, attributes: dict[str, str],
                       default: str) -> tuple[str, str]:
        """The value and content type of a title/summary/content element, after feedparser's
        push_content checks: only text, html and (Atom) xhtml."""
        if "mode" in attributes:
            raise _Refuse  # Atom 0.3 escaped/base64 modes
        content_type = _CONTENT_TYPES.get(attributes.get("type", default))
        if content_type is None:
            raise _Refuse
        if content_type == _XHTML:
            if not self.atom:
                raise _Refuse
            return _xhtml_content(element), content_type
        return self._text(element), content_type

    # -- handlers, named after feedparser's _start_*/_end_* methods

    def _on_root(self, element: Any, name: str, lang: str | None) -> None:
        if self.depth != 1:
            raise _Refuse
        if name == "feed":
            self.in_feed = True
        self._children(element, lang)
        self.in_feed = False

    def _on_channel(self, element: Any, name: str, lang: str | None) -> None:
        attributes = self._attributes(element)
        if self.atom or self.depth != 2 or "href" in attributes or "lastmod" in attributes:
            raise _Refuse  # CDF attributes set link and date from the element itself
        self.in_feed = True
        self._children(element, lang)
        self.in_feed = False

    def _on_item(self, element: Any, name: str, lang: str | None) -> None:
        if self.in_entry or self.in_source:
            raise _Refuse
        attributes = self._attributes(element)
        if "href" in attributes or "lastmod" in attributes or "rdf:about" in attributes:
            raise _Refuse
        self.entry = {}
        self.entries.append(self.entry)
        self.entry_depths = {}
        self.in_entry = True
        self.guid_is_link = False
        self.title_depth = -1
        self._children(element, lang)
        self.in_entry = False
        self.has_content = False
        link = str(self.entry.get("link") or "")
        if not optional_text(self.entry.get("id")) and not link.startswith(("http://", "https://")):
            # normalize's stand-in GUID hashes the entry's HTML as parsed, which feedparser
            # re-serializes and we do not: only feedparser gives the same stand-in.
            raise _Refuse

    def _on_image(self, element: Any, name: str, lang: str | None) -> None:
        if self.in_entry:
            raise _Refuse
        self.feed.setdefault("image", {})
        self.in_image = True
        self.title_depth = -1
        self._children(element, lang)
        self.in_image = False

    def _on_textinput(self, element: Any, name: str, lang: str | None) -> None:
        if self.in_entry:
            raise _Refuse
        self.feed.setdefault("textinput", {})
        self.in_textinput = True
        self.title_depth = -1
        self._children(element, lang)
        self.in_textinput = False

    def _on_title(self, element: Any, name: str, lang: str | None) -> None:
        saved_depth = self.title_depth
        value, content_type = self._content_value(element, self._attributes(element), "text")
        output = value.strip()
        if self.in_feed or self.in_entry or self.in_source:
            output = self._finish_title(output, content_type)
            if not -1 < self.title_depth <= self.depth:
                self._store("title", output)
        if output:
            self.title_depth = self.depth
        if name == "media_title":
            self.title_depth = saved_depth

    def _on_description(self, element: Any, name: str, lang: str | None) -> None:
        if "summary" in self._context() and not self.has_content:
            self._content(element, lang, "text")
            return
        value, _ = self._content_value(element, self._attributes(element), "html")
        if self.in_feed or self.in_entry or self.in_source:
            self._store("description", _finish(value))

    def _on_summary(self, element: Any, name: str, lang: str | None) -> None:
        if "summary" in self._context() and not self.has_content:
            self._content(element, lang, "text")
            return
        value, _ = self._content_value(element, self._attributes(element), "text")
        self._store("summary", _finish(value))

    def _on_content(self, element: Any, name: str, lang: str | None) -> None:
        self._content(element, lang, "html" if name in ("content_encoded", "fullitem") else "text")

    def _content(self, element: Any, lang: str | None, default_type: str) -> None:
        attributes = self._attributes(element)
        if "src" in attributes:
            raise _Refuse  # out-of-line content (RFC 4287 §4.1.3.2)
        self.has_content = True
        output = _finish(self._content_value(element, attributes, default_type)[0])
        language = lang.replace("_", "-") if lang else lang
        self._store("content", output, language)
        self._context().setdefault("summary", output)  # _end_content copies it to the summary

    def _on_guid(self, element: Any, name: str, lang: str | None) -> None:
        self.guid_is_link = self._attributes(element).get("ispermalink", "true") == "true"
        output = self._plain(element, is_uri=self.guid_is_link)
        self._store("id", output)
        if self.guid_is_link:
            self._context().setdefault("link", output)

    def _on_link(self, element: Any, name: str, lang: str | None) -> None:
        attributes = self._attributes(element)
        rel = attributes.setdefault("rel", "alternate")
        link_type = attributes.setdefault("type",
                                          "application/atom+xml" if rel == "self" else "text/html")
        context = self._context()
        _enforce_href(attributes)
        if "href" in attributes:
            attributes["href"] = _fix_uri(attributes["href"])
        context.setdefault("links", []).append(attributes)
        if "href" in attributes:
            if rel == "alternate" and _LINK_TYPES.get(link_type, link_type) in _HTML_TYPES:
                context["link"] = attributes["href"]
            self._children(element, lang)
        elif self.in_feed or self.in_entry or self.in_source:
            self._store("link", self._plain(element, is_uri=True))

    def _on_enclosure(self, element: Any, name: str, lang: str | None) -> None:
        attributes = _enforce_href(self._attributes(element))
        attributes["rel"] = "enclosure"
        self._context().setdefault("links", []).append(attributes)
        self._children(element, lang)

    def _on_date(self, element: Any, name: str, lang: str | None) -> None:
        key = "published_parsed" if name in _PUBLISHED else "updated_parsed"
        value = self._plain(element)
        moment = self.dates.get(value, _UNSEEN)  # Atom entries often repeat a date
        if moment is _UNSEEN:
            moment = self.dates[value] = _parse_date(value)
        self._context()[key] = moment

    def _on_author(self, element: Any, name: str, lang: str | None) -> None:
        self.in_author = True
        context = self._context()
        context.setdefault("authors", []).append({})
        for child in element:
            if self._name(child)[0] not in _AUTHOR_PARTS:
                raise _Refuse
            self._visit(child, lang)
        self._store("author", _finish(self._direct_text(element)))
        self.in_author = False
        self._sync_author(self._context())

    def _on_contributor(self, element: Any, name: str, lang: str | None) -> None:
        self.in_contributor = True
        self._children(element, lang)
        self.in_contributor = False

    def _on_publisher_block(self, element: Any, name: str, lang: str | None) -> None:
        if self.in_entry:
            raise _Refuse  # itunes:owner names would become entry authors
        self.in_publisher = True
        self._children(element, lang)
        self.in_publisher = False

    def _on_author_part(self, element: Any, name: str, lang: str | None) -> None:
        """<name>, <email>, <uri>: saved onto the current author (feedparser's _save_author)."""
        key = _AUTHOR_PARTS[name]
        if key == "href":
            value = self._plain(element, is_uri=True)
            self._store("href", value)
        else:
            value = self._text(element).strip()  # pushed without expecting text: no repair
        if (self.in_publisher and key != "href") or self.in_author:
            self._save_author(key, value)
        elif self.in_contributor:
            pass  # contributors are not authors
        elif self.in_textinput and key == "name":
            self._context()["name"] = value

    def _save_author(self, key: str, value: str) -> None:
        context = self._context()
        self._sync_author(context)  # feedparser syncs *before* saving: see _sync_author
        context.setdefault("authors", [{}])[-1][key] = value

    @staticmethod
    def _sync_author(context: Context) -> None:
        """feedparser's _sync_author_detail: an author without details takes its name from
        the context's last author string, minus an e-mail address."""
        detail: dict[str, str] = context.get("authors", [{}])[-1]
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name and email:
                context["author"] = f"{name} ({email})"
            elif name or email:
                context["author"] = name or email
            return
        author = context.get("author")
        if not author:
            return
        email = None
        match = _AUTHOR_EMAIL.search(author) if "@" in author else None
        if match:
            email = match.group(0)
            for junk in (email, "()", "<>", "&lt;&gt;"):
                author = author.replace(junk, "")
            author = author.strip()
            if author and author[0] == "(":
                author = author[1:]
            if author and author[-1] == ")":
                author = author[:-1]
            author = author.strip()
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email

    def _on_category(self, element: Any, name: str, lang: str | None) -> None:
        attributes = self._attributes(element)
        if name == "itunes_category":
            self._add_tag(attributes.get("text"), _ITUNES_SCHEME, None)
            for child in element:  # iTunes nests subcategories
                if self._name(child)[0] != "itunes_category":
                    raise _Refuse
                self._visit(child, lang)
            value = _finish(self._direct_text(element))
        else:
            if name == "media_category":
                attributes.setdefault("scheme", _MRSS_CATEGORY_SCHEME)
            self._add_tag(attributes.get("term"),
                          attributes.get("scheme", attributes.get("domain")),
                          attributes.get("label"))
            value = self._plain(element)
        if not value:
            return
        tags = self._context()["tags"]
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self._add_tag(value, None, None)

    def _on_keywords(self, element: Any, name: str, lang: str | None) -> None:
        """Comma-separated terms: media:keywords, itunes:keywords, and feedparser's <tags>."""
        if name != "tags" and element.attrib:
            self._children(element, lang)  # feedparser stores the attributes and drops it
            return
        value = self._plain(element)
        scheme = _ITUNES_SCHEME if name == "itunes_keywords" else None
        for term in value.split(","):
            if term.strip():
                self._add_tag(term.strip(), scheme, None)

    def _add_tag(self, term: str | None, scheme: str | None, label: str | None) -> None:
        tags = self._context().setdefault("tags", [])
        if not term and not scheme and not label:
            return
        tag = {"term": term, "scheme": scheme, "label": label}
        if tag not in tags:
            tags.append(tag)

    def _on_source(self, element: Any, name: str, lang: str | None) -> None:
        if self.in_source:
            raise _Refuse
        attributes = self._attributes(element)
        if "url" in attributes:
            self.source["href"] = attributes["url"]
        self.in_source = True
        self.title_depth = -1
        for child in element:
            child_name = self._name(child)[0]
            if child_name not in _SOURCE_PARTS:
                raise _Refuse
            pushes_text = (not child.attrib if child_name in _GENERIC_SOURCE_PARTS
                           else child_name != "link" or "href" not in child.attrib)
            if not pushes_text and (child.text or "").strip():
                raise _Refuse  # feedparser would add its text to the source title
            self._visit(child, lang)
        self.in_source = False
        output = _finish(self._direct_text(element))
        self._store("source", output)
        if output:
            self.source["title"] = output
        self._context()["source"] = dict(self.source)
        self.source = {}

    def _on_simple(self, element: Any, name: str, lang: str | None) -> None:
        """An element without a feedparser handler whose text we read (ttl, dc:source):
        stored as text, or as its attributes when it has any."""
        if element.attrib:
            self._context()[name] = self._attributes(element)
            self._children(element, lang)
            return
        self._store(name, self._plain(element))

    def _on_language(self, element: Any, name: str, lang: str | None) -> None:
        self._store("language", self._plain(element))

    def _on_refused(self, element: Any, name: str, lang: str | None) -> None:
        raise _Refuse

    # -- the result, as parse.py builds it from feedparser's dictionaries

    def result(self, warning: str | None) -> ParsedFeed:
        return parsed_feed(self.feed, self.entries, _as_datetime, warning)


def _enforce_href(attributes: dict[str, str]) -> dict[str, str]:
    """feedparser's _enforce_href: url= or uri= become href=."""
    href = attributes.get("url", attributes.get("uri", attributes.get("href")))
    if href:
        attributes.pop("url", None)
        attributes.pop("uri", None)
        attributes["href"] = href
    return attributes


_UNSEEN = object()
_PUBLISHED = frozenset({"published", "issued", "pubdate", "dcterms_issued"})
_AUTHOR_PARTS = {"name": "name", "itunes_name": "name", "email": "email", "itunes_email": "email",
                 "uri": "href", "url": "href", "homepage": "href"}
_SOURCE_PARTS = frozenset({"id", "title", "link", "updated", "published", "subtitle", "rights",
                           "author", "contributor", "category", "generator", "icon", "logo"})
_GENERIC_SOURCE_PARTS = frozenset({"icon", "logo"})  # no handler: with attributes, no push

_HANDLERS: dict[str, Handler] = {
    "rss": _Reader._on_root, "feed": _Reader._on_root,
    "channel": _Reader._on_channel,
    "item": _Reader._on_item, "entry": _Reader._on_item,
    "image": _Reader._on_image, "textinput": _Reader._on_textinput,
    "title": _Reader._on_title, "dc_title": _Reader._on_title, "media_title": _Reader._on_title,
    "description": _Reader._on_description, "dc_description": _Reader._on_description,
    "media_description": _Reader._on_description,
    "summary": _Reader._on_summary, "itunes_summary": _Reader._on_summary,
    "content": _Reader._on_content, "content_encoded": _Reader._on_content,
    "fullitem": _Reader._on_content,
    "guid": _Reader._on_guid, "id": _Reader._on_guid,
    "link": _Reader._on_link,
    "enclosure": _Reader._on_enclosure,
    **dict.fromkeys(("published", "issued", "pubdate", "dcterms_issued", "updated", "modified",
                     "lastbuilddate", "dc_date", "dcterms_modified"), _Reader._on_date),
    **dict.fromkeys(("author", "managingeditor", "dc_author", "dc_creator", "itunes_author"),
                    _Reader._on_author),
    **dict.fromkeys(_AUTHOR_PARTS, _Reader._on_author_part),
    "contributor": _Reader._on_contributor, "dc_contributor": _Reader._on_contributor,
    "itunes_owner": _Reader._on_publisher_block,
    **dict.fromkeys(("category", "keywords", "dc_subject", "media_category", "itunes_category"),
                    _Reader._on_category),
    **dict.fromkeys(("media_keywords", "itunes_keywords", "tags"), _Reader._on_keywords),
    "source": _Reader._on_source,
    "dc_source": _Reader._on_simple, "ttl": _Reader._on_simple,
    "language": _Reader._on_language, "dc_language": _Reader._on_language,
    **dict.fromkeys(("body", "xhtml_body", "abstract"), _Reader._on_refused),
}


def _as_datetime(value: object) -> datetime | None:
    """Our dictionaries hold datetimes already (feedparser's hold struct_times)."""
    return value if isinstance(value, datetime) else None
