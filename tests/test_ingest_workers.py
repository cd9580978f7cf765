"""The parts of ingest that run concurrently: worker processes that parse and normalize, and
the writer thread that stores updates in groups. Real processes, a real SQLite file."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event as sa_event

from syndicate.errors import ParseError
from syndicate.ingest.pipeline import (
    PendingWrite,
    UpdateOutcome,
    write_updates,
)
from syndicate.ingest.reading import normalize_feed
from syndicate.ingest.workers import NormalizerPool
from syndicate.ingest.writer import Writer
from syndicate.publish import select_stories
from syndicate.store import NotModifiedUpdate, RedirectUpdate, Store, UpdateTransaction
from syndicate.types import SourceConfig
from tests.loopback import LoopbackServer
from tests.test_pipeline import make_config, rss, run

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SOURCE = SourceConfig(id="s", url="https://site.example/feed.xml", title=None, tags=(),
                      language=None, interval=timedelta(minutes=10))
BODY = rss(("a", "Harbour reopens after the storm", "https://site.example/a"),
           ("b", "Council votes on the new bridge", "https://site.example/b"))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path}/store.db")
    store.sync_sources([SOURCE, _source("t"), _source("u")], NOW)
    yield store  # type: ignore[misc]
    store.close()


def _source(source_id: str) -> SourceConfig:
    return SourceConfig(id=source_id, url=f"https://{source_id}.example/feed.xml", title=None,
                        tags=(), language=None, interval=SOURCE.interval)


def test_a_worker_process_normalizes_exactly_as_this_process_does() -> None:
    pool = NormalizerPool(1)
    try:
        remote = pool(BODY, SOURCE.url, "application/rss+xml", SOURCE, {}, NOW)
    finally:
        pool.close()
    assert remote == normalize_feed(BODY, SOURCE.url, "application/rss+xml", SOURCE, {}, NOW)
    assert [e.title for e in remote.entries] == ["Harbour reopens after the storm",
                                                 "Council votes on the new bridge"]


def test_a_feed_that_is_no_feed_fails_in_the_worker_with_its_message() -> None:
    pool = NormalizerPool(1)
    try:
        with pytest.raises(ParseError, match="not an RSS, Atom or JSON feed"):
            pool(b"\x89PNG\r\n\x1a\n\x00\x00", SOURCE.url, None, SOURCE, {}, NOW)
    finally:
        pool.close()


def test_a_killed_worker_is_replaced_and_the_feed_tried_again() -> None:
    pool = NormalizerPool(1)
    try:
        pool(BODY, SOURCE.url, None, SOURCE, {}, NOW)  # starts the worker
        executor = pool._current()
        for pid in list(executor._processes):  # the OOM killer, say
            os.kill(pid, signal.SIGKILL)
        again = pool(BODY, SOURCE.url, None, SOURCE, {}, NOW)
        assert len(again.entries) == 2
        assert pool._current() is not executor
    finally:
        pool.close()


def test_cold_ingest_through_worker_processes(tmp_path: Path, loopback: LoopbackServer) -> None:
    loopback.add_feed("/a.xml", BODY)
    loopback.add_feed("/b.xml", rss(("x", "Council votes on the new bridge",
                                     "https://site.example/b"),
                                    title="Other", link="https://other.example/"))
    loopback.add_feed("/c.xml", b"<html><body>not a feed</body></html>",
                      content_type="text/html")
    config = make_config(tmp_path, loopback, ["/a.xml", "/b.xml", "/c.xml"], parse_workers=2)
    store = Store(config.service.database)
    try:
        assert run(config, store) == {"s0": "updated", "s1": "updated", "s2": "failed"}
        stories = select_stories(store, config, config.feeds[0])
        assert sorted(s.title for s in stories) == ["Council votes on the new bridge",
                                                    "Harbour reopens after the storm"]
        bridge = next(s for s in stories if "bridge" in s.title)
        assert len([s for s in bridge.sources if s.carried]) == 2  # one story, both outlets
    finally:
        store.close()


def _pending(source_id: str, write: object) -> PendingWrite:
    return PendingWrite(_source(source_id), f"https://{source_id}.example/feed.xml", 0, NOW,
                        write)  # type: ignore[arg-type]


def _record_ok(source_id: str):  # type: ignore[no-untyped-def]
    def write(tx: UpdateTransaction) -> UpdateOutcome:
        tx.record_not_modified(source_id, etag=f'"{source_id}"', last_modified=None,
                               status=304, next_fetch_at=NOW)
        return UpdateOutcome(source_id, "not_modified")
    return write


def test_a_failing_source_in_a_group_is_rolled_back_alone(store: Store) -> None:
    def half_then_crash(tx: UpdateTransaction) -> UpdateOutcome:
        tx.record_not_modified("t", etag='"half"', last_modified=None, status=304,
                               next_fetch_at=NOW)
        raise RuntimeError("bug in the middle of a write")

    outcomes = write_updates(store, [_pending("s", _record_ok("s")),
                                     _pending("t", half_then_crash),
                                     _pending("u", _record_ok("u"))])

    assert [o.status for o in outcomes] == ["not_modified", "failed", "not_modified"]
    assert store.fetch_state("s").etag == '"s"'
    assert store.fetch_state("u").etag == '"u"'
    crashed = store.fetch_state("t")
    assert crashed.etag is None  # its half-done write is gone
    assert crashed.error_count == 1
    assert "RuntimeError: bug in the middle of a write" in (crashed.last_error or "")


def _unchanged(source_id: str, next_fetch_at: object = NOW,
               fetched_at: datetime = NOW) -> PendingWrite:
    """A plain 304, as prepare_update makes it: its write, and its row for the batch."""
    update = NotModifiedUpdate(source_id, f'"{source_id}"', None, 304,
                               next_fetch_at, RedirectUpdate(None, 0, None),  # type: ignore[arg-type]
                               fetched_at)

    def write(tx: UpdateTransaction) -> UpdateOutcome:
        tx.record_not_modified(source_id, etag=update.etag, last_modified=None, status=304,
                               next_fetch_at=update.next_fetch_at, redirect=update.redirect)
        return UpdateOutcome(source_id, "not_modified")
    return dataclasses.replace(_pending(source_id, write), now=fetched_at, not_modified=update)


def test_plain_not_modified_updates_are_written_in_one_statement(store: Store) -> None:
    store.sync_sources([_source(s) for s in "abcd"], NOW)
    statements: list[str] = []
    sa_event.listen(store.write_engine, "before_cursor_execute",
                    lambda conn, cursor, sql, *rest: statements.append(sql))
    group = [_unchanged("a"), _pending("b", _record_ok("b")), _unchanged("c"), _unchanged("d")]
    outcomes = write_updates(store, group)
    assert [(o.source_id, o.status) for o in outcomes] == [
        ("a", "not_modified"), ("b", "not_modified"), ("c", "not_modified"),
        ("d", "not_modified")]
    assert [store.fetch_state(s).etag for s in "abcd"] == ['"a"', '"b"', '"c"', '"d"']
    updates = [sql for sql in statements if sql.startswith("UPDATE sources")]
    assert len(updates) == 2  # a, c and d in one executemany; b on its own


def test_each_batched_not_modified_keeps_its_own_fetch_time(store: Store) -> None:
    store.sync_sources([_source(s) for s in "abc"], NOW)
    times = {s: NOW + timedelta(seconds=30 * i) for i, s in enumerate("abc")}
    write_updates(store, [_unchanged(s, fetched_at=t) for s, t in times.items()])
    fetched = {s.id: s.last_fetched_at for s in store.source_statuses() if s.id in times}
    assert fetched == times


def test_when_the_batch_fails_each_not_modified_is_written_alone(store: Store) -> None:
    store.sync_sources([_source(s) for s in ("a", "bad", "c")], NOW)
    group = [_unchanged("a"), _unchanged("bad", next_fetch_at="not a date"), _unchanged("c")]
    outcomes = write_updates(store, group)
    assert [o.status for o in outcomes] == ["not_modified", "failed", "not_modified"]
    assert (store.fetch_state("a").etag, store.fetch_state("c").etag) == ('"a"', '"c"')
    assert store.fetch_state("bad").error_count == 1


def test_the_writer_groups_what_queues_up_into_one_transaction(store: Store) -> None:
    transactions = 0
    original = store.transaction

    def counting(now):  # type: ignore[no-untyped-def]
        nonlocal transactions
        transactions += 1
        return original(now)

    store.transaction = counting  # type: ignore[method-assign]
    started, release = threading.Event(), threading.Event()

    def blocked(tx: UpdateTransaction) -> UpdateOutcome:
        started.set()
        release.wait(10)  # holds the writer while the others queue up
        return _record_ok("s")(tx)

    writer = Writer(store)
    try:
        first = writer.submit(_pending("s", blocked))
        assert started.wait(10)
        queued = [writer.submit(_pending(sid, _record_ok(sid))) for sid in ("t", "u")]
        release.set()
        assert [f.result(10).status for f in [first, *queued]] == ["not_modified"] * 3
    finally:
        writer.close()
    assert transactions == 2  # the first alone, then the two that queued behind it
    assert store.fetch_state("u").etag == '"u"'


def test_a_full_disk_fails_the_whole_group_and_the_writer_retries_one_by_one(
        store: Store) -> None:
    """SQLite rolls back the whole transaction on a full disk, savepoints and all: no source of
    the group may then be reported as written. The writer writes them again one by one, so
    only the one that does not fit fails."""
    from syndicate.store.schema import meta

    with store.write_engine.connect() as conn:  # the disk is full 20 pages from now
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count={pages + 20}")

    def too_big(tx: UpdateTransaction) -> UpdateOutcome:
        tx.conn.execute(meta.insert().values(key="big", value="x" * 2_000_000))
        return UpdateOutcome("t", "updated")

    group = [_pending("s", _record_ok("s")), _pending("t", too_big), _pending("u", _record_ok("u"))]
    with pytest.raises(Exception, match="full"):
        write_updates(store, group)
    assert store.fetch_state("s").etag is None  # nothing of the group stands

    writer = Writer(store)
    try:
        futures = [writer.submit(pending) for pending in group]
        assert futures[0].result(10).status == "not_modified"
        assert futures[2].result(10).status == "not_modified"
        with pytest.raises(Exception, match="full"):
            futures[1].result(10)
    finally:
        writer.close()
    assert (store.fetch_state("s").etag, store.fetch_state("u").etag) == ('"s"', '"u"')


def test_a_worker_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL or the OOM killer on syndicate must not leave parse workers behind."""
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from datetime import UTC, datetime, timedelta\n"
        "from syndicate.ingest.workers import NormalizerPool\n"
        "from syndicate.types import SourceConfig\n"
        "if __name__ == '__main__':\n"
        "    source = SourceConfig(id='s', url='https://s.example/f', title=None, tags=(),\n"
        "                          language=None, interval=timedelta(minutes=10))\n"
        "    pool = NormalizerPool(1)\n"
        "    pool(b'<rss version=\"2.0\"><channel><title>t</title></channel></rss>',\n"
        "         source.url, None, source, {}, datetime.now(UTC))\n"
        "    print(*pool._current()._processes, flush=True)\n"
        "    time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        worker = int(parent.stdout.readline())  # type: ignore[union-attr]
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{worker}").exists() and \
                "Z" not in Path(f"/proc/{worker}/stat").read_text().split()[2]:
            assert time.monotonic() < deadline, "the worker outlived its parent"
            time.sleep(0.1)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]
