"""YAML configuration → frozen ``Config`` records, with every problem reported at once.

Operators edit the file by hand, so the loader's job is as much the error report as the
records. The rules it follows:

- The YAML is composed (``yaml.compose`` with the safe loader), not loaded: the node tree keeps
  a ``start_mark`` on every key and value, so each problem names the file, the 1-based line and
  the dotted key path (``sources[2].interval``, ``feeds[0].tags[1]``).
- Reading never stops at the first problem. Each key is checked on its own and every problem
  is collected; ``ConfigError`` carries all of them, sorted by line, one message per problem.
  Nothing is returned unless there are none, so nothing starts with a half-valid config.
- Types are YAML's own (YAML 1.1 core schema, as PyYAML resolves plain scalars): a boolean is
  not an integer, a number is not a string. Where a plain scalar was read as something else
  (``language: no`` is a boolean), the message says how to quote it.
- Unknown keys are errors, with the closest known key suggested (``difflib``): a misspelt key
  silently ignored is a setting the operator believes is in force and is not.
- Duplicate keys in one mapping are errors (PyYAML would keep the last one without a word).
  Merge keys (``<<: *anchor``) work as in YAML 1.1; the mapping's own keys win.
- Relative local source paths are resolved against the config file's directory (the file is
  the unit an operator moves around); ``data_dir`` is relative to the working directory, as
  documented in docs/configuration.md.
- Defaults that depend on other keys are filled here, once: the database URL from
  ``data_dir``, the ``User-Agent`` from the version and ``base_url``, a feed's title from its id
  and its language from a single ``languages`` entry. A feed that names neither tags nor
  sources selects every source: its ``sources`` is filled with every source id, so
  ``Config.feed_source_ids`` needs no special case.

Public API: ``load_config``, ``parse_config``, ``describe``, and the value parsers the CLI can
reuse for overrides: ``parse_duration``, ``format_duration``, ``parse_size``, ``parse_listen``.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

import idna
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from syndicate import __version__
from syndicate.errors import ConfigError, ConfigProblem
from syndicate.languages import normalize_language
from syndicate.types import Config, DedupeConfig, FeedConfig, ServiceConfig, SourceConfig

__all__ = [
    "describe",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen",
    "parse_size",
]

T = TypeVar("T")

# --- the schema: known keys and defaults ------------------------------------------------------

TOP_KEYS = ("service", "defaults", "dedupe", "sources", "feeds")
DEDUPE_KEYS = ("window", "threshold")
SERVICE_KEYS = (
    "base_url", "database", "data_dir", "listen", "user_agent", "fetch_workers", "fetch_per_host",
    "parse_workers", "web_workers", "connect_timeout", "read_timeout", "max_body_bytes",
    "websub_hub",
)  # fmt: skip
DEFAULTS_KEYS = ("interval",)
SOURCE_KEYS = (
    "id", "url", "title", "tags", "language", "interval", "priority", "citation_labels",
    "strip_patterns",
)  # fmt: skip
FEED_KEYS = (
    "id", "title", "description", "tags", "sources", "languages", "limit", "min_outlets",
    "language", "outlets", "outlet_role",
)  # fmt: skip
OUTLET_ROLES = ("any", "carried", "cited")

_SECTIONS = (
    ("at the top level", TOP_KEYS),
    ("under service:", SERVICE_KEYS),
    ("under defaults:", DEFAULTS_KEYS),
    ("under dedupe:", DEDUPE_KEYS),
    ("in a source", SOURCE_KEYS),
    ("in a feed", FEED_KEYS),
)

DEFAULT_LISTEN = ("127.0.0.1", 8080)
DEFAULT_DATA_DIR = "data"
DEFAULT_INTERVAL = timedelta(minutes=15)
DEFAULT_FETCH_WORKERS = 8
DEFAULT_FETCH_PER_HOST = 2
# libyaml's loader when PyYAML has it (five times faster on a config of 1,000 sources), else
# the pure-Python one; both keep every node's line.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str) -> Node | None:
    """The YAML node tree. A document libyaml rejects is read again by PyYAML's own loader,
    whose syntax messages are the ones the operator sees (and the tests pin)."""
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        return yaml.compose(text, Loader=yaml.SafeLoader)

MAX_FETCH_WORKERS = 256
MAX_PARSE_WORKERS = 64
MAX_WEB_WORKERS = 64
DEFAULT_WEB_WORKERS = 2
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_FEED_LIMIT = 50
MAX_FEED_LIMIT = 1000

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
# RFC 5646 §2.1 in the shape feeds use: a 2–3 letter primary language, then subtags.
# RFC 1123 §2.1 host names: letters, digits and inner hyphens, labels of at most 63.
HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")  # RFC 3986 §3.1

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MERGE = _YAML + "merge"
_IMPLICIT = (_INT, _FLOAT, _BOOL, _YAML + "timestamp")  # what plain text can turn into
# Stateless scalar constructors: YAML 1.1 ints (0x1F, 1_000) and floats (.inf) as PyYAML reads them.
_SCALARS = SafeConstructor()


# --- public API -------------------------------------------------------------------------------


def file_mtime(path: Path) -> float | None:
    """When the config file last changed (None: it cannot be read), to notice edits."""
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def load_config(path: str | Path) -> Config:
    """Read and validate the config file; raise ``ConfigError`` with every problem found."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        reason = e.strerror or str(e)
        raise ConfigError([ConfigProblem(str(path), None, "", f"cannot read: {reason}")]) from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        problem = ConfigProblem(str(path), line, "", "not UTF-8 text (save the file as UTF-8)")
        raise ConfigError([problem]) from e
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate config text; ``path`` names it in messages and anchors relative source paths."""
    reader = _Reader(str(path), Path(os.path.abspath(path)).parent)
    config = reader.read_document(text, Path(os.path.abspath(path)))
    if reader.problems or config is None:
        raise ConfigError(sorted(reader.problems, key=lambda p: (p.line or 0, p.key)))
    return config


def parse_duration(value: str | int) -> timedelta:
    """``30s``, ``15m``, ``1h``, ``1h30m``, ``2d``, ``1w`` or whole seconds; more than zero."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"invalid duration {value!r}: {_DURATION_HELP}")
    if isinstance(value, int):
        seconds = value
    else:
        text = "".join(value.split()).lower()
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            raise ValueError(f"invalid duration {value!r}: {_DURATION_HELP}")
        if match.group("plain") is not None:
            seconds = int(match.group("plain"))
        else:
            seconds = sum(
                int(n) * _DURATION_UNITS[u]
                for u, n in match.groupdict().items()
                if n is not None and u != "plain"
            )
    if seconds <= 0:
        raise ValueError(f"invalid duration {value!r}: it must be more than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"invalid duration {value!r}: far too long") from None


def parse_size(value: str | int) -> int:
    """Bytes from an integer or ``16MB`` / ``512KiB`` (kB, MB, GB: 1000; KiB, MiB, GiB: 1024)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"invalid size {value!r}: {_SIZE_HELP}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(value.strip())
        unit = _SIZE_UNITS.get(match.group(2).lower()) if match else None
        if match is None or unit is None:
            raise ValueError(f"invalid size {value!r}: {_SIZE_HELP}")
        try:
            size = int(Decimal(match.group(1)) * unit)
        except InvalidOperation:
            raise ValueError(f"invalid size {value!r}: {_SIZE_HELP}") from None
    if size <= 0:
        raise ValueError(f"invalid size {value!r}: it must be at least one byte")
    return size


def describe(config: Config) -> str:
    """A short summary for ``syndicate check``: where things go, what is fetched and published."""
    service = config.service
    lines = [
        f"config: {config.path}",
        f"database: {_hide_password(service.database)}",
        f"listen: {_format_listen(service.listen_host, service.listen_port)}"
        f" (published under {service.base_url})",
        f"{_count(len(config.sources), 'source')}:",
    ]
    width = max((len(s.id) for s in config.sources), default=0)
    for source in config.sources:
        details = [source.url, f"every {format_duration(source.interval)}"]
        if source.language:
            details.append(f"language {source.language}")
        if source.tags:
            details.append("tags " + ", ".join(source.tags))
        lines.append(f"  {source.id:<{width}}  " + "; ".join(details))
    lines.append(f"{_count(len(config.feeds), 'feed')}:")
    width = max((len(f.id) for f in config.feeds), default=0)
    for feed in config.feeds:
        lines.append(f"  {feed.id:<{width}}  {_describe_feed(config, feed)}")
    return "\n".join(lines)


def format_duration(value: timedelta) -> str:
    """The inverse of ``parse_duration``: ``timedelta(minutes=90)`` → ``1h30m``."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in _DURATION_UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


# --- scalar value parsers (pure; raise ValueError with the operator's message) ----------------

_DURATION_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(
    r"(?P<plain>\d+)|(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?",
    re.ASCII,
)
_DURATION_HELP = (
    "use whole numbers with units w, d, h, m, s in that order (30s, 15m, 1h30m, 2d, 1w)"
    " or a whole number of seconds"
)
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", re.ASCII)
_SIZE_UNITS = {
    "": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}  # fmt: skip
_SIZE_HELP = (
    "use a whole number of bytes or a number with a unit: B, kB, MB, GB (powers of 1000)"
    " or KiB, MiB, GiB (powers of 1024), e.g. 16MiB"
)


def _parse_http_url(text: str) -> str:
    """An absolute http(s) URL with a host (RFC 9110 §4.2), returned as written."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as e:
        raise ValueError(f"invalid URL {text!r}: {e}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as https://example.org/, got {text!r}")
    if any(c.isspace() for c in text):
        raise ValueError(f"invalid URL {text!r}: spaces must be percent-encoded (%20)")
    return text


# RFC 3986 §3.3: a path holds unreserved characters, sub-delims, ":", "@", "/" and escapes.
_NOT_IN_PATH = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_IP_LITERAL_HOST = re.compile(r"\[[^\[\]]*\](?::[0-9]*)?")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _parse_base_url(text: str) -> str:
    """The URL feeds are published under, as every feed writes it; without a trailing slash.

    Feeds carry it in RSS ``<link>`` and atom:id, which must be URIs (RFC 3986), and the
    validator compares atom:id with its normal form (RFC 3986 §6.2.2-§6.2.3). So it is stored
    as that URI: an IRI's path percent-encoded as UTF-8 (RFC 3987 §3.1) and its host in IDNA
    form, scheme and host in lower case, a default port (:80, :443) dropped. Characters a URI
    cannot hold at all are refused rather than guessed at.
    """
    _refuse_misplaced_brackets(text)
    parts = urlsplit(_parse_http_url(text))
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"base_url {text!r} must not have a query (?) or fragment (#)")
    userinfo, at, _ = parts.netloc.rpartition("@")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address (RFC 3986 §3.2.2)
    else:
        try:
            host = idna.encode(host.rstrip("."), uts46=True).decode("ascii")
        except idna.IDNAError as e:
            raise ValueError(
                f"base_url {text!r}: {parts.hostname!r} is not a host name ({e})"
            ) from None
    scheme = parts.scheme.lower()
    port = "" if parts.port in (None, _DEFAULT_PORTS[scheme]) else f":{parts.port}"
    path = _NON_ASCII.sub(lambda m: quote(m.group(0), safe=""), parts.path)
    path = _ESCAPE.sub(_normal_escape, path)
    bad = _NOT_IN_PATH.search(path)
    if bad:
        raise ValueError(
            f"base_url {text!r}: {bad.group(0)!r} must be percent-encoded"
            f" ({quote(bad.group(0), safe='')})"
        )
    if _STRAY_PERCENT.search(path):
        raise ValueError(f"base_url {text!r}: a '%' must start an escape such as %20 (write %25)")
    return f"{scheme}://{userinfo}{at}{host}{port}{path}".rstrip("/")


def _normal_escape(match: re.Match[str]) -> str:
    """RFC 3986 §6.2.2.1-§6.2.2.2: upper-case hex digits; an unreserved character unescaped."""
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def _refuse_misplaced_brackets(text: str) -> None:
    """RFC 3986 §3.2.2: "[" and "]" only enclose an IP-literal host (``http://[::1]:8080``)."""
    after_scheme = text.partition("://")[2]
    authority = re.split(r"[/?#]", after_scheme, maxsplit=1)[0]
    host_port = authority.rpartition("@")[2]
    in_host = "[" in host_port or "]" in host_port
    rest = after_scheme[len(authority):]
    if "[" in rest or "]" in rest or (in_host and not _IP_LITERAL_HOST.fullmatch(host_port)):
        raise ValueError(
            f"base_url {text!r}: '[' and ']' may only enclose an IPv6 address,"
            " as in http://[::1]:8080; elsewhere write %5B and %5D"
        )


def _parse_data_dir(text: str) -> Path:
    """Relative to the working directory (where the service is started), made absolute."""
    try:
        return Path(os.path.abspath(Path(_non_empty(text)).expanduser()))
    except RuntimeError as e:  # ~nosuchuser
        raise ValueError(f"invalid path {text!r}: {e}") from None


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` or ``[ipv6]:port`` → (host, port); the host without brackets."""
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]:")
        if not bracket:
            raise ValueError(f"invalid listen address {text!r}: expected [address]:port")
        try:
            ipaddress.IPv6Address(host)
        except ValueError as e:
            raise ValueError(f"invalid listen address {text!r}: {e}") from None
    else:
        host, colon, port = text.rpartition(":")
        if not colon or not host:
            raise ValueError(
                f"invalid listen address {text!r}: expected host:port such as 127.0.0.1:8080"
                " (0.0.0.0:8080 for every interface)"
            )
        if ":" in host:
            raise ValueError(
                f"invalid listen address {text!r}: put an IPv6 address in brackets,"
                " as in [::1]:8080"
            )
        if not _is_host_name(host):
            raise ValueError(f"invalid listen address {text!r}: {host!r} is not a host name or IP")
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {text!r}: the port must be 1 to 65535")
    return host, int(port)


def _parse_language(text: str) -> str:
    """A language tag like ``en`` or ``de-DE``, in the case RFC 5646 §2.1.1 recommends."""
    language = normalize_language(text) if "_" not in text else None
    if language is None:
        hint = " (with '-', not '_')" if "_" in text else ""
        raise ValueError(
            f"invalid language {text!r}: expected a language tag such as en or de-DE{hint}"
        )
    if language != text and language.lower() != text.lower():
        raise ValueError(f"invalid language {text!r}: did you mean {language!r}?")
    return language

def _parse_id(text: str) -> str:
    if not ID_PATTERN.fullmatch(text):
        raise ValueError(
            f"invalid id {text!r}: use lower-case letters, digits, '.', '_' and '-',"
            " starting with a letter or digit"
        )
    return text


def _parse_regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as e:
        raise ValueError(f"invalid regular expression {text!r}: {e}") from None
    return text


def _parse_one_line(text: str) -> str:
    """Text sent in an HTTP header: no control characters (RFC 9110 §5.5)."""
    if not text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("must be one non-empty line of printable text")
    return text


def _parse_tag(text: str) -> str:
    if not text.strip():
        raise ValueError("a tag must not be empty")
    return text


def _parse_local_path(text: str, base_dir: Path) -> str:
    """A path or ``file:`` URL → an absolute path to an existing file; relative to base_dir."""
    if text.lower().startswith("file:"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL {text!r} must name a local file, as in file:///srv/f.xml")
        path = Path(unquote(parts.path))
    else:
        try:
            path = Path(text).expanduser()
        except RuntimeError as e:  # ~nosuchuser
            raise ValueError(f"invalid path {text!r}: {e}") from None
    resolved = Path(os.path.normpath(base_dir / path))
    if not resolved.exists():
        hint = ""
        if re.match(r"(?i)(www\.|[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}/)", text):
            hint = " (for a web address, start it with https://)"
        raise ValueError(f"local file not found: {resolved}{hint}")
    if resolved.is_dir():
        raise ValueError(f"{resolved} is a directory, not a feed file")
    return str(resolved)


def _parse_source_url(text: str, base_dir: Path) -> str:
    """An http(s) URL as written, or a local feed file as an absolute path."""
    scheme = URL_SCHEME.match(text)
    if scheme is None or scheme.group(1).lower() == "file":
        return _parse_local_path(text, base_dir)
    if scheme.group(1).lower() in ("http", "https"):
        return _parse_http_url(text)
    raise ValueError(
        f"unsupported URL scheme {scheme.group(1)!r} in {text!r}: use http(s)://, file:// or a path"
    )


def _is_host_name(host: str) -> bool:
    labels = host.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):  # looks like IPv4: must be one
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    return len(host) <= 253 and all(HOST_LABEL.fullmatch(label) for label in labels)


# --- the node walker --------------------------------------------------------------------------


class _Invalid(Exception):
    """A value that cannot be used; the walker turns it into a ConfigProblem at the node."""


@dataclass(frozen=True)
class _Item:
    key: Node
    value: Node


@dataclass(frozen=True)
class _Located:
    """A string list element with where it was written (for cross-reference messages)."""

    value: str
    line: int
    key: str


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _kind(node: Node) -> str:
    """What the operator wrote, in words: for 'expected X, got Y'."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    names = {_STR: "a string", _INT: "a number", _FLOAT: "a decimal number", _BOOL: "a boolean",
             _NULL: "nothing", _YAML + "timestamp": "a date"}  # fmt: skip
    return names.get(node.tag, f"a value tagged {node.tag}")


def _quote_hint(node: Node) -> str:
    """YAML 1.1 reads plain ``no``, ``on``, ``1.0``, ``2024-01-01`` as non-strings: say so."""
    # A plain scalar has no style: None from PyYAML's loader, "" from libyaml's.
    if isinstance(node, ScalarNode) and not node.style and node.tag in _IMPLICIT:
        return f' (write "{node.value}" in quotes to mean the text)'
    return ""


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _closest(word: str, known: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _read_string(node: Node) -> str:
    if isinstance(node, ScalarNode) and node.tag == _STR:
        return str(node.value)
    raise _Invalid(f"expected a string, got {_kind(node)}{_quote_hint(node)}")


def _read_integer(node: Node) -> int:
    if isinstance(node, ScalarNode) and node.tag == _INT:
        return _SCALARS.construct_yaml_int(node)
    raise _Invalid(f"expected a whole number, got {_kind(node)}")


def _read_number(node: Node) -> float:
    if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT):
        if node.tag == _INT:  # 0x10 and 1_000 are YAML 1.1 ints that float() cannot read
            return float(_SCALARS.construct_yaml_int(node))
        value = _SCALARS.construct_yaml_float(node)
        if not math.isfinite(value):
            raise _Invalid("expected a finite number of seconds")
        return value
    raise _Invalid(f"expected a number, got {_kind(node)}")


def _read_duration(node: Node) -> timedelta:
    return _read_quantity(node, parse_duration, "a duration such as 15m or a number of seconds")


def _read_size(node: Node) -> int:
    return _read_quantity(node, parse_size, "a size such as 16MiB or a number of bytes")


def _read_quantity(node: Node, parse: Callable[[str | int], T], expected: str) -> T:
    """A number, or a string with a unit that ``parse`` reads (its ValueError is the message)."""
    if isinstance(node, ScalarNode) and node.tag in (_INT, _STR):
        raw: str | int = _read_integer(node) if node.tag == _INT else str(node.value)
        try:
            return parse(raw)
        except ValueError as e:
            raise _Invalid(str(e)) from None
    raise _Invalid(f"expected {expected}, got {_kind(node)}")


def _read_threshold(node: Node) -> float:
    value = _read_number(node)
    if not 0.3 <= value <= 1.0:
        raise _Invalid(
            f"must be between 0.3 and 1.0 (lower merges different stories), got {value}")
    return value


def _checked(parse: Callable[[str], T]) -> Callable[[Node], T]:
    """A string reader that also applies ``parse`` (whose ValueError is the message)."""

    def read(node: Node) -> T:
        text = _read_string(node)
        try:
            return parse(text)
        except ValueError as e:
            raise _Invalid(str(e)) from None

    return read


def _in_range(read: Callable[[Node], int], low: int, high: int | None) -> Callable[[Node], int]:
    def read_in_range(node: Node) -> int:
        value = read(node)
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise _Invalid(f"must be {bounds}, got {value}")
        return value

    return read_in_range


def _positive(read: Callable[[Node], float]) -> Callable[[Node], float]:
    def read_positive(node: Node) -> float:
        value = read(node)
        if value <= 0:
            raise _Invalid(f"must be more than zero, got {value:g}")
        return value

    return read_positive


class _Reader:
    """Walks the composed node tree, building records and collecting ConfigProblems."""

    def __init__(self, file: str, base_dir: Path) -> None:
        self.file = file
        self.base_dir = base_dir
        self.problems: list[ConfigProblem] = []
        self.source_lines: dict[str, int] = {}  # id → line of its first definition
        self.source_tags: set[str] = set()
        # (mapping node id, key) pairs already offered as "did you mean": a misspelt required
        # key is one mistake, so it gets one message, not a second "missing required key".
        self.suggested: set[tuple[int, str]] = set()

    def report(self, line: int | None, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, line, key, message))

    # structure

    def mapping(self, node: Node, path: str, known: tuple[str, ...]) -> dict[str, _Item] | None:
        """The mapping's keys; reports non-mappings, unknown and duplicate keys."""
        if not isinstance(node, MappingNode):
            self.report(_line(node), path, f"expected a mapping, got {_kind(node)}")
            return None
        items: dict[str, _Item] = {}
        merged: list[Node] = []
        for key, value in node.value:
            if key.tag == _MERGE:
                merged.append(value)
                continue
            if not isinstance(key, ScalarNode):
                self.report(_line(key), path, f"a key must be plain text, got {_kind(key)}")
                continue
            name = str(key.value)
            if name in items:
                first = _line(items[name].key)
                self.report(
                    _line(key), _join(path, name), f"duplicate key {name!r} (first at line {first})"
                )
            elif name not in known:
                suggestion = _closest(name, known)
                if suggestion:
                    self.suggested.add((id(node), suggestion))
                self.report(_line(key), _join(path, name), _unknown_key(name, known, suggestion))
            else:
                items[name] = _Item(key, value)
        for value in merged:  # YAML 1.1 merge keys: own keys win, then earlier merges
            for item_name, item in self.merged_items(value, path, known).items():
                items.setdefault(item_name, item)
        return items

    def merged_items(self, node: Node, path: str, known: tuple[str, ...]) -> dict[str, _Item]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        items: dict[str, _Item] = {}
        for source in sources:
            if not isinstance(source, MappingNode):
                self.report(
                    _line(source),
                    _join(path, "<<"),
                    f"'<<' merges a mapping or a list of mappings, got {_kind(source)}",
                )
                continue
            for name, item in (self.mapping(source, path, known) or {}).items():
                items.setdefault(name, item)
        return items

    def sequence(self, node: Node, path: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.report(_line(node), path, f"expected a list, got {_kind(node)}")
            return None
        return list(node.value)

    # values

    def convert(self, node: Node, path: str, read: Callable[[Node], T]) -> T | None:
        try:
            return read(node)
        except _Invalid as e:
            self.report(_line(node), path, str(e))
            return None

    def optional(
        self, items: dict[str, _Item], name: str, path: str, read: Callable[[Node], T]
    ) -> T | None:
        """The value, or None when absent, null or invalid (then reported)."""
        item = items.get(name)
        if item is None or _is_null(item.value):
            return None
        return self.convert(item.value, _join(path, name), read)

    def required(
        self, items: dict[str, _Item], name: str, path: str, where: Node, read: Callable[[Node], T]
    ) -> T | None:
        item = items.get(name)
        if item is None:
            if (id(where), name) not in self.suggested:
                self.report(_line(where), _join(path, name), f"missing required key {name!r}")
            return None
        if _is_null(item.value):
            self.report(_line(item.key), _join(path, name), f"{name!r} needs a value")
            return None
        return self.convert(item.value, _join(path, name), read)

    def strings(
        self, items: dict[str, _Item], name: str, path: str, parse: Callable[[str], str]
    ) -> list[_Located]:
        """A list of strings (one string counts as a list of one); invalid elements reported."""
        item = items.get(name)
        if item is None or _is_null(item.value):
            return []
        key = _join(path, name)
        node = item.value
        if isinstance(node, ScalarNode) and node.tag == _STR:
            elements = [(key, node)]
        elif isinstance(node, SequenceNode):
            elements = [(f"{key}[{i}]", element) for i, element in enumerate(node.value)]
        else:
            self.report(
                _line(node),
                key,
                f"expected a list of strings, got {_kind(node)}{_quote_hint(node)}",
            )
            return []
        located: list[_Located] = []
        for element_key, element in elements:
            value = self.convert(element, element_key, _checked(parse))
            if value is not None and value not in (x.value for x in located):
                located.append(_Located(value, _line(element), element_key))
        return located

    # the document

    def read_document(self, text: str, path: Path) -> Config | None:
        try:
            root = _compose(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark else None
            self.report(line, "", _syntax_message(e) + _syntax_hint(text, line))
            return None
        except yaml.YAMLError as e:  # e.g. a control character (ReaderError has no mark)
            self.report(None, "", f"YAML error: {e}")
            return None
        if root is None:
            self.report(None, "", "the file is empty; it needs at least a 'sources' list")
            return None
        if not isinstance(root, MappingNode):
            self.report(
                _line(root),
                "",
                f"the top level must be a mapping with keys"
                f" {', '.join(TOP_KEYS)}; got {_kind(root)}",
            )
            return None
        items = self.mapping(root, "", TOP_KEYS) or {}
        service = self.read_service(items.get("service"))
        interval = self.read_defaults(items.get("defaults"))
        sources = self.read_sources(items.get("sources"), root, interval)
        feeds = self.read_feeds(items.get("feeds"), sources)
        dedupe = self.read_dedupe(items.get("dedupe"))
        return Config(
            path=path,
            service=service,
            default_interval=interval,
            sources=tuple(sources),
            feeds=tuple(feeds),
            dedupe=dedupe,
        )

    def read_dedupe(self, item: _Item | None) -> DedupeConfig:
        if item is None or _is_null(item.value):
            return DedupeConfig()
        items = self.mapping(item.value, "dedupe", DEDUPE_KEYS) or {}
        window = self.optional(items, "window", "dedupe", _read_duration)
        threshold = self.optional(items, "threshold", "dedupe", _read_threshold)
        default = DedupeConfig()
        return DedupeConfig(window=window or default.window,
                            threshold=default.threshold if threshold is None else threshold)

    def read_service(self, item: _Item | None) -> ServiceConfig:
        items: dict[str, _Item] = {}
        if item is not None and not _is_null(item.value):
            items = self.mapping(item.value, "service", SERVICE_KEYS) or {}
        get = self.optional
        p = "service"
        listen = get(items, "listen", p, _checked(parse_listen)) or DEFAULT_LISTEN
        base_url = get(items, "base_url", p, _checked(_parse_base_url)) or _url_for(*listen)
        data_dir = get(items, "data_dir", p, _checked(_parse_data_dir))
        data_dir = data_dir or _parse_data_dir(DEFAULT_DATA_DIR)
        database = get(items, "database", p, _checked(_database_url))
        user_agent = get(items, "user_agent", p, _checked(_parse_one_line))
        workers = get(items, "fetch_workers", p, _in_range(_read_integer, 1, MAX_FETCH_WORKERS))
        per_host = get(items, "fetch_per_host", p, _in_range(_read_integer, 1, MAX_FETCH_WORKERS))
        parse_workers = get(items, "parse_workers", p,
                            _in_range(_read_integer, 0, MAX_PARSE_WORKERS))
        web_workers = get(items, "web_workers", p, _in_range(_read_integer, 1, MAX_WEB_WORKERS))
        connect = get(items, "connect_timeout", p, _positive(_read_number))
        read = get(items, "read_timeout", p, _positive(_read_number))
        max_body = get(items, "max_body_bytes", p, _read_size)
        hub = get(items, "websub_hub", p, _checked(_parse_http_url))
        return ServiceConfig(
            base_url=base_url,
            database=database or f"sqlite:///{data_dir / 'syndicate.db'}",
            listen_host=listen[0],
            listen_port=listen[1],
            user_agent=user_agent or f"syndicate/{__version__} (+{base_url})",
            data_dir=data_dir,
            fetch_workers=workers or DEFAULT_FETCH_WORKERS,
            fetch_per_host=per_host or DEFAULT_FETCH_PER_HOST,
            parse_workers=parse_workers,
            web_workers=web_workers or DEFAULT_WEB_WORKERS,
            connect_timeout=connect or DEFAULT_CONNECT_TIMEOUT,
            read_timeout=read or DEFAULT_READ_TIMEOUT,
            max_body_bytes=max_body or DEFAULT_MAX_BODY_BYTES,
            websub_hub=hub,
        )

    def read_defaults(self, item: _Item | None) -> timedelta:
        if item is None or _is_null(item.value):
            return DEFAULT_INTERVAL
        items = self.mapping(item.value, "defaults", DEFAULTS_KEYS) or {}
        return self.optional(items, "interval", "defaults", _read_duration) or DEFAULT_INTERVAL

    def read_sources(
        self, item: _Item | None, root: Node, interval: timedelta
    ) -> list[SourceConfig]:
        if item is None:
            if (id(root), "sources") not in self.suggested:
                self.report(
                    _line(root),
                    "sources",
                    "missing required key 'sources' (a list of feeds to fetch)",
                )
            return []
        nodes = [] if _is_null(item.value) else self.sequence(item.value, "sources")
        if nodes is None:
            return []
        if not nodes:
            self.report(_line(item.value), "sources", "at least one source is required")
        sources = []
        for index, node in enumerate(nodes):
            source = self.read_source(node, f"sources[{index}]", interval)
            if source is not None:
                sources.append(source)
        return sources

    def read_source(self, node: Node, path: str, interval: timedelta) -> SourceConfig | None:
        items = self.mapping(node, path, SOURCE_KEYS)
        if items is None:
            return None
        source_id = self.required(items, "id", path, node, _checked(_parse_id))
        is_new = source_id is not None and self.claim_id(
            source_id, "source", self.source_lines, items["id"].value, path
        )
        url = self.required(
            items, "url", path, node, _checked(lambda text: _parse_source_url(text, self.base_dir))
        )
        tags = [t.value for t in self.strings(items, "tags", path, _parse_tag)]
        self.source_tags.update(tags)
        source = SourceConfig(
            id=source_id or "",
            url=url or "",
            title=self.optional(items, "title", path, _read_string),
            tags=tuple(tags),
            language=self.optional(items, "language", path, _checked(_parse_language)),
            interval=self.optional(items, "interval", path, _read_duration) or interval,
            priority=self.optional(items, "priority", path, _read_integer) or 0,
            citation_labels=tuple(
                s.value for s in self.strings(items, "citation_labels", path, _non_empty)
            ),
            strip_patterns=tuple(
                s.value for s in self.strings(items, "strip_patterns", path, _parse_regex)
            ),
        )
        return source if is_new and url is not None else None

    def claim_id(self, value: str, what: str, seen: dict[str, int], node: Node, path: str) -> bool:
        """Record an id; a repeated one is a problem at the repeat, naming the first."""
        if value in seen:
            self.report(
                _line(node),
                _join(path, "id"),
                f"duplicate {what} id {value!r} (first defined at line {seen[value]})",
            )
            return False
        seen[value] = _line(node)
        return True

    def read_feeds(self, item: _Item | None, sources: list[SourceConfig]) -> list[FeedConfig]:
        if item is None or _is_null(item.value):
            return []
        nodes = self.sequence(item.value, "feeds") or []
        seen: dict[str, int] = {}
        feeds = []
        for index, node in enumerate(nodes):
            feed = self.read_feed(node, f"feeds[{index}]", seen, sources)
            if feed is not None:
                feeds.append(feed)
        return feeds

    def read_feed(
        self, node: Node, path: str, seen: dict[str, int], sources: list[SourceConfig]
    ) -> FeedConfig | None:
        items = self.mapping(node, path, FEED_KEYS)
        if items is None:
            return None
        feed_id = self.required(items, "id", path, node, _checked(_parse_id))
        is_new = feed_id is not None and self.claim_id(
            feed_id, "feed", seen, items["id"].value, path
        )
        tags = self.strings(items, "tags", path, _parse_tag)
        selected = self.strings(items, "sources", path, _non_empty)
        self.check_selection(tags, selected)
        languages = tuple(x.value for x in self.strings(items, "languages", path, _parse_language))
        language = self.optional(items, "language", path, _checked(_parse_language))
        limit = self.optional(items, "limit", path, _in_range(_read_integer, 1, MAX_FEED_LIMIT))
        min_outlets = self.optional(items, "min_outlets", path, _in_range(_read_integer, 1, None))
        outlets = tuple(x.value for x in self.strings(items, "outlets", path, _parse_outlet))
        role = self.optional(items, "outlet_role", path, _checked(_parse_outlet_role))
        # Neither tags nor sources: every source, written out (see the module docstring).
        every_source = not tags and not selected
        feed = FeedConfig(
            id=feed_id or "",
            title=self.optional(items, "title", path, _read_string) or feed_id or "",
            description=self.optional(items, "description", path, _read_string) or "",
            tags=tuple(t.value for t in tags),
            sources=tuple(s.id for s in sources)
            if every_source
            else tuple(s.value for s in selected),
            languages=languages,
            limit=limit or DEFAULT_FEED_LIMIT,
            min_outlets=min_outlets or 1,
            language=language or (languages[0] if len(languages) == 1 else None),
            outlets=outlets,
            outlet_role=role or "any",
        )
        return feed if is_new else None

    def check_selection(self, tags: list[_Located], selected: list[_Located]) -> None:
        for tag in tags:
            if tag.value not in self.source_tags:
                self.report(
                    tag.line,
                    tag.key,
                    f"no source has the tag {tag.value!r}"
                    + _suggestion(tag.value, self.source_tags),
                )
        for source in selected:
            if source.value not in self.source_lines:
                self.report(
                    source.line,
                    source.key,
                    f"unknown source id {source.value!r}"
                    + _suggestion(source.value, self.source_lines),
                )


def _unknown_key(name: str, known: tuple[str, ...], suggestion: str | None) -> str:
    if suggestion:
        return f"unknown key {name!r} (did you mean {suggestion!r}?)"
    # A real key (or a misspelling of one) written at the wrong level, e.g. listen: beside
    # sources:, is better explained by where it belongs than by this mapping's key list.
    elsewhere = [(_closest(name, keys), where) for where, keys in _SECTIONS if keys != known]
    matches = [(key, where) for key, where in elsewhere if key]
    if matches:
        key = matches[0][0]
        homes = " or ".join(where for match, where in matches if match == key)
        if key == name:
            return f"unknown key {name!r} here (it belongs {homes})"
        return f"unknown key {name!r} here (did you mean {key!r}, which belongs {homes}?)"
    return f"unknown key {name!r} (known keys: {', '.join(known)})"


def _suggestion(word: str, known: Iterable[str]) -> str:
    suggestion = _closest(word, known)
    return f" (did you mean {suggestion!r}?)" if suggestion else ""


def _parse_outlet(text: str) -> str:
    """An outlet's host as written (``www.npr.org``), or a URL of it; lower-case IDNA."""
    value = text.strip()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    try:
        host = idna.encode(value.rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as e:
        raise ValueError(f"not a host name: {text!r} ({e})") from e
    if "." not in host or not _is_host_name(host):
        raise ValueError(f"not a host name: {text!r} (write it like www.npr.org)")
    return host


def _parse_outlet_role(text: str) -> str:
    if text not in OUTLET_ROLES:
        raise ValueError(f"must be one of {', '.join(OUTLET_ROLES)}, got {text!r}")
    return text


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _database_url(text: str) -> str:
    # SQLAlchemy URLs are dialect[+driver]://…; the store reports connection problems itself.
    if not re.match(r"[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z0-9_]+)?://", text):
        raise ValueError(
            f"expected an SQLAlchemy database URL such as sqlite:///data/syndicate.db or"
            f" postgresql+psycopg://user@host/db, got {text!r}"
        )
    return text


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem and context in one line: "expected ',' or ']', but got ':' (while …)"."""
    problem, context = error.problem or "", error.context or ""
    if not (problem and context):
        return f"YAML syntax error: {problem or context}"
    if problem.startswith("but "):  # the context is the first half of the sentence
        return f"YAML syntax error: {context}, {problem}"
    started = ""
    if (
        error.context_mark
        and error.problem_mark
        and (error.context_mark.line != error.problem_mark.line)
    ):
        started = f" that started at line {error.context_mark.line + 1}"
    return f"YAML syntax error: {problem} ({context}{started})"


def _syntax_hint(text: str, line: int | None) -> str:
    """The one syntax mistake this file invites: an unquoted ``[::1]:8080`` is a YAML list."""
    lines = text.splitlines()
    if line and line <= len(lines) and re.search(r":\s+\[[0-9A-Fa-f:.%\w]*\]:", lines[line - 1]):
        return ' (quote an IPv6 listen address: listen: "[::1]:8080")'
    return ""


def _url_for(host: str, port: int) -> str:
    """Where the web server is reachable by default: a wildcard bind is reached via loopback."""
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{_format_listen(host, port)}"


def _format_listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _describe_feed(config: Config, feed: FeedConfig) -> str:
    selected = config.feed_source_ids(feed)
    if not feed.tags and len(selected) == len(config.sources):
        rule = "every source"
    else:
        rule = "; ".join(
            f"{label} {', '.join(values)}"
            for label, values in (("tags", feed.tags), ("sources", feed.sources))
            if values
        )
    if feed.languages:
        rule += f"; languages {', '.join(feed.languages)}"
    outlets = f", stories with at least {feed.min_outlets} outlets" if feed.min_outlets > 1 else ""
    return (
        f'"{feed.title}": {rule} -> {_count(len(selected), "source")}, newest {feed.limit}{outlets}'
    )
