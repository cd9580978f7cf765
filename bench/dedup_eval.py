#!/usr/bin/env python3
"""How well and how fast stories are clustered, against the bench corpus's ground truth.

    .venv/bin/python bench/dedup_eval.py [--n 1000] [--seed 42] [--scale 10000,1000000]

1. Parses and normalizes every item of the corpus made by ../shared/bench/gen_corpus.py.
2. Clusters them through the real store and dedupe code (``pipeline.apply_entries``, one
   transaction per feed, a real SQLite file), twice in the same run:
   - baseline: the exact layer only (same canonical URL, same source and GUID, same text);
   - syndicate: exact layer + the MinHash near-duplicate layer at the default settings;
   and prints pairwise precision, recall and F1 for each, with the per-entry clustering cost.
3. Per-entry clustering cost with 10,000 and with 1,000,000 stories already stored, printed
   side by side. The stored stories are background stories (random signatures) dated over
   the two years before the measured entries, as a store that grew to a million stories over
   time would hold them; the index keeps the cost flat because look-ups and inserts touch
   only the weeks around an entry's date (the cost includes reading those weeks' keys into
   the index in memory).

Targets (issue 3): precision >= 0.99 and recall >= 0.95 for syndicate.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from bench.corpus import corpus_dir, ground_truth  # noqa: E402
from syndicate.ingest.normalize import normalize_entry  # noqa: E402
from syndicate.ingest.parse import parse_feed  # noqa: E402
from syndicate.ingest.placing import apply_entries  # noqa: E402
from syndicate.ingest.similarity import BANDS, NUM_PERM  # noqa: E402
from syndicate.store import Store  # noqa: E402
from syndicate.store.schema import band_bucket, pack_keys  # noqa: E402
from syndicate.store.schema import entries as entries_table  # noqa: E402
from syndicate.types import DedupeConfig, Entry, SourceConfig  # noqa: E402

NOW = datetime(2024, 7, 1, tzinfo=UTC)
EXACT_ONLY = DedupeConfig(threshold=2.0)  # no similarity reaches 2: the exact layer alone


def load_entries(corpus: Path) -> dict[str, list[Entry]]:
    by_feed: dict[str, list[Entry]] = {}
    for path in sorted((corpus / "feeds").glob("*.xml")):
        source = SourceConfig(path.stem, str(path), None, (), None, timedelta(minutes=15))
        url = f"https://bench.example/feeds/{path.name}"
        feed = parse_feed(path.read_bytes(), url)
        by_feed[path.stem] = [normalize_entry(p, feed, source, url, NOW) for p in feed.entries]
    return by_feed


def cluster(by_feed: dict[str, list[Entry]], config: DedupeConfig,
            database: str) -> tuple[dict[tuple[str, str], int], Counter[str], float]:
    """Cluster every entry; return (source, guid) → story id, reasons, seconds spent."""
    store = Store(database)
    started = time.perf_counter()
    for entries in by_feed.values():
        with store.transaction(NOW) as tx:
            apply_entries(tx, entries, config, {})
    elapsed = time.perf_counter() - started
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(entries_table.c.source_id, entries_table.c.guid,
                                      entries_table.c.story_id, entries_table.c.reason)).all()
    store.close()
    return ({(r.source_id, r.guid): r.story_id for r in rows}, Counter(r.reason for r in rows),
            elapsed)


def pairs(labels: dict[tuple[str, str], object]) -> set[tuple[tuple[str, str], ...]]:
    groups: dict[object, list[tuple[str, str]]] = defaultdict(list)
    for item, label in labels.items():
        groups[label].append(item)
    return {tuple(sorted(pair)) for members in groups.values()
            for pair in itertools.combinations(members, 2)}


def score(predicted: dict[tuple[str, str], int],
          truth: dict[tuple[str, str], str]) -> tuple[float, float, float]:
    found, true = pairs(predicted), pairs(truth)  # type: ignore[arg-type]
    hits = len(found & true)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


BACKGROUND_SPAN = timedelta(days=730)
SIGNATURE_BYTES = NUM_PERM * 4
KEYS_PER_ENTRY = 2 * BANDS  # lead and body


def fill_background(store: Store, count: int, newest: datetime) -> None:
    """``count`` stored stories with one entry each, with random signatures and band keys,
    dated over the two years before ``newest``. Inserted in bulk through the DB-API."""
    rng = random.Random(count)
    seconds = int(BACKGROUND_SPAN.total_seconds())
    dates = [(newest - timedelta(seconds=rng.randint(0, seconds))).replace(tzinfo=None)
             for _ in range(count)]
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        batch = 20_000
        for start in range(0, count, batch):
            ids = range(start + 1, min(start + batch, count) + 1)
            rows = [(i, dates[i - 1]) for i in ids]
            cursor.executemany(
                "INSERT INTO stories (id, guid, title, summary_html, content_html, text, "
                "published, updated, first_seen, authors, categories, enclosures, sources, "
                "source_count) VALUES (?, ?, 't', '', '', '', ?, ?, ?, '[]', '[]', '[]', "
                "'[]', 1)",
                [(i, f"bg-{i}", d, d, d) for i, d in rows])
            cursor.executemany(
                "INSERT INTO entries (id, story_id, source_id, guid, title, summary_html, "
                "content_html, text, published, updated, first_seen, authors, categories, "
                "enclosures, cited, digest, numbers, reason, lead_signature, body_signature) "
                "VALUES (?, ?, 'background', ?, 't', '', '', '', ?, ?, ?, '[]', '[]', '[]', "
                "'[]', '', '[]', 'new', ?, ?)",
                [(i, i, f"bg-{i}", d, d, d, rng.randbytes(SIGNATURE_BYTES),
                  rng.randbytes(SIGNATURE_BYTES)) for i, d in rows])
            cursor.executemany(
                "INSERT INTO entry_keys (bucket, entry_id, band_keys) VALUES (?, ?, ?)",
                sorted((band_bucket(d.replace(tzinfo=UTC)), i,
                        pack_keys([rng.getrandbits(62) for _ in range(KEYS_PER_ENTRY)]))
                       for i, d in rows))
        raw.commit()
    finally:
        raw.close()


def per_entry_cost(sample: list[Entry], background: int, workdir: Path) -> float:
    store = Store(f"sqlite:///{workdir}/scale-{background}.db")
    fill_background(store, background, min(e.published for e in sample))
    started = time.perf_counter()
    for chunk in range(0, len(sample), 25):
        with store.transaction(NOW) as tx:
            apply_entries(tx, sample[chunk:chunk + 25], DedupeConfig(), {})
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed / len(sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n", type=int, default=1000, help="feeds in the corpus")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", default="10000,1000000",
                        help="stored-story counts for the cost-flatness check ('' to skip)")
    args = parser.parse_args()

    corpus = corpus_dir(args.n, args.seed)
    truth_rows = ground_truth(corpus)["items"]
    truth = {(Path(t["feed"]).stem, t["guid"]): t["story"] for t in truth_rows}

    started = time.perf_counter()
    by_feed = load_entries(corpus)
    count = sum(len(v) for v in by_feed.values())
    prepare = time.perf_counter() - started
    print(f"corpus: {corpus.name}: {count} items, {len(set(truth.values()))} stories, "
          f"{len(pairs(truth))} true duplicate pairs (parse + normalize "  # type: ignore[arg-type]
          f"{prepare / count * 1e6:.0f} µs/item)")

    with tempfile.TemporaryDirectory(prefix="dedup-eval-") as tmp:
        workdir = Path(tmp)
        results = {}
        for name, config in (("baseline (exact keys only)", EXACT_ONLY),
                             ("syndicate (exact + MinHash LSH)", DedupeConfig())):
            predicted, reasons, elapsed = cluster(by_feed, config,
                                                  f"sqlite:///{workdir}/{len(results)}.db")
            missing = set(truth) - set(predicted)
            assert not missing, f"{len(missing)} items never stored, e.g. {next(iter(missing))}"
            precision, recall, f1 = score(predicted, truth)
            results[name] = (precision, recall)
            print(f"{name:34} precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}  "
                  f"clustering {elapsed / count * 1e6:6.0f} µs/entry  reasons {dict(reasons)}")
        precision, recall = results["syndicate (exact + MinHash LSH)"]
        verdict = "MET" if precision >= 0.99 and recall >= 0.95 else "NOT MET"
        print(f"target precision >= 0.99 and recall >= 0.95: {verdict}")

        sizes = [int(s) for s in args.scale.split(",") if s.strip()]
        if sizes:
            rng = random.Random(args.seed)
            everything = [e for entries in by_feed.values() for e in entries]
            sample = [replace(e, source_id="sample") for e in rng.sample(everything, 2000)]
            costs = []
            for size in sizes:
                started = time.perf_counter()
                cost = per_entry_cost(sample, size, workdir)
                costs.append(cost)
                took = time.perf_counter() - started
                print(f"clustering cost with {size:>9,} stories stored: {cost * 1e6:6.0f} "
                      f"µs/entry (store filled and measured in {took:.0f} s)")
            print(f"cost ratio {sizes[-1]:,} / {sizes[0]:,} stories: {costs[-1] / costs[0]:.2f}")


if __name__ == "__main__":
    main()
