"""Our ASGI app under the real uvicorn (httptools, with the feed fast path of ``syndicate run``),
on an ephemeral loopback port, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from syndicate.store import Store
from syndicate.types import Config
from syndicate.web import App
from syndicate.web.fastpath import UVICORN_SETTINGS


@contextmanager
def running_app(config: Config, store: Store,
                app_factory: Callable[[Config, Store], App] = App,
                **settings: Any) -> Iterator[tuple[App, str]]:
    """Yield the app and its base URL (http://127.0.0.1:PORT) while uvicorn serves it;
    ``app_factory`` makes the app (a test may wrap ours, e.g. to record requests);
    ``settings`` change uvicorn's from those of ``syndicate run``."""
    app = app_factory(config, store)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, **(UVICORN_SETTINGS | settings)))
    # uvicorn installs signal handlers only in the main thread; in a thread it skips them.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.02)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
