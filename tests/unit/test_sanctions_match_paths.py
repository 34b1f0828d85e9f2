"""The screening's fast paths give what their plain definitions give: the fields a NormalName
derives once, the alignment over them, the dates of birth read once per entry and per query,
and a screening that explains only the matches it returns."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.compliance.sanctions import match
from strongroom.compliance.sanctions.model import Entry, EntryKind, ListSource, Query
from strongroom.compliance.sanctions.normalize import NormalName, normalize, phonetic

# Short words from few letters, so that tokens repeat, share phonetic keys and tie.
words = st.text(alphabet="abdhikmnorsu", min_size=1, max_size=7)
names = st.lists(words, min_size=1, max_size=5).map(" ".join)


def _plain_align(a: list[str], b: list[str]) -> list[tuple[int, int, float]]:
    """Best pairs as match.py's module docstring defines them: every pair's similarity
    (token_similarity), pairs taken from the most similar, each token once."""
    scored = sorted(
        ((match.token_similarity(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)),
        reverse=True,
    )
    pairs: list[tuple[int, int, float]] = []
    for s, i, j in scored:
        if all(i != p[0] and j != p[1] for p in pairs):
            pairs.append((i, j, s))
    return pairs


def test_normal_names_derive_their_fields_from_their_tokens() -> None:
    for raw in ["Viktor Bout", "Al-Qa'ida", "V1kt0r", "ViktorBout", "Co. Ltd.", "Xi", "J. R. Ng"]:
        for reading in normalize(raw).readings():
            assert reading.lengths == tuple(len(t) for t in reading.tokens)
            assert reading.keys == tuple(phonetic(t) for t in reading.tokens)
            assert reading.long_keys == tuple(
                k if len(t) > 2 else None for t, k in zip(reading.tokens, reading.keys, strict=True)
            )
            assert reading.key_set == frozenset(reading.keys)
            assert reading.size == (len(reading.tokens), len(reading.text))


@settings(max_examples=300, deadline=None)
@given(st.lists(words, min_size=1, max_size=5), st.lists(words, min_size=1, max_size=5))
def test_align_is_the_greedy_best_pairs(a: list[str], b: list[str]) -> None:
    assert match.align(a, b) == _plain_align(a, b)


@settings(max_examples=300, deadline=None)
@given(names, names)
def test_features_align_the_shorter_name_with_the_longer(query: str, name: str) -> None:
    q, n = normalize(query), normalize(name)
    _, tokens = match.features(q, n)
    shorter, longer = (
        (n, q) if (len(q.tokens), len(q.text)) > (len(n.tokens), len(n.text)) else (q, n)
    )
    pairs = _plain_align(list(shorter.tokens), list(longer.tokens))
    assert sorted((t.query_token, t.entry_token, t.score) for t in tokens) == sorted(
        (q.tokens[i], n.tokens[j], s) if shorter is q else (q.tokens[j], n.tokens[i], s)
        for i, j, s in pairs
    )
    assert len(tokens) == min(len(q.tokens), len(n.tokens))


def _plain_dob(query: str | None, dates: tuple[str, ...]) -> str | None:
    if not query or not dates:
        return None
    if any(match.dob_agrees(query, d) for d in dates):
        return "match"
    year = int(query[:4]) if len(query[:4]) == 4 and query[:4].isdigit() else None
    years = [int(d[:4]) for d in dates if len(d[:4]) == 4 and d[:4].isdigit()]
    if year is not None and any(abs(year - y) <= match.NEAR_YEARS for y in years):
        return "near"
    return "mismatch"


parts = st.sampled_from(["1970", "1971", "1972", "01", "02", "12", "", "x"])
dates = st.lists(parts, min_size=1, max_size=3).map("-".join)


@settings(max_examples=500, deadline=None)
@given(st.none() | dates, st.lists(dates, max_size=3).map(tuple))
def test_dates_of_birth_read_once_give_the_same_evidence(
    query: str | None, listed: tuple[str, ...]
) -> None:
    entry = Entry(ListSource.UN, "1", EntryKind.PERSON, ("A B",), dates_of_birth=listed)
    expected = _plain_dob(query, listed)
    assert match.dob_evidence(query, entry) == expected
    evidence = match.QueryEvidence(query, None)
    assert evidence.date_of_birth(match.ListedDates.of(listed)) == expected


ENTRIES = [
    Entry(ListSource.UN, "1", EntryKind.PERSON, ("BADEGE, Eric", "Eric Badeghe"), ("1971",)),
    Entry(ListSource.UN, "2", EntryKind.PERSON, ("Eric Badege",), ("1971-05-02",), ("CD",)),
    Entry(ListSource.OFAC_SDN, "2", EntryKind.UNKNOWN, ("ERIC BADEGE",)),
    Entry(ListSource.UN, "3", EntryKind.ORGANIZATION, ("Badege Eric Trading",)),
    Entry(ListSource.UN, "4", EntryKind.PERSON, ("Erik Badeje", "Eric B"), (), ("RW",)),
    Entry(ListSource.UN, "5", EntryKind.PERSON, ("Viktor Bout",), ("1967-01-13",)),
    Entry(ListSource.UN, "6", EntryKind.PERSON, ("ViktorBout",)),
]


def test_a_screening_scores_and_explains_every_candidate_entry_as_score_entry_does() -> None:
    screener = match.build(ENTRIES)
    queries = [
        Query("Eric Badege"),
        Query("Badege", kind=EntryKind.PERSON, date_of_birth="1971-05", country="Congo"),
        Query("Erik Badeje", date_of_birth="1972", country="RW"),
        Query("viktorbout", kind=EntryKind.PERSON),
        Query("V1kt0r B0ut", date_of_birth="1967"),
    ]
    for query in queries:
        q = normalize(query.name)
        by_entry: dict[int, list[tuple[str, NormalName]]] = defaultdict(list)
        for n in screener.candidates(q, query.kind):
            e, raw, normal = screener._names[n]
            by_entry[e].append((raw, normal))
        plain = [match.score_entry(query, q, ENTRIES[e], ns) for e, ns in by_entry.items()]
        plain.sort(key=lambda m: (-m.score, m.entry.source.value, m.entry.entry_id))
        for limit in (1, 3, 10):
            got = screener.screen(query, limit=limit)
            assert [(m.entry, m.score, m.explanation) for m in got] == [
                (m.entry, m.score, m.explanation) for m in plain[:limit]
            ]
        cut = plain[1].score
        assert screener.screen(query, min_score=cut) == [m for m in plain if m.score >= cut]
