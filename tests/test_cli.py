"""The command line as operators use it: real processes for `run`, in-process for the rest."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from syndicate.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_check_summarizes_the_bundled_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(REPO / "config/syndicate.yaml"), "check"]) == 0
    out = capsys.readouterr().out
    for source_id in ("harbor-wire", "morning-post", "stadtanzeiger"):
        assert source_id in out


def test_check_lists_every_problem_and_exits_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""sources:
  - id: a
    url: https://a.example/feed
    intervall: 5m
  - id: a
    url: https://b.example/feed
feeds:
  - id: f
    tags: [nothere]
""")
    assert main(["--config", str(path), "check"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: sources[0].intervall: unknown key 'intervall' (did you mean " \
           "'interval'?)" in err
    assert f"{path}:5:" in err and "duplicate" in err
    assert f"{path}:9:" in err and "nothere" in err


def test_config_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("sources:\n  - id: from-env\n    url: https://a.example/feed\n")
    monkeypatch.setenv("SYNDICATE_CONFIG", str(path))
    assert main(["check"]) == 0
    assert "from-env" in capsys.readouterr().out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_the_bundled_feeds_and_stops_cleanly(tmp_path: Path,
                                                       sig: signal.Signals) -> None:
    port = free_port()
    samples = REPO / "config" / "samples"
    config = tmp_path / "syndicate.yaml"
    config.write_text(
        (REPO / "config/syndicate.yaml").read_text()
        .replace("samples/", f"{samples}/")
        .replace("service:\n", f"service:\n  database: sqlite:///{tmp_path}/run.db\n", 1))
    process = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(config), "run",
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        body = wait_for_feed(f"http://127.0.0.1:{port}/feeds/all.atom", process)
        assert b"City council approves new tram line" in body
        assert body.count(b"tram line") >= 1
        index = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert 'rel="alternate"' in index.text
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
    finally:
        process.send_signal(sig)
        try:
            _out, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, err.decode()
    assert b"scheduler stopped" in err
    assert b"Traceback" not in err


def wait_for_feed(url: str, process: subprocess.Popen[bytes]) -> bytes:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200 and b"<entry" in response.content:
                return response.content
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never served stories")


def test_fetch_exits_1_when_every_source_fails(tmp_path: Path) -> None:
    path = tmp_path / "down.yaml"
    path.write_text(f"service:\n  database: sqlite:///{tmp_path}/s.db\n  connect_timeout: 1\n"
                    f"sources:\n  - id: down\n    url: http://127.0.0.1:{free_port()}/feed\n")
    assert main(["--config", str(path), "fetch"]) == 1


def test_the_command_passes_the_exit_status_on(tmp_path: Path) -> None:
    """``syndicate`` is ``syndicate.__main__``, which wraps ``cli.main`` in its collector
    settings: a process of its own still ends with main's status and output."""
    path = tmp_path / "down.yaml"
    path.write_text(f"service:\n  database: sqlite:///{tmp_path}/s.db\n  connect_timeout: 1\n"
                    f"sources:\n  - id: down\n    url: http://127.0.0.1:{free_port()}/feed\n")
    command = [sys.executable, "-m", "syndicate", "--config", str(path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    fetched = subprocess.run([*command, "fetch"], capture_output=True, env=env, timeout=60)
    assert fetched.returncode == 1
    assert b"connection refused" in fetched.stderr
    path.write_text("sources: 3\n")
    checked = subprocess.run([*command, "check"], capture_output=True, env=env, timeout=60)
    assert checked.returncode == 2
    assert b"problem(s) in the config" in checked.stderr
