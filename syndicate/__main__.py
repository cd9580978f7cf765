"""The ``syndicate`` command (and ``python -m syndicate``): ``cli.main`` in a process of its own.

Two settings of the cyclic garbage collector that only a whole process may make, worth a
tenth of a warm re-poll (~60 ms of ~700): it is off while the ~400 modules import (they leave
no garbage cycles, but their allocations set off dozens of collections), and what is alive
after the imports, and again at exit, is frozen out of later collections, so neither the
collections during the run nor the interpreter's last one at exit walk it all again.
"""

from __future__ import annotations

import gc
import sys


def main() -> int:
    gc.disable()
    from .cli import main as cli_main

    gc.freeze()
    gc.enable()
    try:
        return cli_main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
