"""Language tags (RFC 5646, BCP 47), as feeds write them and as we republish them. Pure.

Feeds write ``de-de``, ``EN_us`` or the country instead of the language (``jp``); readers and
the W3C validator expect a registered primary subtag in RFC 5646 §2.1.1 case. Two-letter
primary subtags are checked against ISO 639-1, with the common country-code mistakes mapped;
three-letter ones (ISO 639-2/3) are taken as written.
"""

from __future__ import annotations

import re

_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")

ISO_639_1 = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu
hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb
lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om
or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw
ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
""".split())  # noqa: SIM905 (a table is easier to check against the standard this way)

# Country codes written where a language code belongs, and withdrawn codes (RFC 5646 §2.2.1).
MISTAKES = {"jp": "ja", "cz": "cs", "gr": "el", "dk": "da", "ua": "uk", "cn": "zh",
            "iw": "he", "in": "id", "ji": "yi", "jw": "jv"}


def normalize_language(tag: str | None) -> str | None:
    """``de-de`` → ``de-DE``, ``EN_us`` → ``en-US``, ``jp`` → ``ja``, ``zh-hant-tw`` →
    ``zh-Hant-TW``; None when ``tag`` is not a language tag we can vouch for."""
    if not tag:
        return None
    tag = tag.strip()
    if not _TAG.match(tag):
        return None
    primary, *subtags = re.split(r"[-_]", tag)
    primary = primary.lower()
    primary = MISTAKES.get(primary, primary)
    if len(primary) == 2 and primary not in ISO_639_1:
        return None
    # RFC 5646 §2.1.1 case conventions: region upper, script title case, the rest lower.
    cased = [primary]
    for subtag in subtags:
        if len(subtag) == 2 and subtag.isalpha():
            cased.append(subtag.upper())
        elif len(subtag) == 4 and subtag.isalpha():
            cased.append(subtag.title())
        else:
            cased.append(subtag.lower())
    return "-".join(cased)


def primary_language(tag: str | None) -> str:
    """``de-DE`` → ``de``; unknown → ""."""
    return (tag or "").split("-")[0].lower()[:8]
