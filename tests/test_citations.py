"""Tests for syndicate.ingest.citations: cited outlets, the place, and the body without them.

The expected results are data in tests/data/citations/cases.yaml (a language x shape matrix,
single cases, and the two SourceRef constructors); the seed article is tested as the feed item
it arrives in (RSS content:encoded with the plain text in paragraphs, Atom HTML content).
Hostile inputs are generated here because of their size.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import nh3
import pytest
import yaml

from syndicate.ingest import citations
from syndicate.ingest.citations import (
    MAX_REFS,
    Citations,
    extract_citations,
    source_ref_from_text,
    source_ref_from_url,
)
from syndicate.types import SourceRef

DATA = Path(__file__).parent / "data" / "citations"
CASES: dict[str, Any] = yaml.safe_load((DATA / "cases.yaml").read_text(encoding="utf-8"))
CORPUS = Path("/work/shared/corpus")
SEED_HOSTS = ["rp-online.de", "www.npr.org", "www.swp-berlin.org"]
XML_INCOMPATIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,}|xn--[a-z0-9-]+)$")


# --- helpers ----------------------------------------------------------------------------------


def parse(html: str) -> Any:
    # libxml2 refuses the control characters XML 1.0 excludes; the sanitizer keeps some.
    return lxml.html.fragment_fromstring(XML_INCOMPATIBLE.sub("", html), create_parent="div")


def text_of(html: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    if not html.strip():
        return ""
    root = parse(html)
    return " ".join(root.text_content().split())


def markup_of(html: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every (tag, attributes) in a fragment."""
    if not html.strip():
        return set()
    root = parse(html)
    return {
        (el.tag, tuple(sorted(el.attrib.items())))
        for el in root.iter()
        if isinstance(el.tag, str)
    }


def as_rows(refs: tuple[SourceRef, ...]) -> list[list[str | None]]:
    return [[ref.host, ref.name, ref.url] for ref in refs]


def assert_well_formed(html: str, result: Citations) -> None:
    """What holds for every input: bounded plain-text refs, and a body that only lost things."""
    assert len(result.refs) <= MAX_REFS
    for ref in result.refs:
        assert ref.host == "" or HOST.match(ref.host), ref
        assert ref.url is None or ref.url.lower().startswith(("http://", "https://")), ref
        assert ref.name, ref
        for value in (ref.host, ref.name, ref.url or "", result.place or ""):
            assert "<" not in value and ">" not in value, ref
    assert markup_of(result.body_html) <= markup_of(html)
    assert len(text_of(result.body_html)) <= len(text_of(html))


def render(template: str, words: dict[str, str]) -> str:
    return template.format_map(words)


# --- the seed article -------------------------------------------------------------------------


def seed_paragraphs() -> list[str]:
    """The seed's body paragraphs (not the headline, not the details block or footer)."""
    text = (DATA / "seed.txt").read_text(encoding="utf-8")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return paragraphs[1 : paragraphs.index(next(p for p in paragraphs if p.startswith("Details")))]


@pytest.mark.parametrize("sanitize", [False, True], ids=["as-parsed", "nh3"])
@pytest.mark.parametrize("fixture", ["seed_text.rss", "seed_html.atom"])
def test_seed_article_gives_place_sources_and_an_intact_body(fixture: str, sanitize: bool) -> None:
    feed = feedparser.parse(str(DATA / fixture))
    assert not feed.bozo
    html = feed.entries[0].content[0].value
    if sanitize:
        html = nh3.clean(html)

    result = extract_citations(html)

    assert result.place == "Sumy, Ukraine"
    assert [ref.host for ref in result.refs] == SEED_HOSTS
    assert all(ref.url is None for ref in result.refs)
    body = text_of(result.body_html)
    for paragraph in seed_paragraphs():
        assert paragraph in body
    assert body.endswith("in den transatlantischen Beziehungen führen.")
    for gone in ("Details", "Quellen", "rp-online.de", "swp-berlin", "Besuchen Sie uns", "n-ag.de"):
        assert gone not in body
    assert_well_formed(html, result)


# --- the language x shape matrix --------------------------------------------------------------

MATRIX = [
    pytest.param(lang, shape, id=f"{shape}-{lang}")
    for shape in CASES["matrix"]["shapes"]
    for lang in CASES["matrix"]["languages"]
]


@pytest.mark.parametrize("sanitize", [False, True], ids=["as-written", "nh3"])
@pytest.mark.parametrize(("lang", "shape"), MATRIX)
def test_every_shape_in_every_language(lang: str, shape: str, sanitize: bool) -> None:
    words = CASES["matrix"]["languages"][lang]
    case = CASES["matrix"]["shapes"][shape]
    html = render(case["html"], words)
    if sanitize:
        html = nh3.clean(html)

    result = extract_citations(html)

    assert as_rows(result.refs) == case["refs"]
    expected_place = render(case["place"], words) if case["place"] else None
    assert result.place == expected_place
    body = text_of(result.body_html)
    assert " ".join(words["body"].split()) in body
    for fragment in case["removed"]:
        assert render(fragment, words) not in body
    assert_well_formed(html, result)


# --- single cases -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES["cases"]])
def test_case(case: dict[str, Any]) -> None:
    html = case["html"]
    result = extract_citations(
        html,
        labels=tuple(case.get("labels", ())),
        strip_patterns=tuple(case.get("strip_patterns", ())),
    )

    assert as_rows(result.refs) == case["refs"]
    assert result.place == case.get("place")
    if case.get("unchanged"):
        assert result.body_html == html
    if "body_html" in case:
        assert result.body_html == case["body_html"]
    body = text_of(result.body_html)
    for fragment in case.get("kept", ()):
        assert fragment in body
    for fragment in case.get("removed", ()):
        assert fragment not in body
    assert_well_formed(html, result)


@pytest.mark.parametrize(
    ("token", "expected"),
    [pytest.param(token, expected, id=repr(token)) for token, expected in
     CASES["source_ref_from_text"]],
)
def test_source_ref_from_text(token: str, expected: list[str | None] | None) -> None:
    ref = source_ref_from_text(token)
    assert (None if ref is None else [ref.host, ref.name, ref.url]) == expected


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [pytest.param(arguments, expected, id=repr(arguments)) for arguments, expected in
     CASES["source_ref_from_url"]],
)
def test_source_ref_from_url(
    arguments: list[str | None], expected: list[str | None] | None
) -> None:
    url, name = arguments
    ref = source_ref_from_url(url, name)
    assert (None if ref is None else [ref.host, ref.name, ref.url]) == expected


# --- hostile and large inputs -----------------------------------------------------------------

BODY = "<p>Der Text des Artikels, lang genug, um ein Artikel zu sein.</p>"


def extract(html: str, **options: Any) -> Citations:
    # How long these take is measured in bench/, not asserted here; that they finish and
    # stay bounded is what the tests check.
    return extract_citations(html, **options)


@pytest.mark.parametrize(
    "block",
    [
        "<p>Quellen: " + ", ".join(f"site{i}.example.com" for i in range(500)) + "</p>",
        "<p>Quellen:</p><ul>" + "".join(f"<li>site{i}.example.com</li>" for i in range(500))
        + "</ul>",
        "<table><tr><th>Quellen</th><td>"
        + "".join(f'<a href="https://site{i}.example.com/a">S{i}</a> ' for i in range(500))
        + "</td></tr></table>",
    ],
    ids=["one-line", "list", "table-of-links"],
)
def test_a_block_of_500_outlets_gives_the_first_50(block: str) -> None:
    html = BODY + block
    result = extract(html)
    assert [ref.host for ref in result.refs] == [f"site{i}.example.com" for i in range(MAX_REFS)]
    assert text_of(result.body_html) == text_of(BODY)
    assert_well_formed(html, result)


def test_a_page_of_10000_links_is_left_alone_quickly() -> None:
    html = BODY + "".join(
        f'<p><a href="https://site{i}.example.com/">Site {i}</a></p>' for i in range(10_000)
    )
    result = extract(html)
    assert result == Citations(body_html=html, place=None, refs=())


def test_a_sources_list_longer_than_the_scan_window_is_left_alone_quickly() -> None:
    # The end scan looks at the last TAIL_LINES lines: 10,000 list items are not a source list.
    html = BODY + "<p>Sources:</p><ul>" + "".join(
        f'<li><a href="https://site{i}.example.com/">Site {i}</a></li>' for i in range(10_000)
    ) + "</ul>"
    result = extract(html)
    assert result == Citations(body_html=html, place=None, refs=())


def test_1000_links_under_a_sources_label_give_the_first_50() -> None:
    html = BODY + "<p>Sources:</p><ul>" + "".join(
        f'<li><a href="https://site{i}.example.com/">Site {i}</a></li>' for i in range(1000)
    ) + "</ul>"
    result = extract(html)
    assert len(result.refs) == MAX_REFS
    assert result.refs[0] == SourceRef("site0.example.com", "Site 0", "https://site0.example.com/")
    assert text_of(result.body_html) == text_of(BODY)


@pytest.mark.parametrize(
    "html",
    [
        BODY + "<div>" * 5000 + "Quelle: dpa" + "</div>" * 5000 + "<p>Visit us at: a.example</p>",
        "<p>" + "Lorem ipsum dolor sit amet. " * 400_000 + "</p><p>Visit us at: a.example</p>",
    ],
    ids=["nested-5000-deep", "12-MB-text-node"],
)
def test_content_past_the_parser_limits_is_returned_whole(html: str) -> None:
    # libxml2 silently drops what lies past its limits; editing that tree would lose text.
    result = extract(html)
    assert result == Citations(body_html=html, place=None, refs=())


def test_an_operator_pattern_that_matches_nothing_but_the_empty_string_removes_nothing() -> None:
    html = BODY + "<p>Quelle: dpa</p>"
    result = extract_citations(html, strip_patterns=("(?:)", "(?=a)", "q{0}"))
    assert as_rows(result.refs) == [["", "dpa", None]]
    assert text_of(result.body_html) == text_of(BODY)


def test_overlong_tokens_and_operator_labels_are_not_outlets() -> None:
    html = BODY + "<p>Quellen: " + "a" * 300 + ".com</p>"
    assert extract_citations(html) == Citations(body_html=html, place=None, refs=())
    long_label = "x" * 500
    result = extract_citations(BODY + f"<p>{long_label}: dpa</p>", labels=(long_label,))
    assert result.refs == ()


@pytest.mark.parametrize("label", ["QUELLE", "quelle", "QuElLe", "SOURCES", "ſources",
                                   "UBICACIÓN", "Ubicación"])
def test_labels_are_found_in_any_case(label: str) -> None:
    # The quick test that skips most articles folds case itself: it must not skip these.
    result = extract_citations(f"<p>Der Text des Artikels.</p><p>{label}: dpa</p>")
    assert as_rows(result.refs) == [["", "dpa", None]] or result.place == "dpa"


def test_an_operator_label_is_found_in_any_case() -> None:
    result = extract_citations("<p>Text.</p><p>ΠΗΓΈΣ: dpa</p>", labels=("Πηγές",))
    assert as_rows(result.refs) == [["", "dpa", None]]


def test_unbalanced_html_is_read() -> None:
    result = extract_citations("<p>Der Text des Artikels.<p>Quelle: <b>dpa</p>")
    assert as_rows(result.refs) == [["", "dpa", None]]
    assert text_of(result.body_html) == "Der Text des Artikels."


FUZZ_PIECES = (
    "Quelle", "Quellen:", "Sources :", "Ort\t", "Details", "Via", "•", "·", ",", ";", " und ",
    "npr.org", "www.bücher.de", "Reuters", '<a href="https://x.npr.org/a">NPR</a>',
    '<a href="javascript:x">j.com</a>', "<br>", "\n", "\t", "(", ")", "<p>", "</p>",
    "<ul><li>", "</li>", "</ul>", "<table><tr><td>", "</td><td>", "</td></tr></table>",
    "<dl><dt>", "</dt><dd>", "</dd></dl>", "&lt;ul&gt;", "<b>", "</b>", "<pre>", "</pre>",
    "Besuchen Sie uns auf: n-ag.de", "Lorem ipsum dolor sit amet, consectetur.",
    '<img src="https://a.example/c.png">', "<!-- c -->", "Lieu :", "Sumy, Ukraine", " — ",
    "dpa/AFP", "https://www.example.com/x?y=1&amp;z=2", "<h2>", "</h2>", "\x0b", "\u2028",
)


def test_random_fragments_never_raise_and_only_lose_things() -> None:
    rng = random.Random(20250214)  # fixed: the same fragments every run
    for _ in range(1500):
        html = "".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(0, 30)))
        for content in (html, nh3.clean(html)):
            result = extract_citations(
                content, labels=("Mit Material von",), strip_patterns=("Lorem",)
            )
            assert_well_formed(content, result)


# --- real-world feeds -------------------------------------------------------------------------


def corpus_contents() -> list[tuple[str, str]]:
    """(file:entry, content HTML) for every entry of the real-world feed snapshots."""
    found: list[tuple[str, str]] = []
    for folder in ("miniflux-v2", "feed-rs"):
        for path in sorted((CORPUS / folder).rglob("*")):
            if not path.is_file() or path.name.endswith(".serde.json"):
                continue
            feed = feedparser.parse(path.read_bytes())
            for number, entry in enumerate(feed.entries):
                for value in [c.get("value", "") for c in entry.get("content", [])] + [
                    entry.get("summary", "")
                ]:
                    if value:
                        found.append((f"{path.relative_to(CORPUS)}#{number}", value))
    return found


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared feed corpus is not on this machine")
def test_real_world_feeds_never_raise_or_lose_their_text() -> None:
    contents = corpus_contents()
    assert len(contents) > 100  # the corpus was read
    for where, html in contents:
        sanitized = nh3.clean(html)
        result = extract_citations(sanitized)
        assert_well_formed(sanitized, result)
        before, after = len(text_of(sanitized)), len(text_of(result.body_html))
        if after < before / 2:
            assert result.refs or result.place, where


def _could_cite_as_first_written(labels: tuple[str, ...]) -> re.Pattern[str]:
    words = {citations._folded(max(re.findall(r"\w+", label), key=len, default=""))
             for label in (*citations.SOURCE_LABELS, *citations.PLACE_LABELS, *labels)} - {""}
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)|besuchen\s+sie|visit\s+us"
                      r"|visitez|vis[ií]tanos|visitateci")


@pytest.mark.parametrize("labels", [(), ("Y",), ("Gesehen bei", "Über", "D'après:", "Ärzte")])
def test_quick_label_test_matches_as_the_plain_pattern(labels: tuple[str, ...]) -> None:
    """The quick test's pattern is written for speed; it must match where the plain one does."""
    fast, plain = citations._could_cite(labels), _could_cite_as_first_written(labels)
    words = [w for label in (*citations.SOURCE_LABELS, *citations.PLACE_LABELS, *labels)
             for w in re.findall(r"\w+", citations._folded(label))]
    pieces = [*words, "besuchen sie", "visit\n us", "vis", "ítanos", "x", "_", "1", "é", " ",
              "\n", ".", "<p>", "</a>", "ort", "re", "s", "\u2028"]
    rng = random.Random(3)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        assert (fast.search(text) is None) == (plain.search(text) is None), text
