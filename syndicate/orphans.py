"""Child processes that end with their parent.

The worker processes of ``ingest.workers`` and the web processes of ``run``/``serve`` are
started by syndicate's main process. If it dies without stopping them (SIGKILL, the OOM
killer), a worker would live on: a parse worker blocked on its queue forever, a web process
still holding the port, so that a restarted ``run`` cannot bind it. Each child watches its
parent and exits when it is gone (Linux re-parents an orphan, so its parent id changes).
"""

from __future__ import annotations

import os
import threading
import time

CHECK_SECONDS = 1.0


def exit_with_parent() -> None:
    """Start a thread that ends this process once its parent has died."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(CHECK_SECONDS)
        os._exit(1)  # no cleanup to wait for: the parent that would collect it is gone

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
