"""The ``syndicate`` command (and ``python -m syndicate``): ``cli.main`` in a process of its own.

Settings of the cyclic garbage collector that only a whole process may make. It is off while
the ~400 modules import (they leave no garbage cycles, but their allocations set off dozens of
collections), and what is alive after the imports, and again at exit, is frozen out of later
collections, so neither the collections during the run nor the interpreter's last one at exit
walk it all again: a tenth of a warm re-poll (~60 ms of ~700). And the youngest generation is
collected after 10,000 net allocations instead of 700: an ingest keeps many objects alive for
a while (queued feeds, the writer's batches), and a cold ingest of the bench corpus spent
1.8 s in 2,258 collections, 0.4 s in 27 with the higher threshold. (Nearly everything is
freed by reference counting; the threshold only delays finding cycles.)
"""

from __future__ import annotations

import gc
import sys

YOUNG_COLLECTION_THRESHOLD = 10_000  # Python's default: 700


def main() -> int:
    gc.disable()
    from .cli import main as cli_main

    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD)
    gc.enable()
    try:
        return cli_main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
