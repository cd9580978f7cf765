"""A checker for the rules of the W3C Feed Validator that apply to syndicate's output.

The validator (github.com/w3c/feedvalidator) is not a package, so CI cannot run it. This module
re-states, in our own code, the rules it enforces on what we publish, and names each finding
after the validator's event (``InvalidRFC2822Date``, ``DuplicateAtomLink``, ...) with the same
``element``/``parent``/``attr`` naming, so ``tests/test_feed_validity.py`` can prove it against
the validator's own labelled test cases (``/work/shared/corpus/w3c-feedvalidator/testcases``).

``check_feed(body, location)`` reads RSS 2.0 or Atom 1.0 bytes; ``check_json_feed`` reads JSON
Feed 1.1. Each returns a list of ``Violation``; its ``level`` is

* ``error``: the validator reports it as an error (the feed is "not valid");
* ``warning``: the validator warns ("valid, but ..."); tests decide which ones they accept;
* ``policy``: a promise of ours that is stricter than the validator (absolute URIs only).

Scope: the core vocabularies (RSS 2.0 without namespace, Atom 1.0) and atom:link inside RSS;
extension namespaces (dc, content, ours) are not checked beyond HTML safety of
content:encoded. Known differences from the validator, all of them stricter or out of our
output's reach: language subtags are checked against syndicate.languages' ISO 639 tables (the
validator's own list also has a few withdrawn or private-use codes: ``mo``, ``sh``, ``qaa``);
IP-literal hosts are refused where a full URI is required; URIs in Atom must be absolute (a
``policy`` finding).
"""

from __future__ import annotations

import email.utils
import json
import re
import unicodedata
from calendar import monthrange
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import lxml.html
from lxml import etree

from syndicate.languages import ISO_639_1, ISO_639_2_ONLY, THREE_TO_TWO

ATOM_NS = "http://www.w3.org/2005/Atom"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XML_NS = "http://www.w3.org/XML/1998/namespace"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"

# --- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    parent: str | None  # the more general rule this one refines, as the validator nests them
    level: str  # "error", "warning" or "policy"
    text: str


RULES: dict[str, Rule] = {
    # Families, so that an expectation of the general kind is met by a specific finding.
    "Error": Rule(None, "error", "an error"),
    "Warning": Rule(None, "warning", "a warning"),
    "InvalidValue": Rule("Error", "error", "a value of the wrong form"),
    "InvalidLink": Rule("InvalidValue", "error", "not a URI (RFC 3986) / IRI (RFC 3987)"),
    "MissingElement": Rule("Error", "error", "a required element is missing"),
    "MissingAttribute": Rule("Error", "error", "a required attribute is missing"),
    # XML
    "SAXError": Rule("Error", "error", "not well-formed XML (XML 1.0 §2.1)"),
    "UndefinedElement": Rule("Error", "error", "an element the core vocabulary has not here"),
    "DuplicateElement": Rule("Error", "error", "an element that may appear once appears twice"),
    "UnexpectedWhitespace": Rule("Error", "error", "whitespace around an id, date or URI"),
    "MisplacedMetadata": Rule("Error", "error", "feed metadata after the first atom:entry"),
    # required elements and attributes
    "MissingTitle": Rule("MissingElement", "error", "RSS channel needs <title>"),
    "MissingLink": Rule("MissingElement", "error", "RSS channel needs <link>"),
    "MissingDescription": Rule("MissingElement", "error", "RSS channel needs <description>"),
    "ItemMustContainTitleOrDescription": Rule("MissingElement", "error",
                                              "RSS item needs <title> or <description>"),
    "MissingXhtmlDiv": Rule("MissingElement", "error", "type=xhtml needs one xhtml:div child"),
    "MissingContentOrAlternate": Rule("MissingElement", "error",
                                      "atom:entry needs atom:content or a rel=alternate link"),
    "MissingHref": Rule("MissingAttribute", "error", "atom:link needs href"),
    "MissingSummary": Rule("Error", "error", "out-of-line or binary atom:content needs a summary"),
    # values
    "InvalidFullLink": Rule("InvalidLink", "error", "not an absolute URI"),
    "InvalidUriChar": Rule("InvalidLink", "error", "a character URIs cannot hold"),
    "InvalidURLAttribute": Rule("InvalidLink", "error", "not an http(s) URL with a DNS host"),
    "InvalidURN": Rule("InvalidValue", "error", "not a URN (RFC 2141)"),
    "InvalidUUID": Rule("InvalidValue", "error", "urn:uuid: without a UUID (RFC 4122)"),
    "InvalidTAG": Rule("InvalidValue", "error", "not a tag: URI (RFC 4151)"),
    "InvalidRFC2822Date": Rule("InvalidValue", "error", "not an RFC 822 date-time"),
    "IncorrectDOW": Rule("InvalidRFC2822Date", "error", "the day of the week is wrong"),
    "InvalidRFC3339Date": Rule("InvalidValue", "error", "not an RFC 3339 date-time"),
    "InvalidLanguage": Rule("InvalidValue", "error", "not a language tag (RFC 5646, ISO 639)"),
    "InvalidHttpGUID": Rule("InvalidValue", "error", "a permalink guid that is not a full URL"),
    "InvalidBooleanAttribute": Rule("InvalidValue", "error", "not 'true' or 'false'"),
    "InvalidIntegerAttribute": Rule("InvalidValue", "error", "not an integer"),
    "InvalidMIMEAttribute": Rule("InvalidValue", "error", "not a MIME type (RFC 2045)"),
    "InvalidInteger": Rule("InvalidValue", "error", "not an integer"),
    "InvalidNonNegativeInteger": Rule("InvalidInteger", "error", "not a non-negative integer"),
    "UseZeroForUnknown": Rule("InvalidNonNegativeInteger", "error", "-1 for an unknown length"),
    "InvalidTextType": Rule("InvalidValue", "error", "a text construct type other than "
                                                     "text, html or xhtml"),
    "InvalidContact": Rule("InvalidValue", "error", "not an e-mail address"),
    "DuplicateValue": Rule("InvalidValue", "error", "a guid used by an earlier item"),
    "InvalidMIMEType": Rule("Error", "error", "not a MIME type, or one this place forbids"),
    "InvalidPermalink": Rule("Error", "error", "a permalink guid that is a tag: or urn:uuid:"),
    "DuplicateAtomLink": Rule("Error", "error", "two rel=alternate links, same type+hreflang"),
    "DuplicateIds": Rule("Error", "error", "every entry has the same atom:id"),
    # warnings of the validator
    "SecurityRisk": Rule("Warning", "warning", "HTML that runs code or loads documents"),
    "SecurityRiskAttr": Rule("SecurityRisk", "warning", "an on* event attribute in HTML"),
    "ContainsRelRef": Rule("Warning", "warning", "a relative URL in HTML content"),
    "MissingSelf": Rule("Warning", "warning", "no atom:link rel=self"),
    "MissingAtomSelfLink": Rule("MissingSelf", "warning", "RSS without atom:link rel=self"),
    "SelfDoesntMatchLocation": Rule("Warning", "warning", "rel=self is not the served URL"),
    "RelativeSelf": Rule("Warning", "warning", "a relative rel=self"),
    "DuplicateEntries": Rule("Warning", "warning", "two entries with the same atom:id"),
    "DuplicateUpdated": Rule("Warning", "warning", "two entries with the same atom:updated"),
    "MissingSourceElement": Rule("Warning", "warning",
                                 "atom:source without id, title or updated (RFC 4287 §4.2.11)"),
    "NonCanonicalURI": Rule("Warning", "warning", "an atom:id not in RFC 3986 §6.2.2-§6.2.3 "
                                                  "normal form"),
    "MissingTextualContent": Rule("Warning", "warning", "atom:entry with neither content "
                                                        "nor summary"),
    "MissingGuid": Rule("Warning", "warning", "an RSS item without <guid>"),
    "DuplicateEnclosure": Rule("Warning", "warning", "more than one enclosure in an RSS item"),
    "ProblematicalRFC822Date": Rule("Warning", "warning", "an RFC 822 date in an obsolete form"),
    "BadCharacters": Rule("Warning", "warning", "C1 control characters or U+FFFD in text"),
    "UnregisteredAtomLinkRel": Rule("Warning", "warning", "a link rel neither IANA-registered "
                                                          "nor an absolute IRI"),
    # ours, stricter than the validator
    "RelativeURI": Rule(None, "policy", "a relative URI where we promise absolute ones"),
    "UnsafeURL": Rule(None, "policy", "a javascript:/data:/vbscript: URL in HTML"),
    # JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/)
    "JsonNotParseable": Rule("Error", "error", "not UTF-8 JSON with an object at the top"),
    "JsonVersion": Rule("Error", "error", "version is not https://jsonfeed.org/version/1.1"),
    "JsonMissingKey": Rule("Error", "error", "a required key is missing"),
    "JsonInvalidType": Rule("Error", "error", "a value of the wrong JSON type"),
    "JsonInvalidURL": Rule("Error", "error", "not an absolute http(s) URL"),
    "JsonInvalidDate": Rule("Error", "error", "not an RFC 3339 date-time"),
    "JsonInvalidLanguage": Rule("Error", "error", "not an RFC 5646 language tag"),
    "JsonInvalidMIME": Rule("Error", "error", "not a MIME type"),
    "JsonMissingContent": Rule("Error", "error", "an item without content_html or content_text"),
    "JsonDuplicateId": Rule("Error", "error", "two items with the same id"),
    "JsonUnknownKey": Rule("Error", "error", "a key neither in the spec nor an _extension"),
    "JsonFeedUrlMismatch": Rule(None, "policy", "feed_url is not the served URL"),
    "JsonDeprecated": Rule(None, "policy", "a key JSON Feed 1.1 deprecates (author)"),
}


def is_a(rule: str, family: str) -> bool:
    """True when ``rule`` is ``family`` or refines it (an InvalidFullLink is an InvalidLink)."""
    current: str | None = rule
    while current is not None:
        if current == family:
            return True
        current = RULES[current].parent
    return False


@dataclass(frozen=True)
class Violation:
    rule: str
    element: str = ""
    parent: str = ""
    attr: str = ""
    value: str = ""
    line: int | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}")

    @property
    def level(self) -> str:
        return RULES[self.rule].level

    def __str__(self) -> str:
        where = "/".join(p for p in (self.parent, self.element) if p)
        if self.attr:
            where += f"@{self.attr}"
        line = f"line {self.line}: " if self.line else ""
        value = f" {self.value!r}" if self.value else ""
        return f"{line}{self.rule} ({RULES[self.rule].text}) at {where}{value}"


class _Findings:
    def __init__(self) -> None:
        self.items: list[Violation] = []

    def add(self, rule: str, node: Any = None, *, element: str = "", parent: str = "",
            attr: str = "", value: str = "") -> None:
        line = getattr(node, "sourceline", None)
        self.items.append(Violation(rule, element, parent, attr, value[:200], line))


# --- values: URIs -----------------------------------------------------------------------------

# The characters RFC 2396 §2 allows in a URI reference (unreserved, reserved, "%" and "#").
# RFC 3986 added "[" "]" for IP literals; the validator still refuses them, so do we.
_URI_CHARS = re.compile(r"[0-9A-Za-z;/?:@&=+$.\-_!~*'()%,#]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_PCT_OK = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a "%" that starts no escape
_IP_LITERAL = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.\-]*:)?//)\[[0-9A-Fa-f:.]+\]")
# RFC 2141 §2: NID of 2-32 letters, digits and hyphens (not leading); NSS of <trans>: the
# "other" characters and %-escapes ("/", "?" and "#" are reserved; the validator refuses them).
_URN = re.compile(
    r"^urn:[A-Za-z0-9][A-Za-z0-9-]{1,31}:(?:[A-Za-z0-9()+,\-.:=@;$_!*']|%[0-9A-Fa-f]{2})+$",
    re.IGNORECASE)
_UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                       re.IGNORECASE)
# RFC 4151 §2.1: tag:authorityName,date:specific[#fragment]; authorityName a DNS name or an
# e-mail address, date YYYY[-MM[-DD]].
_DNS_NAME = r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*"
_TAG = re.compile(
    rf"^tag:(?:[a-z0-9\-._]+@)?{_DNS_NAME},\d{{4}}(?:-\d{{2}}(?:-\d{{2}})?)?:"
    r"[0-9A-Za-z;/?:@&=+$.\-_!~*'()%,]*(?:#[0-9A-Za-z;/?:@&=+$.\-_!~*'()%,]*)?$")
# An http(s) URL whose host is a dotted DNS name or a dotted IPv4 address, as the validator
# wants it for <enclosure url> (no user info, no "_" in the host, no single-label hosts).
_HTTP_URL = re.compile(
    r"^https?://(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.|(?:[A-Za-z0-9\-]+\.)+)[A-Za-z0-9][A-Za-z0-9\-]*"
    r"(?::\d+)?(?:/|$)", re.IGNORECASE)


def uri_problem(value: str, *, absolute: bool, iri: bool) -> str | None:
    """The rule a URI reference breaks, or None.

    ``absolute``: it must have a scheme (atom:id, RSS links); ``iri``: characters beyond ASCII
    are allowed (RFC 3987; Atom), else they must be percent-encoded (RSS 2.0 has URIs only).
    """
    general = "InvalidFullLink" if absolute else "InvalidLink"
    scheme_match = _SCHEME.match(value)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if scheme == "tag":
        return None if _TAG.match(value) else "InvalidTAG"
    if scheme == "urn":
        if value.lower().startswith("urn:uuid:"):
            return None if _UUID_URN.match(value) else "InvalidUUID"
        return None if _URN.match(value) else "InvalidURN"
    # An IPv6 literal host (RFC 3986 §3.2.2) is accepted in a URI reference (Atom link href),
    # not where a full URI is required (atom:id, RSS): the validator draws that line.
    checked = value if absolute else _IP_LITERAL.sub(r"\1", value, count=1)
    for char in checked:
        if ord(char) < 128 and not _URI_CHARS.match(char):
            return "InvalidUriChar"
        if ord(char) >= 128 and not iri:
            return general
    if _PCT_OK.search(value):
        return general
    if scheme_match is None:
        return "InvalidFullLink" if absolute else None
    if scheme in ("http", "https", "ftp") and not re.match(r"^[A-Za-z]+://[^/]", value):
        return general
    if len(value) == len(scheme_match.group(0)):
        return general  # a scheme and nothing else
    return None


def _is_absolute(value: str) -> bool:
    return _SCHEME.match(value) is not None


# --- values: the normal form of a URI (RFC 3986 §6.2.2 syntax-based, §6.2.3 scheme-based) ------

_URI_PARTS = re.compile(r"^(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$")
_RESERVED = ":/?#[]@!$&'()*+,;="  # RFC 3986 §2.2
_PCHAR_DELIMS = "!$&'()*+,;=:@"  # §3.3: the reserved characters a path segment holds as they are
_DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}
_PORT = re.compile(r":([0-9]*)$")


def normal_form(uri: str) -> str | None:
    """The URI as RFC 3986 normalizes it: scheme and host in lower case, a default or empty
    port dropped, an empty path of an authority "/", dot segments removed, escapes of
    unreserved characters decoded, other escapes upper-case, text in NFC; None when an escape
    is not UTF-8 (it has no normal form). A URI equals its normal form when it is in it."""
    match = _URI_PARTS.match(uri)
    if match is None:
        return None
    scheme, authority, path, query, fragment = match.groups()
    scheme = scheme.lower() if scheme is not None else None
    try:
        if authority is not None:
            authority = _normal_authority(authority, _DEFAULT_PORTS.get(scheme or ""))
            segments = _remove_dot_segments(path).split("/")
            path = "/".join(_normal_part(s, _PCHAR_DELIMS) for s in segments) or "/"
        else:
            path = _normal_part(path, _PCHAR_DELIMS + "/")
        query = _normal_part(query, _PCHAR_DELIMS + "/?") if query is not None else None
        fragment = _normal_part(fragment, _PCHAR_DELIMS + "/?") if fragment is not None else None
    except UnicodeDecodeError:
        return None
    return "".join([f"{scheme}:" if scheme is not None else "",
                    f"//{authority}" if authority is not None else "", path,
                    f"?{query}" if query is not None else "",
                    f"#{fragment}" if fragment is not None else ""])


def _normal_authority(authority: str, default_port: str | None) -> str:
    userinfo, at, host = authority.rpartition("@")
    host = host.lower()
    port = _PORT.search(host)
    if port is not None:
        host = host[:port.start()]
        if port.group(1) and port.group(1).lstrip("0") != (default_port or ""):
            host += f":{int(port.group(1))}"
    if host.endswith(".") and "." in host[:-1]:
        host = host[:-1]  # the root label written out
    return f"{userinfo}@{host}" if at and userinfo not in ("", ":") else host


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    output: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if path.split("/")[-1] in (".", ".."):
        output.append("")
    return ("/" if path.startswith("/") else "") + "/".join(output)


def _normal_part(text: str, delimiters: str) -> str:
    """A component with its delimiters (reserved characters that mean something here) left as
    written, escapes upper-case, and everything between decoded, put in NFC and encoded
    again: unreserved characters as themselves, all others escaped."""
    out: list[str] = []
    pending = bytearray()

    def flush() -> None:
        out.append(quote(unicodedata.normalize("NFC", pending.decode("utf-8")),
                         safe=delimiters))
        pending.clear()

    position = 0
    while position < len(text):
        escape = re.match(r"%([0-9A-Fa-f]{2})", text[position:])
        if escape:
            token, byte = escape.group(0).upper(), int(escape.group(1), 16)
            position += 3
        else:
            token = text[position]
            byte = ord(token) if ord(token) < 0x80 else -1
            position += 1
        if 0 <= byte < 0x80 and chr(byte) in _RESERVED and chr(byte) in delimiters:
            flush()
            out.append(token)
        elif byte >= 0:
            pending.append(byte)
        else:
            pending.extend(token.encode("utf-8"))
    flush()
    return "".join(out)


# --- values: dates, languages, MIME types, e-mail ---------------------------------------------

# RFC 3339 §5.6 as RFC 4287 §3.3 narrows it: upper-case "T" and "Z", seconds required.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))$")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# RFC 822 §5 as RFC 2822 §3.3 writes it today: "Wed, 02 Oct 2002 13:00:00 +0000", four-digit
# year, the day name optional, seconds optional, a numeric zone or one of the named ones.
_RFC2822 = re.compile(
    rf"^(?:({'|'.join(_DAYS)}), )?(\d{{1,2}}) ({'|'.join(_MONTHS)}) (\d{{4}}) "
    r"(\d{2}):(\d{2})(?::(\d{2}))? ([+-]?\d{2}[03]0|UT|GMT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|Z)$")
# What RFC 822 itself allowed besides: any case, two-digit years, military zones, comments.
_RFC822_OLD = re.compile(
    rf"^(?:(?:{'|'.join(d.lower() for d in _DAYS)})\s*,\s*)?\d{{1,2}}\s+"
    rf"(?:{'|'.join(m.lower() for m in _MONTHS)})\s+\d{{2}}(?:\d{{2}})?\s+"
    r"\d{2}:\d{2}(?::\d{2})?\s+(?:[+-]\d{4}|ut|gmt|est|edt|cst|cdt|mst|mdt|pst|pdt|[a-ik-z])?$")

_LANGUAGE_TAG = re.compile(r"^([A-Za-z]{2,3})(?:-[A-Za-z0-9]{1,8})*$")
# RFC 2045 §5.1 type/subtype with parameters; tokens exclude tspecials and whitespace.
_TOKEN = r"[^\s()<>@,;:\\\"/\[\]?=]+"
_MIME = re.compile(rf'^{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:"(?:\\"|[^"])*"|{_TOKEN}))*$')
_ADDR_SPEC = re.compile(r"^[A-Za-z0-9_\-+.'!#$%&*/=?^`{|}~]+@(?:[A-Za-z0-9\-]+\.)+[A-Za-z0-9]"
                        r"[A-Za-z0-9\-]*$")


def rfc3339_problem(value: str) -> bool:
    """True when ``value`` is not an RFC 3339 date-time in RFC 4287's form, or not a real time."""
    match = _RFC3339.match(value)
    if match is None:
        return True
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not 1 <= month <= 12 or not 1 <= day <= monthrange(year or 1, month)[1]:
        return True
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second (RFC 3339 §5.7)
        return True
    offset_hour, offset_minute = match.group(7), match.group(8)
    return offset_hour is not None and (int(offset_hour) > 23 or int(offset_minute) > 59)


def rfc822_problem(value: str) -> str | None:
    """None for an RFC 2822 date-time; the rule broken otherwise."""
    match = _RFC2822.match(value)
    if match is None:
        # RFC 822 §3.1.4: quoted pairs and (nested) comments may sit between the tokens.
        stripped = re.sub(r"\\.", "", value)
        previous = None
        while previous != stripped:
            previous, stripped = stripped, re.sub(r"\([^()]*\)", " ", stripped)
        stripped = stripped.strip().lower()
        return "ProblematicalRFC822Date" if _RFC822_OLD.match(stripped) else "InvalidRFC2822Date"
    day_name, day, month, year, hour, minute, second, _ = match.groups()
    month_number = _MONTHS.index(month) + 1
    if not 1 <= int(day) <= monthrange(int(year), month_number)[1]:
        return "InvalidRFC2822Date"
    if int(hour) > 23 or int(minute) > 59 or int(second or 0) > 60:
        return "InvalidRFC2822Date"
    if day_name and _DAYS[date(int(year), month_number, int(day)).weekday()] != day_name:
        return "IncorrectDOW"
    return None


def language_ok(value: str) -> bool:
    """RFC 5646 in form, with a primary subtag from ISO 639-1 or ISO 639-2 (B or T), as the
    validator checks it (it looks at the primary subtag only)."""
    match = _LANGUAGE_TAG.match(value)
    if match is None:
        return False
    primary = match.group(1).lower()
    return primary in ISO_639_1 or primary in ISO_639_2_ONLY or primary in THREE_TO_TWO


def mime_ok(value: str) -> bool:
    return _MIME.match(value) is not None


def _contact_ok(value: str) -> bool:
    """An RSS author/managingEditor: ``addr`` or ``addr (Name)`` (RFC 2822 addr-spec).

    Other shapes holding an "@" ("Name <addr>", a mailto: URL, RFC 2368) are only a warning
    of the validator's RSS profile, not an error."""
    if value.startswith("mailto:"):
        value = unquote(value[len("mailto:"):])
    if "@" in value and not value.endswith(")"):
        return True
    addresses = email.utils.getaddresses([value])
    return len(addresses) == 1 and _ADDR_SPEC.match(addresses[0][1]) is not None


# --- values: HTML -----------------------------------------------------------------------------

# Elements that run code, embed or replace documents, or change how the page around the
# feed's content is read: never safe in syndicated HTML.
_UNSAFE_ELEMENTS = frozenset({
    "script", "style", "iframe", "frame", "frameset", "noframes", "object", "embed", "applet",
    "param", "meta", "link", "base", "basefont", "html", "head", "body", "title", "xmp",
    "plaintext", "listing", "isindex", "slot", "comment",
})
_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:")
_URL_ATTRIBUTES = ("href", "src", "cite", "poster", "background", "action", "formaction")


def _html_elements(markup: str) -> Iterator[Any]:
    """The elements of an HTML fragment, parsed the way lenient readers parse it."""
    if not markup.strip():
        return
    try:
        wrapper = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return
    for element in wrapper.iter():
        if element is not wrapper and isinstance(element.tag, str):
            yield element


def _check_html(findings: _Findings, node: Any, markup: str, element: str, parent: str) -> None:
    """SecurityRisk, ContainsRelRef and UnsafeURL for HTML carried as text."""
    if "<?import " in markup.lower():  # Internet Explorer's element behaviours
        findings.add("SecurityRisk", node, element=element, parent=parent, value="?import")
    _check_html_elements(findings, node, _html_elements(markup), element, parent)
    _check_bad_characters(findings, node, markup, element, parent)


def _check_html_elements(findings: _Findings, node: Any, elements: Iterable[Any], element: str,
                         parent: str) -> None:
    for html_element in elements:
        tag = etree.QName(html_element).localname.lower()
        if tag in _UNSAFE_ELEMENTS:
            findings.add("SecurityRisk", node, element=element, parent=parent, value=tag)
        for name, value in html_element.attrib.items():
            name = etree.QName(name).localname.lower()
            if name.startswith("on"):
                findings.add("SecurityRiskAttr", node, element=element, parent=parent, attr=name)
            elif name in _URL_ATTRIBUTES:
                url = value.strip()
                if url.lower().startswith(_UNSAFE_SCHEMES):
                    findings.add("UnsafeURL", node, element=element, parent=parent, value=url)
                elif not _is_absolute(url):
                    findings.add("ContainsRelRef", node, element=element, parent=parent,
                                 value=url)


def _check_bad_characters(findings: _Findings, node: Any, text: str, element: str,
                          parent: str) -> None:
    # C1 controls are what windows-1252 text decoded as Latin-1 turns into; U+FFFD is what a
    # failed decoding leaves. Both mean a reader shows garbage.
    if any(0x80 <= ord(c) <= 0x9F or c == "\ufffd" for c in text):
        findings.add("BadCharacters", node, element=element, parent=parent)


# --- XML helpers ------------------------------------------------------------------------------

_PREFIXES = {ATOM_NS: "atom", XHTML_NS: "xhtml", XML_NS: "xml", CONTENT_NS: "content",
             "http://purl.org/dc/elements/1.1/": "dc"}


def _name(node: Any, core_ns: str | None) -> str:
    """The validator's name for an element: local in the core namespace, else prefix:local."""
    qname = etree.QName(node)
    if qname.namespace == core_ns:
        return qname.localname
    prefix = _PREFIXES.get(qname.namespace or "", node.prefix or "ns")
    return f"{prefix}:{qname.localname}"


def _children(node: Any) -> list[Any]:
    return [child for child in node if isinstance(child.tag, str)]


def _text(node: Any) -> str:
    return "".join(node.itertext())


def _check_children(findings: _Findings, node: Any, name: str, core_ns: str | None,
                    allowed: dict[str, bool]) -> dict[str, list[Any]]:
    """Children in the core namespace grouped by name; UndefinedElement for one not in
    ``allowed`` and DuplicateElement for a second one of those marked single (True)."""
    groups: dict[str, list[Any]] = {}
    for child in _children(node):
        if etree.QName(child).namespace != core_ns:
            continue  # an extension: other namespaces are open (RSS 2.0, RFC 4287 §6)
        child_name = etree.QName(child).localname
        if child_name not in allowed:
            findings.add("UndefinedElement", child, element=child_name, parent=name)
            continue
        groups.setdefault(child_name, []).append(child)
        if allowed[child_name] and len(groups[child_name]) == 2:
            findings.add("DuplicateElement", child, element=child_name, parent=name)
    return groups


def _parse_xml(body: bytes) -> Any:
    # No DTD loading, no network, no entity expansion: a feed is data.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    return etree.fromstring(body, parser=parser)


def check_feed(body: bytes, location: str | None = None) -> list[Violation]:
    """Every violation in RSS 2.0 or Atom 1.0 ``body``; ``location`` is the URL it is served
    at (rel=self must name it), None to skip that rule."""
    findings = _Findings()
    try:
        root = _parse_xml(body)
    except etree.XMLSyntaxError as error:
        return [Violation("SAXError", value=str(error)[:200], line=error.lineno)]
    if root.tag == "rss":
        _check_rss(findings, root, location)
    elif root.tag == f"{{{ATOM_NS}}}feed":
        _check_atom_feed(findings, root, location)
    else:
        findings.add("UndefinedElement", root, element=_name(root, None), parent="root")
    _check_languages(findings, root)
    return findings.items


def _check_languages(findings: _Findings, root: Any) -> None:
    """Every xml:lang (XML 1.0 §2.12); "" is allowed and means "no language"."""
    for node in root.iter():
        value = node.get(f"{{{XML_NS}}}lang") if isinstance(node.tag, str) else None
        if value and not language_ok(value):
            findings.add("InvalidLanguage", node, element="xml:lang", parent=_name(node, None),
                         value=value)
        base = node.get(f"{{{XML_NS}}}base") if isinstance(node.tag, str) else None
        if base is not None:
            rule = uri_problem(base, absolute=False, iri=True)
            if rule:
                findings.add(rule, node, element="xml:base", value=base)


# --- RSS 2.0 (https://www.rssboard.org/rss-specification) -------------------------------------

_RSS_CHANNEL: dict[str, bool] = {
    "title": True, "link": True, "description": True, "language": True, "copyright": True,
    "managingEditor": True, "webMaster": True, "pubDate": True, "lastBuildDate": True,
    "category": False, "generator": True, "docs": True, "cloud": True, "ttl": True,
    "image": True, "rating": True, "textInput": True, "skipHours": True, "skipDays": True,
    "item": False,
}
_RSS_ITEM: dict[str, bool] = {
    "title": True, "link": True, "description": True, "author": True, "category": False,
    "comments": True, "enclosure": False, "guid": True, "pubDate": True, "source": True,
}
_RSS_IMAGE: dict[str, bool] = {"url": True, "title": True, "link": True, "width": True,
                               "height": True, "description": True}
_RSS_TEXT_INPUT: dict[str, bool] = {"title": True, "description": True, "name": True,
                                    "link": True}
_REQUIRED_RULE = {"title": "MissingTitle", "link": "MissingLink",
                  "description": "MissingDescription"}
_CLOUD_ATTRIBUTES = ("domain", "port", "path", "registerProcedure", "protocol")


def _check_rss(findings: _Findings, rss: Any, location: str | None) -> None:
    groups = _check_children(findings, rss, "rss", None, {"channel": True})
    if "channel" not in groups:
        findings.add("MissingElement", rss, element="channel", parent="rss")
        return
    channel = groups["channel"][0]
    children = _check_children(findings, channel, "channel", None, _RSS_CHANNEL)
    for required, rule in (("title", "MissingTitle"), ("link", "MissingLink"),
                           ("description", "MissingDescription")):
        if required not in children:
            findings.add(rule, channel, element=required, parent="channel")
    for name in ("link", "docs"):
        for node in children.get(name, []):
            _check_rss_uri(findings, node, name, "channel")
    for name in ("pubDate", "lastBuildDate"):
        for node in children.get(name, []):
            _check_rss_date(findings, node, name, "channel")
    for node in children.get("language", []):
        value = _text(node).strip()
        if not language_ok(value):
            findings.add("InvalidLanguage", node, element="language", parent="channel",
                         value=value)
    for node in children.get("ttl", []):
        # Minutes to cache: a positive whole number.
        if not _text(node).strip().isdigit() or int(_text(node)) <= 0:
            findings.add("InvalidInteger", node, element="ttl", parent="channel",
                         value=_text(node))
    for name in ("managingEditor", "webMaster"):
        for node in children.get(name, []):
            if not _contact_ok(_text(node).strip()):
                findings.add("InvalidContact", node, element=name, parent="channel",
                             value=_text(node))
    for node in children.get("cloud", []):
        _check_cloud(findings, node)
    for node in children.get("image", []):
        _check_rss_box(findings, node, "image", _RSS_IMAGE, ("url", "title", "link"))
    for node in children.get("textInput", []):
        _check_rss_box(findings, node, "textInput", _RSS_TEXT_INPUT, tuple(_RSS_TEXT_INPUT))
    for node in children.get("skipHours", []):
        _check_skip(findings, node, "skipHours", "hour")
    for node in children.get("skipDays", []):
        _check_skip(findings, node, "skipDays", "day")
    for node in children.get("title", []) + children.get("description", []):
        _check_bad_characters(findings, node, _text(node), _name(node, None), "channel")
    _check_atom_links_in_rss(findings, channel, "channel", location, feed_level=True)
    guids: set[str] = set()
    for item in children.get("item", []):
        _check_rss_item(findings, item, guids, location)


def _check_rss_uri(findings: _Findings, node: Any, element: str, parent: str,
                   attr: str = "", value: str | None = None) -> None:
    uri = _text(node).strip() if value is None else value.strip()
    rule = uri_problem(uri, absolute=True, iri=False)
    if rule:
        findings.add(rule, node, element=element, parent=parent, attr=attr, value=uri)


def _check_rss_date(findings: _Findings, node: Any, element: str, parent: str) -> None:
    value = _text(node).strip()
    rule = rfc822_problem(value)
    if rule:
        findings.add(rule, node, element=element, parent=parent, value=value)


def _check_cloud(findings: _Findings, cloud: Any) -> None:
    for attr in _CLOUD_ATTRIBUTES:
        if cloud.get(attr) is None:
            findings.add("MissingAttribute", cloud, element="cloud", parent="channel", attr=attr)
    port = cloud.get("port")
    if port is not None and not (port.strip().isdigit() and int(port) > 0):
        findings.add("InvalidIntegerAttribute", cloud, element="cloud", parent="channel",
                     attr="port", value=port)


def _check_rss_box(findings: _Findings, box: Any, name: str, allowed: dict[str, bool],
                   required: tuple[str, ...]) -> None:
    """<image> and <textInput>: their own children, all required ones, URLs."""
    children = _check_children(findings, box, name, None, allowed)
    for element in required:
        if element not in children:
            findings.add(_REQUIRED_RULE.get(element, "MissingElement"), box, element=element,
                         parent=name)
    for element in ("url", "link"):
        for node in children.get(element, []):
            _check_rss_uri(findings, node, element, name)


def _check_skip(findings: _Findings, skip: Any, name: str, child_name: str) -> None:
    """<skipHours> of <hour> (0 and 24 both mean midnight), <skipDays> of <day>, each once."""
    children = _check_children(findings, skip, name, None, {child_name: False})
    if child_name not in children:
        findings.add("MissingElement", skip, element=child_name, parent=name)
    seen: set[str] = set()
    for node in children.get(child_name, []):
        value = _text(node).strip()
        key = "0" if value in ("0", "24") else value
        if key in seen:
            findings.add("DuplicateValue", node, element=child_name, parent=name, value=value)
        seen.add(key)


def _check_rss_item(findings: _Findings, item: Any, guids: set[str],
                    location: str | None) -> None:
    children = _check_children(findings, item, "item", None, _RSS_ITEM)
    if "title" not in children and "description" not in children:
        findings.add("ItemMustContainTitleOrDescription", item, element="item", parent="channel")
    if "guid" not in children:
        findings.add("MissingGuid", item, element="guid", parent="item")
    for name in ("link", "comments"):
        for node in children.get(name, []):
            _check_rss_uri(findings, node, name, "item")
    for node in children.get("pubDate", []):
        _check_rss_date(findings, node, "pubDate", "item")
    for node in children.get("author", []):
        if not _contact_ok(_text(node).strip()):
            findings.add("InvalidContact", node, element="author", parent="item",
                         value=_text(node))
    for node in children.get("guid", []):
        _check_guid(findings, node, guids)
    enclosures = children.get("enclosure", [])
    for node in enclosures:
        _check_enclosure(findings, node)
    if len(enclosures) > 1:
        findings.add("DuplicateEnclosure", enclosures[1], element="enclosure", parent="item")
    for node in children.get("source", []):
        url = node.get("url")
        if url is None:
            findings.add("MissingAttribute", node, element="source", parent="item", attr="url")
        else:
            _check_rss_uri(findings, node, "url", "source", value=url)
    for node in children.get("title", []):
        _check_bad_characters(findings, node, _text(node), "title", "item")
    for node in children.get("description", []):
        _check_html(findings, node, _text(node), "description", "item")
    for node in item.findall(f"{{{CONTENT_NS}}}encoded"):
        _check_html(findings, node, _text(node), "content:encoded", "item")
    _check_atom_links_in_rss(findings, item, "item", location, feed_level=False)


def _check_guid(findings: _Findings, guid: Any, guids: set[str]) -> None:
    value = _text(guid).strip()
    permalink = guid.get("isPermaLink")
    if permalink is not None and permalink not in ("true", "false"):
        findings.add("InvalidBooleanAttribute", guid, element="guid", parent="item",
                     attr="isPermaLink", value=permalink)
    if permalink != "false":
        # RSS 2.0 <guid>: isPermaLink defaults to true, and then the guid is the item's URL.
        rule = uri_problem(value, absolute=True, iri=False)
        if rule:
            findings.add("InvalidHttpGUID", guid, element="guid", parent="item", value=value)
        elif value.lower().startswith(("tag:", "urn:uuid:")):
            findings.add("InvalidPermalink", guid, element="guid", parent="item", value=value)
    if value in guids:
        findings.add("DuplicateValue", guid, element="guid", parent="item", value=value)
    elif value:
        guids.add(value)


def _check_enclosure(findings: _Findings, enclosure: Any) -> None:
    """RSS 2.0 <enclosure>: url (http), length in bytes and type are all required."""
    for attr in ("url", "length", "type"):
        if enclosure.get(attr) is None:
            findings.add("MissingAttribute", enclosure, element="enclosure", parent="item",
                         attr=attr)
    length = enclosure.get("length")
    if length is not None:
        if not re.match(r"^\s*-?\d+\s*$", length):
            findings.add("InvalidIntegerAttribute", enclosure, element="enclosure",
                         parent="item", attr="length", value=length)
        elif int(length) == -1:
            findings.add("UseZeroForUnknown", enclosure, element="length", parent="enclosure")
        elif int(length) < 0:
            findings.add("InvalidNonNegativeInteger", enclosure, element="length",
                         parent="enclosure", value=length)
    mime = enclosure.get("type")
    if mime is not None and not mime_ok(mime):
        findings.add("InvalidMIMEAttribute", enclosure, element="enclosure", parent="item",
                     attr="type", value=mime)
    url = enclosure.get("url")
    if url is not None and (not _HTTP_URL.match(url)
                            or uri_problem(url, absolute=True, iri=False)):
        findings.add("InvalidURLAttribute", enclosure, element="url", parent="enclosure",
                     value=url)


def _check_atom_links_in_rss(findings: _Findings, node: Any, name: str, location: str | None,
                             feed_level: bool) -> None:
    links = node.findall(f"{{{ATOM_NS}}}link")
    for link in links:
        _check_atom_link(findings, link, name, iri=False)
    if feed_level:
        _check_self(findings, node, links, location, missing_rule="MissingAtomSelfLink")


# --- Atom 1.0 (RFC 4287) ----------------------------------------------------------------------

_ATOM_FEED: dict[str, bool] = {
    "author": False, "category": False, "contributor": False, "generator": True, "icon": True,
    "id": True, "link": False, "logo": True, "rights": True, "subtitle": True, "title": True,
    "updated": True, "entry": False,
}
_ATOM_SOURCE = {k: v for k, v in _ATOM_FEED.items() if k != "entry"}
_ATOM_ENTRY: dict[str, bool] = {
    "author": False, "category": False, "content": True, "contributor": False, "id": True,
    "link": False, "published": True, "rights": True, "source": True, "summary": True,
    "title": True, "updated": True,
}
_ATOM_PERSON: dict[str, bool] = {"name": True, "uri": True, "email": True}
_TEXT_CONSTRUCTS = ("title", "subtitle", "rights", "summary")
_TEXT_TYPES = ("text", "html", "xhtml")
# IANA link relations (RFC 4287 §4.2.7.2, RFC 5005, WebSub, ...) a feed may carry.
_REGISTERED_RELS = frozenset({
    "alternate", "related", "self", "enclosure", "via", "first", "last", "next", "previous",
    "prev-archive", "next-archive", "current", "replies", "edit", "edit-media", "license",
    "hub", "search", "service", "describedby", "up", "payment",
})
_IANA_REL_PREFIX = "http://www.iana.org/assignments/relation/"


def _atom(tag: str) -> str:
    return f"{{{ATOM_NS}}}{tag}"


def _check_atom_feed(findings: _Findings, feed: Any, location: str | None) -> None:
    children = _check_children(findings, feed, "feed", ATOM_NS, _ATOM_FEED)
    _check_atom_metadata(findings, feed, "feed", children, source=False)
    seen_entry = False
    for child in _children(feed):
        if child.tag == _atom("entry"):
            seen_entry = True
        elif seen_entry and etree.QName(child).namespace == ATOM_NS:
            findings.add("MisplacedMetadata", child, element=_name(child, ATOM_NS),
                         parent="feed")
    _check_self(findings, feed, children.get("link", []), location, missing_rule="MissingSelf")
    _check_atom_entries(findings, feed, children.get("entry", []))


def _check_atom_metadata(findings: _Findings, node: Any, name: str,
                         children: dict[str, list[Any]], source: bool) -> None:
    """What atom:feed and atom:source share (RFC 4287 §4.1.1, §4.2.11)."""
    for required in ("id", "title", "updated"):
        if required not in children:
            if source:
                findings.add("MissingSourceElement", node, element=required, parent=name)
            else:
                findings.add("MissingElement", node, element=required, parent=name)
    for node_id in children.get("id", []):
        _check_atom_id(findings, node_id, name)
    for updated in children.get("updated", []):
        _check_atom_date(findings, updated, "updated", name)
    for element in ("icon", "logo"):
        for child in children.get(element, []):
            value = _check_whitespace(findings, child, element, name)
            _check_atom_uri(findings, child, value, element=element, parent=name)
    for generator in children.get("generator", []):
        if _children(generator):
            findings.add("UndefinedElement", generator, element=_name(_children(generator)[0],
                                                                    ATOM_NS),
                         parent="generator")
        uri = generator.get("uri")
        if uri is not None:
            rule = uri_problem(uri, absolute=False, iri=True)
            if rule:
                findings.add(rule, generator, element="generator", parent=name, attr="uri",
                             value=uri)
    for person in children.get("author", []) + children.get("contributor", []):
        _check_person(findings, person)
    for category in children.get("category", []):
        _check_category(findings, category, name)
    for element in ("title", "subtitle", "rights"):
        for child in children.get(element, []):
            _check_text_construct(findings, child, element, name)
    links = children.get("link", [])
    for link in links:
        _check_atom_link(findings, link, name, iri=True)
    _check_alternates(findings, links, name)


def _check_atom_entries(findings: _Findings, feed: Any, entries: list[Any]) -> None:
    feed_authors_before = 0
    ids: list[str] = []
    updated_values: set[str] = set()
    position = 0
    for child in _children(feed):
        if child.tag == _atom("author"):
            feed_authors_before += 1
        if child.tag != _atom("entry"):
            continue
        entry = entries[position]
        position += 1
        _check_atom_entry(findings, entry, has_feed_author=feed_authors_before > 0)
        for node_id in entry.findall(_atom("id")):
            value = _text(node_id).strip()
            if value in ids:
                findings.add("DuplicateEntries", node_id, element="id", parent="entry",
                             value=value)
            ids.append(value)
        for updated in entry.findall(_atom("updated")):
            value = _text(updated).strip()
            if value in updated_values:
                findings.add("DuplicateUpdated", updated, element="updated", parent="entry",
                             value=value)
            updated_values.add(value)
    # The validator's verdict for a feed whose ids are all one: an error, not ten warnings.
    if len(ids) > 9 and len(set(ids)) == 1:
        findings.items = [v for v in findings.items if v.rule != "DuplicateEntries"]
        findings.add("DuplicateIds", feed, element="id", parent="entry")


def _check_atom_entry(findings: _Findings, entry: Any, has_feed_author: bool) -> None:
    children = _check_children(findings, entry, "entry", ATOM_NS, _ATOM_ENTRY)
    for required in ("id", "title", "updated"):
        if required not in children:
            findings.add("MissingElement", entry, element=required, parent="entry")
    sources = children.get("source", [])
    source_author = any(s.find(_atom("author")) is not None for s in sources)
    if "author" not in children and not has_feed_author and not source_author:
        # RFC 4287 §4.1.2: an entry without author needs one in its source or its feed.
        findings.add("MissingElement", entry, element="author", parent="entry")
    for node_id in children.get("id", []):
        _check_atom_id(findings, node_id, "entry")
    for element in ("updated", "published"):
        for child in children.get(element, []):
            _check_atom_date(findings, child, element, "entry")
    for person in children.get("author", []) + children.get("contributor", []):
        _check_person(findings, person)
    for category in children.get("category", []):
        _check_category(findings, category, "entry")
    for element in ("title", "rights", "summary"):
        for child in children.get(element, []):
            _check_text_construct(findings, child, element, "entry")
    links = children.get("link", [])
    for link in links:
        _check_atom_link(findings, link, "entry", iri=True)
    _check_alternates(findings, links, "entry")
    contents = children.get("content", [])
    for content in contents:
        _check_content(findings, content, "summary" in children)
    if not contents:
        if "summary" not in children:
            findings.add("MissingTextualContent", entry, element="entry", parent="feed")
        if not any(_rel(link) == "alternate" for link in links):
            findings.add("MissingContentOrAlternate", entry, element="entry", parent="feed")
    for source in sources:
        source_children = _check_children(findings, source, "source", ATOM_NS, _ATOM_SOURCE)
        _check_atom_metadata(findings, source, "source", source_children, source=True)


def _check_whitespace(findings: _Findings, node: Any, element: str, parent: str) -> str:
    value = _text(node)
    if value != value.strip():
        findings.add("UnexpectedWhitespace", node, element=element, parent=parent)
    return value.strip()


def _check_atom_id(findings: _Findings, node: Any, parent: str) -> None:
    """RFC 4287 §4.2.6: an absolute IRI, compared character by character. The validator
    refuses characters beyond ASCII outside the host name, so we want them percent-encoded."""
    value = _check_whitespace(findings, node, "id", parent)
    rule = uri_problem(value, absolute=True, iri=False)
    if rule:
        findings.add(rule, node, element="id", parent=parent, value=value)
    elif normal_form(value) != value:
        # RFC 4287 §4.2.6.1: ids are compared character by character, so publishers should
        # write them normalized; the validator warns when they are not.
        findings.add("NonCanonicalURI", node, element="id", parent=parent, value=value)


def _check_atom_date(findings: _Findings, node: Any, element: str, parent: str) -> None:
    value = _check_whitespace(findings, node, element, parent)
    if rfc3339_problem(value):
        findings.add("InvalidRFC3339Date", node, element=element, parent=parent, value=value)


def _check_atom_uri(findings: _Findings, node: Any, value: str, *, element: str, parent: str,
                    attr: str = "", iri: bool = True) -> None:
    """An IRI reference (a URI one in RSS); ours must be absolute (a policy finding when not)."""
    rule = uri_problem(value, absolute=False, iri=iri)
    if rule:
        findings.add(rule, node, element=element, parent=parent, attr=attr, value=value)
    elif not _is_absolute(value):
        findings.add("RelativeURI", node, element=element, parent=parent, attr=attr, value=value)


def _check_person(findings: _Findings, person: Any) -> None:
    name = etree.QName(person).localname
    children = _check_children(findings, person, name, ATOM_NS, _ATOM_PERSON)
    if "name" not in children:
        findings.add("MissingElement", person, element="name", parent=name)
    for uri in children.get("uri", []):
        value = _check_whitespace(findings, uri, "uri", name)
        _check_atom_uri(findings, uri, value, element="uri", parent=name)
    for address in children.get("email", []):
        if not _ADDR_SPEC.match(_text(address).strip()):
            findings.add("InvalidContact", address, element="email", parent=name,
                         value=_text(address))


def _check_category(findings: _Findings, category: Any, parent: str) -> None:
    if category.get("term") is None:
        findings.add("MissingAttribute", category, element="category", parent=parent,
                     attr="term")
    scheme = category.get("scheme")
    if scheme is not None:
        rule = uri_problem(scheme, absolute=True, iri=True)
        if rule:
            findings.add(rule, category, element="scheme", parent="category", value=scheme)


def _check_text_construct(findings: _Findings, node: Any, element: str, parent: str) -> None:
    """RFC 4287 §3.1: type is text, html or xhtml; the markup rules follow the type."""
    kind = node.get("type", "text")
    if kind not in _TEXT_TYPES:
        rule = "InvalidTextType" if mime_ok(kind) else "InvalidMIMEType"
        findings.add(rule, node, element=element, parent=parent, value=kind)
        return
    _check_markup(findings, node, kind, element, parent)


def _check_markup(findings: _Findings, node: Any, kind: str, element: str, parent: str) -> None:
    children = _children(node)
    if kind == "xhtml":
        # RFC 4287 §3.1.1.3: exactly one xhtml:div, and nothing but whitespace beside it.
        stray_text = (node.text or "").strip() or any((c.tail or "").strip() for c in children)
        if (len(children) != 1 or children[0].tag != f"{{{XHTML_NS}}}div" or stray_text):
            findings.add("MissingXhtmlDiv", node, element=element, parent=parent)
            return
        descendants = [d for d in children[0].iter() if isinstance(d.tag, str)][1:]
        _check_html_elements(findings, node, descendants, element, parent)
        return
    if children:
        # text and html are character data only (RFC 4287 §3.1.1.1, §3.1.1.2).
        findings.add("UndefinedElement", children[0], element=_name(children[0], ATOM_NS),
                     parent=element)
        return
    if kind == "html":
        _check_html(findings, node, _text(node), element, parent)
    else:
        _check_bad_characters(findings, node, _text(node), element, parent)


def _check_content(findings: _Findings, content: Any, has_summary: bool) -> None:
    """RFC 4287 §4.1.3: text/html/xhtml or a MIME type (not composite); with src, empty and
    with a MIME type; out-of-line or non-textual content needs a summary (§4.1.1.2 / §4.2.13)."""
    kind = content.get("type", "text")
    src = content.get("src")
    mime = kind.split(";", 1)[0].strip().lower()
    if kind not in _TEXT_TYPES and (not mime_ok(kind)
                                    or mime.startswith(("multipart/", "message/"))):
        findings.add("InvalidMIMEType", content, element="content", parent="entry", attr="type",
                     value=kind)
    if src is not None:
        if kind in _TEXT_TYPES and content.get("type") is not None:
            findings.add("InvalidMIMEType", content, element="content", parent="entry",
                         attr="type", value=kind)
        rule = uri_problem(src, absolute=False, iri=True)
        if rule:
            findings.add(rule, content, element="content", parent="entry", attr="src",
                         value=src)
        if _text(content).strip() or _children(content):
            findings.add("UndefinedElement", content, element="content", parent="content")
        if not has_summary:
            findings.add("MissingSummary", content, element="entry", parent="feed")
        return
    if kind in _TEXT_TYPES:
        _check_markup(findings, content, kind, "content", "entry")
        return
    xml_like = mime.endswith(("+xml", "/xml"))
    if not xml_like and _children(content):
        # §4.1.3.3: other media types are text or base64, never markup.
        findings.add("UndefinedElement", _children(content)[0],
                     element=_name(_children(content)[0], ATOM_NS), parent="content")
    elif mime == "text/html":
        _check_html(findings, content, _text(content), "content", "entry")
    if not xml_like and not mime.startswith("text/") and not has_summary:
        findings.add("MissingSummary", content, element="entry", parent="feed")


def _check_atom_link(findings: _Findings, link: Any, parent: str, iri: bool) -> None:
    """RFC 4287 §4.2.7: href required; rel, type, hreflang and length of their forms."""
    href = link.get("href")
    if href is None:
        findings.add("MissingHref", link, element="link", parent=parent, attr="href")
    else:
        _check_atom_uri(findings, link, href, element="href", parent=parent, iri=iri)
    title = link.get("title")
    if title is not None:
        _check_bad_characters(findings, link, title, "title", "link")
    rel = link.get("rel")
    if rel is not None:
        name = _rel(link)
        if name not in _REGISTERED_RELS and uri_problem(name, absolute=True, iri=True):
            findings.add("UnregisteredAtomLinkRel", link, element="link", parent=parent,
                         attr="rel", value=rel)
    kind = link.get("type")
    if kind is not None and not mime_ok(kind):
        findings.add("InvalidMIMEType", link, element="link", parent=parent, attr="type",
                     value=kind)
    hreflang = link.get("hreflang")
    if hreflang is not None and not language_ok(hreflang):
        findings.add("InvalidLanguage", link, element="hreflang", parent=parent, value=hreflang)
    length = link.get("length")
    if length is not None and not length.strip().isdigit():
        findings.add("InvalidNonNegativeInteger", link, element="length", parent=parent,
                     value=length)


def _rel(link: Any) -> str:
    """The link's relation; "alternate" when absent (RFC 4287 §4.2.7.2), IANA URIs shortened."""
    return str(link.get("rel", "alternate")).removeprefix(_IANA_REL_PREFIX)


def _check_alternates(findings: _Findings, links: list[Any], parent: str) -> None:
    """RFC 4287 §4.1.1/§4.1.2: at most one rel=alternate per (type, hreflang)."""
    seen: set[tuple[str | None, str | None]] = set()
    for link in links:
        if _rel(link) != "alternate":
            continue
        key = (link.get("type"), link.get("hreflang"))
        if key in seen:
            findings.add("DuplicateAtomLink", link, element="link", parent=parent)
        seen.add(key)


def _check_self(findings: _Findings, node: Any, links: list[Any], location: str | None,
                missing_rule: str) -> None:
    """The feed names its own URL (RFC 4287 §4.2.7.2; RSS Best Practices): present, absolute,
    and (when the served URL is known) that URL."""
    selves = [link for link in links if _rel(link) == "self"]
    if not selves:
        findings.add(missing_rule, node, element=_name(node, etree.QName(node).namespace),
                     parent="root" if node.getparent() is None else "rss")
        return
    for link in selves:
        href = (link.get("href") or "").strip()
        base = _xml_base(link)
        name = etree.QName(node).localname
        if not urlsplit(href).netloc and not urlsplit(base or "").netloc:
            findings.add("RelativeSelf", link, element="link", parent=name, value=href)
        if location is not None and not _same_url(urljoin(base or location, href), location):
            findings.add("SelfDoesntMatchLocation", link, element="link", parent=name,
                         value=href)


def _xml_base(node: Any) -> str | None:
    """The xml:base in scope (XML Base §4.2), resolved outward-in; None when there is none."""
    bases = []
    while node is not None:
        value = node.get(f"{{{XML_NS}}}base")
        if value is not None:
            bases.append(value)
        node = node.getparent()
    if not bases:
        return None
    result = bases[-1]
    for value in reversed(bases[:-1]):
        result = urljoin(result, value)
    return result


def _same_url(a: str, b: str) -> bool:
    """Equal after RFC 3986 §6.2.2-§6.2.3 normalization (case of scheme and host, default
    port, empty path, fragment ignored) of their URI forms (RFC 3987 §3.1)."""
    def normal(url: str) -> tuple[str, str, str, str]:
        parts = urlsplit(url.split("#", 1)[0])
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        default = {"http": 80, "https": 443}.get(scheme)
        port = "" if parts.port in (None, default) else str(parts.port)
        kept = "/%:@!$&'()*+,;=-._~?"
        return (scheme, f"{host}:{port}", quote(parts.path or "/", safe=kept),
                quote(parts.query, safe=kept))
    try:
        return normal(a) == normal(b)
    except ValueError:
        return False


# --- JSON Feed 1.1 ----------------------------------------------------------------------------

_JSON_TOP_KEYS = frozenset({
    "version", "title", "home_page_url", "feed_url", "description", "user_comment", "next_url",
    "icon", "favicon", "authors", "author", "language", "expired", "hubs", "items",
})
_JSON_ITEM_KEYS = frozenset({
    "id", "url", "external_url", "title", "content_html", "content_text", "summary", "image",
    "banner_image", "date_published", "date_modified", "authors", "author", "tags",
    "language", "attachments",
})
_JSON_URL_KEYS = ("home_page_url", "feed_url", "next_url", "icon", "favicon")
_JSON_ITEM_URL_KEYS = ("url", "external_url", "image", "banner_image")
_JSON_STRING_KEYS = ("title", "description", "user_comment", "summary", "content_html",
                     "content_text")
_EXTENSION_KEY = re.compile(r"^_[A-Za-z0-9]")  # JSON Feed 1.1 "Extensions"


def check_json_feed(body: bytes, location: str | None = None) -> list[Violation]:
    """Every violation of JSON Feed 1.1 in ``body``; ``location``: the URL it is served at."""
    findings = _Findings()
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        findings.add("JsonNotParseable", value=str(error))
        return findings.items
    if not isinstance(document, dict):
        findings.add("JsonNotParseable", value=type(document).__name__)
        return findings.items
    if document.get("version") != JSON_FEED_VERSION:
        findings.add("JsonVersion", element="version", parent="feed",
                     value=str(document.get("version")))
    for key in ("title", "items"):
        if key not in document:
            findings.add("JsonMissingKey", element=key, parent="feed")
    _check_json_object(findings, document, "feed", _JSON_TOP_KEYS, _JSON_URL_KEYS)
    if (location is not None and "feed_url" in document
            and not _same_url(str(document["feed_url"]), location)):
        findings.add("JsonFeedUrlMismatch", element="feed_url", parent="feed",
                     value=str(document["feed_url"]))
    if "expired" in document and not isinstance(document["expired"], bool):
        findings.add("JsonInvalidType", element="expired", parent="feed")
    hubs = document.get("hubs", [])
    if not isinstance(hubs, list):
        findings.add("JsonInvalidType", element="hubs", parent="feed")
        hubs = []
    for hub in hubs:
        if not isinstance(hub, dict) or not isinstance(hub.get("type"), str):
            findings.add("JsonMissingKey", element="type", parent="hub")
        elif not _json_url_ok(hub.get("url")):
            findings.add("JsonInvalidURL", element="url", parent="hub", value=str(hub.get("url")))
    items = document.get("items", [])
    if not isinstance(items, list):
        findings.add("JsonInvalidType", element="items", parent="feed")
        return findings.items
    ids: set[str] = set()
    for item in items:
        _check_json_item(findings, item, ids)
    return findings.items


def _check_json_object(findings: _Findings, obj: dict[str, Any], name: str,
                       known: frozenset[str], url_keys: tuple[str, ...]) -> None:
    """What feed and item share: keys, URLs, strings, language, authors."""
    for key in obj:
        if key not in known and not _EXTENSION_KEY.match(key):
            findings.add("JsonUnknownKey", element=key, parent=name)
    for key in url_keys:
        if key in obj and not _json_url_ok(obj[key]):
            findings.add("JsonInvalidURL", element=key, parent=name, value=str(obj[key]))
    for key in _JSON_STRING_KEYS:
        if key in obj and not isinstance(obj[key], str):
            findings.add("JsonInvalidType", element=key, parent=name)
    if "title" in obj and name == "feed" and not str(obj["title"]).strip():
        findings.add("JsonMissingKey", element="title", parent=name)
    if "language" in obj and not (isinstance(obj["language"], str)
                                  and language_ok(obj["language"])):
        findings.add("JsonInvalidLanguage", element="language", parent=name,
                     value=str(obj["language"]))
    if "author" in obj:
        findings.add("JsonDeprecated", element="author", parent=name)
    authors = obj.get("authors", [])
    if not isinstance(authors, list):
        findings.add("JsonInvalidType", element="authors", parent=name)
        authors = []
    for author in authors:
        # JSON Feed 1.1 "authors": each object has at least one of name, url and avatar.
        if not isinstance(author, dict) or not ({"name", "url", "avatar"} & set(author)):
            findings.add("JsonMissingKey", element="name", parent="author")
            continue
        for key in ("url", "avatar"):
            # 1.1: an author's url may be a mailto: link.
            if key == "url" and str(author.get(key, "")).startswith("mailto:"):
                continue
            if key in author and not _json_url_ok(author[key]):
                findings.add("JsonInvalidURL", element=key, parent="author",
                             value=str(author[key]))


def _check_json_item(findings: _Findings, item: Any, ids: set[str]) -> None:
    if not isinstance(item, dict):
        findings.add("JsonInvalidType", element="item", parent="items")
        return
    item_id = item.get("id")
    if not isinstance(item_id, str):
        rule = "JsonMissingKey" if item_id is None else "JsonInvalidType"
        findings.add(rule, element="id", parent="item", value=str(item_id))
    elif not item_id:
        findings.add("JsonMissingKey", element="id", parent="item")
    elif item_id in ids:
        findings.add("JsonDuplicateId", element="id", parent="item", value=item_id)
    else:
        ids.add(item_id)
    _check_json_object(findings, item, "item", _JSON_ITEM_KEYS, _JSON_ITEM_URL_KEYS)
    if not isinstance(item.get("content_html"), str) and not isinstance(
            item.get("content_text"), str):
        findings.add("JsonMissingContent", element="content_html", parent="item",
                     value=str(item_id))
    for key in ("date_published", "date_modified"):
        if key in item and not (isinstance(item[key], str) and not rfc3339_problem(item[key])):
            findings.add("JsonInvalidDate", element=key, parent="item", value=str(item[key]))
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        findings.add("JsonInvalidType", element="tags", parent="item")
    if "content_html" in item and isinstance(item["content_html"], str):
        _check_html(findings, None, item["content_html"], "content_html", "item")
    attachments = item.get("attachments", [])
    if not isinstance(attachments, list):
        findings.add("JsonInvalidType", element="attachments", parent="item")
        attachments = []
    for attachment in attachments:
        _check_json_attachment(findings, attachment)


def _check_json_attachment(findings: _Findings, attachment: Any) -> None:
    """JSON Feed 1.1 attachments: url and mime_type required; sizes and durations numbers."""
    if not isinstance(attachment, dict):
        findings.add("JsonInvalidType", element="attachment", parent="item")
        return
    if not _json_url_ok(attachment.get("url")):
        findings.add("JsonInvalidURL", element="url", parent="attachment",
                     value=str(attachment.get("url")))
    mime = attachment.get("mime_type")
    if not isinstance(mime, str):
        findings.add("JsonMissingKey", element="mime_type", parent="attachment")
    elif not mime_ok(mime):
        findings.add("JsonInvalidMIME", element="mime_type", parent="attachment", value=mime)
    for key in ("size_in_bytes", "duration_in_seconds"):
        value = attachment.get(key)
        if key in attachment and (isinstance(value, bool)
                                  or not isinstance(value, int | float) or value < 0):
            findings.add("JsonInvalidType", element=key, parent="attachment", value=str(value))


def _json_url_ok(value: Any) -> bool:
    """An absolute http(s) URL (RFC 3986: ASCII, an IP-literal host allowed)."""
    if not isinstance(value, str):
        return False
    if uri_problem(value, absolute=False, iri=False):
        return False
    return urlsplit(value).scheme.lower() in ("http", "https") and bool(urlsplit(value).netloc)
