"""The long-running scheduler: dispatching due sources, publishing, reloading the config."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from syndicate.config import load_config
from syndicate.schedule import Scheduler
from syndicate.store import Store
from tests.loopback import LoopbackServer

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<link>https://t.example/</link><description>d</description>
<item><guid>one</guid><title>First story</title><link>https://t.example/1</link></item>
</channel></rss>"""


def write(path: Path, text: str) -> None:
    path.write_text(text)
    stat = path.stat()  # make sure the change is visible even within one mtime tick
    os.utime(path, (stat.st_atime, stat.st_mtime + 1))


def config_text(tmp_path: Path, loopback: LoopbackServer, extra: str = "") -> str:
    return f"""service:
  database: sqlite:///{tmp_path}/store.db
sources:
  - id: one
    url: {loopback.url("/one.xml")}
{extra}feeds:
  - id: all
"""


def wait_for(condition: object, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.1)


@pytest.fixture
def scheduler(tmp_path: Path, loopback: LoopbackServer) -> Scheduler:
    loopback.add_feed("/one.xml", FEED)
    loopback.add_feed("/two.xml", FEED.replace(b"one", b"two").replace(b"First", b"Second")
                      .replace(b"/1<", b"/2<"))
    path = tmp_path / "syndicate.yaml"
    write(path, config_text(tmp_path, loopback))
    config = load_config(path)
    store = Store(config.service.database)
    published: list[list[str]] = []
    scheduler = Scheduler(config, store, on_publish=published.append)
    scheduler.published = published  # type: ignore[attr-defined]
    scheduler.start()
    yield scheduler  # type: ignore[misc]
    scheduler.shutdown()
    store.close()


def test_due_sources_are_fetched_and_published(scheduler: Scheduler) -> None:
    wait_for(lambda: scheduler.store.story_count() == 1)
    wait_for(lambda: b"First story" in scheduler.store.rendered_feed("all", "atom").body)  # type: ignore[union-attr]
    assert ["all"] in scheduler.published  # type: ignore[attr-defined]
    state = scheduler.store.fetch_state("one")
    assert state.next_fetch_at is not None and state.last_success_at is not None


def test_config_changes_are_picked_up_and_bad_edits_ignored(
        scheduler: Scheduler, tmp_path: Path, loopback: LoopbackServer) -> None:
    wait_for(lambda: scheduler.store.story_count() == 1)
    path = scheduler.config.path
    write(path, config_text(tmp_path, loopback).replace("sources:", "sources:\n  - id: [oops"))
    assert scheduler.reload_if_changed() is False
    assert [s.id for s in scheduler.config.sources] == ["one"]

    write(path, config_text(tmp_path, loopback,
                            f"  - id: two\n    url: {loopback.url('/two.xml')}\n"))
    assert scheduler.reload_if_changed() is True
    assert [s.id for s in scheduler.config.sources] == ["one", "two"]
    wait_for(lambda: scheduler.store.story_count() == 2)
    wait_for(lambda: b"Second story" in (scheduler.store.rendered_feed("all", "rss").body))  # type: ignore[union-attr]


def test_liveness_reports_a_stopped_or_stalled_scheduler(scheduler: Scheduler) -> None:
    import json
    from datetime import UTC, datetime, timedelta

    from syndicate.store import SCHEDULER_HEARTBEAT

    def heartbeat() -> dict[str, object]:
        return json.loads(scheduler.store.meta_value(SCHEDULER_HEARTBEAT) or "{}")  # type: ignore[no-any-return]

    wait_for(lambda: scheduler.problem() is None)
    assert heartbeat()["problem"] is None  # written at start, for the web processes
    # The live loop ticks every 2 s and would overwrite the forced _last_tick below: hold its
    # jobs (a paused scheduler still counts as running) and let a tick already under way end.
    scheduler._scheduler.pause()
    executor = scheduler._scheduler._lookup_executor("default")
    wait_for(lambda: not any(executor._instances.values()))
    scheduler._last_tick = datetime.now(UTC) - timedelta(minutes=10)  # as if a tick hung
    assert "has not ticked" in (scheduler.problem() or "")
    scheduler.beat()
    assert heartbeat()["at"] == scheduler._last_tick.isoformat()  # a web process sees it too
    scheduler._last_tick = None
    scheduler.shutdown()
    assert scheduler.problem() == "scheduler not running"
    assert heartbeat()["stopped"] is True
    scheduler.shutdown = lambda: None  # type: ignore[method-assign]  (the fixture stops it)
