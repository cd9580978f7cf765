"""Which story an entry belongs to, and what a story looks like given its members. Pure.

Exact layer — an entry joins an existing story when, in this order:

1. ``guid``: the same source already gave an entry with this GUID (it is that entry, again);
2. ``url``: another source's stored entry has the same canonical URL (tracking parameters,
   case, default port and fragment are gone by now, see ``normalize.canonical_url``). A
   site's home page is no story's URL, and within one source a shared link (a section page,
   a live blog) is no identity either: there the other keys decide;
3. ``hash``: a stored entry has the same content hash (the case-folded body text with
   punctuation and white space collapsed; thin texts have no hash and never match).

Near-duplicate layer — failing those, ``similar``: a stored entry in the same language,
dated within the configured window of this one (the entries' own dates, not the clock, so an
archive clusters like today's news), shares an LSH band of the lead or body signature (see
``similarity``), and verifies: estimated Jaccard similarity of the lead (summary) or of the
body reaches the threshold, and the numbers both mention agree (``similarity.numbers_agree``:
the next day's market report shares its sentences but not its figures). The best-scoring
candidate's story wins; its score is stored. Precision comes first: measured on the bench
corpus (``bench/dedup_eval.py``), a threshold of 0.6 keeps pairwise precision above 0.99.

Otherwise the entry starts a new story. The decision and its reason are stored with the
entry, so an operator can see why two items were folded together.

A story is rebuilt from its members whenever one joins or changes:

- representative (title, link, summary, content): the member whose source has the highest
  configured ``priority``; among equals, the one seen first. A later copy never replaces what
  readers already saw unless an operator prefers its source.
- source list: for each member in the order they were first seen, the outlet that carried it
  (``carried=True``, linking to that outlet's own copy), then the outlets it cites; each
  outlet once, at its first position, and marked carried if any member carried it.
- published: the earliest member's date; updated: the latest of the members' dates.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..types import (
    Entry,
    ExistingEntry,
    SimilarCandidate,
    SourceInfo,
    StoredMember,
    StorySource,
    StoryUpdate,
)
from . import similarity

# Story GUIDs are UUIDv5 under this namespace, from the first member's (source, GUID): the
# same on every machine that ingests the same entry first, and never changed afterwards.
_STORY_NAMESPACE = uuid.UUID("5b0f3f1e-8f5e-4c51-9a57-3c3f2d0a5e11")


MAX_SOURCES = 100  # outlets in one story's source list: past this it is a link farm


@dataclass(frozen=True)
class StoryDecision:
    story_id: int | None  # None: start a new story
    existing_entry_id: int | None  # set when the entry is already stored (same source + GUID)
    reason: str  # "new", "guid", "url", "hash", "similar"
    score: float | None = None
    changed: bool = True  # False: the stored copy is identical, nothing to write


def decide(entry: Entry, existing: ExistingEntry | None, story_by_link: int | None,
           story_by_hash: int | None,
           similar: tuple[int, float] | None = None) -> StoryDecision:
    if existing is not None:
        return StoryDecision(existing.story_id, existing.id, "guid",
                             changed=existing.digest != entry_digest(entry))
    if story_by_link is not None:
        return StoryDecision(story_by_link, None, "url")
    if story_by_hash is not None:
        return StoryDecision(story_by_hash, None, "hash")
    if similar is not None:
        return StoryDecision(similar[0], None, "similar", score=round(similar[1], 4))
    return StoryDecision(None, None, "new")


def link_identifies_story(link: str | None) -> bool:
    """A home page ("https://site.example/", with no query) names a site, not a story."""
    if not link:
        return False
    parts = urlsplit(link)
    return bool(parts.path.strip("/") or parts.query)


def band_keys(entry: Entry) -> tuple[int, ...]:
    """The LSH band keys under which an entry is indexed and looked up."""
    if entry.band_keys:
        return entry.band_keys
    return tuple(similarity.entry_band_keys(entry.lead_signature, entry.body_signature))


def best_similar(entry: Entry, candidates: Iterable[SimilarCandidate],
                 threshold: float) -> tuple[int, float] | None:
    """The story of the most similar verified candidate, with its score, or None."""
    best: tuple[int, float] | None = None
    for candidate in candidates:
        score = max(_score(entry.lead_signature, candidate.lead_signature),
                    _score(entry.body_signature, candidate.body_signature))
        if score < threshold or not similarity.numbers_agree(entry.numbers, candidate.numbers):
            continue
        if best is None or score > best[1]:
            best = (candidate.story_id, score)
    return best


def _score(a: bytes | None, b: bytes | None) -> float:
    return similarity.similarity(a, b) if a and b else 0.0


def story_guid(source_id: str, entry_guid: str) -> str:
    # JSON keeps the pair unambiguous whatever characters the GUID holds.
    name = json.dumps([source_id, entry_guid])
    return "urn:uuid:" + str(uuid.uuid5(_STORY_NAMESPACE, name))


def entry_digest(entry: Entry) -> str:
    """A digest of everything we republish from an entry, to skip rewriting unchanged ones:
    the one the parse worker computed (``Entry.digest``), else computed here."""
    return entry.digest or digest_of_fields(entry)


def digest_of_fields(entry: Entry) -> str:
    fields = [
        entry.title, entry.link, entry.summary_html, entry.content_html,
        entry.published.isoformat(), entry.updated.isoformat(), list(entry.authors),
        list(entry.categories), [[e.url, e.type, e.length] for e in entry.enclosures],
        entry.language, [[r.host, r.name, r.url] for r in entry.cited], entry.place,
    ]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def carried_outlet(source: SourceInfo, article: str | None = None) -> StorySource:
    """Our own source, named as an outlet: its site's host and title, linking to its copy of
    the story (``article``) when it has one, else to its home page."""
    site = source.site_url if source.site_url and _is_http(source.site_url) else None
    host = (urlsplit(site).hostname or "") if site else ""
    url = article if article and _is_http(article) else site
    return StorySource(host=host, name=source.title or host or source.id, url=url, carried=True)


def build_story(members: Sequence[StoredMember], sources: Mapping[str, SourceInfo]) -> StoryUpdate:
    if not members:
        raise ValueError("a story needs at least one member")
    if len(members) == 1:  # most stories: no order to find
        by_first_seen = list(members)
        representative = members[0]
    else:
        by_first_seen = sorted(members, key=lambda m: (m.first_seen, m.id))
        representative = min(by_first_seen, key=lambda m: -_priority(sources, m.entry.source_id))
    entry = representative.entry
    return StoryUpdate(
        title=entry.title,
        link=entry.link,
        summary_html=entry.summary_html,
        content_html=entry.content_html,
        text=entry.text,
        published=min(m.entry.published for m in members),
        updated=max(m.entry.updated for m in members),
        language=entry.language,
        place=entry.place or next((m.entry.place for m in by_first_seen if m.entry.place), None),
        authors=entry.authors,
        categories=_union(m.entry.categories for m in by_first_seen),
        enclosures=entry.enclosures,
        sources=merge_source_list(by_first_seen, sources),
    )


def _priority(sources: Mapping[str, SourceInfo], source_id: str) -> int:
    info = sources.get(source_id)
    return info.priority if info is not None else 0


def merge_source_list(members: Sequence[StoredMember],
                      sources: Mapping[str, SourceInfo]) -> tuple[StorySource, ...]:
    """The union of carrying and cited outlets, in order of first appearance, each once, at
    most ``MAX_SOURCES``."""
    merged: dict[str, StorySource] = {}
    for member in members:
        info = sources.get(member.entry.source_id) or SourceInfo(member.entry.source_id, None, None)
        candidates = [carried_outlet(info, member.entry.link)] + [
            StorySource(ref.host, ref.name, ref.url, carried=False) for ref in member.entry.cited
        ]
        for outlet in candidates:
            key = outlet.key
            known = merged.get(key)
            if known is None:
                merged[key] = outlet
            elif outlet.carried and not known.carried:
                merged[key] = StorySource(known.host, known.name, known.url or outlet.url, True)
            elif known.url is None and outlet.url:
                merged[key] = StorySource(known.host, known.name, outlet.url, known.carried)
    return tuple(merged.values())[:MAX_SOURCES]


def _union(groups: Iterable[Sequence[str]]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item.casefold(), item)
    return tuple(seen.values())[:20]


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))
