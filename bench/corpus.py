"""The benchmark corpus: generated on first use by ../shared/bench/gen_corpus.py, then reused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO.parent / "shared" / "bench" / "gen_corpus.py"
OUT = REPO / "bench" / "out"


def corpus_dir(n: int = 1000, seed: int = 42) -> Path:
    """The corpus directory for (n, seed), generating it when it is not there yet."""
    path = OUT / f"corpus-n{n}-seed{seed}"
    if not (path / "ground_truth.json").exists():
        if not GENERATOR.exists():
            sys.exit(f"the corpus generator is missing: {GENERATOR}")
        print(f"generating the corpus ({n} feeds, seed {seed}) in {path} …", file=sys.stderr)
        subprocess.run([sys.executable, str(GENERATOR), "--out", str(path), "--n", str(n),
                        "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
    return path


def ground_truth(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "ground_truth.json").read_text())
    return data
