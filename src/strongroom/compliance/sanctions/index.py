"""The candidate index: a screening scores a few names, not every loaded one.

Blocking keys per token of every normalised name (normalize.py): the token itself, its
metaphone key (spelling variants, vowel swaps, doubled letters) and, for tokens of four letters
or more, its letters sorted (transposed letters); and the whole name without its spaces (a
moved token boundary). A query's tokens give keys; each name sharing
keys gains their inverse document frequency (log N / df, N names); the CANDIDATES best names
(after the kind filter) are scored by match.py and the best name per entry stands for it. Keys
held by more than MAX_POSTINGS names (particles like "al", "bin") are skipped unless a query
has no other key.

What a screening costs (the throughput row of `strongroom bench screening`): the keys' postings
and weights, every entry's dates of birth (match.ListedDates) and every name's normal form with
the fields match.py reads (normalize.NormalName) are built once here; a screening scores its
candidates and makes the Match objects, with their explanations, only for the matches it
returns (`limit`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import itemgetter

import numpy as np

from strongroom.compliance.sanctions.match import (
    Alignment,
    ListedDates,
    QueryEvidence,
    best_name,
    evidence_score,
    explained,
    kind_allows,
)
from strongroom.compliance.sanctions.model import Entry, EntryKind, Match, Query
from strongroom.compliance.sanctions.normalize import NormalName, normalize, phonetic

CANDIDATES = 24
MAX_POSTINGS = 4000


def token_keys(token: str) -> Iterable[str]:
    return _token_keys(token)


@lru_cache(maxsize=65536)
def _token_keys(token: str) -> tuple[str, ...]:
    keys: tuple[str, ...] = ("t" + token, "p" + phonetic(token))
    if len(token) >= 4:
        keys += ("s" + "".join(sorted(token)),)
    return keys


def name_keys(name: NormalName) -> list[str]:
    """For the name and each of its readings (CamelCase split, digits folded, ...): every
    token's keys, and the whole name without spaces when it has one to four tokens (a token
    boundary moved: "Lauren Tnkunda" / "Laurent Nkunda"; no space at all: "viktorbout" /
    "Viktor Bout"), and its first and last tokens joined when it has three or more
    ("viktorbout" / "Viktor Anatolijevitch BOUT")."""
    keys: list[str] = []
    for reading in name.readings():
        tokens = reading.tokens
        for token in tokens:
            keys += _token_keys(token)
        if len(tokens) <= 4:
            keys.append("j" + reading.joined)
        if len(tokens) >= 3:
            keys.append("j" + tokens[0] + tokens[-1])
    return keys


class IndexedScreener:
    def __init__(self, entries: Sequence[Entry]) -> None:
        self._entries = list(entries)
        self._dates = [ListedDates.of(entry.dates_of_birth) for entry in self._entries]
        self._order = [(entry.source.value, entry.entry_id) for entry in self._entries]
        self._names: list[tuple[int, str, NormalName]] = []
        # the same, split: each name's entry, and the name as listed with its normal form
        self._entry_of: list[int] = []
        self._named: list[tuple[str, NormalName]] = []
        postings: dict[str, list[int]] = defaultdict(list)
        for e, entry in enumerate(self._entries):
            for raw in entry.names:
                normal = normalize(raw)
                if not normal.tokens:
                    continue
                n = len(self._names)
                self._names.append((e, raw, normal))
                self._entry_of.append(e)
                self._named.append((raw, normal))
                keys = set(name_keys(normal))
                for key in keys:
                    postings[key].append(n)
        total = max(1, len(self._names))
        # Per key: the names holding it, and its weight repeated once per name (what a
        # query's scores sum, without building the repeat for every query).
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {
            k: (np.asarray(v, dtype=np.int32), np.full(len(v), math.log(total / len(v)) + 0.1))
            for k, v in postings.items()
        }
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
        found = [p for p in map(self._postings.get, dict.fromkeys(name_keys(q))) if p is not None]
        if not found:
            return []
        usable = [p for p in found if len(p[0]) <= MAX_POSTINGS]
        if not usable:
            usable = [min(found, key=lambda p: len(p[0]))]
        ids = np.concatenate([p[0] for p in usable])
        weights = np.concatenate([p[1] for p in usable])
        # Every name's score summed in the order of `ids` (bincount), then read back per id;
        # the kind filter zeroes the names it keeps out.
        ranked = np.bincount(ids, weights=weights, minlength=len(self._names))[ids]
        if kind is not None:
            ranked *= self._allowed[kind][ids]
        negative = -ranked
        if len(ids) > 4 * CANDIDATES:
            top = np.argpartition(negative, 4 * CANDIDATES)[: 4 * CANDIDATES]
            ids, negative = ids[top], negative[top]
        order = np.argsort(negative, kind="stable")
        chosen: list[int] = []
        seen: set[int] = set()
        for i, score in zip(ids[order].tolist(), negative[order].tolist(), strict=True):
            if i not in seen and score < 0:
                seen.add(i)
                chosen.append(i)
                if len(chosen) == CANDIDATES:
                    break
        return chosen

    def screen(self, query: Query, *, limit: int = 10, min_score: float = 0.0) -> list[Match]:
        q = normalize(query.name)
        if not q.tokens:
            return []
        by_entry: dict[int, list[tuple[str, NormalName]]] = {}
        entry_of, named = self._entry_of, self._named
        for n in self.candidates(q, query.kind):
            group = by_entry.get(entry_of[n])
            if group is None:
                by_entry[entry_of[n]] = [named[n]]
            else:
                group.append(named[n])
        evidence = QueryEvidence(query.date_of_birth, query.country)
        # Scored first, explained after: only the matches returned get their Match objects.
        # Rows: (-score, the entry's (source, id): the order of the matches, then the rest).
        scored: list[tuple[float, tuple[str, str], int, Alignment, str, str | None, str | None]]
        scored = []
        for e, names in by_entry.items():
            alignment, raw = best_name(q, names)
            dob = evidence.date_of_birth(self._dates[e])
            country = evidence.country(self._entries[e])
            score = evidence_score(alignment[0], dob, country)
            if score >= min_score:
                scored.append((-score, self._order[e], e, alignment, raw, dob, country))
        scored.sort(key=itemgetter(0, 1))  # stable: equal keys keep the candidates' order
        return [
            explained(self._entries[e], -negative, alignment, raw, dob, country)
            for negative, _, e, alignment, raw, dob, country in scored[:limit]
        ]
