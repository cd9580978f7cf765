"""Running source updates: a bounded pool for one batch (``Ingestor``), and the long-running
``Scheduler`` that asks the store which sources are due and feeds them to that pool.

Scheduling state lives in the store (``sources.next_fetch_at``, set by ``ingest.pacing`` with
jitter after every fetch), not in the scheduler's memory, so a restart resumes where things
stood. APScheduler drives two periodic jobs: the tick that dispatches due sources and
publishes the feeds they changed, and the config watcher that reloads the YAML when it
changes (an invalid edit is logged, problem by problem, and the running config is kept).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import UTC, datetime

from .config import file_mtime, load_config
from .errors import ConfigError
from .ingest.client import HttpClient
from .ingest.fetch import FetchSettings
from .ingest.hosts import HostGate, interleave_by_host
from .ingest.pipeline import UpdateOutcome, normalize_inline, prepare_update
from .ingest.workers import NormalizerPool, default_processes
from .ingest.writer import Writer
from .publish import PUBLISHED, publish_feeds, publish_fingerprint
from .publish.websub import notify_hub
from .store import SCHEDULER_HEARTBEAT, Store, source_host
from .types import Config, FetchState

log = logging.getLogger(__name__)


def fetch_settings(config: Config) -> FetchSettings:
    service = config.service
    return FetchSettings(user_agent=service.user_agent, connect_timeout=service.connect_timeout,
                         read_timeout=service.read_timeout, max_body_bytes=service.max_body_bytes)


class Ingestor:
    """Updates sources: fetch threads (a bounded pool), worker processes that parse and
    normalize (``ingest.workers``), and one thread that writes (``ingest.writer``)."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.gate = HostGate(config.service.fetch_per_host)
        self.writer = Writer(store)
        processes = config.service.parse_workers
        processes = default_processes() if processes is None else processes
        self.pool = NormalizerPool(processes) if processes else None
        self._publishing = threading.Lock()  # the tick and a config reload may both publish
        # One set of keep-alive pools for every fetch thread, a host's as large as the number
        # of its fetches that may run at once.
        self.client = HttpClient(config.service.fetch_per_host)

    def close(self) -> None:
        """Finish the writes that are queued; stop the worker processes."""
        self.writer.close()
        if self.pool is not None:
            self.pool.close()
        self.client.close()

    def start_one(self, source_id: str,
                  state: FetchState | None = None) -> Future[UpdateOutcome]:
        """Fetch and normalize one source in this thread; its writes are queued for the writer,
        whose future holds the outcome."""
        config = self.config  # one consistent config for the whole update, even across a reload
        source = config.source(source_id)
        host = source_host(source.url)
        until = self.gate.waiting_until(host, datetime.now(UTC))
        if until is not None:  # the host asked us to wait: not a failure of this source
            self.store.defer_host(host, until)
            deferred: Future[UpdateOutcome] = Future()
            deferred.set_result(UpdateOutcome(source_id, "deferred"))
            return deferred
        with self.gate.slot(host):
            pending = prepare_update(
                source, store=self.store, settings=fetch_settings(config),
                client=self.client, all_sources=config.sources_by_id, now=datetime.now(UTC),
                dedupe_config=config.dedupe, state=state,
                normalizer=self.pool or normalize_inline)
        if pending.host_wait_until is not None:
            self.gate.wait(host, pending.host_wait_until)
        return self.writer.submit(pending)

    def dispatch_order(self, source_ids: Iterable[str]) -> list[str]:
        hosts = {s.id: source_host(s.url) for s in self.config.sources}
        return interleave_by_host(source_ids, lambda sid: hosts.get(sid, ""))

    def update(self, source_ids: Sequence[str],
               progress: Callable[[UpdateOutcome], None] | None = None) -> list[UpdateOutcome]:
        """Update the given sources concurrently; the caller publishes."""
        order = self.dispatch_order(source_ids)
        states = self.store.fetch_states(order)  # one query, not one per source
        written: list[tuple[str, Future[UpdateOutcome]]] = []
        with ThreadPoolExecutor(self.config.service.fetch_workers,
                                thread_name_prefix="fetch") as pool:
            started = {pool.submit(self.start_one, sid, states.get(sid)): sid for sid in order}
            try:
                for future in as_completed(started):
                    sid = started[future]
                    written.append((sid, future.result()))
                    if progress:
                        written[-1][1].add_done_callback(
                            functools.partial(_report_progress, progress, sid))
            except BaseException:  # Ctrl-C, SIGTERM: finish what runs, start nothing more
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return [_outcome(sid, future) for sid, future in written]

    def publish(self) -> list[str]:
        """Render every configured feed and forget feeds no longer configured. Every feed,
        because a story that changed may be in any of them (another source joining a story
        changes its source list in every feed that shows it); a rendering whose bytes did not
        change is not stored again and keeps its ETag. Nothing is rendered when nothing they
        depend on changed since the last publish (``publish_fingerprint``)."""
        config = self.config
        with self._publishing:
            self.store.drop_rendered_except(f.id for f in config.feeds)
            # Read before rendering: a story written meanwhile moves it, and is rendered then.
            fingerprint = publish_fingerprint(config, self.store.stories_version())
            if self.store.meta_value(PUBLISHED) == fingerprint:
                return []  # nothing the renderings show has changed
            changed = publish_feeds(self.store, config, config.feeds, datetime.now(UTC))
            self.store.set_meta_value(PUBLISHED, fingerprint)
        notify_hub(config.service, changed)  # right after the change, as WebSub asks
        return changed


class Scheduler:
    """The long-running ingest loop of ``syndicate run``."""

    TICK_SECONDS = 2.0
    HEARTBEAT_SECONDS = 10.0
    STALL_SECONDS = 120.0  # a tick stuck this long (a hung publish) makes /healthz fail
    CONFIG_CHECK_SECONDS = 3.0

    def __init__(self, config: Config, store: Store,
                 on_publish: Callable[[list[str]], None] | None = None,
                 on_reload: Callable[[Config], None] | None = None) -> None:
        self.ingestor = Ingestor(config, store)
        self.store = store
        self.on_publish = on_publish
        self.on_reload = on_reload
        self._pool = ThreadPoolExecutor(config.service.fetch_workers, thread_name_prefix="fetch")
        self._running: dict[str, Future[Future[UpdateOutcome]]] = {}
        self._finished: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._config_mtime = file_mtime(config.path)
        # Imported here: `fetch` never schedules, and every millisecond of its start counts
        # when a re-poll of a thousand unchanged feeds takes well under a second.
        from apscheduler.schedulers.background import BackgroundScheduler

        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._last_tick: datetime | None = None

    @property
    def config(self) -> Config:
        return self.ingestor.config

    def start(self) -> None:
        self.store.sync_sources(self.config.sources, datetime.now(UTC))
        self._publish()
        self._scheduler.add_job(self.tick, "interval", seconds=self.TICK_SECONDS,
                                id="tick", max_instances=1, coalesce=True,
                                next_run_time=datetime.now(UTC))
        self._scheduler.add_job(self.reload_if_changed, "interval",
                                seconds=self.CONFIG_CHECK_SECONDS, id="config",
                                max_instances=1, coalesce=True)
        self._scheduler.add_job(self.beat, "interval", seconds=self.HEARTBEAT_SECONDS,
                                id="heartbeat", max_instances=1, coalesce=True)
        self._scheduler.start()
        self.beat()
        log.info("scheduler started: %d sources, %d feeds", len(self.config.sources),
                 len(self.config.feeds))

    def shutdown(self) -> None:
        """Stop dispatching, let running updates finish their transactions, then stop.
        Sources queued but not started are dropped first (they stay due, and the next start
        fetches them), so a stop during a large ingest does not wait for all of it."""
        with self._lock:
            self._stopping = True
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._scheduler.shutdown(wait=True)
        self._pool.shutdown(wait=True)
        self.ingestor.close()
        self._write_heartbeat({"at": datetime.now(UTC).isoformat(), "stopped": True})
        log.info("scheduler stopped")

    def beat(self) -> None:
        """Tell the web processes how the ingest loop is doing (they serve /healthz): the
        time of the last tick, so a tick that hangs shows, and what problem() says."""
        at = self._last_tick or datetime.now(UTC)
        self._write_heartbeat({"at": at.isoformat(), "problem": self.problem()})

    def _write_heartbeat(self, state: dict[str, object]) -> None:
        try:
            self.store.set_meta_value(SCHEDULER_HEARTBEAT, json.dumps(state))
        except Exception:  # a busy or failing database must not stop the loop itself
            log.exception("could not write the scheduler heartbeat")

    def problem(self) -> str | None:
        """What is wrong with the ingest loop, for /healthz; None when it ticks as it should."""
        if not self._scheduler.running:
            return "scheduler not running"
        if self._last_tick is None:
            return None  # starting
        silent = (datetime.now(UTC) - self._last_tick).total_seconds()
        if silent > self.STALL_SECONDS:
            return f"scheduler has not ticked for {silent:.0f} s"
        return None

    def tick(self) -> None:
        """Dispatch due sources that are not already running; publish what finished."""
        config = self.config
        now = datetime.now(UTC)
        self._last_tick = now
        with self._lock:
            busy = set(self._running)
        due = self.ingestor.dispatch_order(
            sid for sid in self.store.due_sources((s.id for s in config.sources), now)
            if sid not in busy)
        if due:
            for source_id in due:
                # Registered under the lock, so that _done (which takes it) cannot run first.
                with self._lock:
                    if self._stopping:
                        return  # shutdown dropped the queue: dispatch no more
                    # A fetch thread fetches and normalizes, hands the writes to the writer
                    # and goes on to the next source; the source stays running until its
                    # writes are committed (_started, then _done).
                    started = self._pool.submit(self.ingestor.start_one, source_id)
                    self._running[source_id] = started
                started.add_done_callback(functools.partial(self._started, source_id))
        with self._lock:
            finished, self._finished = self._finished, set()
        if finished:
            try:
                self._publish()
            except Exception:
                with self._lock:  # publish again on the next tick rather than lose the change
                    self._finished |= finished
                raise

    def _started(self, source_id: str, started: Future[Future[UpdateOutcome]]) -> None:
        """The fetch thread is done with the source: wait for its writes, unless it failed
        before handing any over (cancelled at shutdown, or a bug)."""
        error = None if started.cancelled() else started.exception()
        if started.cancelled() or error is not None:
            with self._lock:
                self._running.pop(source_id, None)
            if error is not None:
                log.error("source %s: update crashed", source_id, exc_info=error)
            return
        started.result().add_done_callback(functools.partial(self._done, source_id))

    def _done(self, source_id: str, future: Future[UpdateOutcome]) -> None:
        with self._lock:
            self._running.pop(source_id, None)
            if not future.cancelled() and future.exception() is None and \
                    future.result().changed_story_count:
                self._finished.add(source_id)
        if not future.cancelled() and future.exception() is not None:
            log.error("source %s: update crashed", source_id, exc_info=future.exception())

    def _publish(self) -> None:
        changed_feeds = self.ingestor.publish()
        if changed_feeds and self.on_publish:
            self.on_publish(changed_feeds)

    def reload_if_changed(self) -> bool:
        mtime = file_mtime(self.config.path)
        if mtime == self._config_mtime:
            return False
        self._config_mtime = mtime
        try:
            config = load_config(self.config.path)
        except ConfigError as e:
            for problem in e.problems:
                log.error("config not reloaded: %s", problem)
            return False
        if config.service != self.config.service:
            log.warning("config reloaded, but changes under service: take effect at restart")
        self.store.sync_sources(config.sources, datetime.now(UTC))
        self.ingestor.config = config
        if self.on_reload:
            self.on_reload(config)
        log.info("config reloaded: %d sources, %d feeds", len(config.sources), len(config.feeds))
        self._publish()
        return True


def _report_progress(progress: Callable[[UpdateOutcome], None], source_id: str,
                     future: Future[UpdateOutcome]) -> None:
    progress(_outcome(source_id, future))


def _outcome(source_id: str, future: Future[UpdateOutcome]) -> UpdateOutcome:
    """The outcome of a queued write; one the store could not commit is a failure."""
    error = future.exception()
    if error is None:
        return future.result()
    log.error("source %s: the update could not be stored: %s", source_id, error)
    return UpdateOutcome(source_id, "failed", error=f"the update could not be stored: {error}")
