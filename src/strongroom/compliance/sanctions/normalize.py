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

Folds against evasion (docs/screening.md, "Evasion"):

- confusables (`unconfuse`): in a word that mixes Latin letters with Cyrillic or Greek ones,
  the Cyrillic/Greek lookalikes become the Latin letters they imitate ("Vіktоr Воut" with
  Cyrillic і, о, В -> "Viktor Bout"), before transliteration; a wholly Cyrillic or Greek word
  keeps its transliteration;
- letters spelled out one by one: a run of three or more single letters with the same single
  separator between them (one space or one dot) is one word ("V i k t o r" / "V.i.k.t.o.r" ->
  "viktor"; "J. R. Smith" stays);
- alternative readings (`NormalName.variants`, scored beside the name, the best reading wins):
  CamelCase split ("ViktorBout" -> "viktor bout"), digits and symbols standing for letters in
  words that also hold letters ("V1kt0r" -> "viktor", "b1n" -> "bin"), and the single letters
  not joined.
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

# Cyrillic and Greek letters that Unicode's confusables.txt maps to a Latin letter.
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x",
    "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ї": "I", "Ј": "J", "Ѕ": "S", "Һ": "H",
    "Ү": "Y", "Ԛ": "Q", "Ԝ": "W", "Ԁ": "D",
    # Greek
    "α": "a", "ο": "o", "ν": "v", "ι": "i", "κ": "k", "ρ": "p", "υ": "u", "γ": "y", "ϲ": "c",
    "ϳ": "j", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J",
}  # fmt: skip
_WORD = re.compile(r"\w+")
# digits and symbols standing for letters, inside a word that also holds letters
LEET = str.maketrans("0134578@$", "oieastbas")
_LEET_WORD = re.compile(r"[a-z0-9@$]+")
_LEET_CHARS = frozenset("0134578@$")
# three or more single letters, one and the same separator (a space or a dot) between them
_SINGLES = re.compile(r"(?<![a-z0-9])[a-z](?:(?P<sep>[ .])[a-z])(?:(?P=sep)[a-z])+(?![a-z0-9])")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass(frozen=True, slots=True)
class NormalName:
    text: str  # the tokens joined by one space
    tokens: tuple[str, ...]
    stop: tuple[str, ...]  # the stop words set aside
    keys: tuple[str, ...] = ()  # each token's phonetic key
    joined: str = ""  # the tokens without spaces, in order
    sorted_joined: str = ""  # the tokens sorted, without spaces
    variants: tuple[NormalName, ...] = ()  # other readings (CamelCase split, digits folded, ...)
    # Derived once here, so that scoring a name against many queries does not derive them again
    # (match.py): each token's length, each token's phonetic key where the token has three
    # letters or more (None where it is shorter: such keys do not count), the set of the keys.
    size: tuple[int, int] = (0, 0)  # (tokens, len(text)): the smaller is the shorter name
    lengths: tuple[int, ...] = ()
    long_keys: tuple[str | None, ...] = ()
    key_set: frozenset[str] = frozenset()

    def readings(self) -> tuple[NormalName, ...]:
        """The name and its other readings."""
        return (self, *self.variants)


def _normal(
    words: Sequence[str], stop: Sequence[str], variants: tuple[NormalName, ...] = ()
) -> NormalName:
    tokens = tuple(words)
    keys = tuple(map(phonetic, tokens))
    text = " ".join(tokens)
    return NormalName(
        text=text,
        tokens=tokens,
        stop=tuple(stop),
        keys=keys,
        joined="".join(tokens),
        sorted_joined="".join(sorted(tokens)),
        variants=variants,
        size=(len(tokens), len(text)),
        lengths=tuple(map(len, tokens)),
        long_keys=tuple([k if len(t) > 2 else None for t, k in zip(tokens, keys, strict=True)]),
        key_set=frozenset(keys),
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


def _script(char: str) -> str:
    """ "latin", "other" (Cyrillic or Greek) or "" for a word character."""
    if char.isascii():
        return "latin" if char.isalpha() else ""
    name = unicodedata.name(char, "")
    if name.startswith("LATIN"):
        return "latin"
    if name.startswith(("CYRILLIC", "GREEK")):
        return "other"
    return ""


def _unconfuse_word(match: re.Match[str]) -> str:
    word = match.group()
    scripts = {_script(c) for c in word}
    if "latin" in scripts and "other" in scripts:
        return "".join(CONFUSABLES.get(c, c) for c in word)
    return word


def unconfuse(text: str) -> str:
    """In each word mixing Latin with Cyrillic or Greek letters, the Cyrillic and Greek
    lookalikes become the Latin letters they imitate ("Vіktоr" with Cyrillic і, о -> "Viktor")."""
    if text.isascii():
        return text
    return _WORD.sub(_unconfuse_word, text)


def join_singles(text: str) -> str:
    """Runs of three or more single letters with one separator between them become one word
    ("v i k t o r" -> "viktor", "v.i.k.t.o.r" -> "viktor"; "j. r. smith" stays)."""
    return _SINGLES.sub(lambda m: m.group().replace(m.group("sep"), ""), text)


def _fold_word(match: re.Match[str]) -> str:
    word = match.group()
    if any(c.isalpha() for c in word) and not _LEET_CHARS.isdisjoint(word):
        return word.translate(LEET)
    return word


def fold_digits(text: str) -> str:
    """Digits and symbols standing for letters in words that also hold letters ("v1kt0r" ->
    "viktor", "l4din" -> "ladin"); words of digits only stay."""
    if _LEET_CHARS.isdisjoint(text):  # no word to fold (most names): skip the word by word
        return text
    return _LEET_WORD.sub(_fold_word, text)


def _kept(words: list[str]) -> tuple[list[str], list[str]]:
    kept = [w for w in words if w not in STOP_WORDS]
    if not kept:
        return words, []
    return kept, [w for w in words if w in STOP_WORDS]


@lru_cache(maxsize=65536)
def normalize(name: str) -> NormalName:
    text = anyascii(unconfuse(reorder(unicodedata.normalize("NFKC", name))))
    text = _APOSTROPHES.sub("", text)
    lower = text.lower()
    primary = join_singles(lower)
    readings = [primary]
    if _CAMEL.search(text):
        readings.append(join_singles(_CAMEL.sub(" ", text).lower()))
    readings += [fold_digits(r) for r in list(readings)]
    if primary != lower:
        readings.append(lower)
    seen: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    for reading in readings:
        kept, stop = _kept(_SPLIT.sub(" ", reading).split())
        seen.setdefault(tuple(kept), (kept, stop))
    (kept, stop), *others = seen.values()
    variants = tuple(_normal(k, s) for k, s in others if k)
    return _normal(kept, stop, variants)


def tokens(name: str) -> list[str]:
    return list(normalize(name).tokens)


@lru_cache(maxsize=131072)
def phonetic(token: str) -> str:
    """A token's phonetic key (metaphone; digits stand for themselves)."""
    if token.isdigit():
        return token
    return jellyfish.metaphone(token) or token
