"""The storage contract, run against a real SQLite file and the real PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from syndicate.errors import StoreError
from syndicate.ingest import dedupe
from syndicate.publish import rendered_feed
from syndicate.store import Store
from syndicate.store import schema as store_schema
from syndicate.store.database import NewEntry
from syndicate.types import SourceConfig, SourceInfo, StoredMember
from tests.factories import T0, later, make_entry, ref

INTERVAL = timedelta(minutes=15)


def source(id_: str, url: str = "https://feeds.example/x.xml") -> SourceConfig:
    return SourceConfig(id=id_, url=url, title=None, tags=(), language=None, interval=INTERVAL)


@pytest.fixture
def store(store_url: str) -> Store:
    store = Store(store_url)
    yield store  # type: ignore[misc]
    store.close()


def test_migrations_record_the_version_and_do_not_rerun(store_url: str) -> None:
    Store(store_url).close()
    second = Store(store_url)
    with second.engine.connect() as conn:
        assert store_schema.schema_version(conn) == store_schema.SCHEMA_VERSION
    second.close()


def test_a_database_from_a_newer_syndicate_is_refused(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(store_schema.meta.update().values(value="999"))
    with pytest.raises(StoreError, match="newer than this syndicate"):
        Store(store.url)


def test_fetch_state_round_trip(store: Store) -> None:
    store.sync_sources([source("a"), source("b")], T0)
    assert store.due_sources(["a", "b"], T0) == ["a", "b"]
    store.record_not_modified("a", etag='"e1"', last_modified="Mon, 23 Nov 2026 08:00:00 GMT",
                              status=304, next_fetch_at=later(15), now=T0)
    store.record_failure("b", message="HTTP 500 Internal Server Error", status=500,
                         next_fetch_at=later(30), now=T0)
    store.record_failure("b", message="connection refused", status=None,
                         next_fetch_at=later(60), now=later(30))

    a, b = store.fetch_state("a"), store.fetch_state("b")
    assert (a.etag, a.last_modified, a.next_fetch_at, a.error_count) == (
        '"e1"', "Mon, 23 Nov 2026 08:00:00 GMT", later(15), 0)
    assert (b.error_count, b.last_error, b.next_fetch_at) == (2, "connection refused", later(60))
    assert store.due_sources(["a", "b"], later(20)) == ["a"]
    assert store.due_sources(["a", "b"], later(60)) == ["a", "b"]


def test_changing_a_source_url_forgets_its_validators(store: Store) -> None:
    store.sync_sources([source("a")], T0)
    store.record_not_modified("a", etag='"e1"', last_modified=None, status=304,
                              next_fetch_at=later(15), now=T0)
    store.sync_sources([source("a", "https://elsewhere.example/feed")], later(1))
    state = store.fetch_state("a")
    assert state.etag is None
    assert state.next_fetch_at == later(1)


def add_story(store: Store, *entries_and_reasons: tuple[object, str]) -> int:
    infos = {"a": SourceInfo("a", "A", "https://a.example/"),
             "b": SourceInfo("b", "B", "https://b.example/")}
    entries = [entry for entry, _ in entries_and_reasons]
    with store.transaction(T0) as tx:
        first = entries[0]
        (story_id,) = tx.insert_stories([(
            dedupe.story_guid(first.source_id, first.guid),  # type: ignore[attr-defined]
            dedupe.build_story([StoredMember(0, first, T0, "new", None)], infos))])  # type: ignore[arg-type]
        tx.insert_entries([
            NewEntry(entry, story_id, dedupe.entry_digest(entry), reason, None, None, ())  # type: ignore[arg-type]
            for entry, reason in entries_and_reasons])
        tx.write_story(story_id, dedupe.build_story(tx.members(story_id), infos))
    return story_id


def test_stories_and_members_round_trip(store: Store) -> None:
    store.sync_sources([source("a"), source("b")], T0)
    first = make_entry("a", "g1", cited=(ref("www.npr.org", "NPR", "https://www.npr.org/x"),),
                       place="Sumy, Ukraine", categories=("World",))
    second = make_entry("b", "g9", link=first.link, published=later(5), updated=later(50))
    add_story(store, (first, "new"), (second, "url"))

    (story,) = store.stories_with_members(store.select_stories(["a"]))
    assert story.title == first.title
    assert story.guid == dedupe.story_guid("a", "g1")
    assert story.place == "Sumy, Ukraine"
    assert story.updated == later(50)
    assert [(s.host, s.carried) for s in story.sources] == [
        ("a.example", True), ("www.npr.org", False), ("b.example", True)]
    assert [(m.source_id, m.guid, m.reason) for m in story.members] == [
        ("a", "g1", "new"), ("b", "g9", "url")]

    with store.transaction(T0) as tx:
        existing = tx.existing_entries("b", ["g9", "nope"])
        assert list(existing) == ["g9"] and existing["g9"].story_id == story.id
        assert first.link is not None
        assert tx.links_in_use([first.link, first.link + "x"]) == {
            first.link: [(story.id, "a"), (story.id, "b")]}
        assert tx.stories_by_hashes(["nope"]) == {}


def test_select_filters_and_orders(store: Store) -> None:
    add_story(store, (make_entry("a", "old", published=T0, language="de-DE"), "new"))
    add_story(store, (make_entry("a", "new", published=later(60), language="en"), "new"))
    add_story(store, (make_entry("b", "two", published=later(30), language="en"), "new"),
              (make_entry("a", "two-a", link="https://news.example/two"), "url"))

    titles = [s.title for s in store.select_stories(["a"])]
    assert titles == ["Title new", "Title two", "Title old"]
    assert [s.title for s in store.select_stories(["a"], languages=["de"])] == ["Title old"]
    assert [s.title for s in store.select_stories(["a"], min_outlets=2)] == ["Title two"]
    assert [s.title for s in store.select_stories(["a"], limit=1)] == ["Title new"]
    assert [s.title for s in store.select_stories(["b"])] == ["Title two"]


def test_a_failed_update_leaves_nothing_behind(store: Store) -> None:
    store.sync_sources([source("a")], T0)
    with pytest.raises(RuntimeError), store.transaction(T0) as tx:
        entry = make_entry("a", "g1")
        (story_id,) = tx.insert_stories([("urn:uuid:x", dedupe.build_story(
            [StoredMember(0, entry, T0, "new", None)], {}))])
        tx.insert_entries([NewEntry(entry, story_id, "d", "new", None, None, (1, 2))])
        raise RuntimeError("killed mid-update")
    assert store.story_count() == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(
            store_schema.entries)).scalar() == 0


def test_rendered_feeds_are_saved_once_per_change(store: Store) -> None:
    first = rendered_feed("news", "rss", b"<rss>1</rss>", T0)
    assert store.save_rendered(first) is True
    assert store.save_rendered(replace(first, last_modified=later(5))) is False
    assert store.rendered_feed("news", "rss") == first
    second = rendered_feed("news", "rss", b"<rss>2</rss>", later(10))
    assert store.save_rendered(second) is True
    assert store.rendered_etags() == {("news", "rss"): second.etag}
    assert store.rendered_feed("news", "atom") is None


def test_dates_come_back_aware_utc(store: Store) -> None:
    add_story(store, (make_entry("a", "g1", published=later(1)), "new"))
    (story,) = store.select_stories(["a"])
    assert story.published == later(1)
    assert story.published.utcoffset() == timedelta(0)


def test_select_by_outlet_and_role(store: Store) -> None:
    npr = ref("www.npr.org", "NPR", "https://www.npr.org/x")
    add_story(store, (make_entry("a", "cites-npr", cited=(npr,)), "new"))
    add_story(store, (make_entry("b", "carried-by-b"), "new"))
    add_story(store, (make_entry("a", "plain"), "new"))

    def titles(**filters: object) -> list[str]:
        return sorted(s.title for s in store.select_stories(["a", "b"], **filters))  # type: ignore[arg-type]

    assert titles(outlets=["npr.org"]) == ["Title cites-npr"]  # www. does not matter
    assert titles(outlets=["npr.org"], outlet_role="cited") == ["Title cites-npr"]
    assert titles(outlets=["npr.org"], outlet_role="carried") == []
    assert titles(outlets=["b.example"], outlet_role="carried") == ["Title carried-by-b"]
    assert titles(outlets=["a.example", "b.example"]) == [
        "Title carried-by-b", "Title cites-npr", "Title plain"]


def test_concurrent_writers_wait_for_each_other(store: Store) -> None:
    """Read-then-write transactions take the write lock up front: none fails because another
    writer committed in between (SQLite under WAL would raise SQLITE_BUSY at once)."""
    import threading

    errors: list[BaseException] = []

    def publish() -> None:
        try:
            for i in range(60):
                store.save_rendered(rendered_feed("news", "rss", b"<rss>%d</rss>" % i, T0))
        except BaseException as e:  # noqa: BLE001 (collected for the assertion below)
            errors.append(e)

    def ingest() -> None:
        try:
            for i in range(30):
                add_story(store, (make_entry("a", f"g{i}"), "new"))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=publish), threading.Thread(target=publish),
               threading.Thread(target=ingest)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.story_count() == 30


def test_placing_a_batch_on_both_backends(store: Store) -> None:
    """The batched look-ups and bulk inserts of ingest/placing.py, on SQLite and PostgreSQL:
    exact keys, similarity within the batch and against the store, a repeated GUID."""
    from syndicate.ingest import similarity
    from syndicate.ingest.placing import apply_entries
    from syndicate.types import DedupeConfig

    text = ("The river authority opened the rebuilt lock at Kesselbrück on Tuesday after "
            "14 months of work, letting barges of up to 110 metres pass again.")

    def fingerprinted(source_id: str, guid: str, body: str, **changes: object) -> object:
        return make_entry(source_id, guid, text=body, lead_signature=similarity.signature(body),
                          body_signature=similarity.signature(body),
                          numbers=similarity.numbers(body), **changes)

    store.sync_sources([source("a"), source("b")], T0)
    first = fingerprinted("a", "a1", text)
    copy = fingerprinted("b", "b1", "Update: " + text, link="https://partner.example/x")
    other = fingerprinted("a", "a2", "A different story about a library and its opening hours "
                          "during the exam season, with students collecting signatures.")
    with store.transaction(T0) as tx:
        new, touched = apply_entries(tx, [first, other, first, copy],  # type: ignore[list-item]
                                     DedupeConfig(), {})
    assert (new, len(touched)) == (3, 2)  # the repeated GUID is skipped

    late = fingerprinted("b", "b2", "Archive: " + text, link="https://partner.example/y")
    same_link = make_entry("b", "b3", link=first.link)  # type: ignore[attr-defined]
    with store.transaction(T0) as tx:
        apply_entries(tx, [late, same_link], DedupeConfig(), {})  # type: ignore[list-item]
    stories = store.stories_with_members(store.select_stories(["a", "b"]))
    by_size = sorted((len(s.members), sorted(m.reason for m in s.members)) for s in stories)
    assert by_size == [(1, ["new"]), (4, ["new", "similar", "similar", "url"])]


def test_an_undated_entry_seen_again_unchanged_is_not_rewritten(store: Store) -> None:
    """The parse worker digests an undated entry with the time it was read as its date; the
    writer gives it back its first-seen date, and must compare the digest of that."""
    from syndicate.ingest.placing import apply_entries
    from syndicate.types import DedupeConfig

    def read_at(when: Any) -> Any:  # as the parse worker hands it over
        entry = make_entry("a", "u", published=when, updated=when, dated=False)
        return replace(entry, digest=dedupe.digest_of_fields(entry))

    store.sync_sources([source("a")], T0)
    with store.transaction(T0) as tx:
        assert apply_entries(tx, [read_at(T0)], DedupeConfig(), {})[0] == 1
    with store.transaction(later(30)) as tx:
        new, touched = apply_entries(tx, [read_at(later(30))], DedupeConfig(), {})
    assert (new, touched) == (0, set())  # nothing changed: no rewrite, no story touched
    (story,) = store.select_stories(["a"])
    assert story.published == T0


def test_copies_in_one_batch_respect_the_window(store: Store) -> None:
    from datetime import timedelta as td

    from syndicate.ingest import similarity
    from syndicate.ingest.placing import apply_entries
    from syndicate.types import DedupeConfig

    text = ("The river authority opened the rebuilt lock at Kesselbrück on Tuesday after "
            "14 months of work, letting barges of up to 110 metres pass again.")
    sig = similarity.signature(text)
    old = make_entry("a", "old", text=text, lead_signature=sig, body_signature=sig,
                     published=T0 - td(days=700), updated=T0 - td(days=700))
    new = make_entry("b", "new", text=text, lead_signature=sig, body_signature=sig,
                     link="https://b.example/new")
    store.sync_sources([source("a"), source("b")], T0)
    with store.transaction(T0) as tx:
        apply_entries(tx, [old, new], DedupeConfig(), {})
    assert store.story_count() == 2  # two years apart: not one story, even in one batch


RIVER = ("The river authority opened the rebuilt lock at Kesselbrück on Tuesday after "
         "14 months of work, letting barges of up to 110 metres pass again.")
LIBRARY = ("A different story about a library and its opening hours during the exam season, "
           "with students collecting signatures for longer evenings.")


def fingerprinted(source_id: str, guid: str, text: str, **changes: object) -> Any:
    """An entry with the fingerprints normalize would give ``text``."""
    from syndicate.ingest import similarity

    signature = similarity.signature(text)
    return make_entry(source_id, guid, text=text, content_html=f"<p>{text}</p>",
                      lead_signature=signature,
                      body_signature=similarity.signature("Full text: " + text),
                      numbers=similarity.numbers(text), **changes)


def place(store: Store, *entries_: Any) -> None:
    from syndicate.ingest.placing import apply_entries
    from syndicate.types import DedupeConfig

    with store.transaction(T0) as tx:
        apply_entries(tx, list(entries_), DedupeConfig(), {})


def reasons(store: Store, source_ids: list[str]) -> list[list[str]]:
    """Each story's members' reasons, oldest story first."""
    found = store.stories_with_members(store.select_stories(source_ids))
    return sorted([m.reason for m in story.members] for story in found)


def test_a_database_of_the_first_version_1_is_brought_to_the_current_shape(store: Store) -> None:
    """Migrations 2 to 5 from the first version 1's shape: rendered.previous_modified added,
    a row of band keys per entry (computed from the stored signatures) instead of a row per
    key, so old entries stay findable as near-duplicates."""
    store.sync_sources([source("a"), source("b")], T0)
    place(store, fingerprinted("a", "a1", RIVER))
    # Back to the shape the first version 1 had.
    with store.write_engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE entry_keys"))
        conn.execute(sa.text(
            "CREATE TABLE entry_bands (bucket INTEGER NOT NULL, band_key BIGINT NOT NULL, "
            "published TIMESTAMP NOT NULL, language VARCHAR(8) NOT NULL, "
            "entry_id INTEGER NOT NULL)"))
        conn.execute(sa.text("CREATE INDEX ix_entry_bands_key ON entry_bands (bucket, band_key)"))
        conn.execute(sa.text("ALTER TABLE rendered DROP COLUMN previous_modified"))
        conn.execute(store_schema.meta.update().values(value="1"))
    store.close()

    migrated = Store(store.url)
    try:
        with migrated.engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert store_schema.schema_version(conn) == store_schema.SCHEMA_VERSION
            assert "entry_bands" not in inspector.get_table_names()
            assert "entry_keys" in inspector.get_table_names()
            assert "previous_modified" in {c["name"] for c in inspector.get_columns("rendered")}
        place(migrated, fingerprinted("b", "b1", "Update: " + RIVER,
                                      link="https://partner.example/x"))
        assert reasons(migrated, ["a", "b"]) == [["new", "similar"]]
        assert migrated.save_rendered(rendered_feed("all", "rss", b"<rss/>", T0))
    finally:
        migrated.close()


def test_an_edited_entry_is_found_under_its_new_text_only(store: Store) -> None:
    """An edit re-indexes the entry: a copy of its new text joins it, a copy of its old text
    (whose keys the index still holds) is verified against the stored signatures and does not."""
    store.sync_sources([source("a"), source("b")], T0)
    place(store, fingerprinted("a", "a1", RIVER))
    edited = fingerprinted("a", "a1", LIBRARY, published=T0 + timedelta(days=30))
    place(store, edited)
    with store.engine.connect() as conn:  # one row, in the week of the entry's new date
        rows = conn.execute(sa.select(store_schema.entry_keys)).all()
    assert [(r.bucket, bytes(r.band_keys)) for r in rows] == [
        (store_schema.band_bucket(edited.published),
         store_schema.pack_keys(dedupe.band_keys(edited)))]
    place(store, fingerprinted("b", "b1", "Update: " + LIBRARY, link="https://partner.example/1",
                               published=edited.published),
          fingerprinted("b", "b2", "Update: " + RIVER, link="https://partner.example/2"))
    assert reasons(store, ["a", "b"]) == [["new"], ["new", "similar"]]


def test_the_index_sees_entries_another_process_inserted(store: Store) -> None:
    store.sync_sources([source("a"), source("b")], T0)
    place(store, fingerprinted("a", "a1", RIVER))  # loads this week into our index
    other = Store(store.url)
    try:
        place(other, fingerprinted("a", "a2", LIBRARY))
    finally:
        other.close()
    place(store, fingerprinted("b", "b1", "Update: " + LIBRARY, link="https://b.example/1"))
    assert reasons(store, ["a", "b"]) == [["new"], ["new", "similar"]]


def test_the_index_sees_entries_another_process_edited(store: Store) -> None:
    store.sync_sources([source("a"), source("b")], T0)
    place(store, fingerprinted("a", "a1", RIVER))  # our index holds a1's keys for RIVER
    other = Store(store.url)
    try:
        place(other, fingerprinted("a", "a1", LIBRARY))  # edited in place: same id
    finally:
        other.close()
    place(store, fingerprinted("b", "b1", "Update: " + LIBRARY, link="https://b.example/1"))
    assert reasons(store, ["a", "b"]) == [["new", "similar"]]


def test_a_rolled_back_write_leaves_the_index_complete(store: Store) -> None:
    """The ids a rolled-back write took are given again, by this process or another: the
    index must not take them for entries it has already seen."""
    from syndicate.ingest.placing import apply_entries
    from syndicate.types import DedupeConfig

    store.sync_sources([source("a"), source("b")], T0)
    place(store, fingerprinted("a", "a0", "Nothing alike: the council voted on the budget "
                               "for next year's roads and schools after a long debate."))
    with pytest.raises(RuntimeError), store.transaction(T0) as tx:
        apply_entries(tx, [fingerprinted("a", "a1", RIVER)], DedupeConfig(), {})
        raise RuntimeError("disk full")
    other = Store(store.url)
    try:
        place(other, fingerprinted("a", "a2", LIBRARY))  # takes the id a1 had
    finally:
        other.close()
    place(store, fingerprinted("b", "b1", "Update: " + LIBRARY, link="https://b.example/1"),
          fingerprinted("b", "b2", "Update: " + RIVER, link="https://b.example/2"))
    assert reasons(store, ["a", "b"]) == [["new"], ["new"], ["new", "similar"]]


def test_a_version_4_database_loses_its_band_table(store: Store) -> None:
    store.sync_sources([source("a"), source("b")], T0)
    place(store, fingerprinted("a", "a1", RIVER))
    with store.write_engine.begin() as conn:
        store_schema.entry_bands.create(conn)
        conn.execute(sa.text("DROP TABLE entry_keys"))
        conn.execute(store_schema.meta.update().values(value="4"))
    store.close()
    migrated = Store(store.url)
    try:
        with migrated.engine.connect() as conn:
            assert store_schema.schema_version(conn) == store_schema.SCHEMA_VERSION
            assert "entry_bands" not in sa.inspect(conn).get_table_names()
        place(migrated, fingerprinted("b", "b1", "Update: " + RIVER,
                                      link="https://partner.example/x"))
        assert reasons(migrated, ["a", "b"]) == [["new", "similar"]]
    finally:
        migrated.close()


def test_writers_take_turns_so_a_busy_writer_cannot_starve_the_others(tmp_path) -> None:
    """The writer thread writes group after group; the heartbeat and publishing still get the
    write connection, after at most the writes that asked before them."""
    import threading
    import time
    from datetime import UTC, datetime

    store = Store(f"sqlite:///{tmp_path}/turns.db")
    stop = threading.Event()

    def busy_writer() -> None:
        while not stop.is_set():
            with store.transaction(datetime.now(UTC)):
                time.sleep(0.3)  # a group being written

    written = threading.Event()

    def heartbeat() -> None:
        store.set_meta_value("heartbeat", "alive")
        written.set()

    writer = threading.Thread(target=busy_writer)
    writer.start()
    try:
        time.sleep(0.1)
        threading.Thread(target=heartbeat, daemon=True).start()
        assert written.wait(3), "the heartbeat never got a turn to write"
    finally:
        stop.set()
        writer.join()
        store.close()


def test_opening_an_up_to_date_store_takes_no_write_lock(tmp_path) -> None:
    """A web process opens the store while the ingest process holds the write lock."""
    import sqlite3
    import time

    url = f"sqlite:///{tmp_path}/busy.db"
    Store(url).close()
    other = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        started = time.monotonic()
        Store(url).close()
        assert time.monotonic() - started < 2  # not busy_timeout's 30 s, nor "locked"
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_sources_are_named_as_outlets_reading_only_those_asked_for(store: Store) -> None:
    configs = {s.id: s for s in [
        replace(source("titled", "https://a.example/feed"), title="Configured Title"),
        source("plain", "https://b.example/feed"),
        source("local", "/srv/feeds/c.xml"),
        *(source(f"other{i}") for i in range(50))]}
    store.sync_sources(list(configs.values()), T0)
    with store.transaction(T0) as tx:
        tx.record_success("plain", etag=None, last_modified=None, content_hash="h", status=200,
                          site_url="https://b.example/", site_title="What B calls itself",
                          redirect=None, warning=None, next_fetch_at=T0)
        tx.record_success("titled", etag=None, last_modified=None, content_hash="h",
                          status=200, site_url=None, site_title="Ignored", redirect=None,
                          warning=None, next_fetch_at=T0)
    selects: list[str] = []
    sa.event.listen(store.write_engine, "before_cursor_execute",
                    lambda conn, cursor, sql, *rest: selects.append(sql)
                    if "FROM sources" in sql else None)
    own = SourceInfo("local", "Us", None)
    with store.transaction(T0) as tx:
        infos = tx.source_infos(configs, {"local": own})
        assert infos["plain"] == SourceInfo("plain", "What B calls itself", "https://b.example/")
        assert infos["titled"] == SourceInfo("titled", "Configured Title",
                                             "https://a.example/feed")
        assert infos["local"] is own
        assert infos.get("elsewhere") is None and "elsewhere" not in infos
        assert len(infos) == 53
    assert len(selects) == 2  # one row per source asked for, none for the other 50


def test_archive_pages_keep_their_order_across_statements(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from syndicate.store import database

    monkeypatch.setattr(database, "ARCHIVE_PAGES_PER_INSERT", 2)  # 3 pages: two statements
    store.sync_sources([source("a")], T0)
    place(store, *[make_entry("a", f"g{i}", text=f"story {i}") for i in range(7)])
    ids = sorted(s.id for s in store.select_stories(["a"]))
    assert len(ids) == 7
    pages = [ids[0:2], ids[2:4], ids[4:6]]
    assert store.add_archive_pages("f", pages) == 3
    assert store.add_archive_pages("f", [ids[6:]]) == 4
    assert [sorted(s.id for s in store.archive_page_stories("f", n))
            for n in range(1, 5)] == [*pages, ids[6:]]
