"""Near-duplicate fingerprints: MinHash signatures and LSH band keys. Pure.

A document is the set of its word 3-shingles: Unicode words (``\\w+``) after case folding
(so "Straße" and "STRASSE" agree), numbers kept — numbers are what tell one day's market
report from the next. Each word is hashed (CRC-32, stable across processes, unlike
``hash()``) and neighbours are mixed into a 32-bit shingle hash; the signature keeps, for each
of ``NUM_PERM`` universal hash functions (multiply-shift over 64 bits), the minimum over the
shingles: two signatures agree in a position with probability equal to the Jaccard similarity
of the two shingle sets.

Locality-sensitive hashing takes ``BANDS`` bands of ``ROWS`` values from the start of the
signature; two documents become candidates when any band agrees, which for 16 bands of 4
happens with probability 1-(1-J^4)^16: 0.89 at J=0.6, 0.99 at J=0.7, 0.03 at J=0.2. An entry
has two signatures (lead and body), so a copy gets two chances. The store keeps an entry's
band keys in one row and looks them up in memory a week at a time (store/bandindex.py), so a
look-up costs about the same with ten thousand or a million stories. Candidates are then
verified on the estimated Jaccard similarity of the full signatures.

Why 16 bands and not 32 (the first version's): every band is a key stored and probed per
entry; when each key was a row of its own, they were the largest part of a cold ingest's
writing. On the bench corpus (bench/dedup_eval.py)
32 bands gave recall 0.9719 at 2,130 µs/entry of clustering, 24 gave 0.9714 at 1,473 and 16
gave 0.9695 at 1,130, all at precision 0.9993.
"""

from __future__ import annotations

import functools
import operator
import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy.typing as npt

NUM_PERM = 128
BANDS = 16  # the first BANDS * ROWS values of a signature are banded; all are verified
ROWS = 4
SHINGLE_WORDS = 3
MIN_WORDS = 12  # fewer words than this make no fingerprint: too little to tell stories apart
MAX_WORDS = 5000  # longer texts are fingerprinted by their start: bounded memory and time

_WORD = re.compile(r"\w+")


@functools.cache
def _numpy() -> Any:
    """numpy and the hash family, on first use: only signing needs them (the parse workers;
    a web process, or a warm re-poll, need not load numpy at all)."""
    import numpy as np

    rng = np.random.default_rng(0x5EED)  # fixed: signatures are stored and compared across runs
    a = rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)  # odd multipliers
    b = rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
    mix = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))
    return np, a, b, np.uint64(32), mix


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def shingles(text: str) -> set[str]:
    tokens = words(text)
    if len(tokens) < SHINGLE_WORDS:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i:i + SHINGLE_WORDS]) for i in range(len(tokens) - SHINGLE_WORDS + 1)}


def signature(text: str) -> bytes | None:
    """The MinHash signature of a text (NUM_PERM uint32 values, little-endian), or None."""
    return signature_of_words(words(text))


def signature_of_words(tokens: list[str]) -> bytes | None:
    """``signature`` of a text whose ``words`` the caller has already."""
    return signatures_of_words([tokens])[0]


BATCH_WORDS = 8192  # words signed in one numpy pass: a NUM_PERM × words uint64 matrix, 8 MB


def signatures_of_words(texts: Sequence[list[str]]) -> list[bytes | None]:
    """``signature_of_words`` of each text, signed several texts at a time: each numpy call
    costs as much as hashing a few hundred shingles, and a text needs a dozen calls."""
    signatures: list[bytes | None] = [None] * len(texts)
    batch: list[tuple[int, list[str]]] = []
    size = 0
    for index, tokens in enumerate(texts):
        tokens = tokens[:MAX_WORDS]
        if len(tokens) < MIN_WORDS:
            continue
        if batch and size + len(tokens) > BATCH_WORDS:
            _sign(batch, signatures)
            batch, size = [], 0
        batch.append((index, tokens))
        size += len(tokens)
    if batch:
        _sign(batch, signatures)
    return signatures


def _sign(batch: list[tuple[int, list[str]]], signatures: list[bytes | None]) -> None:
    """Put the signature of each (index, words) of ``batch`` in ``signatures[index]``, from
    the shingles of all the words in a row."""
    np, a, b, shift, _ = _numpy()
    hashes = _shingle_hashes([word for _, tokens in batch for word in tokens])
    # (a·x + b) mod 2^64, top 32 bits: a universal family over 32-bit keys (Dietzfelbinger).
    # One row per hash function, so each minimum is taken along a contiguous row (numpy's
    # fastest reduction). The top bits are taken of the minimums only: a right shift keeps
    # the order, so the minimum of the shifted values is the shifted minimum.
    permuted = a[:, None] * hashes  # wraps mod 2^64, on purpose; in place from here
    permuted += b[:, None]
    # A text's shingles start at each of its words but the last two; the shingles starting
    # there span two texts. So the minimums are taken over [start, start + words - 2) of
    # each text, and over the two shingles before the next, which are thrown away.
    bounds: list[int] = []
    start = 0
    for _, tokens in batch:
        bounds += (start, start + len(tokens) - 2)
        start += len(tokens)
    bounds.pop()  # the last text's shingles run to the end
    minimums = np.minimum.reduceat(permuted, bounds, axis=1)[:, ::2]
    minimums >>= shift
    for (index, _), row in zip(batch, minimums.T.astype("<u4"), strict=True):
        signatures[index] = row.tobytes()


class _WordHashes(dict[str, int]):
    """word → CRC-32 of its UTF-8, remembered: most words of a text were in earlier ones, and
    a look-up costs half of encoding and hashing the word again."""

    def __missing__(self, word: str) -> int:
        value = self[word] = zlib.crc32(word.encode())
        return value


_WORD_HASHES = _WordHashes()
MAX_REMEMBERED_WORDS = 50_000  # then all forgotten at once: about 8 MB at most


def _shingle_hashes(tokens: list[str]) -> npt.NDArray[Any]:
    """32-bit hashes of the word 3-shingles: each word is hashed once (CRC-32), and three
    neighbours are mixed arithmetically, instead of joining and hashing every shingle.
    A shingle that occurs twice is hashed twice: the minimums are the same, and removing
    the few repeats (a sort) cost more than it saved."""
    np, _, _, shift, mix = _numpy()
    if len(_WORD_HASHES) > MAX_REMEMBERED_WORDS:
        _WORD_HASHES.clear()
    h = np.fromiter(map(_WORD_HASHES.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
    mixed = h[:-2] * mix[0] + h[1:-1] * mix[1] + h[2:]  # wraps mod 2^64, on purpose
    shingles: npt.NDArray[Any] = (mixed >> shift) ^ (mixed & np.uint64(0xFFFFFFFF))
    return shingles


def band_keys(sig: bytes, kind: int = 0) -> list[int]:
    """One key per band: a positive 63-bit integer (fits every database's BIGINT). ``kind``
    (0 or 1) keeps the bands of different signatures (lead, body) apart."""
    keys = []
    for band in range(BANDS):
        chunk = sig[band * ROWS * 4:(band + 1) * ROWS * 4]
        high = zlib.crc32(chunk, band)
        low = zlib.adler32(chunk, band + 1) & 0xFFFFFF
        keys.append((kind << 61) | (band << 56) | (high << 24) | low)
    return keys


def entry_band_keys(lead: bytes | None, body: bytes | None) -> list[int]:
    """The band keys an entry is indexed and looked up under: its lead signature's, then its
    body signature's when that differs."""
    keys = band_keys(lead, kind=0) if lead else []
    if body and body != lead:
        keys += band_keys(body, kind=1)
    return keys


# "\d+" spelled so that its first element is one character class: the regex engine then
# skips non-digits in C instead of entering the repeat at every position (1.7x faster).
_NUMBER = re.compile(r"\d\d*")
MAX_NUMBERS = 64


def numbers(text: str) -> tuple[str, ...]:
    """The distinct numbers a text mentions (sorted, at most MAX_NUMBERS)."""
    return tuple(sorted(set(_NUMBER.findall(text))))[:MAX_NUMBERS]


def numbers_agree(a: tuple[str, ...], b: tuple[str, ...], minimum: float = 0.9) -> bool:
    """Do two texts mention the same numbers? The smaller set must lie (almost) inside the
    larger: a shortened copy keeps its numbers, the next day's market report does not."""
    if not a or not b:
        return True
    shared = len(set(a) & set(b))
    return shared / min(len(a), len(b)) >= minimum


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity: the share of positions where the signatures agree.
    (Positions compare as native 32-bit words: equality does not depend on byte order.)"""
    if len(a) != len(b) or not a or len(a) % 4:
        return 0.0
    positions = memoryview(a).cast("I")
    agreeing: int = sum(map(operator.eq, positions, memoryview(b).cast("I")))
    return agreeing / len(positions)
