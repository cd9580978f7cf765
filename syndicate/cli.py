"""The ``syndicate`` command: check | fetch | run | serve | stories.

    syndicate [--config FILE] check          validate the config, print a summary (exit 2: problems)
    syndicate [--config FILE] fetch [--all]  update due (or all) sources once, render, exit
    syndicate [--config FILE] run            scheduler + web server until SIGINT/SIGTERM
    syndicate [--config FILE] serve          web server only (feeds rendered by another process)
    syndicate [--config FILE] stories [--json] [--feed ID] [--limit N]

The config file is ``--config``, else ``$SYNDICATE_CONFIG``, else ``config/syndicate.yaml``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from . import __version__
from .config import describe, load_config, parse_listen
from .errors import ConfigError, StoreError
from .ingest.pipeline import UpdateOutcome
from .publish import select_stories
from .schedule import Ingestor, Scheduler
from .store import Store
from .types import Config, Story

log = logging.getLogger("syndicate")

DEFAULT_CONFIG = "config/syndicate.yaml"
EXIT_ALL_FAILED = 1
EXIT_CONFIG = 2
EXIT_STORE = 3


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.log_level)
    config_path = args.config or os.environ.get("SYNDICATE_CONFIG") or DEFAULT_CONFIG
    try:
        config = load_config(config_path)
    except ConfigError as e:
        print(f"{config_path}: {len(e.problems)} problem(s) in the config:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check":
        print(describe(config))
        return 0
    if getattr(args, "listen", None):
        try:
            host, port = parse_listen(args.listen)
        except ValueError as e:
            print(f"error: --listen {args.listen}: {e}", file=sys.stderr)
            return EXIT_CONFIG
        config = replace(config, service=replace(config.service, listen_host=host,
                                                 listen_port=port))
    try:
        store = Store(config.service.database)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_STORE
    try:
        handler = {"fetch": _fetch, "run": _run, "serve": _serve, "stories": _stories}
        return handler[args.command](config, store, args)
    finally:
        store.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syndicate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help=f"config file (default: $SYNDICATE_CONFIG or "
                                         f"{DEFAULT_CONFIG})")
    parser.add_argument("--log-level", default=os.environ.get("SYNDICATE_LOG_LEVEL", "INFO"),
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--version", action="version", version=f"syndicate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="validate the config and print a summary")
    fetch = commands.add_parser("fetch", help="update due sources once, render feeds, exit")
    fetch.add_argument("--all", action="store_true", help="update every source, due or not")
    for name, text in (("run", "scheduler and web server until SIGINT/SIGTERM"),
                       ("serve", "web server only")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--listen", metavar="HOST:PORT",
                             help="override service.listen (e.g. 0.0.0.0:8080 in a container)")
    stories = commands.add_parser("stories", help="show stories with their sources and members")
    stories.add_argument("--json", action="store_true", help="print a JSON array")
    stories.add_argument("--feed", help="only the stories of this output feed")
    stories.add_argument("--limit", type=int, default=20)
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler reports every job run at INFO, and a tick that outlasts its interval (a
    # publish during a large ingest) at WARNING, every 2 s: noise. Jobs that fail are still
    # logged (ERROR), and a tick that hangs shows in /healthz.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def _fetch(config: Config, store: Store, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    store.sync_sources(config.sources, now)
    ids = [s.id for s in config.sources]
    if not args.all:
        ids = store.due_sources(ids, now)
    # SIGTERM (a cron job's timeout, a kill) stops like Ctrl-C: the updates running finish and
    # are written, none is started, the worker processes are stopped; exit 143.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    ingestor = Ingestor(config, store)
    bar = _progress_bar(len(ids))
    try:
        outcomes = ingestor.update(ids, progress=(lambda _: bar.update(1)) if bar else None)
    finally:
        ingestor.close()
    if bar:
        bar.close()
    # Every feed is rendered: the config's feed definitions may have changed since the last
    # run. Unchanged feeds render to the same bytes and keep their ETag.
    changed_feeds = ingestor.publish()
    _print_fetch_summary(outcomes, changed_feeds)
    # For cron and scripts: some sources failing is normal; every source failing is not.
    if outcomes and all(o.status in ("failed", "deferred") for o in outcomes):
        return EXIT_ALL_FAILED
    return 0


def _progress_bar(total: int) -> Any:
    if not sys.stderr.isatty() or total == 0:
        return None
    from tqdm import tqdm  # only on a terminal

    return tqdm(total=total, unit="source", desc="fetching", file=sys.stderr)


def _print_fetch_summary(outcomes: list[UpdateOutcome], changed_feeds: list[str]) -> None:
    counts = Counter(o.status for o in outcomes)
    new_entries = sum(o.new_entries for o in outcomes)
    deferred = f", {counts['deferred']} deferred" if counts["deferred"] else ""
    print(f"{len(outcomes)} sources: {counts['updated']} updated, "
          f"{counts['not_modified']} not modified, {counts['failed']} failed{deferred}; "
          f"{new_entries} new entries; feeds changed: {', '.join(changed_feeds) or 'none'}")
    for outcome in sorted(outcomes, key=lambda o: o.source_id):
        if outcome.status == "failed":
            print(f"  {outcome.source_id}: {outcome.error}", file=sys.stderr)


def _serve_app(config: Config, args: argparse.Namespace, *, scheduler: bool) -> None:
    """Serve HTTP from ``service.web_workers`` processes until SIGINT/SIGTERM.

    The web processes are separate from this one, where ``run``'s scheduler, writer and
    parsing work: ingest and rendering never stall a request. Each web process loads the
    config and opens the store itself (``web.app.app_from_environment``), serves the
    renderings from memory and re-reads them every few seconds; in ``run`` it also reads the
    scheduler's heartbeat for /healthz. uvicorn's supervisor restarts a web process that
    dies and stops them all, after the requests in flight, on SIGINT or SIGTERM."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from .web.app import CONFIG_ENV, LOG_LEVEL_ENV, SCHEDULER_ENV
    from .web.fastpath import UVICORN_SETTINGS

    os.environ[CONFIG_ENV] = str(config.path)
    os.environ[SCHEDULER_ENV] = "1" if scheduler else "0"
    os.environ[LOG_LEVEL_ENV] = args.log_level
    service = config.service
    server_config = uvicorn.Config(
        "syndicate.web.app:app_from_environment", factory=True, host=service.listen_host,
        port=service.listen_port, workers=service.web_workers, **UVICORN_SETTINGS)
    sock = server_config.bind_socket()
    log.info("serving on http://%s:%d/ with %d web processes (public URL %s/)",
             service.listen_host, service.listen_port, service.web_workers, service.base_url)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        Multiprocess(server_config, sockets=[sock]).run()  # returns on SIGINT/SIGTERM
    finally:
        sock.close()
        # The supervisor's handlers only queue signals for its loop, which has ended: a second
        # Ctrl-C or SIGTERM during the scheduler's shutdown must still stop the process.
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    log.info("web processes stopped")


def _run(config: Config, store: Store, args: argparse.Namespace) -> int:
    scheduler = Scheduler(config, store)
    scheduler.start()
    try:
        _serve_app(config, args, scheduler=True)
    finally:
        scheduler.shutdown()
    return 0


def _serve(config: Config, store: Store, args: argparse.Namespace) -> int:
    _serve_app(config, args, scheduler=False)
    return 0


def _stories(config: Config, store: Store, args: argparse.Namespace) -> int:
    if args.feed:
        try:
            feed = config.feed(args.feed)
        except KeyError:
            print(f"error: no feed with id {args.feed!r} in {config.path}", file=sys.stderr)
            return EXIT_CONFIG
        stories = select_stories(store, config, feed)[: args.limit]
    else:
        stories = store.select_stories([s.id for s in config.sources], limit=args.limit)
    stories = store.stories_with_members(stories)
    if args.json:
        print(json.dumps([_story_json(s) for s in stories], ensure_ascii=False, indent=2))
        return 0
    for story in stories:
        print(f"{story.updated:%Y-%m-%d %H:%M} {story.title}\n  {story.guid}")
        outlets = ", ".join(s.host or s.name for s in story.sources)
        print(f"  sources: {outlets}")
        for m in story.members:
            score = f" {m.score:.2f}" if m.score is not None else ""
            print(f"  - {m.source_id} [{m.reason}{score}] {m.link or m.guid}")
    return 0


def _story_json(story: Story) -> dict[str, Any]:
    return {
        "id": story.guid,
        "title": story.title,
        "link": story.link,
        "updated": story.updated.isoformat(),
        "published": story.published.isoformat(),
        "place": story.place,
        "sources": [{"host": s.host, "name": s.name, "url": s.url, "carried": s.carried}
                    for s in story.sources],
        "members": [{"source": m.source_id, "guid": m.guid, "link": m.link, "reason": m.reason,
                     "score": m.score} for m in story.members],
    }


if __name__ == "__main__":
    sys.exit(main())
