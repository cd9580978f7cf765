"""The records that cross stage boundaries: frozen dataclasses, named for where they go.

    config  ──> Config / SourceConfig / FeedConfig / ServiceConfig
    fetch   ──> FetchResult | NotModified          (from FetchState stored per source)
    parse   ──> ParsedFeed / ParsedEntry / ParsedLink
    normalize ─> Entry (with SourceRef citations)
    dedupe  ──> StoryDecision
    store   ──> Story (with StorySource list) for publish and web

Times are timezone-aware UTC ``datetime`` objects everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceConfig:
    base_url: str  # public URL the feeds are served under, no trailing slash
    database: str  # SQLAlchemy URL
    listen_host: str
    listen_port: int
    user_agent: str
    data_dir: Path
    fetch_workers: int = 8  # global bound on concurrent fetches
    fetch_per_host: int = 2  # bound on concurrent fetches against one host
    parse_workers: int | None = None  # processes that parse and normalize; None: one per core
    web_workers: int = 2  # processes serving HTTP in run and serve
    connect_timeout: float = 10.0  # seconds to establish a connection
    read_timeout: float = 30.0  # seconds for the whole response, body included
    max_body_bytes: int = 16 * 1024 * 1024  # cap on the (decompressed) body
    websub_hub: str | None = None


@dataclass(frozen=True)
class SourceConfig:
    id: str
    url: str  # http(s) URL, or an absolute local path for offline sources
    title: str | None
    tags: tuple[str, ...]
    language: str | None
    interval: timedelta
    priority: int = 0  # higher wins when choosing a story's representative entry
    citation_labels: tuple[str, ...] = ()  # extra labels for "Sources:" blocks in content
    strip_patterns: tuple[str, ...] = ()  # regexes of boilerplate removed from content text

    @property
    def is_local(self) -> bool:
        return not self.url.startswith(("http://", "https://"))


@dataclass(frozen=True)
class FeedConfig:
    """One output feed: which stories it selects and how it is titled."""

    id: str
    title: str
    description: str
    tags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # source ids; with tags, the union is selected
    languages: tuple[str, ...] = ()  # empty: every language
    limit: int = 50
    min_outlets: int = 1  # a story needs at least this many outlets in its source list
    language: str | None = None  # language of the feed's own words ("Sources:"); None: "en"
    outlets: tuple[str, ...] = ()  # only stories whose source list names one of these hosts
    outlet_role: str = "any"  # ... as an outlet that "carried" it, "cited" it, or "any"


@dataclass(frozen=True)
class DedupeConfig:
    """The near-duplicate layer: copies whose dates lie within ``window`` of each other and
    whose estimated similarity reaches ``threshold`` are one story."""

    window: timedelta = timedelta(days=3)
    threshold: float = 0.6


@dataclass(frozen=True)
class Config:
    path: Path
    service: ServiceConfig
    default_interval: timedelta
    sources: tuple[SourceConfig, ...]
    feeds: tuple[FeedConfig, ...]
    dedupe: DedupeConfig = DedupeConfig()

    def source(self, source_id: str) -> SourceConfig:
        return self.sources_by_id[source_id]

    @functools.cached_property
    def sources_by_id(self) -> dict[str, SourceConfig]:
        """Built on first use: every fetch looks its source up (ten thousand of them)."""
        return {source.id: source for source in self.sources}

    def feed(self, feed_id: str) -> FeedConfig:
        for feed in self.feeds:
            if feed.id == feed_id:
                return feed
        raise KeyError(feed_id)

    def feed_source_ids(self, feed: FeedConfig) -> frozenset[str]:
        """The ids of the sources a feed selects: listed ones plus those with a selected tag."""
        wanted_tags = set(feed.tags)
        return frozenset(
            s.id for s in self.sources if s.id in feed.sources or wanted_tags & set(s.tags)
        )


# --- fetch ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchState:
    """What the store remembers about fetching one source (so a restart resumes)."""

    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None  # sha256 of the last body parsed
    next_fetch_at: datetime | None = None
    error_count: int = 0
    last_error: str | None = None
    last_status: int | None = None
    last_fetched_at: datetime | None = None
    last_success_at: datetime | None = None
    redirect_target: str | None = None  # a 301/308 target seen on the last fetches...
    redirect_count: int = 0  # ...this many times in a row
    permanent_url: str | None = None  # the confirmed new URL, fetched instead of the config's


@dataclass(frozen=True)
class FetchResult:
    """A body to parse."""

    url: str  # the final URL after redirects (base for relative links)
    status: int
    content: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    permanent_url: str | None = None  # where a 301/308 pointed, if the request was redirected


@dataclass(frozen=True)
class NotModified:
    """The server (304) or our body hash says nothing changed: a value, not an exception."""

    url: str
    etag: str | None
    last_modified: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    permanent_url: str | None = None
    body_unchanged: bool = False  # True: a 200 whose body hash matched (not a 304)


# --- parse ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedLink:
    """A link or reference as the feed gave it (e.g. RSS <source>, Atom rel=via)."""

    url: str | None
    title: str | None = None


@dataclass(frozen=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True)
class ParsedEntry:
    """One entry as the feed said it, after feedparser, before any judgement."""

    guid: str | None
    link: str | None
    title: str | None
    summary_html: str | None
    content_html: str | None
    published: datetime | None
    updated: datetime | None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    language: str | None = None
    cited: tuple[ParsedLink, ...] = ()  # the feed's own source/via/dc:source elements


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    language: str | None
    entries: tuple[ParsedEntry, ...]
    ttl_minutes: int | None = None
    warning: str | None = None  # a recoverable parse problem (feedparser's bozo), for operators


# --- normalize / dedupe -----------------------------------------------------------------------


def outlet_key(host: str, name: str) -> str:
    """Identity of an outlet: www.npr.org and npr.org are one; one with no host (``dpa``,
    ``Reuters``) is known by its case-folded name."""
    return host.removeprefix("www.") if host else "name:" + name.casefold()


@dataclass(frozen=True)
class NormalizedFeed:
    """A changed feed, parsed, with its new or edited entries normalized (``ingest.reading``)."""

    link: str | None
    site_title: str | None  # the feed's title as plain text, for naming it as an outlet
    ttl_minutes: int | None
    warning: str | None
    entry_count: int  # entries in the feed, unchanged ones included
    entries: tuple[Entry, ...]  # only the new or edited ones
    raw_digests: dict[str, str]  # GUID → input digest of each of ``entries``


@dataclass(frozen=True)
class SourceRef:
    """A normalized outlet: lower-case IDNA host (may be empty), a display name, the URL
    when known."""

    host: str
    name: str
    url: str | None = None

    @property
    def key(self) -> str:
        return outlet_key(self.host, self.name)


@dataclass(frozen=True)
class Entry:
    """One normalized article from one source."""

    source_id: str
    guid: str  # the source's GUID, or a stable stand-in when it gave none
    link: str | None  # canonical URL, http(s) only
    title: str
    summary_html: str
    content_html: str
    text: str  # plain text of the content (or summary)
    published: datetime  # first-seen time when the feed gave no date
    updated: datetime
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    language: str | None
    cited: tuple[SourceRef, ...]
    place: str | None
    content_hash: str | None  # None when the text is too thin to identify a story
    # Near-duplicate fingerprints (see ingest/similarity.py): MinHash of the summary (or the
    # text when there is none) and of the whole text; the numbers the entry mentions.
    lead_signature: bytes | None = None
    body_signature: bytes | None = None
    numbers: tuple[str, ...] = ()
    dated: bool = True  # False: the feed gave no usable date, ``published`` is first-seen
    # The LSH band keys of the signatures (similarity.entry_band_keys), computed with them in
    # the parse worker, so the one writing thread need not. Empty: not computed (an entry
    # read back from the store), and dedupe.band_keys derives them.
    band_keys: tuple[int, ...] = ()
    # dedupe.entry_digest, computed in the parse worker for the same reason. Empty: not
    # computed, or cleared by a change of the fields it covers (``dataclasses.replace``).
    digest: str = ""


@dataclass(frozen=True)
class SimilarCandidate:
    """A stored entry that shares an LSH band with a new one, for verification."""

    entry_id: int
    story_id: int
    lead_signature: bytes | None
    body_signature: bytes | None
    numbers: tuple[str, ...]


@dataclass(frozen=True)
class StorySource:
    """One entry of a story's source list."""

    host: str
    name: str
    url: str | None
    carried: bool  # True: one of our sources carried the story; False: a member cited it

    @property
    def key(self) -> str:
        return outlet_key(self.host, self.name)


@dataclass(frozen=True)
class StoryMember:
    source_id: str
    guid: str
    link: str | None
    reason: str  # "new", "guid", "url", "hash", "similar"
    score: float | None


@dataclass(frozen=True)
class Story:
    id: int
    guid: str  # published GUID; never changes once assigned
    title: str
    link: str | None
    summary_html: str
    content_html: str
    text: str
    published: datetime
    updated: datetime
    first_seen: datetime
    language: str | None
    place: str | None
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    sources: tuple[StorySource, ...]
    members: tuple[StoryMember, ...] = ()


# --- publish ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedFeed:
    """Bytes rendered once per change, served as they are."""

    feed_id: str
    format: str  # "rss", "atom", "json"
    content_type: str
    body: bytes
    gzip_body: bytes
    etag: str  # strong, quoted
    last_modified: datetime
    previous_modified: datetime | None = None  # the change before, when there was one


# --- store ↔ dedupe ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExistingEntry:
    """What dedupe needs to know about an entry already stored under the same (source, GUID)."""

    id: int
    story_id: int
    digest: str
    published: datetime
    updated: datetime


@dataclass(frozen=True)
class StoredMember:
    """A stored entry of a story, for rebuilding the story from its members."""

    id: int
    entry: Entry
    first_seen: datetime
    reason: str
    score: float | None


@dataclass(frozen=True)
class SourceInfo:
    """What we know of one of our sources, to name it as an outlet that carried a story."""

    id: str
    title: str | None  # configured title, else the feed's own
    site_url: str | None  # the feed's home page, else the feed URL
    priority: int = 0


@dataclass(frozen=True)
class StoryUpdate:
    """A story's fields rebuilt from its members; the GUID is never part of it."""

    title: str
    link: str | None
    summary_html: str
    content_html: str
    text: str
    published: datetime
    updated: datetime
    language: str | None
    place: str | None
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    sources: tuple[StorySource, ...]
