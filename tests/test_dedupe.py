"""Story decisions and story rebuilding: pure functions, table-driven."""

from __future__ import annotations

import pytest

from syndicate.ingest import dedupe
from syndicate.types import ExistingEntry, SourceInfo, StoredMember, StorySource
from tests.factories import T0, later, make_entry, ref

ENTRY = make_entry()
SAME_DIGEST = dedupe.entry_digest(ENTRY)


@pytest.mark.parametrize(("existing", "by_link", "by_hash", "expected"), [
    (None, None, None, (None, None, "new", True)),
    (ExistingEntry(7, 3, SAME_DIGEST, T0, T0), 9, 9, (3, 7, "guid", False)),  # known and unchanged
    (ExistingEntry(7, 3, "old digest", T0, T0), None, None, (3, 7, "guid", True)),
    (None, 4, 5, (4, None, "url", True)),  # the URL beats the hash
    (None, None, 5, (5, None, "hash", True)),
])
def test_decide(existing: ExistingEntry | None, by_link: int | None, by_hash: int | None,
                expected: tuple[int | None, int | None, str, bool]) -> None:
    decision = dedupe.decide(ENTRY, existing, by_link, by_hash)
    assert (decision.story_id, decision.existing_entry_id, decision.reason,
            decision.changed) == expected


def test_story_guid_is_stable_and_distinct() -> None:
    assert dedupe.story_guid("alpha", "g1") == dedupe.story_guid("alpha", "g1")
    assert dedupe.story_guid("alpha", "g1") != dedupe.story_guid("beta", "g1")
    assert dedupe.story_guid("a", "b\x00c") != dedupe.story_guid("a\x00b", "c")
    assert dedupe.story_guid("alpha", "g1").startswith("urn:uuid:")


def test_digest_changes_with_every_republished_field() -> None:
    variants = [
        make_entry(title="other"), make_entry(link="https://x.example/"),
        make_entry(content_html="<p>x</p>"), make_entry(updated=later(1)),
        make_entry(cited=(ref("npr.org"),)), make_entry(place="Sumy"),
        make_entry(categories=("a",)),
    ]
    digests = {dedupe.entry_digest(v) for v in variants}
    assert SAME_DIGEST not in digests
    assert len(digests) == len(variants)


INFOS = {
    "alpha": SourceInfo("alpha", "Alpha News", "https://alpha.example/", 0),
    "beta": SourceInfo("beta", None, "https://www.beta.example/home", 5),
    "local": SourceInfo("local", None, None, 0),
}


def member(id_: int, entry_source: str, minutes: int, **changes: object) -> StoredMember:
    entry = make_entry(entry_source, f"g{id_}", **changes)  # type: ignore[arg-type]
    return StoredMember(id_, entry, later(minutes), "new", None)


def test_source_list_is_union_in_first_appearance_order() -> None:
    members = [
        member(1, "alpha", 0, cited=(ref("www.npr.org"), ref("beta.example"))),
        member(2, "beta", 5, cited=(ref("npr.org", url="https://npr.org/x"), ref("dpa.de"))),
    ]
    sources = dedupe.merge_source_list(members, INFOS)
    assert sources == (
        StorySource("alpha.example", "Alpha News", "https://news.example/g1", True),
        StorySource("www.npr.org", "www.npr.org", "https://npr.org/x", False),
        # cited first by alpha, then carried by beta: one outlet, now marked carried
        StorySource("beta.example", "beta.example", "https://news.example/g2", True),
        StorySource("dpa.de", "dpa.de", None, False),
    )


def test_outlet_without_host_is_known_by_name() -> None:
    members = [member(1, "local", 0, cited=(ref("", "Reuters"), ref("", "reuters")))]
    sources = dedupe.merge_source_list(members, INFOS)
    assert [(s.host, s.name, s.carried) for s in sources] == [
        ("", "local", True), ("", "Reuters", False)]


def test_representative_is_highest_priority_then_earliest() -> None:
    members = [member(1, "alpha", 0, title="First"), member(2, "beta", 10, title="Preferred")]
    story = dedupe.build_story(members, INFOS)
    assert story.title == "Preferred"  # beta has priority 5
    equal = {k: SourceInfo(v.id, v.title, v.site_url, 0) for k, v in INFOS.items()}
    assert dedupe.build_story(members, equal).title == "First"


def test_story_dates_span_members() -> None:
    members = [member(1, "alpha", 0, published=later(30), updated=later(30)),
               member(2, "beta", 10, published=T0, updated=later(90))]
    story = dedupe.build_story(members, INFOS)
    assert story.published == T0
    assert story.updated == later(90)


def test_build_story_needs_members() -> None:
    with pytest.raises(ValueError):
        dedupe.build_story([], INFOS)


@pytest.mark.parametrize(("link", "identifies"), [
    ("https://news.example/2026/bridge", True),
    ("https://news.example/?p=123", True),
    ("https://news.example/", False),
    ("https://news.example", False),
    (None, False),
])
def test_link_identifies_story(link: str | None, identifies: bool) -> None:
    assert dedupe.link_identifies_story(link) is identifies


def test_source_list_is_bounded() -> None:
    cited = tuple(ref(f"outlet{i}.example") for i in range(500))
    sources = dedupe.merge_source_list([member(1, "alpha", 0, cited=cited)], INFOS)
    assert len(sources) == dedupe.MAX_SOURCES
    assert sources[0].carried
