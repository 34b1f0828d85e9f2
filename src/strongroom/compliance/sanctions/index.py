"""The candidate index: a screening scores a few names, not every loaded one.

Blocking keys per token of every normalised name (normalize.py): the token itself, its
metaphone key (spelling variants, vowel swaps, doubled letters) and, for tokens of four letters
or more, its letters sorted (transposed letters); and the whole name without its spaces (a
moved token boundary). A query's tokens give keys; each name sharing
keys gains their inverse document frequency (log N / df, N names); the CANDIDATES best names
(after the kind filter) are scored by match.py and the best name per entry stands for it. Keys
held by more than MAX_POSTINGS names (particles like "al", "bin") are skipped unless a query
has no other key.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from strongroom.compliance.sanctions.match import kind_allows, score_entry
from strongroom.compliance.sanctions.model import Entry, EntryKind, Match, Query
from strongroom.compliance.sanctions.normalize import NormalName, normalize, phonetic

CANDIDATES = 24
MAX_POSTINGS = 4000


def token_keys(token: str) -> Iterable[str]:
    yield "t" + token
    yield "p" + phonetic(token)
    if len(token) >= 4:
        yield "s" + "".join(sorted(token))


def name_keys(name: NormalName) -> Iterable[str]:
    """For the name and each of its readings (CamelCase split, digits folded, ...): every
    token's keys, and the whole name without spaces when it has one to four tokens (a token
    boundary moved: "Lauren Tnkunda" / "Laurent Nkunda"; no space at all: "viktorbout" /
    "Viktor Bout"), and its first and last tokens joined when it has three or more
    ("viktorbout" / "Viktor Anatolijevitch BOUT")."""
    for reading in name.readings():
        for token in reading.tokens:
            yield from token_keys(token)
        if len(reading.tokens) <= 4:
            yield "j" + reading.joined
        if len(reading.tokens) >= 3:
            yield "j" + reading.tokens[0] + reading.tokens[-1]


class IndexedScreener:
    def __init__(self, entries: Sequence[Entry]) -> None:
        self._entries = list(entries)
        self._names: list[tuple[int, str, NormalName]] = []
        postings: dict[str, list[int]] = defaultdict(list)
        for e, entry in enumerate(self._entries):
            for raw in entry.names:
                normal = normalize(raw)
                if not normal.tokens:
                    continue
                n = len(self._names)
                self._names.append((e, raw, normal))
                keys = set(name_keys(normal))
                for key in keys:
                    postings[key].append(n)
        total = max(1, len(self._names))
        self._postings = {k: np.asarray(v, dtype=np.int32) for k, v in postings.items()}
        self._weights = {k: math.log(total / len(v)) + 0.1 for k, v in postings.items()}
        kinds = [self._entries[e].kind for e, _, _ in self._names]
        self._allowed: dict[EntryKind | None, np.ndarray] = {None: np.ones(total)}
        for kind in EntryKind:
            self._allowed[kind] = np.asarray([float(kind_allows(kind, k)) for k in kinds] or [1.0])

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def name_count(self) -> int:
        return len(self._names)

    def candidates(self, q: NormalName, kind: EntryKind | None) -> list[int]:
        """The indices of the best CANDIDATES names for the query's tokens."""
        found = [k for k in dict.fromkeys(name_keys(q)) if k in self._postings]
        if not found:
            return []
        usable = [k for k in found if len(self._postings[k]) <= MAX_POSTINGS]
        if not usable:
            usable = [min(found, key=lambda k: len(self._postings[k]))]
        ids = np.concatenate([self._postings[k] for k in usable])
        weights = np.concatenate(
            [np.full(len(self._postings[k]), self._weights[k]) for k in usable]
        )
        scores = np.bincount(ids, weights=weights, minlength=len(self._names))
        if kind is not None:
            scores *= self._allowed[kind]
        ranked = scores[ids]
        if len(ids) > 4 * CANDIDATES:
            top = np.argpartition(-ranked, 4 * CANDIDATES)[: 4 * CANDIDATES]
            ids, ranked = ids[top], ranked[top]
        chosen: list[int] = []
        seen: set[int] = set()
        for i in ids[np.argsort(-ranked, kind="stable")].tolist():
            if i not in seen and scores[i] > 0:
                seen.add(i)
                chosen.append(i)
                if len(chosen) == CANDIDATES:
                    break
        return chosen

    def screen(self, query: Query, *, limit: int = 10, min_score: float = 0.0) -> list[Match]:
        q = normalize(query.name)
        if not q.tokens:
            return []
        by_entry: dict[int, list[tuple[str, NormalName]]] = defaultdict(list)
        for n in self.candidates(q, query.kind):
            e, raw, normal = self._names[n]
            by_entry[e].append((raw, normal))
        matches = [score_entry(query, q, self._entries[e], names) for e, names in by_entry.items()]
        matches = [m for m in matches if m.score >= min_score]
        matches.sort(key=lambda m: (-m.score, m.entry.source.value, m.entry.entry_id))
        return matches[:limit]
