#!/usr/bin/env python3
"""The floor under a cold ingest: what the libraries alone cost per item, against our stages.

    .venv/bin/python bench/floor.py [--n 1000] [--seed 42] [--reader-seconds S]

On the bench corpus (../shared/bench/gen_corpus.py), in one process, one core:

1. Library calls alone, each over every feed or item of the corpus: ``lxml.etree.fromstring``
   of each feed; ``nh3.clean`` (default rules) of each item's content or description;
   SQLite inserting, per item, an entry row and a story row of the sizes the store writes
   (4.5 KB and 3.2 KB, bare tables without indexes, 1,000 items a transaction, WAL,
   ``synchronous=NORMAL``, on a temporary file).
2. Our parse worker's whole work, ``reading.normalize_feed`` of each feed (parse, sanitize,
   text, citations, MinHash, digests), as the worker process runs it.

Prints seconds and µs per item for each, and their ratio. With ``--reader-seconds`` (the
``reader`` baseline's cold time from ``bench/ingest.py`` on this machine), also the CPU a
cold ingest may spend per item to be 5x faster on two cores: 2 x S / 5 / items.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nh3  # noqa: E402
from lxml import etree  # noqa: E402

from bench.corpus import corpus_dir, ground_truth  # noqa: E402
from syndicate.ingest.reading import normalize_feed  # noqa: E402
from syndicate.types import SourceConfig  # noqa: E402

ENTRY_ROW_BYTES = 4_500  # what the store writes per entry and per story on this corpus
STORY_ROW_BYTES = 3_200  # (SQLite's dbstat after a cold ingest: 165 MB and 108 MB)
NOW = datetime(2024, 7, 1, tzinfo=UTC)
_BODY_TAGS = ("encoded", "content", "description", "summary")  # by preference


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def item_bodies(documents: list[etree._Element]) -> list[str]:
    """Each item's content (RSS content:encoded, Atom content), else its description."""
    bodies = []
    for document in documents:
        for item in document.iter("item", "{http://www.w3.org/2005/Atom}entry"):
            found = {str(child.tag).rpartition("}")[2]: child.text for child in item
                     if child.text and str(child.tag).rpartition("}")[2] in _BODY_TAGS}
            body = next((found[tag] for tag in _BODY_TAGS if tag in found), None)
            if body:
                bodies.append(body)
    return bodies


def sqlite_rows(items: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db = sqlite3.connect(os.path.join(directory, "floor.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute("CREATE TABLE stories (id INTEGER PRIMARY KEY, body TEXT)")
        for start in range(0, items, 1000):
            count = min(1000, items - start)
            db.execute("BEGIN")
            db.executemany("INSERT INTO entries (body) VALUES (?)",
                           [("e" * ENTRY_ROW_BYTES,)] * count)
            db.executemany("INSERT INTO stories (body) VALUES (?)",
                           [("s" * STORY_ROW_BYTES,)] * count)
            db.execute("COMMIT")
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n", type=int, default=1000, help="feeds in the corpus")
    parser.add_argument("--seed", type=int, default=42, help="corpus seed")
    parser.add_argument("--reader-seconds", type=float,
                        help="reader's cold time on this machine, from bench/ingest.py")
    args = parser.parse_args()

    corpus = corpus_dir(args.n, args.seed)
    items = len(ground_truth(corpus)["items"])
    paths = sorted((corpus / "feeds").glob("*.xml"))
    blobs = [path.read_bytes() for path in paths]
    print(f"corpus: {corpus.name}: {len(paths)} feeds, {items} items")

    documents: list[etree._Element] = []
    parse = timed(lambda: documents.extend(etree.fromstring(blob) for blob in blobs))
    bodies = item_bodies(documents)
    if len(bodies) < items * 0.9:
        sys.exit(f"found the bodies of only {len(bodies)} of {items} items")
    clean = timed(lambda: [nh3.clean(body) for body in bodies])
    store = timed(lambda: sqlite_rows(items))
    floor = parse + clean + store

    def worker() -> None:
        for path, blob in zip(paths, blobs, strict=True):
            source = SourceConfig(path.stem, str(path), None, (), None, timedelta(minutes=15))
            normalize_feed(blob, f"https://bench.example/feeds/{path.name}",
                           "application/xml", source, {}, NOW)

    ours = timed(worker)

    def row(label: str, seconds: float) -> None:
        print(f"  {label:58s} {seconds:6.2f} s {1e6 * seconds / items:7.0f} µs/item")

    print("library calls alone:")
    row("lxml.etree.fromstring, every feed", parse)
    row(f"nh3.clean, every item's body ({len(bodies)})", clean)
    row("SQLite, an entry and a story row per item, bare tables", store)
    row("sum", floor)
    print("ours:")
    row("parse worker: reading.normalize_feed, every feed", ours)
    print(f"  the parse worker costs {ours / (parse + clean):.1f}x its lxml and nh3 calls; "
          "the writer's placing and storing is measured by bench/dedup_eval.py")
    if args.reader_seconds:
        budget = 2 * args.reader_seconds / 5 / items
        print(f"5x reader's {args.reader_seconds:.1f} s on two cores leaves "
              f"{1e6 * budget:.0f} µs of CPU per item for everything; the floor above is "
              f"{100 * floor / items / budget:.0f}% of it")


if __name__ == "__main__":
    main()
