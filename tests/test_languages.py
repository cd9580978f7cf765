"""Language tags as feeds write them → as we republish them (RFC 5646)."""

from __future__ import annotations

import pytest

from syndicate.languages import normalize_language, primary_language


@pytest.mark.parametrize(("written", "expected"), [
    ("de", "de"), ("de-de", "de-DE"), ("EN_us", "en-US"), ("zh-hant-tw", "zh-Hant-TW"),
    ("jp", "ja"), ("cz", "cs"), ("iw", "he"), ("gsw", "gsw"),  # three letters taken as written
    ("xx", None), ("english", None), ("", None), (None, None), ("d", None), ("de-", None),
])
def test_normalize_language(written: str | None, expected: str | None) -> None:
    assert normalize_language(written) == expected


@pytest.mark.parametrize(("tag", "primary"), [("de-DE", "de"), (None, ""), ("", ""), ("EN", "en")])
def test_primary_language(tag: str | None, primary: str) -> None:
    assert primary_language(tag) == primary
