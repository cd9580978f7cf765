"""Language tags (RFC 5646, BCP 47), as feeds write them and as we republish them. Pure.

Feeds write ``de-de``, ``EN_us``, ``ger`` or the country instead of the language (``jp``);
readers and the W3C validator expect a registered primary subtag in RFC 5646 §2.1.1 case.
Two-letter primary subtags are checked against ISO 639-1, with the common country-code mistakes
mapped. Three-letter ones are ISO 639-2 codes: RFC 5646 §2.2.1 wants the two-letter code where
ISO 639-1 has one, so ``deu``/``ger`` become ``de``; the others (``gsw``, ``fil``, ``haw``) are
kept when ISO 639-2 lists them. ISO 639-3-only codes (``yue``, ``cmn``) are dropped: the W3C
validator, which knows ISO 639-1 and 639-2 only, reports them as InvalidLanguage.
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
            "iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}

# ISO 639-1 code: its ISO 639-2 codes (terminology, then bibliographic where that differs, then
# withdrawn ones: mol, scc, scr).
_ISO_639_2_OF = """
aa aar|ab abk|ae ave|af afr|ak aka|am amh|an arg|ar ara|as asm|av ava|ay aym|az aze|ba bak
be bel|bg bul|bh bih|bi bis|bm bam|bn ben|bo bod tib|br bre|bs bos|ca cat|ce che|ch cha
co cos|cr cre|cs ces cze|cu chu|cv chv|cy cym wel|da dan|de deu ger|dv div|dz dzo|ee ewe
el ell gre|en eng|eo epo|es spa|et est|eu eus baq|fa fas per|ff ful|fi fin|fj fij|fo fao
fr fra fre|fy fry|ga gle|gd gla|gl glg|gn grn|gu guj|gv glv|ha hau|he heb|hi hin|ho hmo
hr hrv scr|ht hat|hu hun|hy hye arm|hz her|ia ina|id ind|ie ile|ig ibo|ii iii|ik ipk|io ido
is isl ice|it ita|iu iku|ja jpn|jv jav|ka kat geo|kg kon|ki kik|kj kua|kk kaz|kl kal|km khm
kn kan|ko kor|kr kau|ks kas|ku kur|kv kom|kw cor|ky kir|la lat|lb ltz|lg lug|li lim|ln lin
lo lao|lt lit|lu lub|lv lav|mg mlg|mh mah|mi mri mao|mk mkd mac|ml mal|mn mon|mr mar
ms msa may|mt mlt|my mya bur|na nau|nb nob|nd nde|ne nep|ng ndo|nl nld dut|nn nno|no nor
nr nbl|nv nav|ny nya|oc oci|oj oji|om orm|or ori|os oss|pa pan|pi pli|pl pol|ps pus|pt por
qu que|rm roh|rn run|ro ron rum mol|ru rus|rw kin|sa san|sc srd|sd snd|se sme|sg sag|si sin
sk slk slo|sl slv|sm smo|sn sna|so som|sq sqi alb|sr srp scc|ss ssw|st sot|su sun|sv swe
sw swa|ta tam|te tel|tg tgk|th tha|ti tir|tk tuk|tl tgl|tn tsn|to ton|tr tur|ts tso|tt tat
tw twi|ty tah|ug uig|uk ukr|ur urd|uz uzb|ve ven|vi vie|vo vol|wa wln|wo wol|xh xho|yi yid
yo yor|za zha|zh zho chi|zu zul
"""
THREE_TO_TWO: dict[str, str] = {
    three: codes.split()[0]
    for codes in _ISO_639_2_OF.replace("\n", "|").split("|") if codes.strip()
    for three in codes.split()[1:]
}

# ISO 639-2 codes of languages (and language groups) that ISO 639-1 has no code for: the
# three-letter primary subtags RFC 5646 takes from ISO 639-2 as they are. The private-use
# range qaa-qtz is left out.
ISO_639_2_ONLY = frozenset("""
ace ach ada ady afa afh ain akk ale alg alt ang anp apa arc arn arp art arw ast ath aus awa
bad bai bal ban bas bat bej bem ber bho bik bin bla bnt bra btk bua bug byn cad cai car cau
ceb cel chb chg chk chm chn cho chp chr chy cmc cop cpe cpf cpp crh crp csb cus dak dar day
del den dgr din doi dra dsb dua dum dyu efi egy eka elx enm ewo fan fat fil fiu fon frm fro
frr frs fur gaa gay gba gem gez gil gmh goh gon gor got grb grc gsw gwi gws hai haw hil him
hit hmn hsb hup iba ijo ilo inc ine inh ira iro jbo jpr jrb kaa kab kac kam kar kaw kbd kha
khi kho kmb kok kos kpe krc krl kro kru kum kut lad lah lam lez lol loz lua lui lun luo lus
mad mag mai mak man map mas mdf mdr men mga mic min mis mkh mnc mni mno moh mos mul mun mus
mwl mwr myn myv nah nai nap nds new nia nic niu nog non nso nub nwc nym nyn nyo nzi osa ota
oto paa pag pal pam pap pau peo phi phn pon pra pro raj rap rar roa rom rup sad sah sai sal
sam sas sat scn sco sel sem sga sgn shn sid sio sit sla sma smi smj smn sms snk sog son srn
srr ssa suk sus sux syr tai tem ter tet tig tiv tkl tlh tli tmh tog tpi tsi tum tup tut tvl
tyv udm uga umb und vai vot wak wal war was wen xal yao yap ypk zap zen znd zun
""".split())  # noqa: SIM905 (as ISO_639_1)


def normalize_language(tag: str | None) -> str | None:
    """``de-de`` → ``de-DE``, ``EN_us`` → ``en-US``, ``jp`` → ``ja``, ``ger-CH`` → ``de-CH``,
    ``zh-hant-tw`` → ``zh-Hant-TW``; None when ``tag`` is not a language tag we can vouch for
    (its primary subtag in neither ISO 639-1 nor ISO 639-2)."""
    if not tag:
        return None
    tag = tag.strip()
    if not _TAG.match(tag):
        return None
    primary, *subtags = re.split(r"[-_]", tag)
    primary = primary.lower()
    primary = MISTAKES.get(primary) or THREE_TO_TWO.get(primary) or primary
    if primary not in ISO_639_1 and primary not in ISO_639_2_ONLY:
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
