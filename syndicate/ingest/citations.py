"""Find the outlets an article cites, and its place, in its (sanitized) content HTML.

News sites end many articles with an info block naming the outlets the text was written from,
e.g. ``Details / Ort: Sumy, Ukraine / Quellen: • rp-online.de • www.npr.org``, and often a site
footer (``Besuchen Sie uns auf: n-ag.de``). ``extract_citations`` returns the cited outlets as
``SourceRef`` records, the place, and the content with the block and the footer removed.

How the content is read
    The HTML is parsed with lxml and flattened into *lines*: block elements (``p``, ``li``,
    ``td``, ``dt``, ``h2``, ...), ``<br>`` and newline characters in the text all end a line.
    A line is a *label line* when it starts with a known label followed by a separator (``:``,
    a tab, a dash between spaces, a bullet, a stray tag) or by nothing; the rest of the line
    is its value, and so are the following *continuation lines* (up to the next label line)
    when the label stands alone (``Quellen:`` over a list) or its value ends in a separator.

Labels (case-insensitive)
    sources   Quelle(n), Quellenangabe(n), Source(s), Via, Fuente(s), Fonte(s)/Fonti, Bron(nen),
              plus the operator's ``labels`` for that source (``SourceConfig.citation_labels``);
    place     Ort, Location, Place, Dateline, Lieu, Lugar, Ubicación, Luogo, Località;
    info      Autor, Author, Datum, Date, Kategorie, Tags, Foto, Bild(quelle), Photo, Credit(s)
              ... : removed with a block but never read as outlets (a photo credit is not a
              source), and never enough on their own to make a block;
    heading   Details, Info(s), Information(en), Détails, Detalles, Dettagli, Informazioni, ...
              : a line holding only this word, right before a block, goes with it.

Where a block is recognised (precision first: running text is never cut)
    1. At the end: scanning back from the last line, a block is a run of label lines and their
       values (optionally below a heading line) that reaches the end of the content, with
       nothing after it but blank lines and footers. A "Quelle: Reuters" paragraph in the middle
       of an article is followed by more prose, so it is left alone. Only the last
       ``TAIL_LINES`` lines are looked at; ``<pre>`` listings are never read.
    2. Anywhere, as a table or definition list in which *every* row is ``label | value``
       (``th``/``td``, ``td``/``td``, ``dt``/``dd``) with a known label, and at least one row
       is a source or place row; a heading line right before it goes with it. Tables and lists
       that fail this test are opaque: the end scan stops at them.
    Every value must read as a value, or the line is not a label line: a source value must
    split entirely into outlets (at most ``MAX_VALUE_TOKENS``), a place is one line of at
    most ``MAX_PLACE_CHARS`` characters; a block has at most ``MAX_BLOCK_ENTRIES`` rows.

Values
    Outlets are separated by line ends, list items, bullets (``•``, ``·``, ...), commas,
    semicolons, ``|``, a dash between spaces, ``&`` and the word "and" in five languages (und,
    and, et, y, e); stray tag text such as ``<ul style="...">`` (an escaped fragment left by
    the site's text export) is dropped. Each outlet becomes a ``SourceRef``:
      * a link ``<a href="https://www.npr.org/x">NPR</a>``: host of the href, the link text as
        name (the host when the text is not a plausible name), url = the href;
      * a URL written out ``https://x.y/z``: its host, url = that URL;
      * a host ``www.npr.org`` or ``NPR (npr.org)``: that host, no url;
      * a bare outlet name (``Reuters``, ``dpa``, ``Le Monde``): ``host=""`` and the name.
        A name has at most ``MAX_NAME_WORDS`` words, a letter, no markup or URL characters,
        and at most one long lower-case word (``heise online``; not ``meldete später``).
    Hosts are lower-case IDNA ASCII (UTS #46 mapping, as browsers do; ``www.bücher.de`` is
    ``www.xn--bcher-kva.de``), need a dot, valid labels (RFC 1123 section 2.1) and a top-level
    label of letters or punycode. Links that are not http(s) (``javascript:``, ``data:``,
    ``mailto:``) cite nothing. A token longer than ``MAX_TOKEN_CHARS`` is not an outlet.
    An outlet is kept once, first occurrence wins, keyed like ``dedupe``: the host without a
    leading ``www.``, else the case-folded name. At most ``MAX_REFS`` are returned.

Boilerplate
    ``strip_patterns`` are the operator's regular expressions (Python ``re`` syntax, matched
    with ``search`` against each line's text anywhere in the content; an invalid one is
    ignored, config validation reports it). The built-in footers are few and exact: a whole
    trailing line "Besuchen Sie uns auf: <host>", "Visit us at: <host>", and the same in
    French, Spanish and Italian.

What is returned
    ``body_html`` is the input with whole lines removed (elements emptied by the removal go
    too); nothing is added, so it stays as sanitized as the input. When nothing is removed it
    is the input string unchanged. ``place`` and the ``SourceRef`` fields are plain text, with
    no markup characters. Content lxml cannot read whole (past libxml2's limits: nesting
    deeper than 256, a text node over 10 MB) is returned as it was, with nothing found.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import idna
import lxml.html
from lxml import etree

from syndicate.types import SourceRef

MAX_REFS = 50  # outlets per article: more is a link farm, not a source list
MAX_TOKEN_CHARS = 200  # a longer "outlet" is running text
MAX_NAME_WORDS = 6  # "Frankfurter Allgemeine Zeitung" fits; a sentence does not
MAX_PLACE_CHARS = 100
MAX_INFO_CHARS = 300
MAX_URL_CHARS = 2048
TAIL_LINES = 1500  # how many lines from the end a block may start
MAX_CONTINUATION_LINES = 1000  # value lines under one label (a list of outlets)
MAX_LABEL_CHARS = 100  # an operator label longer than this is ignored
MAX_BLOCK_ENTRIES = 100  # label rows in one block; a details box has a handful
MAX_VALUE_TOKENS = 1000  # items in one source value; more is a page of links

SOURCE_LABELS = (
    "Quelle", "Quellen", "Quelle(n)", "Quellenangabe", "Quellenangaben",  # de
    "Source", "Sources", "Via",  # en, fr
    "Fuente", "Fuentes",  # es
    "Fonte", "Fonti", "Fontes",  # it, pt
    "Bron", "Bronnen",  # nl
)
PLACE_LABELS = (
    "Ort", "Location", "Place", "Dateline", "Lieu", "Lugar", "Ubicación", "Luogo", "Località",
)
INFO_LABELS = (
    "Autor", "Autorin", "Autoren", "Author", "Authors", "Auteur", "Autore",
    "Datum", "Date", "Fecha", "Data",
    "Kategorie", "Category", "Catégorie", "Categoría", "Categoria", "Rubrik",
    "Tags", "Schlagworte", "Schlagwörter", "Stichworte", "Mots-clés", "Etiquetas",
    "Foto", "Fotos", "Bild", "Bilder", "Bildquelle", "Bildquellen", "Photo", "Photos",
    "Image", "Images", "Credit", "Credits", "Crédit", "Crédits", "Crédito", "Créditos",
)
HEADING_WORDS = (
    "Details", "Info", "Infos", "Information", "Informationen", "Informations", "Détails",
    "Detalles", "Información", "Dettagli", "Informazioni",
)

# Elements that end a line of text (HTML Living Standard, "the CSS user agent style sheet":
# display: block, list-item, table-*), plus <br>.
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "caption", "center", "dd", "details", "div",
    "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "ul",
})
_STRUCTURED_TAGS = frozenset({"table", "dl"})
_OPAQUE_TAGS = frozenset({"pre"})  # code: "Source: x.c" in a listing is not a citation
_MEDIA_TAGS = ("img", "video", "audio", "iframe", "object", "embed", "picture", "svg")

_BULLETS = "•·‧∙▪◦●"
_LEAD = rf"^[\s{_BULLETS}*\-–—]*[(\[]?\s*"
# After a label: a colon (also full-width, also French " :"), a tab, a dash between spaces or
# an en/em dash, or straight into a bullet or a stray tag; or nothing at all.
_SEPARATOR = rf"(?:\s*[:：]|\t|\s*[–—]|\s+-(?=\s)|(?=\s*[{_BULLETS}<])|(?=\s*[)\]]?\s*$))"
_SPLIT = re.compile(
    rf"[\n{_BULLETS};,|]|\s[-–—]\s|\s&\s|\s+(?:und|and|et|y|e)\s+", re.IGNORECASE
)
_TAG_TEXT = re.compile(r"<[^<>]{0,500}>")
_SPACES = re.compile(r"\s+")
_NON_SPACE = re.compile(r"\S")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:", re.IGNORECASE)
_NAME_AND_HOST = re.compile(r"^(?P<a>[^()]+?)\s*\((?P<b>[^()]+)\)$")
_NAME_CHARS = re.compile(r"^[\w .&'’+!/\-]+$")
_TOKEN_STRIP = f" \t\r\n\"'“”„«»‘’{_BULLETS}*-–—:.,;"
# RFC 1123 section 2.1 labels; a top-level label of letters, or an IDNA A-label (RFC 5890).
_HOST = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)
_FOOTER = re.compile(
    r"^\s*(?:besuchen\s+sie\s+uns\s+(?:auf|unter)|visit\s+us\s+(?:at|on)"
    r"|visitez[- ]nous\s+(?:sur|à)|vis[ií]tanos\s+en|visitateci\s+(?:su|a))"
    r"\s*[:：]?\s*(?P<host>\S+?)[.!]?\s*$",
    re.IGNORECASE,
)
# Characters libxml2 refuses (XML 1.0 section 2.2 "Char"); the sanitizer lets some through.
_XML_INCOMPATIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_OPENER = {")": "(", "]": "["}
_CLOSER = {"(": ")", "[": "]"}
_DECORATION = re.compile(rf"^[\s{_BULLETS}*\-–—_=~#]*$")


@dataclass(frozen=True)
class Citations:
    body_html: str  # the content with the citation block and the boilerplate removed
    place: str | None  # dateline/place field of the block ("Ort", "Location", "Lieu", ...)
    refs: tuple[SourceRef, ...]  # cited outlets, in order, each outlet once


# --- outlets from URLs and text -------------------------------------------------------------


def _ascii_host(host: str) -> str | None:
    """The lower-case IDNA ASCII form of a host name, or None when it is not one."""
    host = host.strip().rstrip(".")
    if not host or len(host) > 253 or "." not in host:
        return None
    if host.isascii() and "xn--" not in host.lower():
        # UTS #46 maps an ASCII host to its lower case; A-labels still need idna's checks.
        host = host.lower()
        return host if _HOST.match(host) else None
    try:
        # UTS #46 non-transitional mapping (IDNA 2008), what browsers do with typed hosts.
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    return ascii_host if _HOST.match(ascii_host) else None


def _display_host(ascii_host: str) -> str:
    try:
        return idna.decode(ascii_host)
    except (idna.IDNAError, UnicodeError, ValueError):
        return ascii_host


def _plausible_name(text: str) -> bool:
    """A short outlet name (``Reuters``, ``Le Monde``, ``heise online``), not a phrase.

    Names are capitalised words, acronyms and short particles ("de", "della", "the"); a
    second long lower-case word ("meldete später") makes it a clause of running text."""
    words = text.split()
    return (
        0 < len(text) <= MAX_TOKEN_CHARS
        and len(words) <= MAX_NAME_WORDS
        and any(ch.isalpha() for ch in text)
        and _NAME_CHARS.match(text) is not None
        and _SCHEME.match(text) is None
        and (len(words) == 1 or sum(len(w) > 4 and w.islower() for w in words) <= 1)
    )


def _clean_token(token: str) -> str:
    """The token without stray tags, bullets, quotes and punctuation around it."""
    token = _SPACES.sub(" ", _TAG_TEXT.sub(" ", token)).strip(_TOKEN_STRIP)
    while token:
        if token[0] + token[-1] in ("()", "[]") and len(token) > 1:  # "(dpa)", not "A (a.b)"
            token = token[1:-1]
        elif token[-1] in ")]" and token.count(token[-1]) > token.count(_OPENER[token[-1]]):
            token = token[:-1]  # the end of "(Quelle: dpa)"
        elif token[0] in "([" and token.count(token[0]) > token.count(_CLOSER[token[0]]):
            token = token[1:]
        else:
            break
        token = token.strip(_TOKEN_STRIP)
    return token


def source_ref_from_url(url: str | None, name: str | None = None) -> SourceRef | None:
    """The outlet an http(s) URL points to, named ``name`` (or its host); None otherwise."""
    if not url:
        return None
    url = url.strip()
    if (
        len(url) > MAX_URL_CHARS
        or not url.lower().startswith(("http://", "https://"))
        or any(ord(ch) <= 0x20 or ch in "<>\"" for ch in url)
    ):
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    ascii_host = _ascii_host(host or "")
    if ascii_host is None:
        return None
    shown = _clean_token(name or "")
    if not shown or len(shown) > MAX_TOKEN_CHARS or "<" in shown or ">" in shown:
        shown = _display_host(ascii_host)
    return SourceRef(host=ascii_host, name=shown, url=url)


def _ref_from_host_text(text: str) -> SourceRef | None:
    """``www.npr.org`` or ``npr.org/some/path``: the host, named as written."""
    if any(ch.isspace() for ch in text) or "." not in text:
        return None
    written = re.split(r"[/?#]", text, maxsplit=1)[0]
    if ":" in written or "@" in written:  # a port or credentials: not how outlets are named
        return None
    host = _ascii_host(written)
    return SourceRef(host=host, name=written.rstrip(".").lower()) if host else None


def source_ref_from_text(token: str) -> SourceRef | None:
    """An outlet from its written form: ``www.npr.org``, ``NPR (npr.org)``, ``https://x.y/z``,
    or a bare name such as ``Reuters`` (then ``host`` is empty). None for anything else."""
    token = _clean_token(token)
    if not token or len(token) > MAX_TOKEN_CHARS or "<" in token or ">" in token:
        return None
    pair = _NAME_AND_HOST.match(token)
    if pair:
        for name, host_text in ((pair["a"], pair["b"]), (pair["b"], pair["a"])):
            ref = source_ref_from_url(host_text, name) or _ref_from_host_text(host_text)
            if ref and _plausible_name(name.strip()):
                return SourceRef(ref.host, name.strip(), ref.url)
    if token.lower().startswith(("http://", "https://")):
        return source_ref_from_url(token)
    if _SCHEME.match(token) or "//" in token:
        return None
    if not any(ch.isspace() for ch in token) and "." in token:
        return _ref_from_host_text(token)  # shaped like a host: a valid one, or nothing
    return SourceRef(host="", name=token) if _plausible_name(token) else None


def _unique_refs(refs: Iterable[SourceRef]) -> tuple[SourceRef, ...]:
    seen: set[str] = set()
    kept: list[SourceRef] = []
    for ref in refs:
        key = ref.key
        if key not in seen:
            seen.add(key)
            kept.append(ref)
            if len(kept) == MAX_REFS:
                break
    return tuple(kept)


# --- the content as lines -------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """One text node: ``node.text`` or ``node.tail``, at ``start`` in the flat text."""

    node: Any
    attr: str
    start: int
    value: str


@dataclass(frozen=True)
class _Link:
    start: int
    end: int
    href: str


@dataclass(frozen=True)
class _Span:
    """An element and the flat-text range of its content."""

    element: Any
    start: int
    end: int


@dataclass(frozen=True)
class _Line:
    start: int
    end: int
    text: str


@dataclass
class _Flat:
    text: str
    pieces: list[_Piece]
    links: list[_Link]
    elements: list[_Span]  # every element, in document order
    breaks: list[tuple[int, Any]]  # <br> elements and the offset of the line end they make
    lines: list[_Line]
    line_starts: list[int] = field(default_factory=list)
    link_starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.line_starts = [line.start for line in self.lines]
        self.link_starts = [link.start for link in self.links]


def _tag(element: Any) -> str | None:
    tag = element.tag
    return tag.lower() if isinstance(tag, str) else None  # comments have a function as tag


def _flatten(root: Any) -> _Flat:
    """The text of the tree with a newline wherever a line ends, and where each piece sits.

    Iterative, so a deeply nested hostile document cannot exhaust the Python stack."""
    parts: list[str] = []
    pieces: list[_Piece] = []
    links: list[_Link] = []
    elements: list[_Span] = []
    breaks: list[tuple[int, Any]] = []
    pos = 0
    at_break = True  # the last thing emitted ends a line: one line end is enough

    def emit(text: str, node: Any = None, attr: str = "") -> None:
        nonlocal pos, at_break
        if node is not None:
            pieces.append(_Piece(node, attr, pos, text))
        elif at_break:
            return  # "</li><li>" is one line end, not an empty line between two
        parts.append(text)
        pos += len(text)
        at_break = node is None

    stack: list[tuple[Any, int]] = [(root, -1)]  # (element, start offset once entered)
    while stack:
        element, start = stack.pop()
        tag = _tag(element)
        if start >= 0:  # leaving the element
            elements.append(_Span(element, start, pos))
            if tag == "a":
                href = element.get("href")
                if href:
                    links.append(_Link(start, pos, href))
            if tag in _BLOCK_TAGS:
                emit("\n")
            if element is not root and element.tail:
                emit(element.tail, element, "tail")
            continue
        if tag is None:  # a comment or processing instruction: only its tail is text
            if element.tail:
                emit(element.tail, element, "tail")
            continue
        if tag == "br":
            breaks.append((pos, element))
            emit("\n")
            if element.tail:
                emit(element.tail, element, "tail")
            continue
        if tag in _BLOCK_TAGS:
            emit("\n")
        stack.append((element, pos))
        if element.text:
            emit(element.text, element, "text")
        stack.extend((child, -1) for child in reversed(element))
    elements.sort(key=lambda span: (span.start, -span.end))  # parents before their children
    links.sort(key=lambda link: link.start)  # recorded on exit: nested <a> would be out of order
    text = "".join(parts)
    return _Flat(text, pieces, links, elements, breaks, _split_lines(text))


def _split_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    start = 0
    for match in re.finditer(r"\r\n|[\n\r\f\v\u2028\u2029]", text):
        lines.append(_Line(start, match.start(), text[start : match.start()]))
        start = match.end()
    lines.append(_Line(start, len(text), text[start:]))
    return lines


# --- labels ---------------------------------------------------------------------------------


class _Kind(Enum):
    SOURCE = "source"
    PLACE = "place"
    INFO = "info"
    HEADING = "heading"


@dataclass(frozen=True)
class _Labels:
    line: re.Pattern[str]  # a label line: group "label", the value starts at end()
    heading: re.Pattern[str]  # a heading line
    kinds: dict[str, _Kind]  # case-folded label -> kind

    def kind_of(self, label: str) -> _Kind:
        return self.kinds.get(label.casefold(), _Kind.INFO)


def _alternation(words: Iterable[str]) -> str:
    # Longest first, so "Quellen" is tried before "Quelle".
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


@lru_cache(maxsize=64)
def _labels(operator_labels: tuple[str, ...]) -> _Labels:
    extra = tuple(
        clean for clean in (label.strip().rstrip(":：").strip() for label in operator_labels)
        if clean and len(clean) <= MAX_LABEL_CHARS
    )
    kinds: dict[str, _Kind] = {}
    for kind, words in (
        (_Kind.INFO, INFO_LABELS),
        (_Kind.PLACE, PLACE_LABELS),
        (_Kind.SOURCE, SOURCE_LABELS + extra),  # the operator's word wins
    ):
        kinds.update((word.casefold(), kind) for word in words)
    names = _alternation((*SOURCE_LABELS, *extra, *PLACE_LABELS, *INFO_LABELS))
    return _Labels(
        line=re.compile(rf"{_LEAD}(?P<label>{names}){_SEPARATOR}", re.IGNORECASE),
        heading=re.compile(
            rf"{_LEAD}(?:{_alternation(HEADING_WORDS)})\s*[:：]?\s*$", re.IGNORECASE
        ),
        kinds=kinds,
    )


@lru_cache(maxsize=64)
def _compiled_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError, ValueError, OverflowError):
            continue  # config validation reports it; ingestion goes on without it
    return tuple(compiled)


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    kind: _Kind
    position: int  # flat offset, to keep document order across blocks
    refs: tuple[SourceRef, ...] = ()
    place: str | None = None


def _links_within(flat: _Flat, start: int, end: int) -> list[_Link]:
    first = bisect.bisect_left(flat.link_starts, start)
    last = bisect.bisect_left(flat.link_starts, end)
    return flat.links[first:last]


def _value_tokens(flat: _Flat, start: int, end: int) -> Iterator[tuple[str, str | None]]:
    """(text, href) for each item of a value: links whole, the text between them split."""
    cursor = start
    for link in _links_within(flat, start, end):
        if link.start < cursor:  # overlapping links cannot nest; ignore a malformed one
            continue
        yield from ((part, None) for part in _split_text(flat.text[cursor : link.start]))
        yield (_SPACES.sub(" ", flat.text[link.start : link.end]).strip(), link.href)
        cursor = link.end
    yield from ((part, None) for part in _split_text(flat.text[cursor:end]))


def _split_text(text: str) -> Iterator[str]:
    for part in _SPLIT.split(_TAG_TEXT.sub(" ", text)):
        token = _clean_token(part)
        if not token:
            continue
        if "." not in token and "/" in token and "//" not in token:  # "dpa/AFP"
            yield from (name for name in (_clean_token(p) for p in token.split("/")) if name)
        else:
            yield token


def _ref_from_link(text: str, href: str) -> SourceRef | None:
    """The outlet a link cites: the href's host, named by the link text when that is a name."""
    ref = source_ref_from_url(href)  # None for javascript:, mailto:, relative links
    if ref is None:
        return None
    shown = _clean_token(text)
    written = source_ref_from_text(shown) if shown else None
    if written is not None and written.host:  # the text is a host or URL: show it as written
        return SourceRef(ref.host, written.name, ref.url)
    if shown and _plausible_name(shown):
        return SourceRef(ref.host, shown, ref.url)
    return ref


def _source_refs(flat: _Flat, start: int, end: int) -> tuple[SourceRef, ...] | None:
    """The outlets of a source value, or None when part of it is not an outlet (prose)."""
    refs: list[SourceRef] = []
    for count, (text, href) in enumerate(_value_tokens(flat, start, end)):
        if count == MAX_VALUE_TOKENS:
            return None
        if href is not None:
            ref = _ref_from_link(text, href)
        else:
            ref = source_ref_from_text(text)
            if ref is None:
                return None
        if ref is not None and len(refs) < MAX_REFS * 4:  # duplicates are dropped later
            refs.append(ref)
    return tuple(refs)


def _plain_value(flat: _Flat, start: int, end: int) -> str:
    return _SPACES.sub(" ", _TAG_TEXT.sub(" ", flat.text[start:end])).strip(" \t\n:-–—")


def _entry(kind: _Kind, flat: _Flat, regions: Sequence[tuple[int, int]]) -> _Entry | None:
    """The entry a label makes with its value ``regions``, or None when they are no value."""
    position = regions[0][0] if regions else 0
    if kind is _Kind.SOURCE:
        refs: list[SourceRef] = []
        for start, end in regions:
            found = _source_refs(flat, start, end)
            if found is None:
                return None
            refs.extend(found)
        return _Entry(kind, position, refs=tuple(refs))
    values = [v for v in (_plain_value(flat, s, e) for s, e in regions) if v]
    if kind is _Kind.HEADING:
        return _Entry(kind, position) if not values else None
    if kind is _Kind.PLACE:
        if len(values) > 1 or (values and len(values[0]) > MAX_PLACE_CHARS):
            return None
        place = values[0] if values else None
        if place and ("<" in place or ">" in place):
            return None
        return _Entry(kind, position, place=place)
    if len(values) > 3 or sum(map(len, values)) > MAX_INFO_CHARS:
        return None
    return _Entry(kind, position)


def _is_block(entries: Sequence[_Entry]) -> bool:
    return any(e.kind in (_Kind.SOURCE, _Kind.PLACE) for e in entries)


# --- blocks at the end ----------------------------------------------------------------------


@dataclass
class _Scan:
    """What the line scan needs to know about each line."""

    flat: _Flat
    labels: _Labels
    blank: list[bool]  # nothing left to read: whitespace, decoration, stripped or consumed
    opaque: list[bool]  # inside a table or list that is not a recognised block

    def is_footer(self, index: int) -> bool:
        match = _FOOTER.match(self.flat.lines[index].text)
        return match is not None and source_ref_from_text(match["host"]) is not None

    def is_heading(self, index: int) -> bool:
        return self.labels.heading.match(self.flat.lines[index].text) is not None


def _tail_block(scan: _Scan) -> tuple[int, list[_Entry]] | None:
    """The first line of the block that ends the content, and its entries."""
    lines = scan.flat.lines
    lowest = max(0, len(lines) - TAIL_LINES)
    index = len(lines) - 1
    while index >= lowest and (scan.blank[index] or scan.is_footer(index)):
        index -= 1
    entries: list[_Entry] = []
    start: int | None = None
    pending: list[int] = []  # continuation lines below the label not reached yet
    while index >= lowest:
        line = lines[index]
        if scan.blank[index]:
            index -= 1
            continue
        if scan.opaque[index]:
            break
        if scan.is_heading(index):
            if start is not None and not pending:
                start = index
            break
        label = scan.labels.line.match(line.text)
        if label:
            kind = scan.labels.kind_of(label["label"])
            inline = line.text[label.end() :]
            if pending and not _continues(inline):
                break  # "Quelle: dpa" then more lines: those are not its value
            regions = [(line.start + label.end(), line.end)]
            regions += [(lines[i].start, lines[i].end) for i in reversed(pending)]
            entry = _entry(kind, scan.flat, regions)
            if entry is None or len(entries) == MAX_BLOCK_ENTRIES:
                break
            entries.append(entry)
            start, pending = index, []
        elif len(pending) < MAX_CONTINUATION_LINES:
            pending.append(index)
        else:
            break
        index -= 1
    if start is None or not _is_block(entries):
        return None
    return start, entries


def _continues(inline_value: str) -> bool:
    """Whether the lines below a label line belong to its value: the label stands alone
    (``Quellen:`` over a list), or its value breaks off after a separator (``a.de,``)."""
    value = _TAG_TEXT.sub(" ", inline_value).strip()
    return not value or value[-1] in f",;|&{_BULLETS}"


def _trailing_footer(scan: _Scan) -> int | None:
    """The first line of the footers (and blank lines) that end the content, if any."""
    first: int | None = None
    lowest = max(0, len(scan.flat.lines) - TAIL_LINES)
    for index in range(len(scan.flat.lines) - 1, lowest - 1, -1):
        if scan.is_footer(index):
            first = index
        elif not scan.blank[index]:
            break
    return first


# --- tables and definition lists ------------------------------------------------------------


def _children(element: Any, tags: frozenset[str]) -> Iterator[Any]:
    """Direct children with one of ``tags``, looking through tbody/thead/tfoot and div."""
    for child in element:
        tag = _tag(child)
        if tag in tags:
            yield child
        elif tag in ("tbody", "thead", "tfoot", "div"):
            yield from _children(child, tags)


def _label_kind(labels: _Labels, text: str) -> _Kind | None:
    """The kind of a cell that holds only a label (or a heading word)."""
    text = text.strip()
    if labels.heading.match(text):
        return _Kind.HEADING
    match = labels.line.match(text)
    if match and not text[match.end() :].strip(" \t\n:：)]"):
        return labels.kind_of(match["label"])
    return None


def _row_entries(
    element: Any, flat: _Flat, labels: _Labels, spans: dict[int, _Span]
) -> list[_Entry] | None:
    """The entries of a table whose every row is ``label | value``, else None."""
    entries: list[_Entry] = []
    for row in _children(element, frozenset({"tr", "caption"})):
        if _tag(row) == "caption":
            continue  # removed with the table
        cells = [spans[id(cell)] for cell in _children(row, frozenset({"td", "th"}))]
        if not cells:
            continue
        label_text = flat.text[cells[0].start : cells[0].end]
        kind = _label_kind(labels, label_text)
        regions = [(cell.start, cell.end) for cell in cells[1:]]
        if kind is None and len(cells) == 1:  # "Quelle: Reuters" in one cell
            match = labels.line.match(label_text)
            if not match:
                return None
            kind = labels.kind_of(match["label"])
            regions = [(cells[0].start + match.end(), cells[0].end)]
        if kind is None or len(entries) == MAX_BLOCK_ENTRIES:
            return None
        entry = _entry(kind, flat, regions)
        if entry is None:
            return None
        entries.append(entry)
    return entries


def _definition_entries(
    element: Any, flat: _Flat, labels: _Labels, spans: dict[int, _Span]
) -> list[_Entry] | None:
    """The entries of a definition list whose every term is a known label, else None."""
    groups: list[tuple[_Kind, list[tuple[int, int]]]] = []
    for child in _children(element, frozenset({"dt", "dd"})):
        span = spans[id(child)]
        if _tag(child) == "dt":
            kind = _label_kind(labels, flat.text[span.start : span.end])
            if kind is None or len(groups) == MAX_BLOCK_ENTRIES:
                return None
            groups.append((kind, []))
        elif not groups:
            return None  # a value with no label
        else:
            groups[-1][1].append((span.start, span.end))
    entries = [_entry(kind, flat, regions) for kind, regions in groups]
    return None if any(e is None for e in entries) else [e for e in entries if e is not None]


def _structured_blocks(
    flat: _Flat, labels: _Labels
) -> tuple[list[_Span], list[_Span], list[_Entry]]:
    """(recognised tables/lists, other tables/lists, entries), outermost elements only."""
    spans = {id(span.element): span for span in flat.elements}
    found: list[_Span] = []
    opaque: list[_Span] = []
    entries: list[_Entry] = []
    covered_until = -1
    for span in flat.elements:
        if span.start < covered_until or _tag(span.element) not in _STRUCTURED_TAGS:
            continue
        covered_until = span.end + 1
        read = _row_entries if _tag(span.element) == "table" else _definition_entries
        nested = any(
            _tag(d) in _STRUCTURED_TAGS for d in span.element.iterdescendants()
        )
        block = None if nested else read(span.element, flat, labels, spans)
        if block is not None and _is_block(block):
            found.append(span)
            entries.extend(block)
        else:
            opaque.append(span)
    return found, opaque, entries


# --- removal --------------------------------------------------------------------------------


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _Removal:
    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.spans = spans
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]

    def touches(self, start: int, end: int) -> bool:
        """Whether a span overlaps [start, end) (an empty range: contains that point)."""
        i = bisect.bisect_right(self.ends, start)  # the first span ending after ``start``
        return i < len(self.spans) and self.spans[i][0] < max(end, start + 1)

    def covering(self, start: int, end: int) -> bool:
        """Whether one span covers all of [start, end] (an empty range: that point)."""
        i = bisect.bisect_right(self.starts, start) - 1
        return i >= 0 and self.spans[i][1] >= max(end, start + 1)

    def keeps_text(self, text: str, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` has a non-space character outside the spans."""
        cursor = start
        i = bisect.bisect_right(self.ends, start)
        while cursor < end:
            gap_end = min(end, self.spans[i][0]) if i < len(self.spans) else end
            if gap_end > cursor and _NON_SPACE.search(text, cursor, gap_end):
                return True
            if i >= len(self.spans):
                return False
            cursor = max(cursor, self.spans[i][1])
            i += 1
        return False

    def cut(self, text: str, offset: int) -> str:
        """``text`` (at ``offset``) without the characters inside the spans."""
        kept: list[str] = []
        cursor = offset
        i = max(0, bisect.bisect_right(self.starts, offset) - 1)
        end = offset + len(text)
        while i < len(self.spans) and self.spans[i][0] < end:
            s, e = self.spans[i]
            if e > cursor:
                if s > cursor:
                    kept.append(text[cursor - offset : s - offset])
                cursor = max(cursor, e)
            i += 1
        if cursor < end:
            kept.append(text[cursor - offset :])
        return "".join(kept)


def _has_media(element: Any) -> bool:
    return next(element.iter(*_MEDIA_TAGS), None) is not None


def _remove(root: Any, flat: _Flat, spans: list[tuple[int, int]]) -> None:
    """Delete the text in ``spans`` from the tree, and the elements left without content."""
    removal = _Removal(_merge(spans))
    touched = [
        s for s in flat.elements if s.element is not root and removal.touches(s.start, s.end)
    ]
    for piece in flat.pieces:
        kept = removal.cut(piece.value, piece.start)
        if kept != piece.value:
            setattr(piece.node, piece.attr, kept or None)
    for position, br in flat.breaks:
        if removal.covering(position, position + 1) and br.getparent() is not None:
            br.drop_tree()
    dropped_until = -1
    for span in touched:  # whole elements inside a span go, media and all
        if span.start < dropped_until or span.element.getparent() is None:
            continue
        if removal.covering(span.start, span.end):
            span.element.drop_tree()
            dropped_until = span.end + 1
    for span in reversed(touched):  # then the ones the cut left empty, innermost first
        element = span.element
        if element.getparent() is None or _is_detached(element, root):
            continue
        if not _NON_SPACE.search(flat.text, span.start, span.end):
            continue  # it had no text to begin with (an empty <p>, an image): not ours
        if not removal.keeps_text(flat.text, span.start, span.end) and not _has_media(element):
            element.drop_tree()


def _is_detached(element: Any, root: Any) -> bool:
    return all(ancestor is not root for ancestor in element.iterancestors())


def _serialize(root: Any) -> str:
    html: str = lxml.html.tostring(root, encoding="unicode", method="html")
    opening, closing = "<div>", "</div>"  # the parent _parse wrapped the fragment in
    if html.startswith(opening) and html.endswith(closing):
        return html[len(opening) : -len(closing)]
    return html


# --- the whole article ----------------------------------------------------------------------


def _parse(html: str) -> Any | None:
    """The fragment under a ``<div>`` parent, or None when lxml cannot read all of it.

    Characters XML cannot hold go first: nh3 lets some through (U+000B, U+000C), libxml2's
    parser keeps them, and then lxml's own setters refuse the text when we edit it.
    libxml2's resource limits (nesting deeper than 256, a text node over 10 MB) bound the work;
    past them it silently drops the rest and logs a FATAL error. Serializing that tree would
    lose article text, so such content is not edited at all."""
    parser = lxml.html.HTMLParser(huge_tree=False)  # one per call: parsers are not thread-safe
    try:
        root = lxml.html.fragment_fromstring(
            _XML_INCOMPATIBLE.sub("", html), create_parent="div", parser=parser
        )
    except (etree.ParserError, etree.XMLSyntaxError, ValueError, TypeError):
        return None
    if any(error.level_name == "FATAL" for error in parser.error_log):
        return None
    return root


def _pattern_spans(patterns: Sequence[re.Pattern[str]], line: _Line) -> list[tuple[int, int]]:
    return [
        (line.start + match.start(), line.start + match.end())
        for pattern in patterns
        for match in pattern.finditer(line.text)
        if match.end() > match.start()
    ]


def _line_range(flat: _Flat, first: int, last: int) -> tuple[int, int]:
    """Flat offsets of lines ``first..last`` with the line ends on either side."""
    return max(0, flat.lines[first].start - 1), flat.lines[last].end + 1


def _lines_in(flat: _Flat, span: _Span) -> range:
    first = bisect.bisect_left(flat.line_starts, span.start)
    last = bisect.bisect_right(flat.line_starts, span.end)
    return range(first, last)


def _heading_before(scan: _Scan, first_line: int) -> int | None:
    index = first_line - 1
    while index >= 0 and scan.blank[index]:
        index -= 1
    if index >= 0 and not scan.opaque[index] and scan.is_heading(index):
        return index
    return None


@lru_cache(maxsize=64)
def _could_cite(labels: tuple[str, ...]) -> re.Pattern[str]:
    """A quick test, on ``_folded`` markup, for anything a block or footer needs: a source or
    place label (built-in or the operator's) or a footer phrase. No match means nothing can
    be found."""
    # Each label's longest word stands for it: punctuation in a label ("D'après:") may be
    # written differently in the markup (&#x27;, a space before the colon).
    words = {_folded(max(re.findall(r"\w+", label), key=len, default=""))
             for label in (*SOURCE_LABELS, *PLACE_LABELS, *labels)} - {""}
    # The words grouped by their first letter, each group written "q(?<!\w.)(?:uelle|...)":
    # when every alternative opens with a letter, the regex engine skips (in C) each position
    # that holds none of them, where a leading (?<!\w) was tried at every position of every
    # entry's markup. Same matches, twice as fast on the bench corpus.
    by_first: dict[str, list[str]] = {}
    for word in sorted(words, key=len, reverse=True):
        by_first.setdefault(word[0], []).append(re.escape(word[1:]))
    labels_pattern = "|".join(rf"{re.escape(first)}(?<!\w[\s\S])(?:{'|'.join(rests)})(?!\w)"
                              for first, rests in by_first.items())
    return re.compile(rf"{labels_pattern}|besuchen\s+sie|visit\s+us"
                      r"|visitez|vis[ií]tanos|visitateci")


def _folded(text: str) -> str:
    """``text`` case-folded, for ``_could_cite``: a regex without IGNORECASE over folded text
    runs three times faster than one with it, and this is every entry's first test."""
    return text.lower() if text.isascii() else text.casefold()


def extract_citations(
    html: str, *, labels: tuple[str, ...] = (), strip_patterns: tuple[str, ...] = ()
) -> Citations:
    """The cited outlets and place of an article, and its content without them."""
    if not html or not html.strip():
        return Citations(body_html=html, place=None, refs=())
    if not strip_patterns and not _could_cite(tuple(labels)).search(_folded(html)):
        # Most articles name no source or place label and have no footer: skip the parse.
        return Citations(body_html=html, place=None, refs=())
    root = _parse(html)
    if root is None:
        return Citations(body_html=html, place=None, refs=())
    flat = _flatten(root)
    known = _labels(tuple(labels))
    removed: list[tuple[int, int]] = []

    blank = [_DECORATION.match(line.text) is not None for line in flat.lines]
    patterns = _compiled_patterns(tuple(strip_patterns))
    for index, line in enumerate(flat.lines):
        matched = _pattern_spans(patterns, line)
        removed.extend(matched)
        if matched and not blank[index]:
            blank[index] = not _Removal(_merge(matched)).cut(line.text, line.start).strip()

    found, others, entries = _structured_blocks(flat, known)
    others += [span for span in flat.elements if _tag(span.element) in _OPAQUE_TAGS]
    opaque = [False] * len(flat.lines)
    for span in others:
        for index in _lines_in(flat, span):
            opaque[index] = True
    scan = _Scan(flat, known, blank, opaque)
    for span in found:
        lines = _lines_in(flat, span)
        for index in lines:
            blank[index] = True
        removed.append((span.start, span.end))
        heading = _heading_before(scan, lines.start) if lines else None
        if heading is not None:
            removed.append(_line_range(flat, heading, heading))
            blank[heading] = True

    last = len(flat.lines) - 1
    tail = _tail_block(scan)
    if tail is not None:
        first_line, tail_entries = tail
        entries.extend(tail_entries)
        removed.append(_line_range(flat, first_line, last))
    else:
        footer = _trailing_footer(scan)
        if footer is not None:
            removed.append(_line_range(flat, footer, last))

    entries.sort(key=lambda e: e.position)
    refs = _unique_refs(ref for e in entries for ref in e.refs)
    place = next((e.place for e in entries if e.place), None)
    if not removed:
        return Citations(body_html=html, place=place, refs=refs)
    _remove(root, flat, removed)
    return Citations(body_html=_serialize(root), place=place, refs=refs)
