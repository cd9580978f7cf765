"""MinHash fingerprints and their verification rules (pure)."""

from __future__ import annotations

import hashlib
import random
import zlib

import pytest

from syndicate.ingest import dedupe, similarity
from syndicate.types import SimilarCandidate
from tests.factories import make_entry

ARTICLE = (
    "The city council voted on Monday to build a tram line linking the central station with "
    "the harbour district, ending a decade of debate. Construction of the 6.4 kilometre line "
    "will start next spring and take three years; 28,000 passengers a day are expected."
)


def test_tokens_fold_case_and_keep_umlauts() -> None:
    assert similarity.words("Die STRASSE, die Straße; Über 3 Brücken") == [
        "die", "strasse", "die", "strasse", "über", "3", "brücken"]


def test_signature_is_deterministic_and_sized() -> None:
    sig = similarity.signature(ARTICLE)
    assert sig is not None and len(sig) == similarity.NUM_PERM * 4
    assert similarity.signature(ARTICLE) == sig
    assert similarity.signature("too short to tell") is None


def test_signature_and_band_keys_are_the_stored_ones() -> None:
    """Signatures and band keys are stored and compared across runs and versions: a change
    in how they are computed must not change a single bit."""
    sig = similarity.signature(ARTICLE)
    assert sig is not None
    assert hashlib.sha256(sig).hexdigest() == (
        "ad54377cd5c54acef6f884b80608cc45300a82e576152ca15646465f21c52861")
    assert similarity.band_keys(sig)[:3] == [53469128544486602, 78696097567934203,
                                             149983768871765723]


def plain_signature(text: str) -> bytes | None:
    """MinHash as the module's docstring defines it, one shingle and one function at a time,
    without numpy: the reference ``signature`` must equal bit for bit."""
    tokens = similarity.words(text)[: similarity.MAX_WORDS]
    if len(tokens) < similarity.MIN_WORDS:
        return None
    _, a, b, _, (mix0, mix1) = similarity._numpy()
    mask = 2**64 - 1
    crcs = [zlib.crc32(token.encode()) for token in tokens]
    shingles = set()
    for x, y, z in zip(crcs, crcs[1:], crcs[2:], strict=False):
        mixed = (x * int(mix0) + y * int(mix1) + z) & mask
        shingles.add((mixed >> 32) ^ (mixed & 0xFFFFFFFF))
    minimums = [min(((int(ai) * s + int(bi)) & mask) >> 32 for s in shingles)
                for ai, bi in zip(a, b, strict=True)]
    return b"".join(m.to_bytes(4, "little") for m in minimums)


@pytest.mark.parametrize("text", [
    ARTICLE,
    " ".join(["word"] * 40),  # one shingle, repeated
    "one two three four five six seven eight nine ten eleven twelve",  # just enough words
    "one two three four five six seven eight nine ten eleven",  # one too few
    "",
    "Die Straße über die Brücken: Zürich, Genève, Kraków — 東京 und 北京, ein Γειά σου "
    "κόσμε, naïve café résumé, 2024-06-28 um 14:30 Uhr, 3½ Stunden.",
    " ".join(f"w{i % 7}" for i in range(300)),  # many repeated shingles
    " ".join(f"w{i}" for i in range(similarity.MAX_WORDS + 50)),  # cut at MAX_WORDS
])
def test_signature_equals_the_plain_definition(text: str) -> None:
    assert similarity.signature(text) == plain_signature(text)


def jaccard(a: str, b: str) -> float:
    sa, sb = similarity.shingles(a), similarity.shingles(b)
    return len(sa & sb) / len(sa | sb)


@pytest.mark.parametrize("variant", [
    ARTICLE,
    ARTICLE.upper(),
    "BREAKING: " + ARTICLE,
    ARTICLE + " Read more at the Harbour Post.",
    ARTICLE[: len(ARTICLE) * 3 // 4],
    "An entirely different report about the weather in the mountains, with snow expected "
    "on Tuesday and strong winds from the north reaching up to 90 km/h in exposed places.",
])
def test_estimate_tracks_the_true_jaccard(variant: str) -> None:
    a, b = similarity.signature(ARTICLE), similarity.signature(variant)
    assert a is not None and b is not None
    # 128 permutations: the standard error is at most sqrt(0.25/128) ≈ 0.044
    assert abs(similarity.similarity(a, b) - jaccard(ARTICLE, variant)) < 0.15


def test_band_keys_collide_only_for_equal_bands() -> None:
    a = similarity.signature(ARTICLE)
    b = similarity.signature("BREAKING: " + ARTICLE)
    assert a is not None and b is not None
    keys_a, keys_b = similarity.band_keys(a), similarity.band_keys(b)
    assert len(keys_a) == similarity.BANDS
    assert all(0 < k < 2**63 for k in keys_a)
    assert set(keys_a) & set(keys_b)  # similar texts share at least one band
    assert not set(keys_a) & set(similarity.band_keys(a, kind=1))  # lead and body apart


def test_lsh_finds_similar_pairs_and_rarely_dissimilar_ones() -> None:
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(2000)]
    base = [rng.choice(vocabulary) for _ in range(120)]
    near = base[:100] + [rng.choice(vocabulary) for _ in range(20)]
    far = [rng.choice(vocabulary) for _ in range(120)]
    sig = similarity.signature(" ".join(base))
    near_sig = similarity.signature(" ".join(near))
    far_sig = similarity.signature(" ".join(far))
    assert sig and near_sig and far_sig
    assert set(similarity.band_keys(sig)) & set(similarity.band_keys(near_sig))
    assert not set(similarity.band_keys(sig)) & set(similarity.band_keys(far_sig))


@pytest.mark.parametrize(("a", "b", "agree"), [
    ((), ("1",), True),
    (("2024", "6", "28"), ("2024", "6", "28", "400"), True),  # a shortened copy
    (("12", "345", "1", "4"), ("15", "221", "0", "7"), False),  # next day's report
    (("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"),
     ("1", "2", "3", "4", "5", "6", "7", "8", "9", "11"), True),
    (("1", "2", "3", "4"), ("1", "2", "3", "5"), False),
])
def test_numbers_agree(a: tuple[str, ...], b: tuple[str, ...], agree: bool) -> None:
    assert similarity.numbers_agree(a, b) is agree


def entry_for(text: str, summary: str | None = None, guid: str = "g") -> object:
    lead = summary or text
    return make_entry(guid=guid, text=text, lead_signature=similarity.signature(lead),
                      body_signature=similarity.signature(text),
                      numbers=similarity.numbers(text))


def candidate(entry_id: int, story_id: int, entry: object) -> SimilarCandidate:
    return SimilarCandidate(entry_id, story_id, entry.lead_signature,  # type: ignore[attr-defined]
                            entry.body_signature, entry.numbers)  # type: ignore[attr-defined]


def test_best_similar_picks_the_closest_verified_story() -> None:
    new = entry_for(ARTICLE)
    close = entry_for("BREAKING: " + ARTICLE[: len(ARTICLE) * 3 // 4])
    closer = entry_for(ARTICLE + " More at the Post.")
    other_numbers = entry_for(ARTICLE.replace("28,000", "31,500").replace("6.4", "9.1"))
    unrelated = entry_for("A different story entirely, about a library extending its hours "
                          "for the exam season after students collected signatures.")
    candidates = [candidate(1, 10, close), candidate(2, 20, closer),
                  candidate(3, 30, other_numbers), candidate(4, 40, unrelated)]
    best = dedupe.best_similar(new, candidates, 0.6)  # type: ignore[arg-type]
    assert best is not None and best[0] == 20 and best[1] > 0.8
    assert dedupe.best_similar(new, [candidate(3, 30, other_numbers)], 0.6) is None  # type: ignore[arg-type]
    assert dedupe.best_similar(new, [candidate(4, 40, unrelated)], 0.6) is None  # type: ignore[arg-type]


def test_decide_uses_similarity_last() -> None:
    entry = make_entry()
    assert dedupe.decide(entry, None, None, None, (7, 0.91234567)).reason == "similar"
    assert dedupe.decide(entry, None, None, None, (7, 0.91234567)).score == 0.9123
    assert dedupe.decide(entry, None, 3, None, (7, 0.9)).story_id == 3


def test_a_huge_text_is_fingerprinted_by_its_start() -> None:
    start = " ".join(f"w{i}" for i in range(similarity.MAX_WORDS))
    assert similarity.signature(start + " tail" * 100_000) == similarity.signature(start)


def test_signatures_do_not_depend_on_the_remembered_word_hashes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    expected = plain_signature(ARTICLE)
    assert similarity.signature(ARTICLE) == expected  # its words remembered now
    assert similarity.signature(ARTICLE) == expected
    monkeypatch.setattr(similarity, "MAX_REMEMBERED_WORDS", 5)
    assert similarity.signature(ARTICLE) == expected  # forgotten on the way
    assert len(similarity._WORD_HASHES) <= 5 + len(similarity.words(ARTICLE))


def test_signatures_of_many_texts_are_each_text_s_own() -> None:
    """Texts are signed together in batches: each signature must be what the text alone
    gives, whatever its neighbours (short, empty, non-ASCII, cut at MAX_WORDS...)."""
    rng = random.Random(5)
    vocabulary = ["straße", "über", "東京", "3", "2024", "a", "the", "café", "x_y", "naïve"]
    texts = [ARTICLE, "", "too short to tell", " ".join(["word"] * 40),
             " ".join(f"w{i}" for i in range(similarity.MAX_WORDS + 7))]
    texts += [" ".join(rng.choice(vocabulary) for _ in range(rng.choice([0, 5, 11, 12, 13, 50,
                                                                         400, 3000])))
              for _ in range(60)]
    rng.shuffle(texts)
    words = [similarity.words(text) for text in texts]
    together = similarity.signatures_of_words(words)
    assert together == [plain_signature(text) for text in texts]
    assert sum(len(w[:similarity.MAX_WORDS]) for w in words) > 3 * similarity.BATCH_WORDS
    assert similarity.signatures_of_words([]) == []
