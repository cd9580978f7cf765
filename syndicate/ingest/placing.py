"""Placing one source update's entries in stories, a batch at a time.

The rules are ``dedupe``'s; this module only gathers what they need with a handful of
queries per batch instead of several per entry, and writes the result in bulk:

1. look up, for the whole batch: entries already stored under the same (source, GUID), other
   sources' entries with the same links, entries with the same content hashes, and entries
   sharing an LSH band (with their signatures, for verification);
2. decide entry by entry, in feed order, with what earlier entries of the same batch added
   (their links, hashes and bands) counting as stored — so two copies in one batch still
   meet;
3. insert the new stories (built whole from their members), the new entries and their
   bands; rewrite entries that changed; rebuild the stored stories that gained a member.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..languages import primary_language
from ..store import UpdateTransaction
from ..store.database import Neighbour, NewEntry
from ..types import (
    DedupeConfig,
    Entry,
    ExistingEntry,
    SimilarCandidate,
    SourceInfo,
    StoredMember,
)
from . import dedupe

_MAX_CANDIDATES = 200  # verified per entry; more sharing a band is boilerplate, not a story


@dataclass
class _Batch:
    """What the batch knows beyond the store: stories it created, and its own keys."""

    new_members: dict[int, list[Entry]] = field(default_factory=dict)  # placeholder → members
    links: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    hashes: dict[str, int] = field(default_factory=dict)
    bands: dict[int, list[Neighbour]] = field(default_factory=lambda: defaultdict(list))
    remembered: int = 0  # entries of the batch made findable so far

    def new_story(self, entry: Entry) -> int:
        placeholder = -(len(self.new_members) + 1)  # real ids are positive
        self.new_members[placeholder] = [entry]
        return placeholder


def apply_entries(tx: UpdateTransaction, entries: Sequence[Entry], config: DedupeConfig,
                  infos: Mapping[str, SourceInfo],
                  raw_digests: Mapping[str, str] | None = None) -> tuple[int, set[int]]:
    """Place each entry in its story (new, joined, or updated in place); return the number
    of new entries and the ids of the stories that changed."""
    raw_digests = raw_digests or {}
    existing = _existing(tx, entries)
    links = tx.links_in_use({e.link for e in entries
                             if e.link and dedupe.link_identifies_story(e.link)})
    hashes = tx.stories_by_hashes({e.content_hash for e in entries if e.content_hash})
    keys_of = {id(e): dedupe.band_keys(e) for e in entries}  # computed once per entry
    neighbours = _band_neighbours(tx, entries, keys_of, config)

    batch = _Batch()
    added: list[NewEntry] = []
    rebuild: set[int] = set()
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        if (entry.source_id, entry.guid) in seen:
            continue  # a feed that repeats a GUID: its first entry is the one
        seen.add((entry.source_id, entry.guid))
        known = existing.get((entry.source_id, entry.guid))
        keys = keys_of[id(entry)]  # the signatures a date change below leaves as they are
        if known is not None and not entry.dated:
            # the feed still gives no date: keep the one the entry got when first seen
            entry = replace(entry, published=known.published,
                            updated=max(known.updated, known.published), digest="")
        decision = _decide(entry, known, links, hashes, neighbours, keys, batch, config)
        raw = raw_digests.get(entry.guid)
        if not decision.changed:
            if raw is not None and known is not None:
                tx.remember_raw_digest(known.id, raw)
            continue
        digest = dedupe.entry_digest(entry)
        if decision.existing_entry_id is not None:
            tx.update_entry(decision.existing_entry_id, entry, digest=digest, band_keys=keys,
                            raw_digest=raw)
            assert decision.story_id is not None
            rebuild.add(decision.story_id)
            continue
        story_id = decision.story_id
        if story_id is None:
            story_id = batch.new_story(entry)
        elif story_id < 0:
            batch.new_members[story_id].append(entry)
        else:
            rebuild.add(story_id)
        added.append(NewEntry(entry, story_id, digest, decision.reason, decision.score, raw,
                              tuple(keys)))
        _remember(batch, entry, story_id, keys)

    real_ids = _insert_new_stories(tx, batch, infos)
    tx.insert_entries([replace(new, story_id=real_ids.get(new.story_id, new.story_id))
                       for new in added])
    for story_id in rebuild:
        tx.write_story(story_id, dedupe.build_story(tx.members(story_id), infos))
    return len(added), rebuild | set(real_ids.values())


def _existing(tx: UpdateTransaction,
              entries: Sequence[Entry]) -> dict[tuple[str, str], ExistingEntry]:
    by_source: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        by_source[entry.source_id].add(entry.guid)
    found = {}
    for source_id, guids in by_source.items():
        for guid, known in tx.existing_entries(source_id, guids).items():
            found[(source_id, guid)] = known
    return found


def _band_neighbours(tx: UpdateTransaction, entries: Sequence[Entry],
                     keys_of: Mapping[int, Sequence[int]],
                     config: DedupeConfig) -> dict[int, list[Neighbour]]:
    probes = [(e.published - config.window, e.published + config.window, keys_of[id(e)])
              for e in entries if keys_of[id(e)]]
    return tx.band_neighbours(probes) if probes else {}


def _decide(entry: Entry, known: ExistingEntry | None,
            links: Mapping[str, list[tuple[int, str]]], hashes: Mapping[str, int],
            neighbours: Mapping[int, list[Neighbour]], keys: Sequence[int], batch: _Batch,
            config: DedupeConfig) -> dedupe.StoryDecision:
    if known is not None:
        return dedupe.decide(entry, known, None, None)
    by_link = _story_by_link(entry, links, batch)
    by_hash = None
    if by_link is None and entry.content_hash:
        by_hash = batch.hashes.get(entry.content_hash) or hashes.get(entry.content_hash)
    similar = None
    if by_link is None and by_hash is None:
        similar = dedupe.best_similar(
            entry, _candidates(entry, keys, neighbours, batch, config), config.threshold)
    return dedupe.decide(entry, None, by_link, by_hash, similar)


def _story_by_link(entry: Entry, links: Mapping[str, list[tuple[int, str]]],
                   batch: _Batch) -> int | None:
    """Another source's entry with this link (see dedupe: within a source it decides nothing)."""
    if not dedupe.link_identifies_story(entry.link):
        return None
    assert entry.link is not None
    for story_id, source_id in [*batch.links.get(entry.link, []), *links.get(entry.link, [])]:
        if source_id != entry.source_id:
            return story_id
    return None


def _candidates(entry: Entry, keys: Sequence[int],
                neighbours: Mapping[int, list[Neighbour]], batch: _Batch,
                config: DedupeConfig) -> list[SimilarCandidate]:
    language = primary_language(entry.language)
    since = int((entry.published - config.window).timestamp())
    until = int((entry.published + config.window).timestamp())
    found: dict[int, SimilarCandidate] = {}
    for key in keys:
        for neighbour in [*neighbours.get(key, ()), *batch.bands.get(key, ())]:
            if neighbour.language == language and since <= neighbour.published_ts <= until:
                found.setdefault(neighbour.candidate.entry_id, neighbour.candidate)
    return sorted(found.values(), key=lambda c: -c.entry_id)[:_MAX_CANDIDATES]


def _remember(batch: _Batch, entry: Entry, story_id: int, keys: Sequence[int]) -> None:
    """Make an entry of this batch findable by the batch's later entries."""
    if entry.link and dedupe.link_identifies_story(entry.link):
        batch.links[entry.link].append((story_id, entry.source_id))
    if entry.content_hash:
        batch.hashes.setdefault(entry.content_hash, story_id)
    # Entries of the batch have no id yet; a negative one keeps them apart from stored ones.
    batch.remembered += 1
    candidate = SimilarCandidate(-batch.remembered, story_id, entry.lead_signature,
                                 entry.body_signature, entry.numbers)
    neighbour = Neighbour(int(entry.published.timestamp()), primary_language(entry.language),
                          candidate)
    for key in keys:
        batch.bands[key].append(neighbour)


def _insert_new_stories(tx: UpdateTransaction, batch: _Batch,
                        infos: Mapping[str, SourceInfo]) -> dict[int, int]:
    """Insert the stories this batch created, built from their members: placeholder → id."""
    placeholders = list(batch.new_members)
    stories = []
    for placeholder in placeholders:
        members = batch.new_members[placeholder]
        first = members[0]
        built = dedupe.build_story(
            [StoredMember(i, m, tx.now, "new", None) for i, m in enumerate(members)], infos)
        stories.append((dedupe.story_guid(first.source_id, first.guid), built))
    return dict(zip(placeholders, tx.insert_stories(stories), strict=True))
