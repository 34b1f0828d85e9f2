"""Name matching (baseline): normalise, then token-level Jaro-Winkler with best-pair alignment
over every loaded name. `build(entries)` gives a Screener (model.Screener). A linear scan: the
candidate index and the calibrated scorer replace its internals, never its interface."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from anyascii import anyascii
from rapidfuzz.distance import JaroWinkler

from strongroom.compliance.sanctions.model import Entry, Explanation, Match, Query, TokenMatch

_PUNCT = re.compile(r"[^\w\s]+")


def tokens(name: str) -> list[str]:
    text = anyascii(unicodedata.normalize("NFKC", name)).lower()
    return _PUNCT.sub(" ", text).split()


def best_pairs(query: Sequence[str], indexed: Sequence[str]) -> tuple[float, list[TokenMatch]]:
    """Each query token paired with its most similar unused token of the indexed name, pairs
    taken greedily by score; the score is the pairs' mean weighted by token length."""
    if not query or not indexed:
        return 0.0, []
    scored = sorted(
        (
            (JaroWinkler.similarity(q, t), i, j)
            for i, q in enumerate(query)
            for j, t in enumerate(indexed)
        ),
        reverse=True,
    )
    used_q: set[int] = set()
    used_t: set[int] = set()
    pairs: list[TokenMatch] = []
    total = weight = 0.0
    for score, i, j in scored:
        if i in used_q or j in used_t:
            continue
        used_q.add(i)
        used_t.add(j)
        pairs.append(TokenMatch(query[i], indexed[j], score))
        w = len(query[i])
        total += score * w
        weight += w
    weight += sum(len(q) for i, q in enumerate(query) if i not in used_q)
    return (total / weight if weight else 0.0), pairs


class LinearScreener:
    def __init__(self, entries: Sequence[Entry]) -> None:
        self._names = [(entry, name, tokens(name)) for entry in entries for name in entry.names]
        self._count = len(entries)

    def __len__(self) -> int:
        return self._count

    def screen(self, query: Query, *, limit: int = 10, min_score: float = 0.0) -> list[Match]:
        q = tokens(query.name)
        best: dict[tuple[str, str], Match] = {}
        for entry, name, toks in self._names:
            if query.kind is not None and entry.kind != query.kind:
                continue
            score, pairs = best_pairs(q, toks)
            key = (entry.source.value, entry.entry_id)
            if score >= min_score and (key not in best or best[key].score < score):
                best[key] = Match(entry, score, Explanation(name, tuple(pairs), score))
        return sorted(best.values(), key=lambda m: -m.score)[:limit]


def build(entries: Sequence[Entry]) -> LinearScreener:
    return LinearScreener(entries)
