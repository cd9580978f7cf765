"""Language tags as feeds write them → as we republish them (RFC 5646)."""

from __future__ import annotations

import pytest

from syndicate.languages import (
    ISO_639_1,
    ISO_639_2_ONLY,
    THREE_TO_TWO,
    normalize_language,
    primary_language,
)


@pytest.mark.parametrize(("written", "expected"), [
    ("de", "de"), ("de-de", "de-DE"), ("EN_us", "en-US"), ("zh-hant-tw", "zh-Hant-TW"),
    ("jp", "ja"), ("cz", "cs"), ("iw", "he"), ("mo", "ro"),
    ("xx", None), ("english", None), ("", None), (None, None), ("d", None), ("de-", None),
])
def test_normalize_language(written: str | None, expected: str | None) -> None:
    assert normalize_language(written) == expected


@pytest.mark.parametrize(("written", "expected"), [
    # ISO 639-2 codes of an ISO 639-1 language become the two-letter code (RFC 5646 §2.2.1),
    # terminology and bibliographic alike, and withdrawn ones (mol, scc, scr) too.
    ("deu", "de"), ("ger", "de"), ("GER-ch", "de-CH"), ("fra", "fr"), ("fre_CA", "fr-CA"),
    ("eng", "en"), ("zho-Hant", "zh-Hant"), ("chi", "zh"), ("mol", "ro"), ("scc", "sr"),
    # ISO 639-2 codes without a two-letter code stay.
    ("gsw", "gsw"), ("fil-ph", "fil-PH"), ("haw", "haw"), ("ceb", "ceb"), ("mul", "mul"),
    # Codes the W3C validator refuses in xml:lang and RSS <language> (InvalidLanguage): not in
    # ISO 639-2 at all, ISO 639-3 only, or private use.
    ("xyz", None), ("abc-DE", None), ("yue", None), ("cmn-Hans", None), ("qaa", None),
])
def test_three_letter_codes_are_iso_639_2(written: str, expected: str | None) -> None:
    assert normalize_language(written) == expected


def test_the_iso_639_tables_agree() -> None:
    """Every two-letter language has its three-letter codes; no code is in both tables."""
    assert set(THREE_TO_TWO.values()) == ISO_639_1
    assert not set(THREE_TO_TWO) & ISO_639_2_ONLY
    codes = [*THREE_TO_TWO, *ISO_639_2_ONLY]
    assert all(len(code) == 3 and code.isalpha() and code.islower() for code in codes)
    assert all(len(code) == 2 and code.isalpha() and code.islower() for code in ISO_639_1)


@pytest.mark.parametrize(("tag", "primary"), [("de-DE", "de"), (None, ""), ("", ""), ("EN", "en")])
def test_primary_language(tag: str | None, primary: str) -> None:
    assert primary_language(tag) == primary
