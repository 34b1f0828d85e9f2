"""Watchman-compatible scoring: a reimplementation (from its documented behaviour and test
table, not its code) of moov-io/watchman's `BestPairsJaroWinkler`, so scores can be compared
with a Watchman deployment's. Not the default scorer (match.py is); `strongroom bench
screening` checks it against Watchman's own expected scores (row `watchman_jw`).

The behaviour, on UTF-8 bytes as Watchman's Go strings are:
- Jaro-Winkler with a boost threshold of 0.7 and a prefix of at most 4 (Winkler's 0.1 scale),
  the classic match window floor(max/2) - 1; identical tokens score 1;
- a token pair of very different lengths (shorter/longer < 0.9) is scaled by
  1 - (1 - ratio) * 0.3, and one whose first letters differ (case-insensitively) by 0.9;
- pairs are only scored when the tokens' first letters share a coarse phonetic class;
- best pairs taken greedily by score, each token used once; the mean of the pair scores
  weighted by both tokens' byte lengths, over the query's length plus the matched indexed
  tokens' length; then scaled by 1 - (1 - matched fraction of the indexed name) * 0.15.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

BOOST_THRESHOLD = 0.7
PREFIX_SIZE = 4
LENGTH_CUTOFF = 0.9
LENGTH_PENALTY = 0.3
FIRST_LETTER_PENALTY = 0.9
UNMATCHED_INDEX_PENALTY = 0.15

_CLASSES = {
    **dict.fromkeys("AEIOUY", "A"),
    **dict.fromkeys("BFPV", "B"),
    **dict.fromkeys("CGJKQSXZ", "C"),
    **dict.fromkeys("DT", "D"),
    "L": "L",
    **dict.fromkeys("MN", "M"),
    "R": "R",
    **dict.fromkeys("HW", "H"),
}


def _phonetic_class(token: str) -> str:
    first = token[0].upper()
    return _CLASSES.get(first, first)


def jaro(a: bytes, b: bytes) -> float:
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    window = max(len(a), len(b)) // 2 - 1
    used_b = [False] * len(b)
    matched_a: list[int] = []
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(len(b) - 1, i + window) + 1):
            if not used_b[j] and b[j] == ch:
                used_b[j] = True
                matched_a.append(ch)
                break
    matches = len(matched_a)
    if matches == 0:
        return 0.0
    matched_b = [b[j] for j in range(len(b)) if used_b[j]]
    unaligned = sum(1 for x, y in zip(matched_a, matched_b, strict=True) if x != y)
    transpositions = unaligned // 2
    return (matches / len(a) + matches / len(b) + (matches - transpositions) / matches) / 3.0


def jaro_winkler(a: bytes, b: bytes) -> float:
    score = jaro(a, b)
    if score <= BOOST_THRESHOLD:
        return score
    prefix = 0
    for x, y in zip(a[: min(PREFIX_SIZE, len(a), len(b))], b, strict=False):
        if x != y:
            break
        prefix += 1
    return score + 0.1 * prefix * (1.0 - score)


def token_score(indexed: str, search: str) -> float:
    """Watchman's customised Jaro-Winkler of one token pair."""
    a, b = indexed.encode(), search.encode()
    score = jaro_winkler(a, b)
    ratio = min(len(a), len(b)) / max(len(a), len(b))
    if ratio < LENGTH_CUTOFF:
        score *= 1.0 - (1.0 - ratio) * LENGTH_PENALTY
    if _phonetic_class(indexed) != _phonetic_class(search):
        score *= FIRST_LETTER_PENALTY
    return score


def best_pairs_jaro_winkler(search: Sequence[str], indexed: Sequence[str]) -> float:
    """Watchman's BestPairsJaroWinkler(searchTokens, indexedTokens)."""
    search = [t for t in search if t]
    indexed = [t for t in indexed if t]
    if not search or not indexed:
        return 0.0
    scores = sorted(
        (
            (token_score(t, s), si, ii)
            for si, s in enumerate(search)
            for ii, t in enumerate(indexed)
            if _phonetic_class(t) == _phonetic_class(s)
        ),
        key=lambda x: -x[0],
    )
    lengths_s = [len(s.encode()) for s in search]
    lengths_i = [len(t.encode()) for t in indexed]
    used_s: set[int] = set()
    used_i: set[int] = set()
    total = 0.0
    matched_index_length = 0
    for score, si, ii in scores:
        if si in used_s or ii in used_i:
            continue
        used_s.add(si)
        used_i.add(ii)
        total += score * (lengths_s[si] + lengths_i[ii])
        matched_index_length += lengths_i[ii]
    denominator = sum(lengths_s) + matched_index_length
    if denominator == 0:
        return 0.0
    average = total / denominator
    fraction = matched_index_length / sum(lengths_i)
    return average * (1.0 - (1.0 - fraction) * UNMATCHED_INDEX_PENALTY)


_PUNCT = re.compile(r"[^\w\s]|_")


def lower_remove_punct(text: str) -> str:
    """Watchman's LowerAndRemovePunctuation: lower case, punctuation out, diacritics off."""
    text = _PUNCT.sub(" ", text.lower())
    text = unicodedata.normalize("NFD", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return " ".join(unicodedata.normalize("NFC", text).split())


def transform(text: str, how: str) -> str:
    if how == "lower":
        return text.lower()
    if how == "lower_remove_punct":
        return lower_remove_punct(text)
    return text


def score(search: str, indexed: str) -> float:
    """Watchman's score of a search string against an indexed name (whitespace-split)."""
    return best_pairs_jaro_winkler(search.split(), indexed.split())
