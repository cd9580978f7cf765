"""Source updates through the real stages: loopback HTTP, feedparser, a real SQLite file."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syndicate.config import parse_config
from syndicate.publish import select_stories
from syndicate.schedule import Ingestor
from syndicate.store import Store
from syndicate.types import Config
from tests.loopback import LoopbackHandler, LoopbackServer


def rss(*items: tuple[str, str, str], title: str = "Feed", link: str = "https://site.example/"
        ) -> bytes:
    body = "".join(
        f"<item><guid>{guid}</guid><title>{t}</title><link>{url}</link>"
        f"<pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate><description>{t} text</description>"
        f"</item>" for guid, t, url in items)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>{link}</link><description>d</description>{body}</channel></rss>").encode()


def make_config(tmp_path: Path, loopback: LoopbackServer, paths: list[str],
                workers: int = 4, parse_workers: int = 0) -> Config:
    sources = "".join(
        f"  - id: s{i}\n    url: {loopback.url(p)}\n    tags: [all]\n    interval: 10m\n"
        for i, p in enumerate(paths))
    text = (f"service:\n  database: sqlite:///{tmp_path}/store.db\n  fetch_workers: {workers}\n"
            f"  parse_workers: {parse_workers}\n"
            f"  read_timeout: 2\n  connect_timeout: 2\n"
            f"sources:\n{sources}feeds:\n  - id: all\n    tags: [all]\n")
    path = tmp_path / "syndicate.yaml"
    path.write_text(text)
    return parse_config(text, path)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path}/store.db")
    yield store  # type: ignore[misc]
    store.close()


def run(config: Config, store: Store, ids: list[str] | None = None) -> dict[str, str]:
    store.sync_sources(config.sources, datetime.now(UTC))
    ingestor = Ingestor(config, store)
    try:
        outcomes = ingestor.update(ids or [s.id for s in config.sources])
        ingestor.publish()
    finally:
        ingestor.close()
    return {o.source_id: o.status for o in outcomes}


def hits(loopback: LoopbackServer, path: str) -> int:
    return sum(1 for r in loopback.requests if r.path == path)


def hang(handler: LoopbackHandler) -> None:
    handler.server.owner.closing.wait(30)  # type: ignore[attr-defined]


def test_broken_sources_are_recorded_and_others_carry_on(
        tmp_path: Path, loopback: LoopbackServer, store: Store) -> None:
    loopback.add_feed("/good.xml", rss(("g1", "Good story", "https://site.example/good")))
    loopback.add_status("/missing.xml", 404)
    loopback.add_status("/error.xml", 500)
    loopback.add_feed("/html.xml", b"<!DOCTYPE html><html><body>Welcome</body></html>",
                      content_type="text/html")
    loopback.add_feed("/garbage.xml", b"\x89PNG\r\n\x1a\n\x00\x00")
    loopback.add_handler("/slow.xml", hang)
    paths = ["/good.xml", "/missing.xml", "/error.xml", "/html.xml", "/garbage.xml", "/slow.xml"]
    config = make_config(tmp_path, loopback, paths)

    statuses = run(config, store)

    assert statuses == {"s0": "updated", "s1": "failed", "s2": "failed", "s3": "failed",
                        "s4": "failed", "s5": "failed"}
    errors = {s.id: s.last_error for s in store.source_statuses()}
    assert errors["s0"] is None
    assert "404" in errors["s1"]  # type: ignore[operator]
    assert "500" in errors["s2"]  # type: ignore[operator]
    assert "HTML page" in errors["s3"]  # type: ignore[operator]
    assert "not an RSS, Atom or JSON feed" in errors["s4"]  # type: ignore[operator]
    assert "timed out" in errors["s5"]  # type: ignore[operator]
    (story,) = select_stories(store, config, config.feeds[0])
    assert story.title == "Good story"


def test_failures_back_off_and_success_resets(tmp_path: Path, loopback: LoopbackServer,
                                              store: Store) -> None:
    loopback.add_status("/flaky.xml", 503, headers={"Retry-After": "7200"})
    config = make_config(tmp_path, loopback, ["/flaky.xml"])
    before = datetime.now(UTC)
    run(config, store)
    state = store.fetch_state("s0")
    assert state.error_count == 1
    assert state.next_fetch_at is not None
    assert state.next_fetch_at - before >= timedelta(hours=2)  # Retry-After beats 10m

    run(config, store)
    assert store.fetch_state("s0").error_count == 2

    loopback.add_feed("/flaky.xml", rss(("a", "Back", "https://site.example/a")))
    run(config, store)
    state = store.fetch_state("s0")
    assert (state.error_count, state.last_error) == (0, None)


def test_gone_stops_polling(tmp_path: Path, loopback: LoopbackServer, store: Store) -> None:
    loopback.add_status("/gone.xml", 410)
    config = make_config(tmp_path, loopback, ["/gone.xml"])
    run(config, store)
    state = store.fetch_state("s0")
    assert state.last_error is not None and "410" in state.last_error
    assert state.next_fetch_at is not None
    assert state.next_fetch_at > datetime.now(UTC) + timedelta(days=300)
    assert store.due_sources(["s0"], datetime.now(UTC) + timedelta(days=30)) == []


def test_a_new_outlet_joins_without_changing_the_guid(
        tmp_path: Path, loopback: LoopbackServer, store: Store) -> None:
    loopback.add_feed("/a.xml", rss(("a1", "Storm", "https://news.example/storm"),
                                    link="https://a.example/"))
    loopback.add_feed("/b.xml", rss(link="https://b.example/"))
    config = make_config(tmp_path, loopback, ["/a.xml", "/b.xml"])
    run(config, store)
    (before,) = select_stories(store, config, config.feeds[0])
    assert [s.host for s in before.sources] == ["a.example"]

    loopback.set_body("/b.xml", rss(
        ("b9", "Storm (updated)", "https://news.example/storm?utm_campaign=x"),
        link="https://b.example/"))
    run(config, store)
    (after,) = select_stories(store, config, config.feeds[0])
    assert after.guid == before.guid
    assert after.title == "Storm"  # the first copy stays the representative
    assert [s.host for s in after.sources] == ["a.example", "b.example"]


def test_concurrent_sources_carrying_one_new_story_make_one_story(
        tmp_path: Path, loopback: LoopbackServer, store: Store) -> None:
    paths = [f"/f{i}.xml" for i in range(12)]
    for i, path in enumerate(paths):
        loopback.add_feed(path, rss((f"id-{i}", "Same story", "https://news.example/same"),
                                    link=f"https://outlet{i}.example/"))
    config = make_config(tmp_path, loopback, paths, workers=8)
    assert set(run(config, store).values()) == {"updated"}
    (story,) = select_stories(store, config, config.feeds[0])
    assert sorted(s.host for s in story.sources) == sorted(
        f"outlet{i}.example" for i in range(12))


def test_unchanged_feed_is_not_reparsed(tmp_path: Path, loopback: LoopbackServer,
                                        store: Store) -> None:
    body = rss(("a", "A", "https://site.example/a"))
    served = threading.Event()

    def no_validators(handler: LoopbackHandler) -> None:
        served.set()
        handler.respond(200, body, {"Content-Type": "application/rss+xml"})

    loopback.add_handler("/plain.xml", no_validators)
    config = make_config(tmp_path, loopback, ["/plain.xml"])
    assert run(config, store) == {"s0": "updated"}
    assert run(config, store) == {"s0": "not_modified"}  # same bytes: hash says unchanged
    assert served.is_set()


ARTICLE = (
    "The river authority opened the rebuilt lock at Kesselbrück on Tuesday after 14 months "
    "of work, letting barges of up to 110 metres pass again. Shipping companies had diverted "
    "cargo by rail since the old gates failed in a flood. The authority said the new gates "
    "would last 80 years and cost 42 million euros, paid jointly by the state and the port."
)


def test_a_rewritten_copy_joins_by_similarity(tmp_path: Path, loopback: LoopbackServer,
                                              store: Store) -> None:
    loopback.add_feed("/a.xml", rss(("a1", "Lock reopens at Kesselbrück",
                                     "https://a.example/lock"), link="https://a.example/"
                                    ).replace(b"Lock reopens at Kesselbr\xc3\xbcck text",
                                              ARTICLE.encode()))
    copy = "UPDATE: " + ARTICLE.replace("on Tuesday", "this week") + " More at Partner News."
    loopback.add_feed("/b.xml", rss(("b1", "BREAKING: Rebuilt lock open for barges",
                                     "https://partner.example/syndication/77"),
                                    link="https://b.example/"
                                    ).replace(b"BREAKING: Rebuilt lock open for barges text",
                                              copy.encode()))
    other = ARTICLE.replace("14 months", "9 months").replace("42 million", "17 million") \
        .replace("110 metres", "85 metres").replace("80 years", "50 years")
    loopback.add_feed("/c.xml", rss(("c1", "Lock reopens at Kesselbrück",
                                     "https://c.example/other-lock"), link="https://c.example/"
                                    ).replace(b"Lock reopens at Kesselbr\xc3\xbcck text",
                                              other.encode()))
    config = make_config(tmp_path, loopback, ["/a.xml", "/b.xml", "/c.xml"], workers=1)
    run(config, store)

    stories = store.stories_with_members(select_stories(store, config, config.feeds[0]))
    assert len(stories) == 2  # the copy joined; the report with other figures did not
    (joined,) = [s for s in stories if len(s.members) == 2]
    reasons = [(m.source_id, m.reason) for m in joined.members]
    assert reasons == [("s0", "new"), ("s1", "similar")]
    assert joined.members[1].score is not None and joined.members[1].score >= 0.6
    assert [s.host for s in joined.sources] == ["a.example", "b.example"]


def test_similarity_window_uses_the_entries_own_dates(tmp_path: Path,
                                                      loopback: LoopbackServer,
                                                      store: Store) -> None:
    old = rss(("a1", "Lock", "https://a.example/lock"), link="https://a.example/").replace(
        b"Lock text", ARTICLE.encode()).replace(b"Mon, 23 Nov 2026", b"Mon, 02 Jan 2023")
    copy = rss(("b1", "Lock!", "https://b.example/lock-copy"), link="https://b.example/"
               ).replace(b"Lock! text", ("Update: " + ARTICLE).encode()
                         ).replace(b"Mon, 23 Nov 2026", b"Tue, 03 Jan 2023")
    late = rss(("c1", "Lock?", "https://c.example/lock-late"), link="https://c.example/"
               ).replace(b"Lock? text", ("Archive: " + ARTICLE).encode())
    loopback.add_feed("/a.xml", old)
    loopback.add_feed("/b.xml", copy)
    loopback.add_feed("/c.xml", late)
    config = make_config(tmp_path, loopback, ["/a.xml", "/b.xml", "/c.xml"], workers=1)
    run(config, store)
    stories = store.stories_with_members(select_stories(store, config, config.feeds[0]))
    sizes = sorted(len(s.members) for s in stories)
    assert sizes == [1, 2]  # two-year-old copies cluster; the one dated today stays apart


def test_a_permanent_redirect_moves_the_source_after_confirmation(
        tmp_path: Path, loopback: LoopbackServer, store: Store) -> None:
    loopback.add_redirect("/old.xml", "/new.xml", status=301)
    loopback.add_feed("/new.xml", rss(("a", "A", "https://site.example/a")))
    config = make_config(tmp_path, loopback, ["/old.xml"])
    for _ in range(3):
        run(config, store)
    state = store.fetch_state("s0")
    assert state.permanent_url == loopback.url("/new.xml")
    before = hits(loopback, "/old.xml")
    run(config, store)
    assert hits(loopback, "/old.xml") == before  # the old URL is not asked again
    (status,) = store.source_statuses()
    assert status.permanent_url == loopback.url("/new.xml")

    # the operator updates the config: it is the source of truth, and starts over
    moved = make_config(tmp_path, loopback, ["/new.xml"])
    store.sync_sources(moved.sources, datetime.now(UTC))
    assert store.fetch_state("s0").permanent_url is None


def test_a_temporary_redirect_never_moves_the_source(
        tmp_path: Path, loopback: LoopbackServer, store: Store) -> None:
    loopback.add_redirect("/old.xml", "/new.xml", status=302)
    loopback.add_feed("/new.xml", rss(("a", "A", "https://site.example/a")))
    config = make_config(tmp_path, loopback, ["/old.xml"])
    for _ in range(4):
        run(config, store)
    assert store.fetch_state("s0").permanent_url is None
    assert hits(loopback, "/old.xml") == 4


def test_retry_after_holds_back_every_source_of_the_host(
        tmp_path: Path, loopback: LoopbackServer, store: Store) -> None:
    loopback.add_status("/busy.xml", 429, headers={"Retry-After": "3600"})
    for i in range(4):
        loopback.add_feed(f"/f{i}.xml", rss((f"g{i}", f"S{i}", f"https://site.example/{i}")))
    paths = ["/busy.xml"] + [f"/f{i}.xml" for i in range(4)]
    config = make_config(tmp_path, loopback, paths, workers=1)
    statuses = run(config, store)
    assert statuses["s0"] == "failed"
    assert set(statuses.values()) == {"failed", "deferred"}  # nobody else asked that host
    later = datetime.now(UTC) + timedelta(minutes=59)
    assert store.due_sources([s.id for s in config.sources], later) == []
    assert all(hits(loopback, p) == 0 for p in paths[1:])


def test_at_most_fetch_per_host_requests_at_once(tmp_path: Path, loopback: LoopbackServer,
                                                 store: Store) -> None:
    lock = threading.Lock()
    counts = {"now": 0, "peak": 0}

    def slow(handler: LoopbackHandler) -> None:
        with lock:
            counts["now"] += 1
            counts["peak"] = max(counts["peak"], counts["now"])
        time.sleep(0.2)
        with lock:
            counts["now"] -= 1
        handler.respond(200, rss(("x" + handler.path, "T", "https://site.example" +
                                  handler.path)), {"Content-Type": "application/rss+xml"})

    paths = [f"/p{i}.xml" for i in range(8)]
    for path in paths:
        loopback.add_handler(path, slow)
    config = make_config(tmp_path, loopback, paths, workers=8)
    assert set(run(config, store).values()) == {"updated"}
    assert counts["peak"] == 2  # service.fetch_per_host defaults to 2


def test_a_feed_follows_its_stories_when_another_source_joins(
        tmp_path: Path, loopback: LoopbackServer, store: Store) -> None:
    loopback.add_feed("/a.xml", rss(("a1", "Storm", "https://news.example/storm"),
                                    link="https://a.example/"))
    loopback.add_feed("/b.xml", rss(("b1", "Storm!", "https://news.example/storm"),
                                    link="https://b.example/"))
    text = (f"service:\n  database: sqlite:///{tmp_path}/store.db\n"
            f"sources:\n  - id: a\n    url: {loopback.url('/a.xml')}\n"
            f"  - id: b\n    url: {loopback.url('/b.xml')}\n"
            f"feeds:\n  - id: only-a\n    sources: [a]\n")
    config = parse_config(text, tmp_path / "c.yaml")
    run(config, store, ["a"])
    run(config, store, ["b"])  # b's copy joins a's story: only-a must show the new outlet
    rendered = store.rendered_feed("only-a", "json")
    assert rendered is not None and b"b.example" in rendered.body


def test_renderings_of_removed_feeds_are_dropped(tmp_path: Path, loopback: LoopbackServer,
                                                 store: Store) -> None:
    loopback.add_feed("/a.xml", rss(("a1", "A", "https://site.example/a")))
    config = make_config(tmp_path, loopback, ["/a.xml"])
    run(config, store)
    assert store.rendered_feed("all", "rss") is not None
    without = parse_config(
        f"service:\n  database: sqlite:///{tmp_path}/store.db\n"
        f"sources:\n  - id: s0\n    url: {loopback.url('/a.xml')}\n", tmp_path / "c.yaml")
    Ingestor(without, store).publish()
    assert store.rendered_feed("all", "rss") is None


def test_an_undated_entry_keeps_its_first_seen_date(tmp_path: Path, loopback: LoopbackServer,
                                                    store: Store) -> None:
    undated = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
               b"<link>https://t.example/</link><description>d</description>"
               b"<item><guid>u</guid><title>Undated note</title>"
               b"<link>https://t.example/u</link><description>No date here.</description></item>"
               b"</channel></rss>")
    loopback.add_feed("/u.xml", undated)
    config = make_config(tmp_path, loopback, ["/u.xml"])
    run(config, store)
    (first,) = select_stories(store, config, config.feeds[0])
    time.sleep(0.05)
    loopback.set_body("/u.xml", undated.replace(b"No date here.", b"No date here, edited."))
    run(config, store)
    (second,) = select_stories(store, config, config.feeds[0])
    assert second.text != first.text  # the edit was taken
    assert second.published == first.published  # but the entry did not move to the top


def test_items_sharing_a_home_page_link_stay_apart(tmp_path: Path, loopback: LoopbackServer,
                                                   store: Store) -> None:
    loopback.add_feed("/a.xml", rss(("a1", "Mayor resigns", "https://alpha.example/"),
                                    ("a2", "Zoo gets a panda", "https://alpha.example/")))
    loopback.add_feed("/b.xml", rss(("b1", "Section page", "https://alpha.example/live"),
                                    ("b2", "Another update", "https://alpha.example/live")))
    config = make_config(tmp_path, loopback, ["/a.xml", "/b.xml"], workers=1)
    run(config, store)
    assert len(select_stories(store, config, config.feeds[0])) == 4


def test_entries_the_feed_repeats_unchanged_are_not_normalized_again(
        tmp_path: Path, loopback: LoopbackServer, store: Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from syndicate.ingest import reading

    body = rss(("a", "A", "https://site.example/a"), ("b", "B", "https://site.example/b"))
    loopback.add_feed("/f.xml", body)
    config = make_config(tmp_path, loopback, ["/f.xml"])
    run(config, store)

    normalized: list[str | None] = []
    original = reading.normalize_entries

    def counting(parsed_entries, *args, **kwargs):  # type: ignore[no-untyped-def]
        normalized.extend(parsed.guid for parsed in parsed_entries)
        return original(parsed_entries, *args, **kwargs)

    monkeypatch.setattr(reading, "normalize_entries", counting)
    loopback.set_body("/f.xml", body.replace(b"<title>B</title>", b"<title>B, edited</title>"))
    run(config, store)
    assert normalized == ["b"]  # a is repeated as it was: skipped
    titles = sorted(s.title for s in select_stories(store, config, config.feeds[0]))
    assert titles == ["A", "B, edited"]


def test_publishing_is_skipped_when_nothing_it_shows_changed(
        tmp_path: Path, loopback: LoopbackServer, store: Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from syndicate import schedule

    loopback.add_feed("/f.xml", rss(("a", "A", "https://site.example/a")))
    config = make_config(tmp_path, loopback, ["/f.xml"])
    run(config, store)  # renders
    renders: list[str] = []
    original = schedule.publish_feeds

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        renders.append("render")
        return original(*args, **kwargs)

    monkeypatch.setattr(schedule, "publish_feeds", counting)
    run(config, store)  # every source answers 304: nothing to render
    assert renders == []

    loopback.set_body("/f.xml", rss(("a", "A", "https://site.example/a"),
                                    ("b", "B", "https://site.example/b")))
    run(config, store)  # a new story
    assert renders == ["render"]
    assert len(select_stories(store, config, config.feeds[0])) == 2

    renamed = parse_config(config.path.read_text().replace("  - id: all\n",
                                                           "  - id: all\n    title: Renamed\n"),
                           config.path)
    Ingestor(renamed, store).publish()  # the feed's definition changed
    assert renders == ["render", "render"]
    assert b"Renamed" in store.rendered_feed("all", "rss").body  # type: ignore[union-attr]
