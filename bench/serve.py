#!/usr/bin/env python3
"""Feed serving rate of ``syndicate run``, against nginx serving the same bytes as a static file.

    .venv/bin/python bench/serve.py [--feeds 60] [--limit 200] [--format rss]
                                    [--duration 5] [--rounds 3] [--connections 32] [--threads 2]
                                    [--port 8083] [--nginx-port 8082]

1. A config in a temporary directory lists the first ``--feeds`` feeds of the bench corpus as
   local-file sources and publishes one feed, ``all``, with ``limit: --limit`` (200: a
   realistic size for an output feed). ``syndicate --config CFG fetch --all`` fills the
   database once; then ``syndicate --config CFG run --listen 127.0.0.1:PORT`` runs as a child
   process: the default deployment, with no tuning flag an operator would not pass. The
   script waits until /healthz answers and checks that the feed carries ``--limit`` stories.
2. The feed is fetched from our server in identity and in gzip; those exact bytes become
   ``all.<format>`` and ``all.<format>.gz`` under nginx's root. nginx (its own config in the
   temporary directory: ``worker_processes auto`` as Debian ships it, ``sendfile``,
   ``etag on``, ``gzip_static on``, no access log, keep-alive without a request limit) serves
   them with the content type our server sends: the limit of what serving these bytes costs.
3. wrk loads each server in turn with a fixed number of connections for a fixed time, for four
   variants: 200 identity, 200 gzip (``Accept-Encoding: gzip``), 304 identity and 304 gzip
   (``If-None-Match`` with that server's own ETag for the representation). Before each load a
   single request checks the status (and for a 200 the body), then wrk warms the server up
   for ``--warmup`` seconds, then the measured run. ``--rounds`` repeats everything,
   alternating which server goes first, and the table shows the medians.
4. Prints requests/s, p99 latency, the cores busy during the load (the server's process and
   its descendants, wrk, everything else on the machine), the server's CPU time per request in
   user space and in the kernel (from /proc: what the server itself spends, which the other
   work on the machine disturbs less than the rate), the ratio to nginx (the median of each
   round's ratio to the nginx run beside it) and the targets of issue 5: our 200s at least
   0.7x nginx's rate, our 304s at least 0.6x.

wrk reports neither status codes nor bodies, so every measured run is checked by its bytes
read per request: a 304 must be a bare header block, a 200 at least its body. Responses with a
status outside 2xx/3xx or socket errors fail the run. wrk, nginx and our server share the
machine's cores: that is part of the measurement, the same for both servers.

nginx and our server run in sessions of their own (Ctrl-C in the terminal reaches only this
script) and are stopped at the end, also on an error, Ctrl-C or SIGTERM; the temporary
directory is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from bench.corpus import REPO, corpus_dir  # noqa: E402

SYNDICATE = REPO / ".venv" / "bin" / "syndicate"
NGINX_INSTALL = "apt-get update && apt-get install -y nginx"
WRK_INSTALL = "apt-get update && apt-get install -y wrk"
EXIT_MISSING_TOOL = 2
FEED_ID = "all"
READY_SECONDS = 60.0  # for `run` to answer /healthz
HEADER_ALLOWANCE = 1024  # bytes of status line and headers a response may add to its body

# Targets of issue 5: our rate as a share of nginx's, in the same run.
TARGET_200 = 0.7
TARGET_304 = 0.6


@dataclass(frozen=True)
class Variant:
    """One kind of request, loaded against both servers."""

    name: str
    status: int
    gzip: bool
    target: float


VARIANTS = (
    Variant("200 identity", 200, False, TARGET_200),
    Variant("200 gzip", 200, True, TARGET_200),
    Variant("304 identity", 304, False, TARGET_304),
    Variant("304 gzip", 304, True, TARGET_304),
)


@dataclass(frozen=True)
class Server:
    """A server under load: where it answers and the process whose tree does the work."""

    name: str
    base: str
    pid: int


@dataclass(frozen=True)
class Response:
    """One response of a single checking request."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class CpuUse:
    """Cores busy during a run (CPU seconds per second): the server's process tree in user
    space and in the kernel, wrk, and everything else on the machine, which is what makes the
    figures noisy."""

    server_user: float
    server_system: float
    wrk: float
    other: float

    @property
    def server(self) -> float:
        return self.server_user + self.server_system


@dataclass(frozen=True)
class Load:
    """One measured wrk run."""

    requests: int
    requests_per_s: float
    p99_ms: float
    bytes_per_request: float
    cpu: CpuUse


@dataclass(frozen=True)
class Row:
    """One line of the results table: medians over the rounds."""

    server: str
    variant: Variant
    requests_per_s: float
    p99_ms: float
    cpu: CpuUse
    # requests/s over nginx's in the same round and variant, measured right next to it: the
    # pair shares whatever else the machine was doing, which shifts from round to round.
    ratios: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


class BenchError(Exception):
    """A run that did not do what the benchmark needs (wrong status, a server that died)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):  # progress lines in order, also into a file
        sys.stdout.reconfigure(line_buffering=True)
    nginx, wrk = find_tool("nginx"), find_tool("wrk")
    for name, path, install in (("nginx", nginx, NGINX_INSTALL), ("wrk", wrk, WRK_INSTALL)):
        if path is None:
            print(f"{name} is not installed; the benchmark needs it. Install it with:\n"
                  f"  {install}", file=sys.stderr)
            return EXIT_MISSING_TOOL
    assert nginx is not None and wrk is not None
    # SIGTERM ends the run like Ctrl-C does: through the finally blocks that stop both servers
    # and remove the temporary directory.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    for port in (args.port, args.nginx_port):
        if port_in_use(port):
            print(f"error: 127.0.0.1:{port} is already in use: stop what listens there or "
                  f"pass --port / --nginx-port", file=sys.stderr)
            return 1
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
          f"{tool_version([nginx, '-v'])}, {tool_version([wrk, '-v'])}")
    try:
        with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
            rows = bench(args, Path(tmp), nginx, wrk)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary files removed", file=sys.stderr)
        return 130
    print_table(rows)
    print_targets(rows)
    print(f"note: load average {os.getloadavg()[0]:.2f} at the end; other work on this "
          f"machine shares its cores with wrk and both servers, so treat the figures as noisy.")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="feeds in the bench corpus")
    parser.add_argument("--seed", type=int, default=42, help="corpus seed")
    parser.add_argument("--feeds", type=positive, default=60,
                        help="corpus feeds to ingest (enough to fill the output feed's limit)")
    parser.add_argument("--limit", type=positive, default=200,
                        help="stories in the output feed (its `limit`)")
    parser.add_argument("--format", choices=("rss", "atom", "json"), default="rss",
                        help="the feed format to serve")
    parser.add_argument("--duration", type=positive, default=5,
                        help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=positive, default=1,
                        help="seconds of load before each measured run")
    parser.add_argument("--rounds", type=positive, default=3,
                        help="measured runs per server and variant (the table shows medians)")
    parser.add_argument("--connections", type=positive, default=32,
                        help="wrk connections (kept open)")
    parser.add_argument("--threads", type=positive, default=2, help="wrk threads")
    parser.add_argument("--port", type=int, default=8083, help="loopback port for syndicate")
    parser.add_argument("--nginx-port", type=int, default=8082, help="loopback port for nginx")
    return parser.parse_args(argv)


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1: {text!r}")
    return value


def bench(args: argparse.Namespace, workdir: Path, nginx: str, wrk: str) -> list[Row]:
    config = write_config(workdir, args.n, args.seed, args.feeds, args.limit)
    fetch_once(config, workdir)
    path = f"/feeds/{FEED_ID}.{args.format}"
    with running_syndicate(config, args.port, workdir) as ours:
        identity = check_feed(ours, path, args.format, args.limit)
        compressed = get(ours, path, gzipped=True)
        if compressed.status != 200 or gzip.decompress(compressed.body) != identity.body:
            raise BenchError(f"{ours.name}: the gzip response of {path} is not the gzip of the "
                             f"identity response")
        root = workdir / "nginx-root"
        (root / "feeds").mkdir(parents=True)
        static = root / path.lstrip("/")
        static.write_bytes(identity.body)
        static.with_name(static.name + ".gz").write_bytes(compressed.body)
        print(f"feed {path}: {args.limit} stories, {len(identity.body):,} bytes, gzip "
              f"{len(compressed.body):,} bytes; nginx serves these bytes as static files")
        with running_nginx(nginx, root, args.nginx_port, workdir,
                           identity.headers["content-type"]) as baseline:
            servers = [baseline, ours]  # the baseline first: ratios are to servers[0]
            for server in servers:
                check_same_bytes(server, path, identity, compressed.body)
            print(f"wrk: {args.threads} threads, {args.connections} connections, "
                  f"{args.warmup} s warm-up + {args.duration} s measured, {args.rounds} "
                  f"round(s)")
            return measure(args, wrk, servers, path,
                           {False: len(identity.body), True: len(compressed.body)})


# --- syndicate -------------------------------------------------------------------------------


def write_config(workdir: Path, n: int, seed: int, feeds: int, limit: int) -> Path:
    files = sorted((corpus_dir(n, seed) / "feeds").glob("*.xml"))[:feeds]
    if len(files) < feeds:
        raise BenchError(f"the corpus has only {len(files)} feeds, not {feeds}")
    config: dict[str, Any] = {
        "service": {"data_dir": str(workdir / "data")},
        "sources": [{"id": f.stem, "url": str(f)} for f in files],
        "feeds": [{"id": FEED_ID, "title": "Every story", "limit": limit}],
    }
    path = workdir / "syndicate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def fetch_once(config: Path, workdir: Path) -> None:
    started = time.perf_counter()
    done = subprocess.run([str(SYNDICATE), "--config", str(config), "fetch", "--all"],
                          cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"syndicate fetch --all exited with {done.returncode}:\n"
                         f"{tail(done.stderr)}")
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no summary)"
    print(f"syndicate fetch --all: {time.perf_counter() - started:.1f} s: {summary}")


@contextlib.contextmanager
def running_syndicate(config: Path, port: int, workdir: Path) -> Iterator[Server]:
    """``syndicate run`` as a child, as an operator starts it, until the block ends."""
    log = workdir / "syndicate-run.log"
    with log.open("wb") as output:
        child = subprocess.Popen(
            [str(SYNDICATE), "--config", str(config), "run", "--listen", f"127.0.0.1:{port}"],
            cwd=workdir, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server("syndicate", f"http://127.0.0.1:{port}", child.pid)
    try:
        wait_until_ready(server, "/healthz", {200}, child, log)
        yield server
    finally:
        stop_child(child, signal.SIGTERM)


@contextlib.contextmanager
def running_nginx(nginx: str, root: Path, port: int, workdir: Path,
                  content_type: str) -> Iterator[Server]:
    """nginx serving ``root`` as static files, until the block ends."""
    prefix = workdir / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, root, port, content_type))
    log = prefix / "stderr.log"
    with log.open("wb") as output:
        child = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf)],
                                 stdout=subprocess.DEVNULL, stderr=output,
                                 start_new_session=True)
    server = Server("nginx", f"http://127.0.0.1:{port}", child.pid)
    try:
        wait_until_ready(server, "/", {200, 403, 404}, child, log)
        yield server
    finally:
        stop_child(child, signal.SIGQUIT)  # nginx's graceful stop; the master stops its workers


def nginx_config(prefix: Path, root: Path, port: int, content_type: str) -> str:
    # Run as root (as here), nginx's workers would switch to `nobody`, who cannot enter the
    # private temporary directory; they keep our user instead.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(f"    {kind}_temp_path {prefix}/tmp_{kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        f"{user}worker_processes auto;\n"
        f"daemon off;\n"
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\n"
        f"events {{ worker_connections 4096; }}\n"
        f"http {{\n"
        f"    access_log off;\n"
        f"    sendfile on;\n"
        f"    tcp_nopush on;\n"
        f"    keepalive_requests 1000000;\n"
        f"    types {{ }}\n"
        f"    default_type \"{content_type}\";\n"
        f"    etag on;\n"
        f"    gzip_static on;\n"
        f"    gzip_vary on;\n"
        f"{temp_paths}"
        f"    server {{\n"
        f"        listen 127.0.0.1:{port} backlog=4096;\n"
        f"        root {root};\n"
        f"        location / {{ }}\n"
        f"    }}\n"
        f"}}\n")


def wait_until_ready(server: Server, path: str, ready: set[int],
                     child: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``path`` answers one of the ``ready`` statuses."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchError(f"{server.name} exited with {child.returncode} before it answered:"
                             f"\n{tail(log.read_text(errors='replace'))}")
        with contextlib.suppress(OSError):
            if get(server, path).status in ready:
                return
        time.sleep(0.1)
    raise BenchError(f"{server.name} did not answer {path} within {READY_SECONDS:.0f} s:\n"
                     f"{tail(log.read_text(errors='replace'))}")


def stop_child(child: subprocess.Popen[bytes], stop_signal: signal.Signals) -> None:
    """Stop a server we started: its own graceful signal first, then its whole session (it
    may have started worker processes) with SIGKILL."""
    if child.poll() is None:
        child.send_signal(stop_signal)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)  # leftovers of the session we made for it
    if child.poll() is None:
        child.wait()


# --- checking requests -----------------------------------------------------------------------


def get(server: Server, path: str, *, gzipped: bool = False,
        etag: str | None = None) -> Response:
    host, port = server.base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers=request_headers(gzipped, etag))
        response = connection.getresponse()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()},
                        response.read())
    finally:
        connection.close()


def request_headers(gzipped: bool, etag: str | None) -> dict[str, str]:
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    if etag is not None:
        headers["If-None-Match"] = etag
    return headers


def check_feed(server: Server, path: str, fmt: str, limit: int) -> Response:
    response = get(server, path)
    if response.status != 200:
        raise BenchError(f"{server.name}: GET {path} answered {response.status}")
    stories = count_stories(response.body, fmt)
    if stories != limit:
        raise BenchError(f"{path} carries {stories} stories, not the limit of {limit}: pass "
                         f"more --feeds")
    return response


def count_stories(body: bytes, fmt: str) -> int:
    if fmt == "json":
        return len(json.loads(body)["items"])
    element = b"item" if fmt == "rss" else b"entry"
    return len(re.findall(rb"<" + element + rb"[\s>]", body))


def check_same_bytes(server: Server, path: str, identity: Response, compressed: bytes) -> None:
    """Both servers answer with the same bytes and content type, in each coding."""
    for gzipped, expected in ((False, identity.body), (True, compressed)):
        response = get(server, path, gzipped=gzipped)
        encoding = response.headers.get("content-encoding")
        if response.status != 200 or response.body != expected or \
                encoding != ("gzip" if gzipped else None) or \
                response.headers.get("content-type") != identity.headers["content-type"]:
            coding = "gzip" if gzipped else "identity"
            raise BenchError(f"{server.name}: GET {path} ({coding}) answered "
                             f"{response.status}, content-encoding {encoding}, content-type "
                             f"{response.headers.get('content-type')}, {len(response.body)} "
                             f"bytes: not the response under test")
        if "etag" not in response.headers:
            raise BenchError(f"{server.name}: GET {path} answered without an ETag")


def check_variant(server: Server, path: str, variant: Variant) -> str | None:
    """One request of ``variant``, checked; the If-None-Match value its load sends (None for
    a 200). The ETag is read afresh, so a feed that changed would be caught here."""
    etag = get(server, path, gzipped=variant.gzip).headers["etag"]
    conditional = etag if variant.status == 304 else None
    response = get(server, path, gzipped=variant.gzip, etag=conditional)
    if response.status != variant.status:
        raise BenchError(f"{server.name}: {variant.name}: GET {path} with "
                         f"{request_headers(variant.gzip, conditional)} answered "
                         f"{response.status}")
    return conditional


# --- load ------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, wrk: str, servers: list[Server], path: str,
            body_sizes: dict[bool, int]) -> list[Row]:
    loads: dict[tuple[str, str], list[Load]] = {}
    for round_ in range(args.rounds):
        order = servers if round_ % 2 == 0 else servers[::-1]
        for variant in VARIANTS:
            for server in order:
                etag = check_variant(server, path, variant)
                command = wrk_command(wrk, args, server.base + path,
                                      request_headers(variant.gzip, etag))
                run_wrk(command, args.warmup, server)
                load = run_wrk(command, args.duration, server)
                check_load(server, variant, load, body_sizes[variant.gzip])
                loads.setdefault((server.name, variant.name), []).append(load)
                print(f"  round {round_ + 1}: {server.name:9} {variant.name:12} "
                      f"{load.requests_per_s:9.0f} req/s, p99 {load.p99_ms:7.2f} ms, "
                      f"cores: server {load.cpu.server:.2f}, wrk {load.cpu.wrk:.2f}, other "
                      f"{load.cpu.other:.2f}")
    rows = []
    for variant in VARIANTS:
        baseline = loads[servers[0].name, variant.name]
        for server in servers:
            runs = loads[server.name, variant.name]
            rows.append(Row(server.name, variant,
                            statistics.median(x.requests_per_s for x in runs),
                            statistics.median(x.p99_ms for x in runs),
                            CpuUse(statistics.median(x.cpu.server_user for x in runs),
                                   statistics.median(x.cpu.server_system for x in runs),
                                   statistics.median(x.cpu.wrk for x in runs),
                                   statistics.median(x.cpu.other for x in runs)),
                            [x.requests_per_s / b.requests_per_s
                             for x, b in zip(runs, baseline, strict=True)]))
    return rows


def wrk_command(wrk: str, args: argparse.Namespace, url: str,
                headers: dict[str, str]) -> list[str]:
    command = [wrk, f"-t{args.threads}", f"-c{args.connections}", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    return [*command, url]


def run_wrk(command: list[str], seconds: int, server: Server) -> Load:
    server_before, machine_before = tree_cpu_seconds(server.pid), machine_busy_seconds()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only one reaped
    started = time.perf_counter()
    done = subprocess.run([*command[:1], f"-d{seconds}s", *command[1:]], capture_output=True,
                          text=True, timeout=seconds + 60)
    wall = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = (after - before for after, before in
                    zip(tree_cpu_seconds(server.pid), server_before, strict=True))
    server_cpu = user + system
    wrk_cpu = (children.ru_utime + children.ru_stime - children_before.ru_utime
               - children_before.ru_stime)
    other_cpu = machine_busy_seconds() - machine_before - server_cpu - wrk_cpu
    if done.returncode != 0:
        raise BenchError(f"wrk exited with {done.returncode}: {' '.join(command)}\n"
                         f"{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout, CpuUse(user / wall, system / wall, wrk_cpu / wall,
                                         max(other_cpu, 0.0) / wall))


WRK_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)([KMGT]?B) read")
WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
WRK_BAD_STATUS = re.compile(r"Non-2xx or 3xx responses: (\d+)")
WRK_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                               r"timeout (\d+)")
MS_PER_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
BYTES_PER_UNIT = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_wrk(output: str, cpu: CpuUse) -> Load:
    requests, rate, p99 = (WRK_REQUESTS.search(output), WRK_RATE.search(output),
                           WRK_P99.search(output))
    if requests is None or rate is None or p99 is None:
        raise BenchError(f"unexpected wrk output:\n{output}")
    bad = WRK_BAD_STATUS.search(output)
    if bad is not None:
        raise BenchError(f"{bad.group(1)} responses with a status outside 2xx/3xx:\n{output}")
    errors = WRK_SOCKET_ERRORS.search(output)
    if errors is not None:  # a server that drops or stalls connections is not at its rate
        raise BenchError(f"socket errors during the load:\n{output}")
    count = int(requests.group(1))
    read = float(requests.group(4)) * BYTES_PER_UNIT[requests.group(5)]
    return Load(count, float(rate.group(1)), float(p99.group(1)) * MS_PER_UNIT[p99.group(2)],
                read / max(count, 1), cpu)


def check_load(server: Server, variant: Variant, load: Load, body_size: int) -> None:
    """wrk counts no statuses; bytes read per request tell a 304 (headers only) from a 200
    (the body), within the rounding of wrk's two-decimal byte count."""
    if variant.status == 304:
        ok = load.bytes_per_request < HEADER_ALLOWANCE
    else:
        ok = body_size * 0.99 <= load.bytes_per_request <= body_size * 1.02 + HEADER_ALLOWANCE
    if load.requests == 0 or not ok:
        raise BenchError(f"{server.name}: {variant.name}: {load.requests} requests, "
                         f"{load.bytes_per_request:,.0f} bytes read per request (body "
                         f"{body_size:,} bytes): not all responses were {variant.status}s")


def tree_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds in user space and in the kernel used so far by ``pid`` and its living
    descendants (each process's figures include all its threads)."""
    parents: dict[int, int] = {}
    times: dict[int, tuple[float, float]] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) / ticks, int(fields[12]) / ticks)
    tree, frontier = set(), {pid}
    while frontier:
        tree |= frontier
        frontier = {child for child, parent in parents.items() if parent in frontier} - tree
    used = [times[p] for p in tree if p in times]
    return sum(u for u, _ in used), sum(s for _, s in used)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is inside user


# --- tools -----------------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    # Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def tool_version(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0].removeprefix("nginx version: ") if text else command[0]


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --- report ----------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    print()
    print(f"{'':33} {'':8} {'cores used by':^17} {'server µs/req':^13}")
    print(f"{'server':10} {'variant':13} {'req/s':>9} {'p99 ms':>8} {'server':>6} {'wrk':>5} "
          f"{'other':>5} {'user':>6} {'kernel':>6} {'vs nginx':>9} {'target':>7}  {'met?':8} "
          f"per round")
    for row in rows:
        start = (f"{row.server:10} {row.variant.name:13} {row.requests_per_s:9.0f} "
                 f"{row.p99_ms:8.2f} {row.cpu.server:6.2f} {row.cpu.wrk:5.2f} "
                 f"{row.cpu.other:5.2f} {per_request_us(row.cpu.server_user, row):6.1f} "
                 f"{per_request_us(row.cpu.server_system, row):6.1f}")
        if row.server == "nginx":
            print(f"{start} {'1.00x':>9}")
            continue
        print(f"{start} {row.ratio:8.2f}x "
              f"{row.variant.target:6.1f}x  {verdict(row.ratio >= row.variant.target):8} "
              f"{' '.join(f'{r:.2f}' for r in row.ratios)}")
    print("(medians over the rounds; vs nginx: the median of each round's ratio to the nginx "
          "run beside it;\n cores: CPU seconds per second of load used by the server's "
          "process tree, by wrk and by everything else on the machine;\n µs/req: the server's "
          "CPU time per request, in user space and in the kernel)")
    print()


def per_request_us(cores: float, row: Row) -> float:
    return cores / row.requests_per_s * 1e6


def print_targets(rows: list[Row]) -> None:
    print("targets (issue 5), with the default `syndicate run` deployment:")
    for status, target in ((200, TARGET_200), (304, TARGET_304)):
        ours = [r for r in rows if r.server != "nginx" and r.variant.status == status]
        shares = ", ".join(f"{r.variant.name.split()[1]} {r.ratio:.2f}x" for r in ours)
        met = all(r.ratio >= target for r in ours)
        print(f"  {status}s: syndicate/nginx requests/s = {shares} (target >= {target:g}x): "
              f"{verdict(met)}")


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


if __name__ == "__main__":
    sys.exit(main())
