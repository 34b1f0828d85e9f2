"""Name normalisation for screening, pure: what a name looks like before it is compared.

`normalize(name)` -> a NormalName: its tokens (lower-case ASCII, punctuation gone, any script
transliterated by anyascii, honorifics and legal forms set apart), the dropped stop words, and
its phonetic keys. Steps, in order:

1. Unicode NFKC, then "Last, First" (one comma, the part after it without a legal form) turned
   into "First Last" (`reorder`);
2. transliteration to ASCII (anyascii: Cyrillic, Arabic, Greek, CJK, ... ; diacritics drop:
   "Erdoğan" -> "erdogan"), lower case;
3. apostrophes join ("Qa'ida" -> "qaida"), other punctuation splits ("Al-Rawi" -> "al rawi");
4. honorifics (mr, dr, sheikh, ...) and legal forms (ltd, gmbh, llc, ooo, ...) are stop words:
   set aside in `stop` unless every token is one (then kept, so "Co Ltd" still has tokens).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import jellyfish
from anyascii import anyascii


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


HONORIFICS = _words(
    "mr mrs ms miss mister madam dr prof professor sir dame lord hon honorable honourable rev "
    "reverend fr father sheikh shaikh shaykh sayyid sayed haji hajji mullah maulana maulvi mawlawi "
    "gen general col colonel maj major capt captain lt lieutenant sgt judge president "
    "senator rep representative jr sr"
)
LEGAL_FORMS = _words(
    "ltd limited llc l l c inc incorporated corp corporation co company plc gmbh ag kg sa sas "
    "sarl srl spa sl bv nv oy ab as asa oyj jsc ojsc pjsc cjsc ooo oao zao pao ao llp lp pty pte "
    "sdn bhd fze fzco fzc fz est establishment tic dmcc kft zrt doo sp zoo z o cv de pvt private "
    "the of and"
)
STOP_WORDS = HONORIFICS | LEGAL_FORMS

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc\u02bb`´]")
_SPLIT = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class NormalName:
    text: str  # the tokens joined by one space
    tokens: tuple[str, ...]
    stop: tuple[str, ...]  # the stop words set aside
    keys: tuple[str, ...] = ()  # each token's phonetic key
    joined: str = ""  # the tokens without spaces, in order
    sorted_joined: str = ""  # the tokens sorted, without spaces


def _normal(words: Sequence[str], stop: Sequence[str]) -> NormalName:
    tokens = tuple(words)
    return NormalName(
        text=" ".join(tokens),
        tokens=tokens,
        stop=tuple(stop),
        keys=tuple(phonetic(t) for t in tokens),
        joined="".join(tokens),
        sorted_joined="".join(sorted(tokens)),
    )


def reorder(name: str) -> str:
    """ "Last, First" -> "First Last" when the name has exactly one comma and what follows it is
    not a legal form ("Acme, Inc." stays as it is)."""
    if name.count(",") != 1:
        return name
    last, first = (part.strip() for part in name.split(","))
    if not last or not first:
        return name
    first_words = ascii_tokens(first)
    if not first_words or all(w in LEGAL_FORMS for w in first_words):
        return name
    return f"{first} {last}"


def ascii_tokens(text: str) -> list[str]:
    text = anyascii(unicodedata.normalize("NFKC", text)).lower()
    return _SPLIT.sub(" ", _APOSTROPHES.sub("", text)).split()


@lru_cache(maxsize=65536)
def normalize(name: str) -> NormalName:
    words = ascii_tokens(reorder(unicodedata.normalize("NFKC", name)))
    kept = [w for w in words if w not in STOP_WORDS]
    if not kept:
        return _normal(words, ())
    return _normal(kept, [w for w in words if w in STOP_WORDS])


def tokens(name: str) -> list[str]:
    return list(normalize(name).tokens)


@lru_cache(maxsize=131072)
def phonetic(token: str) -> str:
    """A token's phonetic key (metaphone; digits stand for themselves)."""
    if token.isdigit():
        return token
    return jellyfish.metaphone(token) or token
