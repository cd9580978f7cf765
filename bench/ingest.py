#!/usr/bin/env python3
"""Ingest throughput of whole ``syndicate fetch --all`` processes, against the ``reader`` library.

    .venv/bin/python bench/ingest.py [--n 1000] [--seed 42] [--port 8081]
                                     [--workers 1,4,8,16] [--skip-reader]

1. Makes (or reuses) the corpus of ../shared/bench/gen_corpus.py and serves it with nginx on
   127.0.0.1 through ../shared/bench/serve_corpus.py (ETag and Last-Modified, so an unchanged
   feed answers 304). nginx is stopped at the end, also on an error, Ctrl-C or SIGTERM.
2. syndicate: a config in a temporary directory lists every feed as a source
   (``http://127.0.0.1:PORT/feeds/fNNNN.xml``), a fresh SQLite file and three output feeds
   (every story; ``languages: [de]``; ``min_outlets: 2``), the fetch settings at their
   defaults. ``.venv/bin/syndicate --config CFG fetch --all`` then runs as a child process
   twice: cold (empty database), and warm right after, when every source must answer 304
   (checked against the "N not modified" of its summary).
3. Baseline: lemon24's ``reader`` (the newest release pip finds), installed with
   ``sgmllib3k`` (feedparser 6.0.14 needs it) into its own venv, bench/out/reader-venv, made on
   first use. A driver script makes a reader on a fresh SQLite file, adds every feed URL and
   updates them all with ``scheduled=False`` (so that the warm run re-polls at once) for each
   worker count of ``--workers``, cold; the best count then does the warm run on its database.
   The driver consumes ``update_feeds_iter``, the generator that ``update_feeds`` itself
   drains, so that it can count updated, not-modified and failed feeds.
4. Prints seconds, feeds/s, items/s (items = the ground truth's item count) and peak memory
   for each run, the ratios to the baseline and the targets of issue 4: cold items/s at least
   5x reader's; warm time at most 0.5x reader's with every source answering 304; peak memory
   under 300 MB.

Every run is a whole process, timed from spawn to exit (interpreter start and imports
included). Peak memory is that of the whole process tree: the resident set sizes of the child
and of every process it started (syndicate's parsing workers), summed, sampled every 20 ms
from /proc, and never less than the sum of each process's own peak (VmHWM); shown in MiB.
Summing counts pages the processes share twice, and peaks that came at different times
together, so the figure errs on the high side. (The rusage's ru_maxrss is not used: Linux
carries the parent's high-water mark over the child's exec.)
Before measuring, every feed file is read once so that the page cache is warm for both.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from bench.corpus import OUT, REPO, corpus_dir, ground_truth  # noqa: E402

SERVE_CORPUS = REPO.parent / "shared" / "bench" / "serve_corpus.py"
SYNDICATE = REPO / ".venv" / "bin" / "syndicate"
READER_VENV = OUT / "reader-venv"
READER_PACKAGES = ("reader", "sgmllib3k")
NGINX_INSTALL = "apt-get update && apt-get install -y nginx"
EXIT_MISSING_TOOL = 2

# Targets of issue 4, on this 2-core machine.
COLD_SPEEDUP_TARGET = 5.0  # syndicate items/s >= 5x reader's
WARM_TIME_TARGET = 0.5  # syndicate warm seconds <= 0.5x reader's
PEAK_MB_TARGET = 300.0

SUMMARY = re.compile(r"(?P<sources>\d+) sources: (?P<updated>\d+) updated, "
                     r"(?P<not_modified>\d+) not modified, (?P<failed>\d+) failed; "
                     r"(?P<new_entries>\d+) new entries")

READER_DRIVER = '''\
"""Driver for bench/ingest.py: one reader update of every feed, as a whole process.

    python reader_driver.py DB URLS_FILE WORKERS cold|warm

cold: a fresh database, every URL added, then one update; warm: one more update of DB.
Prints one JSON object: counts of updated / not modified / failed feeds, stored entries.
"""
import json
import sys
import time
from importlib.metadata import version

from reader import make_reader

db, urls_file, workers, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
started = time.perf_counter()
reader = make_reader(db)
if mode == "cold":
    for url in open(urls_file).read().split():
        reader.add_feed(url)
ready = time.perf_counter()
counts = {"updated": 0, "not_modified": 0, "failed": 0}
errors = []
# update_feeds() is this loop with ParseErrors skipped silently; here they are counted.
for result in reader.update_feeds_iter(workers=workers, scheduled=False):
    if isinstance(result.value, Exception):
        counts["failed"] += 1
        errors.append(f"{result.url}: {result.value!r}")
    elif result.value is None:
        counts["not_modified"] += 1
    else:
        counts["updated"] += 1
done = time.perf_counter()
print(json.dumps({
    **counts, "entries": reader.get_entry_counts().total, "errors": errors[:5],
    "setup_seconds": ready - started, "update_seconds": done - ready,
    "reader": version("reader"), "feedparser": version("feedparser"),
}))
reader.close()
'''


@dataclass(frozen=True)
class Run:
    """One measured child process."""

    label: str
    seconds: float
    peak_mb: float
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    phase: str
    who: str
    seconds: float
    peak_mb: float
    feeds: int
    items: int
    not_modified: int  # sources that answered 304

    @property
    def feeds_per_s(self) -> float:
        return self.feeds / self.seconds

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds


class BenchError(Exception):
    """A run that did not do what the benchmark needs (it failed, or fetched too little)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):  # progress lines in order, also into a file
        sys.stdout.reconfigure(line_buffering=True)
    nginx_env = nginx_environment()
    if nginx_env is None:
        print(f"nginx is not installed; it serves the corpus. Install it with:\n"
              f"  {NGINX_INSTALL}", file=sys.stderr)
        return EXIT_MISSING_TOOL
    # SIGTERM ends the run like Ctrl-C does: through the finally blocks that stop nginx,
    # kill a running child and remove the temporary directory.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    reader_python = None if args.skip_reader else ensure_reader_venv()

    corpus = corpus_dir(args.n, args.seed)
    items = len(ground_truth(corpus)["items"])
    feeds = sorted((corpus / "feeds").glob("*.xml"))
    print(f"corpus: {corpus.name}: {len(feeds)} feeds, {items} items, "
          f"{sum(f.stat().st_size for f in feeds) / 1e6:.1f} MB")
    warm_page_cache(feeds)

    try:
        with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp, \
                serving(corpus, args.port, nginx_env) as base:
            workdir = Path(tmp)
            urls = [f"{base}/feeds/{f.name}" for f in feeds]
            print(f"serving {corpus} at {base}/ with nginx")
            rows = bench_syndicate(workdir, urls, items)
            if reader_python is not None:
                rows += bench_reader(reader_python, workdir, urls, items, args.workers)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nginx stopped, temporary files removed", file=sys.stderr)
        return 130
    print_table(rows)
    print_targets(rows)
    print("note: single runs on a shared 2-core machine; other work may have run at the same "
          "time, so treat the figures as noisy.")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="feeds in the corpus")
    parser.add_argument("--seed", type=int, default=42, help="corpus seed")
    parser.add_argument("--port", type=int, default=8081, help="loopback port for nginx")
    parser.add_argument("--workers", default="1,4,8,16", type=worker_list,
                        help="reader worker counts to try on the cold run (comma-separated)")
    parser.add_argument("--skip-reader", action="store_true",
                        help="measure syndicate only (no baseline, no ratios)")
    return parser.parse_args(argv)


def worker_list(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers such as 1,4,8,16: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected worker counts of at least 1: {text!r}")
    return counts


# --- tools -----------------------------------------------------------------------------------


def nginx_environment() -> dict[str, str] | None:
    """The environment serve_corpus.py needs to find nginx (Debian puts it in /usr/sbin, which
    a non-root PATH may lack), or None when nginx is not installed."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    if shutil.which("nginx", path=path) is None:
        return None
    return {**os.environ, "PATH": path}


def ensure_reader_venv() -> Path:
    """The baseline's interpreter: a venv of its own, so that reader's dependencies never mix
    with syndicate's. Made and filled with pip on first use."""
    python = READER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import reader, sgmllib"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing {', '.join(READER_PACKAGES)} into {READER_VENV} …", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(READER_VENV)], check=True)
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", *READER_PACKAGES],
                             capture_output=True, text=True)
    if install.returncode != 0:
        sys.exit(f"pip could not install {READER_PACKAGES} into {READER_VENV}:\n"
                 f"{install.stdout}{install.stderr}")
    return python


def warm_page_cache(feeds: list[Path]) -> None:
    """Read every feed once, so that neither contender pays for the first disk read."""
    for path in feeds:
        path.read_bytes()


@contextlib.contextmanager
def serving(root: Path, port: int, env: dict[str, str]) -> Iterator[str]:
    """nginx serving ``root`` on 127.0.0.1:port for the duration of the block."""
    if port_in_use(port):
        raise BenchError(f"127.0.0.1:{port} is already in use: stop what listens there or "
                         f"pass --port")
    run_dir = Path(tempfile.gettempdir()) / f"feedbench-nginx-{port}"
    made_run_dir = not run_dir.exists()
    # A session of its own: Ctrl-C in the terminal must not reach nginx before we stop it.
    started = subprocess.run([sys.executable, str(SERVE_CORPUS), "start", "--root", str(root),
                              "--port", str(port)], env=env, capture_output=True, text=True,
                             start_new_session=True)
    if started.returncode != 0:
        raise BenchError(f"serve_corpus.py start failed:\n{started.stderr}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stopped = subprocess.run([sys.executable, str(SERVE_CORPUS), "stop", "--port",
                                  str(port)], env=env, capture_output=True, text=True)
        if stopped.returncode != 0:
            print(f"warning: serve_corpus.py stop failed (nginx PID {started.stdout.strip()}):"
                  f"\n{stopped.stderr}", file=sys.stderr)
        elif made_run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_measured(label: str, command: list[str], workdir: Path) -> Run:
    """Run ``command`` to its end; its wall time and the peak RSS of its process tree."""
    out, err = workdir / f"{label}.out", workdir / f"{label}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=workdir)
        sampler = TreeMemorySampler(child.pid)
        sampler.start()
        try:
            _, status, _ = os.wait4(child.pid, 0)
        except BaseException:
            child.kill()  # interrupted: never leave the child running
            child.wait()
            raise
        finally:
            sampler.stop()
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    # Not the rusage's ru_maxrss: Linux carries the parent's high-water mark across the
    # child's exec, so every child looked at least as large as this script (56 MB with the
    # 1,000-feed corpus's ground truth loaded, 400 MB with 10,000 feeds').
    peak_mb = max(sampler.peak_bytes, sampler.high_water_bytes) / 2**20
    run = Run(label, seconds, peak_mb, out.read_text(errors="replace"),
              err.read_text(errors="replace"))
    if child.returncode != 0:
        raise BenchError(f"{label} exited with {child.returncode}: {' '.join(command)}\n"
                         f"{tail(run.stderr)}")
    return run


class TreeMemorySampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants until stopped, and keeps
    each one's own high-water mark (VmHWM, which a sample between two peaks would miss)."""

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, root: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_bytes = 0
        self._high_water: dict[int, int] = {}  # pid -> its VmHWM, in bytes
        self._stop_event = threading.Event()

    @property
    def high_water_bytes(self) -> int:
        """The processes' own peaks summed: errs high when they peaked at different times."""
        return sum(self._high_water.values())

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, self._tree_rss())

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def _tree_rss(self) -> int:
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # the command name (field 2) may hold spaces: fields after its ")" are fixed
                fields = stat.read_text().rsplit(")", 1)[1].split()
                parents[int(stat.parent.name)] = int(fields[1])
        tree, frontier = {self.root}, [self.root]
        while frontier:
            pid = frontier.pop()
            children = [p for p, parent in parents.items() if parent == pid]
            tree.update(children)
            frontier += children
        total = 0
        for pid in tree:
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self.PAGE
                status = Path(f"/proc/{pid}/status").read_text()
                kib = int(status.split("VmHWM:", 1)[1].split()[0])
                self._high_water[pid] = max(self._high_water.get(pid, 0), kib * 1024)
        return total


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --- syndicate -------------------------------------------------------------------------------


def bench_syndicate(workdir: Path, urls: list[str], items: int) -> list[Row]:
    config = write_syndicate_config(workdir, urls)
    print(f"syndicate: {describe_fetch_settings(config)}; {len(urls)} sources, 3 output feeds")
    rows = []
    for phase in ("cold", "warm"):
        run = run_measured(f"syndicate-{phase}",
                           [str(SYNDICATE), "--config", str(config), "fetch", "--all"], workdir)
        summary = fetch_summary(run)
        print(f"  {phase}: {run.seconds:.2f} s, peak {run.peak_mb:.0f} MB: "
              f"{summary['updated']} updated, {summary['not_modified']} not modified, "
              f"{summary['failed']} failed, {summary['new_entries']} new entries")
        check_syndicate(phase, summary, len(urls), items, run)
        rows.append(Row(phase, "syndicate", run.seconds, run.peak_mb, len(urls), items,
                        summary["not_modified"]))
    return rows


def write_syndicate_config(workdir: Path, urls: list[str]) -> Path:
    # The corpus stands for 1,000 independent sites that nginx happens to serve from one
    # address; the per-host politeness limit is for real shared hosts, so here it is lifted to
    # the worker count (reader has no such limit at all).
    config: dict[str, Any] = {
        "service": {"data_dir": str(workdir / "data"),
                    "database": f"sqlite:///{workdir / 'syndicate.db'}",
                    "fetch_per_host": 8},
        "sources": [{"id": Path(url).stem, "url": url} for url in urls],
        "feeds": [{"id": "all", "title": "Every story"},
                  {"id": "german", "title": "German stories", "languages": ["de"]},
                  {"id": "multi", "title": "Stories of two outlets or more", "min_outlets": 2}],
    }
    path = workdir / "syndicate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def describe_fetch_settings(config: Path) -> str:
    """The fetch limits in force, as syndicate reads them."""
    from syndicate.config import load_config

    service = load_config(config).service
    return (f"fetch_workers {service.fetch_workers} (default), fetch_per_host "
            f"{service.fetch_per_host} (the corpus's 1,000 sites share one address)")


def fetch_summary(run: Run) -> dict[str, int]:
    match = SUMMARY.search(run.stdout)
    if match is None:
        raise BenchError(f"{run.label}: no summary line in its output:\n{tail(run.stdout)}\n"
                         f"{tail(run.stderr)}")
    return {key: int(value) for key, value in match.groupdict().items()}


def check_syndicate(phase: str, summary: dict[str, int], feeds: int, items: int,
                    run: Run) -> None:
    if summary["sources"] != feeds:
        raise BenchError(f"{run.label}: {summary['sources']} sources fetched, not {feeds}")
    if phase == "cold" and summary["updated"] != feeds:
        raise BenchError(f"{run.label}: only {summary['updated']} of {feeds} sources were "
                         f"updated:\n{tail(run.stderr)}")
    if phase == "cold" and summary["new_entries"] != items:
        print(f"  note: {summary['new_entries']} new entries stored for {items} items in the "
              f"ground truth")
    if phase == "warm" and summary["not_modified"] != feeds:
        print(f"  WARNING: only {summary['not_modified']} of {feeds} sources answered 304 "
              f"on the warm run: it parsed something")


# --- reader ----------------------------------------------------------------------------------


def bench_reader(python: Path, workdir: Path, urls: list[str], items: int,
                 worker_counts: list[int]) -> list[Row]:
    driver = workdir / "reader_driver.py"
    driver.write_text(READER_DRIVER)
    url_file = workdir / "urls.txt"
    url_file.write_text("\n".join(urls) + "\n")
    cold: dict[int, Row] = {}
    for workers in worker_counts:
        db = workdir / f"reader-w{workers}.sqlite"
        run, result = reader_run(python, driver, db, url_file, workers, "cold", workdir)
        if workers == worker_counts[0]:
            print(f"reader {result['reader']} (feedparser {result['feedparser']}), "
                  f"{len(urls)} feeds; cold runs by worker count:")
        print_reader_run(run, result, workers)
        check_reader("cold", result, len(urls), items, run)
        cold[workers] = Row("cold", f"reader (workers={workers})", run.seconds, run.peak_mb,
                            len(urls), items, result["not_modified"])
    best = max(cold, key=lambda w: cold[w].items_per_s)
    print(f"  best worker count: {best}; warm re-poll of its database:")
    run, result = reader_run(python, driver, workdir / f"reader-w{best}.sqlite", url_file, best,
                             "warm", workdir)
    print_reader_run(run, result, best)
    check_reader("warm", result, len(urls), items, run)
    return [cold[best], Row("warm", f"reader (workers={best})", run.seconds, run.peak_mb,
                            len(urls), items, result["not_modified"])]


def reader_run(python: Path, driver: Path, db: Path, url_file: Path, workers: int, phase: str,
               workdir: Path) -> tuple[Run, dict[str, Any]]:
    run = run_measured(f"reader-w{workers}-{phase}",
                       [str(python), str(driver), str(db), str(url_file), str(workers), phase],
                       workdir)
    try:
        result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise BenchError(f"{run.label}: the driver printed no result:\n{tail(run.stderr)}"
                         ) from None
    return run, result


def print_reader_run(run: Run, result: dict[str, Any], workers: int) -> None:
    print(f"  workers {workers:>2}: {run.seconds:6.2f} s (of which the update call "
          f"{result['update_seconds']:.2f} s), peak {run.peak_mb:.0f} MB: "
          f"{result['updated']} updated, "
          f"{result['not_modified']} not modified, {result['failed']} failed, "
          f"{result['entries']} entries stored")


def check_reader(phase: str, result: dict[str, Any], feeds: int, items: int, run: Run) -> None:
    if result["failed"]:
        raise BenchError(f"{run.label}: {result['failed']} feeds failed, e.g. "
                         f"{'; '.join(result['errors'])}")
    if phase == "cold" and result["entries"] != items:
        print(f"  note: reader stored {result['entries']} entries for {items} items in the "
              f"ground truth")
    if phase == "warm" and result["not_modified"] != feeds:
        print(f"  note: only {result['not_modified']} of {feeds} feeds were not modified")


# --- report ----------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    print()
    print(f"{'run':5} {'who':22} {'seconds':>8} {'feeds/s':>9} {'items/s':>9} {'peak MB':>8}")
    for row in rows:
        print(f"{row.phase:5} {row.who:22} {row.seconds:8.2f} {row.feeds_per_s:9.1f} "
              f"{row.items_per_s:9.0f} {row.peak_mb:8.0f}")
    print()


def print_targets(rows: list[Row]) -> None:
    by = {(row.phase, row.who.split()[0]): row for row in rows}
    print("targets (issue 4):")
    if ("cold", "reader") in by:
        ratio = by["cold", "syndicate"].items_per_s / by["cold", "reader"].items_per_s
        print(f"  cold: syndicate/reader items/s = {ratio:.2f}x (target >= "
              f"{COLD_SPEEDUP_TARGET:g}x): {verdict(ratio >= COLD_SPEEDUP_TARGET)}")
        warm = by["warm", "syndicate"]
        ratio = warm.seconds / by["warm", "reader"].seconds
        print(f"  warm: syndicate/reader seconds = {ratio:.2f}x with {warm.not_modified} of "
              f"{warm.feeds} sources answering 304 (target <= {WARM_TIME_TARGET:g}x, every "
              f"source 304 so nothing parsed): "
              f"{verdict(ratio <= WARM_TIME_TARGET and warm.not_modified == warm.feeds)}")
    else:
        print("  cold and warm ratios: not measured (--skip-reader)")
    peak = max(by["cold", "syndicate"].peak_mb, by["warm", "syndicate"].peak_mb)
    print(f"  peak memory: syndicate {peak:.0f} MB (target < {PEAK_MB_TARGET:g} MB): "
          f"{verdict(peak < PEAK_MB_TARGET)}")


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


if __name__ == "__main__":
    sys.exit(main())
