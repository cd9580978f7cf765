"""The config loader: records from valid YAML, and one located problem per mistake."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

import syndicate
from syndicate.config import (
    describe,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
    parse_listen,
    parse_size,
)
from syndicate.errors import ConfigError, ConfigProblem
from syndicate.types import Config, FeedConfig, ServiceConfig, SourceConfig

REPO = Path(__file__).resolve().parent.parent
MINIMAL = "sources:\n  - id: a\n    url: https://example.org/a.xml\n"


def write(directory: Path, text: str, name: str = "syndicate.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


# --- valid configs ----------------------------------------------------------------------------


def test_full_config_round_trips_into_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "local.xml").write_text("<rss/>")
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path,
        """\
        service:
          base_url: https://news.example.org/syndicate/
          database: postgresql+psycopg://syndicate:secret@db.internal/syndicate
          data_dir: state
          listen: 0.0.0.0:9000
          user_agent: "syndicate-test (+https://news.example.org/)"
          fetch_workers: 16
          connect_timeout: 2.5
          read_timeout: 20
          max_body_bytes: 512KiB
          websub_hub: https://hub.example.org/
        defaults:
          interval: 1h
        sources:
          - id: bbc-world
            url: https://feeds.bbci.co.uk/news/world/rss.xml
            title: BBC World
            tags: [en, world]
            language: EN-gb
            interval: 1h30m
            priority: -2
            citation_labels: [Sources]
            strip_patterns: ["(?i)^read more.*$"]
          - id: local
            url: feeds/local.xml
            tags: de
        feeds:
          - id: world
            title: World
            description: Everything about the world.
            tags: [world]
            sources: [local]
            languages: [en, de]
            limit: 20
            min_outlets: 2
            language: de
          - id: en-only
            languages: [en]
        """,
    )
    expected = Config(
        path=path,
        service=ServiceConfig(
            base_url="https://news.example.org/syndicate",
            database="postgresql+psycopg://syndicate:secret@db.internal/syndicate",
            listen_host="0.0.0.0",
            listen_port=9000,
            user_agent="syndicate-test (+https://news.example.org/)",
            data_dir=tmp_path / "state",
            fetch_workers=16,
            connect_timeout=2.5,
            read_timeout=20.0,
            max_body_bytes=512 * 1024,
            websub_hub="https://hub.example.org/",
        ),
        default_interval=timedelta(hours=1),
        sources=(
            SourceConfig(
                id="bbc-world",
                url="https://feeds.bbci.co.uk/news/world/rss.xml",
                title="BBC World",
                tags=("en", "world"),
                language="en-GB",
                interval=timedelta(minutes=90),
                priority=-2,
                citation_labels=("Sources",),
                strip_patterns=("(?i)^read more.*$",),
            ),
            SourceConfig(
                id="local",
                url=str(tmp_path / "feeds" / "local.xml"),
                title=None,
                tags=("de",),
                language=None,
                interval=timedelta(hours=1),
            ),
        ),
        feeds=(
            FeedConfig(
                id="world",
                title="World",
                description="Everything about the world.",
                tags=("world",),
                sources=("local",),
                languages=("en", "de"),
                limit=20,
                min_outlets=2,
                language="de",
            ),
            # Neither tags nor sources: every source, written out; one language: its own.
            FeedConfig(
                id="en-only",
                title="en-only",
                description="",
                sources=("bbc-world", "local"),
                languages=("en",),
                language="en",
            ),
        ),
    )
    config = load_config(path)
    assert config == expected
    assert config.feed_source_ids(config.feed("en-only")) == {"bbc-world", "local"}


def test_defaults_fill_every_optional_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(write(tmp_path, MINIMAL))
    assert config.service == ServiceConfig(
        base_url="http://127.0.0.1:8080",
        database=f"sqlite:///{tmp_path}/data/syndicate.db",
        listen_host="127.0.0.1",
        listen_port=8080,
        user_agent=f"syndicate/{syndicate.__version__} (+http://127.0.0.1:8080)",
        data_dir=tmp_path / "data",
        fetch_workers=8,
        connect_timeout=10.0,
        read_timeout=30.0,
        max_body_bytes=16 * 1024 * 1024,
        websub_hub=None,
    )
    assert config.service.database.startswith("sqlite:////")  # four slashes: absolute path
    assert config.default_interval == timedelta(minutes=15)
    assert config.sources[0].interval == timedelta(minutes=15)
    assert config.feeds == ()


def test_base_url_defaults_to_the_listen_address(tmp_path: Path) -> None:
    path = write(tmp_path, "service:\n  listen: '[::1]:9000'\n" + MINIMAL)
    service = load_config(path).service
    assert service.base_url == "http://[::1]:9000"
    assert service.user_agent.endswith("(+http://[::1]:9000)")


@pytest.mark.parametrize(("written", "stored"), [
    ("https://news.example.org/syndicate/", "https://news.example.org/syndicate"),
    # RFC 3986 §6.2.2-§6.2.3 normal form: feeds write it in RSS <link> and atom:id.
    ("HTTPS://News.Example.ORG:443/Syn/", "https://news.example.org/Syn"),
    ("http://example.org:80", "http://example.org"),
    ("http://example.org:8080/", "http://example.org:8080"),
    ("https://example.org/a%7eb/%c3%bc", "https://example.org/a~b/%C3%BC"),
    # An IRI becomes a URI (RFC 3987 §3.1): UTF-8 escapes in the path, IDNA host.
    ("https://example.org/nachrichten-ü/", "https://example.org/nachrichten-%C3%BC"),
    ("https://Bücher.example/", "https://xn--bcher-kva.example"),
    ("http://[::1]:8080/", "http://[::1]:8080"),
    ("http://[2001:DB8::1]:80/x", "http://[2001:db8::1]/x"),
])
def test_base_url_is_stored_as_a_normal_uri(tmp_path: Path, written: str, stored: str) -> None:
    path = write(tmp_path, f"service:\n  base_url: '{written}'\n" + MINIMAL)
    assert load_config(path).service.base_url == stored


def test_feed_language_is_the_single_languages_entry_or_none(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + textwrap.dedent("""\
        feeds:
          - {id: one, languages: [de]}
          - {id: two, languages: [de, en]}
          - {id: own, languages: [de, en], language: en}
        """),
    )
    config = load_config(path)
    assert [f.language for f in config.feeds] == ["de", None, "en"]


def test_merge_keys_share_settings_and_own_keys_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        sources:
          - &common
            id: a
            url: https://example.org/a.xml
            tags: [world]
            interval: 2h
          - <<: *common
            id: b
            interval: 5m
        """,
    )
    a, b = load_config(path).sources
    assert (b.id, b.url, b.tags, b.interval) == ("b", a.url, ("world",), timedelta(minutes=5))


DURATIONS = [
    ("30s", timedelta(seconds=30)),
    ("15m", timedelta(minutes=15)),
    ("1h", timedelta(hours=1)),
    ("1h30m", timedelta(minutes=90)),
    ("1h 30m", timedelta(minutes=90)),
    ("2d", timedelta(days=2)),
    ("1w", timedelta(weeks=1)),
    ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
    ("90", timedelta(seconds=90)),
    (90, timedelta(seconds=90)),
]


@pytest.mark.parametrize(("value", "expected"), DURATIONS)
def test_parse_duration(value: str | int, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30s"), (5400, "1h30m"), (86400 * 9 + 5, "1w2d5s"), (0, "0s")]
)
def test_format_duration_is_the_inverse(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
    if seconds:
        assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("value", "expected"), DURATIONS)
def test_durations_in_yaml(tmp_path: Path, value: str | int, expected: timedelta) -> None:
    path = write(tmp_path, f"defaults:\n  interval: {value}\n" + MINIMAL)
    assert load_config(path).sources[0].interval == expected


@pytest.mark.parametrize(
    "value",
    [
        "0s",
        0,
        -5,
        "",
        "1x",
        "30m1h",
        "1.5h",
        "h",
        "500ms",
        "1h-30m",
        "99999999999999w",
        True,
    ],
)
def test_parse_duration_rejects(value: str | int) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*(30s|more than zero|too long)"):
        parse_duration(value)


LISTEN = [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("localhost:9000", ("localhost", 9000)),
    ("[::1]:8080", ("::1", 8080)),
    ("[::]:65535", ("::", 65535)),
]


@pytest.mark.parametrize(("value", "expected"), LISTEN)
def test_listen_addresses(tmp_path: Path, value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected
    service = load_config(write(tmp_path, f"service:\n  listen: '{value}'\n" + MINIMAL)).service
    assert (service.listen_host, service.listen_port) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("8080", "expected host:port"),
        (":8080", "expected host:port"),
        ("::1:8080", "in brackets"),
        ("[::1]8080", "expected [address]:port"),
        ("[nope]:80", "invalid listen address"),
        ("127.0.0.1:0", "port must be 1 to 65535"),
        ("127.0.0.1:70000", "port must be 1 to 65535"),
        ("127.0.0.1:http", "port must be 1 to 65535"),
        ("bad_host:80", "not a host name"),
        ("999.1.1.1:80", "not a host name"),
    ],
)
def test_listen_rejects(value: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[")):
        parse_listen(value)


SIZES = [
    ("100", 100),
    (4096, 4096),
    ("16MB", 16_000_000),
    ("16MiB", 16 * 1024 * 1024),
    ("512KiB", 512 * 1024),
    ("512 kB", 512_000),
    ("1 GiB", 1024**3),
    ("1.5MiB", 1536 * 1024),
    ("10b", 10),
]


@pytest.mark.parametrize(("value", "expected"), SIZES)
def test_sizes(tmp_path: Path, value: str | int, expected: int) -> None:
    assert parse_size(value) == expected
    path = write(tmp_path, f"service:\n  max_body_bytes: {value}\n" + MINIMAL)
    assert load_config(path).service.max_body_bytes == expected


@pytest.mark.parametrize("value", ["0", 0, "-1", "MB", "16 MBs", "1e3", "16M", "0.1B"])
def test_parse_size_rejects(value: str | int) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(value)


# --- problems: each mistake is one problem at its line and key path ---------------------------

SRC = "sources:\n  - id: a\n    url: https://example.org/a.xml\n"  # lines 1–3

# fmt: off
PROBLEMS = [
    # (YAML, line, key, message fragment)
    ("sources: [a\nfeeds: []\n", 2, "", "YAML syntax error: expected ',' or ']'"),
    ("sources:\n\t- id: a\n", 2, "", "YAML syntax error"),
    ("service:\n  listen: [::1]:8080\n" + SRC, 2, "", 'quote an IPv6 listen address'),
    ("a: 1\n---\nb: 2\n", 2, "",
     "YAML syntax error: expected a single document in the stream, but found another"),
    ("- a\n- b\n", 1, "", "top level must be a mapping"),
    ("", None, "", "the file is empty"),
    ("# only a comment\n", None, "", "the file is empty"),
    (SRC + "colour: red\n", 4, "colour", "unknown key 'colour' (known keys: service, defaults"),
    (SRC + "feed: []\n", 4, "feed", "unknown key 'feed' (did you mean 'feeds'?)"),
    (SRC + "    intervall: 1h\n", 4, "sources[0].intervall",
     "unknown key 'intervall' (did you mean 'interval'?)"),
    ("listen: 127.0.0.1:80\n" + SRC, 1, "listen",
     "unknown key 'listen' here (it belongs under service:)"),
    (SRC + "    limit: 5\n", 4, "sources[0].limit",
     "unknown key 'limit' here (it belongs in a feed)"),
    ("interval: 5m\n" + SRC, 1, "interval",
     "unknown key 'interval' here (it belongs under defaults: or in a source)"),
    ("service:\n  intervall: 5m\n" + SRC, 2, "service.intervall",
     "unknown key 'intervall' here (did you mean 'interval', which belongs under defaults:"
     " or in a source?)"),
    ("source:\n  - id: a\n", 1, "source", "did you mean 'sources'?"),  # and no "missing"
    ("sources:\n  - idd: a\n    url: https://example.org/\n", 2, "sources[0].idd",
     "did you mean 'id'?"),
    (SRC + "    url: https://example.org/b.xml\n", 4, "sources[0].url",
     "duplicate key 'url' (first at line 3)"),
    (SRC + "    [x]: 1\n", 4, "sources[0]", "a key must be plain text, got a list"),
    ("service: []\n" + SRC, 1, "service", "expected a mapping, got a list"),
    ("defaults: 15m\n" + SRC, 1, "defaults", "expected a mapping, got a string"),
    ("sources: {id: a}\n", 1, "sources", "expected a list, got a mapping"),
    ("sources:\n  - https://example.org/\n", 2, "sources[0]", "expected a mapping, got a string"),
    ("service: {}\n", 1, "sources", "missing required key 'sources'"),
    ("sources: []\n", 1, "sources", "at least one source is required"),
    ("sources:\n  - url: https://example.org/\n", 2, "sources[0].id", "missing required key 'id'"),
    ("sources:\n  - id: a\n", 2, "sources[0].url", "missing required key 'url'"),
    ("sources:\n  - id:\n    url: https://example.org/\n", 2, "sources[0].id", "needs a value"),
    ("sources:\n  - id: Big News\n    url: https://example.org/\n", 2, "sources[0].id",
     "invalid id 'Big News': use lower-case letters"),
    ("sources:\n  - id: 2024\n    url: https://example.org/\n", 2, "sources[0].id",
     'expected a string, got a number (write "2024" in quotes'),
    (SRC + "    tags: 5\n", 4, "sources[0].tags", "expected a list of strings, got a number"),
    (SRC + "    tags: {a: 1}\n", 4, "sources[0].tags", "expected a list of strings, got a mapping"),
    (SRC + "    tags: [world, [x]]\n", 4, "sources[0].tags[1]", "expected a string, got a list"),
    (SRC + "    tags:\n      - world\n      -\n", 6, "sources[0].tags[1]",
     "expected a string, got nothing"),
    (SRC + "    title: 2024-01-01\n", 4, "sources[0].title", "expected a string, got a date"),
    (SRC + "    title: !env TITLE\n", 4, "sources[0].title", "got a value tagged !env"),
    (SRC + "    language: no\n", 4, "sources[0].language",
     'expected a string, got a boolean (write "no" in quotes'),
    (SRC + "    language: english\n", 4, "sources[0].language", "invalid language 'english'"),
    (SRC + "    language: de_DE\n", 4, "sources[0].language", "such as en or de-DE (with '-'"),
    (SRC + "    interval: 15 minutes\n", 4, "sources[0].interval",
     "invalid duration '15 minutes'"),
    (SRC + "    interval: 0\n", 4, "sources[0].interval", "must be more than zero"),
    (SRC + "    interval: [1h]\n", 4, "sources[0].interval", "expected a duration"),
    ("defaults:\n  interval: 1d1d\n" + SRC, 2, "defaults.interval", "invalid duration"),
    (SRC + "    priority: high\n", 4, "sources[0].priority", "expected a whole number, got a"),
    (SRC + "    priority: 1.5\n", 4, "sources[0].priority",
     "expected a whole number, got a decimal number"),
    (SRC + "    strip_patterns: ['ok', '(unclosed']\n", 4, "sources[0].strip_patterns[1]",
     "invalid regular expression '(unclosed': missing ), unterminated subpattern"),
    (SRC + "    citation_labels: ['']\n", 4, "sources[0].citation_labels[0]", "must not be empty"),
    ("sources:\n  - id: a\n    url: ftp://example.org/feed\n", 3, "sources[0].url",
     "unsupported URL scheme 'ftp'"),
    ("sources:\n  - id: a\n    url: http://\n", 3, "sources[0].url", "expected an http(s) URL"),
    ("sources:\n  - id: a\n    url: https://example.org:99999/\n", 3, "sources[0].url",
     "invalid URL"),
    ("sources:\n  - id: a\n    url: missing.xml\n", 3, "sources[0].url", "local file not found:"),
    ("sources:\n  - id: a\n    url: www.example.org/feed\n", 3, "sources[0].url",
     "start it with https://"),
    ("sources:\n  - id: a\n    url: .\n", 3, "sources[0].url", "is a directory"),
    ("sources:\n  - id: a\n    url: file://elsewhere/feed.xml\n", 3, "sources[0].url",
     "must name a local file"),
    (SRC + "  - id: a\n    url: https://example.org/b.xml\n", 4, "sources[1].id",
     "duplicate source id 'a' (first defined at line 2)"),
    ("service:\n  fetch_workers: yes\n" + SRC, 2, "service.fetch_workers",
     "expected a whole number, got a boolean"),
    ("service:\n  fetch_workers: 0\n" + SRC, 2, "service.fetch_workers", "from 1 to 256, got 0"),
    ("service:\n  fetch_workers: 257\n" + SRC, 2, "service.fetch_workers", "from 1 to 256"),
    ("service:\n  connect_timeout: 0\n" + SRC, 2, "service.connect_timeout",
     "must be more than zero"),
    ("service:\n  read_timeout: -1.5\n" + SRC, 2, "service.read_timeout", "more than zero"),
    ("service:\n  read_timeout: 30s\n" + SRC, 2, "service.read_timeout",
     "expected a number, got a string"),
    ("service:\n  read_timeout: .inf\n" + SRC, 2, "service.read_timeout", "finite number"),
    ("service:\n  max_body_bytes: lots\n" + SRC, 2, "service.max_body_bytes",
     "invalid size 'lots'"),
    ("service:\n  max_body_bytes: 0\n" + SRC, 2, "service.max_body_bytes", "at least one byte"),
    ("service:\n  base_url: news.example.org\n" + SRC, 2, "service.base_url",
     "expected an http(s) URL"),
    ("service:\n  base_url: https://example.org/?x=1\n" + SRC, 2, "service.base_url",
     "must not have a query"),
    ("service:\n  base_url: https://example.org/a[1]\n" + SRC, 2, "service.base_url",
     "'[' and ']' may only enclose an IPv6 address"),
    ("service:\n  base_url: https://ex[a]mple.org/\n" + SRC, 2, "service.base_url",
     "'[' and ']' may only enclose an IPv6 address"),
    ("service:\n  base_url: https://example.org/a|b\n" + SRC, 2, "service.base_url",
     "'|' must be percent-encoded (%7C)"),
    ("service:\n  base_url: https://example.org/100%\n" + SRC, 2, "service.base_url",
     "a '%' must start an escape"),
    ("service:\n  websub_hub: hub\n" + SRC, 2, "service.websub_hub", "expected an http(s) URL"),
    ("service:\n  database: data/syndicate.db\n" + SRC, 2, "service.database",
     "expected an SQLAlchemy database URL"),
    ('service:\n  user_agent: "a\\nb"\n' + SRC, 2, "service.user_agent", "one non-empty line"),
    ("service:\n  listen: 8080\n" + SRC, 2, "service.listen", "expected a string, got a number"),
    ("service:\n  listen: ::1:8080\n" + SRC, 2, "service.listen", "in brackets"),
    ("service:\n  data_dir: ''\n" + SRC, 2, "service.data_dir", "must not be empty"),
    (SRC + "feeds: {id: x}\n", 4, "feeds", "expected a list, got a mapping"),
    (SRC + "feeds:\n  - title: x\n", 5, "feeds[0].id", "missing required key 'id'"),
    (SRC + "feeds:\n  - id: x\n  - id: x\n", 6, "feeds[1].id",
     "duplicate feed id 'x' (first defined at line 5)"),
    (SRC + "feeds:\n  - id: x\n    tags: 5\n", 6, "feeds[0].tags",
     "expected a list of strings, got a number"),
    (SRC + "feeds:\n  - id: x\n    tags: [wrld]\n", 6, "feeds[0].tags[0]",
     "no source has the tag 'wrld'"),
    (SRC + "    tags: [world]\nfeeds:\n  - id: x\n    tags: wrld\n", 7, "feeds[0].tags",
     "no source has the tag 'wrld' (did you mean 'world'?)"),
    (SRC + "feeds:\n  - id: x\n    sources: [a, b]\n", 6, "feeds[0].sources[1]",
     "unknown source id 'b'"),
    (SRC + "feeds:\n  - id: x\n    languages: [en, '']\n", 6, "feeds[0].languages[1]",
     "invalid language ''"),
    (SRC + "feeds:\n  - id: x\n    limit: 0\n", 6, "feeds[0].limit", "from 1 to 1000, got 0"),
    (SRC + "feeds:\n  - id: x\n    limit: 1001\n", 6, "feeds[0].limit", "from 1 to 1000"),
    (SRC + "feeds:\n  - id: x\n    limit: true\n", 6, "feeds[0].limit", "got a boolean"),
    (SRC + "feeds:\n  - id: x\n    min_outlets: 0\n", 6, "feeds[0].min_outlets", "at least 1"),
    (SRC + "  - <<: [1]\n    id: b\n    url: https://example.org/\n", 4, "sources[1].<<",
     "'<<' merges a mapping"),
]
# fmt: on


@pytest.mark.parametrize(("text", "line", "key", "fragment"), PROBLEMS)
def test_each_mistake_is_one_located_problem(
    tmp_path: Path, text: str, line: int | None, key: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    found = problems(path)
    assert [(p.file, p.line, p.key) for p in found] == [(str(path), line, key)], found
    assert fragment in found[0].message


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("no", ' (write "no" in quotes to mean the text)'),  # YAML 1.1: a boolean
        ("1.10", ' (write "1.10" in quotes to mean the text)'),  # a number, 1.1
        ("'no'", None),  # quoted: a string, no problem
        ("!env TITLE", ""),  # a tag the loader does not know: quoting would not help
    ],
)
def test_plain_scalars_that_yaml_reads_as_non_strings_get_a_quoting_hint(
    tmp_path: Path, value: str, hint: str | None
) -> None:
    path = write(tmp_path, SRC + f"    title: {value}\n")
    if hint is None:
        assert load_config(path).sources[0].title == "no"
        return
    (problem,) = problems(path)
    assert problem.message.startswith("expected a string, got ")
    assert problem.message.endswith(")" if hint else "a value tagged !env")
    assert hint in problem.message


def test_a_problem_names_the_local_path_it_looked_for(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - id: a\n    url: feeds/missing.xml\n")
    (problem,) = problems(path)
    assert problem.message == f"local file not found: {tmp_path / 'feeds' / 'missing.xml'}"


def test_every_problem_in_a_file_is_reported_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        service:
          listen: localhost
          fetch_workers: many
          intervall: 5m
        sources:
          - id: bbc
            url: https://feeds.bbci.co.uk/news/rss.xml
            tags: [en, world]
            interval: soon
          - id: bbc
            url: nowhere.xml
          - id: Bad
            url: https://example.org/
            strip_patterns: ["["]
        feeds:
          - id: world
            tags: [world, wrld]
            sources: [cnn]
            limit: 0
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    found = [(p.line, p.key) for p in caught.value.problems]
    assert found == [
        (2, "service.listen"),
        (3, "service.fetch_workers"),
        (4, "service.intervall"),
        (9, "sources[0].interval"),
        (10, "sources[1].id"),
        (11, "sources[1].url"),
        (12, "sources[2].id"),
        (14, "sources[2].strip_patterns[0]"),
        (17, "feeds[0].tags[1]"),
        (18, "feeds[0].sources[0]"),
        (19, "feeds[0].limit"),
    ]
    # The exception's text is the operator's report: file:line: key: message, one a line.
    lines = str(caught.value).splitlines()
    assert len(lines) == len(found)
    assert lines[0].startswith(f"{path}:2: service.listen: invalid listen address 'localhost'")


# --- files and paths ----------------------------------------------------------------------------


def test_local_paths_resolve_against_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "etc"
    (config_dir / "feeds").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    for feed in (
        config_dir / "feeds" / "a.xml",
        tmp_path / "shared" / "b.xml",
        tmp_path / "shared" / "c d.xml",
    ):
        feed.write_text("<rss/>")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter for sources
    path = write(
        config_dir,
        f"""\
        sources:
          - {{id: a, url: feeds/a.xml}}
          - {{id: b, url: ../shared/b.xml}}
          - {{id: c, url: "file://{tmp_path}/shared/c%20d.xml"}}
          - {{id: d, url: "{tmp_path}/shared/b.xml"}}
          - {{id: e, url: "file:feeds/a.xml"}}
        """,
    )
    config = load_config(Path("..") / "etc" / "syndicate.yaml")  # a relative config path
    assert [s.url for s in config.sources] == [
        str(config_dir / "feeds" / "a.xml"),
        str(tmp_path / "shared" / "b.xml"),
        str(tmp_path / "shared" / "c d.xml"),
        str(tmp_path / "shared" / "b.xml"),
        str(config_dir / "feeds" / "a.xml"),
    ]
    assert all(s.is_local for s in config.sources)
    assert config.path == path


def test_parse_config_resolves_against_the_given_path(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text("<rss/>")
    config = parse_config("sources:\n  - {id: a, url: a.xml}\n", tmp_path / "virtual.yaml")
    assert config.sources[0].url == str(tmp_path / "a.xml")
    assert config.path == tmp_path / "virtual.yaml"


def test_a_missing_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert [(p.file, p.line, p.key) for p in problems(path)] == [(str(path), None, "")]
    assert "cannot read: No such file or directory" in problems(path)[0].message


def test_a_directory_is_one_problem(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path)
    assert problem.message.startswith("cannot read:")


def test_text_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(("sources:\n  - id: a\n    title: Gr\u00fc\u00dfe\n").encode("latin-1"))
    (problem,) = problems(path)
    assert (problem.line, problem.message) == (3, "not UTF-8 text (save the file as UTF-8)")


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_config(path).sources[0].id == "a"


# --- the bundled example and the summary --------------------------------------------------------


def test_example_news_config_loads() -> None:
    config = load_config(REPO / "config" / "example-news.yaml")
    assert {f.id for f in config.feeds} == {"world-en", "welt-de", "tech"}
    languages = {s.language.split("-")[0] for s in config.sources if s.language}
    assert languages == {"de", "en"}
    assert all(s.url.startswith("https://") for s in config.sources)
    for feed in config.feeds:
        assert len(config.feed_source_ids(feed)) >= 2, feed.id
    assert config.feed("welt-de").language == "de"


def test_describe_summarizes_the_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        service:
          database: postgresql://syndicate:secret@db/syndicate
          listen: "[::1]:8080"
        sources:
          - {id: bbc, url: "https://example.org/bbc.xml", tags: [world], interval: 1h30m}
          - {id: npr, url: "https://example.org/npr.xml", language: en}
        feeds:
          - {id: world, title: World, tags: [world], languages: [en], min_outlets: 2}
          - {id: all}
        """,
    )
    text = describe(load_config(path))
    assert text.splitlines() == [
        f"config: {path}",
        "database: postgresql://syndicate:***@db/syndicate",  # never print the password
        "listen: [::1]:8080 (published under http://[::1]:8080)",
        "2 sources:",
        "  bbc  https://example.org/bbc.xml; every 1h30m; tags world",
        "  npr  https://example.org/npr.xml; every 15m; language en",
        "2 feeds:",
        '  world  "World": tags world; languages en -> 1 source, newest 50,'
        " stories with at least 2 outlets",
        '  all    "all": every source -> 2 sources, newest 50',
    ]


@pytest.mark.parametrize(("snippet", "window", "threshold"), [
    ("", timedelta(days=3), 0.6),
    ("dedupe:\n  window: 12h\n", timedelta(hours=12), 0.6),
    ("dedupe:\n  threshold: 0.8\n  window: 1w\n", timedelta(weeks=1), 0.8),
])
def test_dedupe_settings(tmp_path: Path, snippet: str, window: timedelta,
                         threshold: float) -> None:
    text = snippet + "sources:\n  - id: a\n    url: https://a.example/feed\n"
    config = parse_config(text, tmp_path / "c.yaml")
    assert (config.dedupe.window, config.dedupe.threshold) == (window, threshold)


@pytest.mark.parametrize(("snippet", "key", "fragment"), [
    ("dedupe:\n  threshold: 0.1\n", "dedupe.threshold", "between 0.3 and 1.0"),
    ("dedupe:\n  window: soon\n", "dedupe.window", ""),
    ("dedupe:\n  windw: 1d\n", "dedupe.windw", "did you mean 'window'"),
])
def test_dedupe_problems(tmp_path: Path, snippet: str, key: str, fragment: str) -> None:
    text = snippet + "sources:\n  - id: a\n    url: https://a.example/feed\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "c.yaml")
    (problem,) = caught.value.problems
    assert (problem.line, problem.key) == (2, key)
    assert fragment in problem.message


def test_feed_outlet_selection(tmp_path: Path) -> None:
    text = """sources:
  - id: a
    url: https://a.example/feed
feeds:
  - id: npr
    outlets: [WWW.NPR.org, "https://bücher.de/x"]
    outlet_role: cited
"""
    (feed,) = parse_config(text, tmp_path / "c.yaml").feeds
    assert feed.outlets == ("www.npr.org", "xn--bcher-kva.de")
    assert feed.outlet_role == "cited"


@pytest.mark.parametrize(("snippet", "key", "fragment"), [
    ("    outlets: [npr]\n", "feeds[0].outlets[0]", "not a host name"),
    ("    outlet_role: quoted\n", "feeds[0].outlet_role", "must be one of any, carried, cited"),
])
def test_feed_outlet_problems(tmp_path: Path, snippet: str, key: str, fragment: str) -> None:
    text = ("sources:\n  - id: a\n    url: https://a.example/feed\n"
            "feeds:\n  - id: f\n" + snippet)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "c.yaml")
    (problem,) = caught.value.problems
    assert (problem.line, problem.key) == (6, key)
    assert fragment in problem.message


def test_a_country_code_for_a_language_gets_a_suggestion(tmp_path: Path) -> None:
    text = "sources:\n  - id: a\n    url: https://a.example/feed\n    language: jp\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "c.yaml")
    (problem,) = caught.value.problems
    assert (problem.line, problem.key) == (4, "sources[0].language")
    assert "did you mean 'ja'?" in problem.message
