"""Name matching and scoring, pure.

The score of a query against one name of an entry (`name_score`):

1. both names normalised (normalize.normalize: transliterated, lower case, punctuation,
   honorifics and legal forms aside, "Last, First" reordered);
2. the name with fewer tokens (A) is aligned with the other (B) by best pairs: every token
   pair's similarity (Jaro-Winkler; at least 0.9 when their metaphone keys agree), pairs taken
   greedily from the most similar, each token used once;
3. eight features of the alignment (FEATURES): the length-weighted mean and the minimum of A's
   pair scores, how many of A's tokens found no good partner (< 0.88), the share of B's letters
   left unmatched, the similarity of the names with their spaces removed (word joins/splits),
   rapidfuzz's token-set ratio, exact equality, and the share of A's
   phonetic keys found in B;
   Both names' other readings (normalize.NormalName.variants: CamelCase split, digits for
   letters folded, ...) and, for a one-word name, its cut along the other name's words
   (`resegmented`) are aligned too: the best reading's score stands;
4. a logistic model of those features (COEFFICIENTS) gives the probability that the two names
   are the same name: the calibrated `name_score` in [0, 1]. It was fitted on the even rows of
   nomenklatura's labelled name pairs (`strongroom bench screening` reports its F1 on the odd
   rows, never on the rows it was fitted on).

The match score adds the evidence (`evidence_score`) in log-odds: a date of birth that agrees
with one of the entry's (same year, and same month and day where both give them) adds
DOB_MATCH, one that disagrees adds DOB_MISMATCH; the same for the country (nationality,
citizenship or address) with COUNTRY_MATCH / COUNTRY_MISMATCH. Evidence an entry or a query
does not give changes nothing. The explanation says which tokens aligned and what the
evidence did.

`build(entries)` gives the indexed screener (index.py); `LinearScreener` is the baseline linear
scan over every name (the throughput benchmark's reference).
"""

from __future__ import annotations

import itertools
import math
import operator
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from anyascii import anyascii
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from strongroom.compliance.sanctions.countries import alpha2
from strongroom.compliance.sanctions.model import (
    Entry,
    EntryKind,
    Explanation,
    Match,
    Query,
    TokenMatch,
)
from strongroom.compliance.sanctions.normalize import NormalName, normalize, phonetic

if TYPE_CHECKING:
    from strongroom.compliance.sanctions.index import IndexedScreener

FEATURES = (
    "mean",
    "min",
    "unmatched_tokens",
    "unmatched_share",
    "compact",
    "token_set",
    "exact",
    "phonetic",
)
# Logistic model of FEATURES (intercept first), fitted on nomenklatura's even rows (scikit-learn
# LogisticRegression, C=3: the smallest C with the best 5-fold cross-validated F1 on those rows).
COEFFICIENTS: tuple[float, ...] = (
    -4.6231,
    2.8686,
    1.2726,
    -1.4115,
    0.1747,
    1.4198,
    2.0651,
    1.3869,
    -1.6104,
)
# The name score from which two names are called the same (best cross-validated F1, even rows).
NAME_THRESHOLD = 0.42

GOOD_TOKEN = 0.88  # a token pair below this is not a partner
PHONETIC_FLOOR = 0.9  # tokens whose metaphone keys agree score at least this
JOINED_MIN_LENGTH = 6  # a one-word name is read as another name's words (`resegmented`) from
JOINED_MIN_SIMILARITY = 0.9  # this many letters, at this similarity with it joined
JOINED_LENGTH_RATIO = 0.8  # and lengths within this ratio

# Evidence weights (log-odds) and the screening threshold: chosen on the even rows of yente's
# screening benchmark (`strongroom bench screening`, row yente; a grid search for the best
# recall at a false-positive rate <= 0.0008 on 20,000 even-and-odd negatives' even half), and
# reported on its odd rows. The threshold found there (0.697) is rounded up.
DOB_MATCH = 1.0
DOB_NEAR = 0.0
DOB_MISMATCH = -1.0
COUNTRY_MATCH = 0.0
COUNTRY_MISMATCH = -0.5
SCREEN_THRESHOLD = 0.70
NEAR_YEARS = 1  # a date of birth within this many years (but not agreeing) is "near"


# --- token alignment -------------------------------------------------------------------------

_jw = JaroWinkler.similarity
_ratio = fuzz.ratio
_token_set_ratio = fuzz.token_set_ratio

# One pair of tokens aligned: (index in the shorter name A, index in the other name B, similarity).
Pair = tuple[int, int, float]
Row = tuple[float, float, float, float, float, float, float, float]  # FEATURES, in order
# The best reading of a query against a name (`best_alignment`): the name score, the readings of
# the query and of the name that gave it, their aligned pairs, and whether the name was the
# shorter side (A) of the alignment. TokenMatch objects are made from it only for the names a
# screening returns (`aligned_tokens`), not for every candidate scored.
Alignment = tuple[float, NormalName, NormalName, list[Pair], bool]


def token_similarity(a: str, b: str) -> float:
    score = _jw(a, b)
    if score < PHONETIC_FLOOR and len(a) > 2 and len(b) > 2 and phonetic(a) == phonetic(b):
        return PHONETIC_FLOOR
    return score


def align(
    a: Sequence[str], b: Sequence[str], keys_a: Sequence[str] = (), keys_b: Sequence[str] = ()
) -> list[Pair]:
    """Best pairs: (index in a, index in b, similarity), greedily from the most similar, each
    token used at most once. Tokens of three letters or more whose phonetic keys (`keys_a`,
    `keys_b`, computed when not given) agree score at least PHONETIC_FLOOR."""
    keys_a = keys_a or [phonetic(x) for x in a]
    keys_b = keys_b or [phonetic(y) for y in b]
    scored: list[tuple[float, int, int]] = []
    for i, x in enumerate(a):
        kx = keys_a[i] if len(x) > 2 else None
        for j, y in enumerate(b):
            s = _jw(x, y)
            if s < PHONETIC_FLOOR and kx == keys_b[j] and len(y) > 2:
                s = PHONETIC_FLOOR
            scored.append((s, i, j))
    return _greedy(scored, min(len(a), len(b)))


def _align(a: NormalName, b: NormalName) -> list[Pair]:
    """`align` of two normalised names' tokens, over the keys NormalName holds (`long_keys`:
    None for tokens shorter than three letters, whose keys never count). The hot loop of
    screening: every candidate name's every token pair passes here."""
    jw = _jw
    scored = [(jw(x, y), i, j) for i, x in enumerate(a.tokens) for j, y in enumerate(b.tokens)]
    if not a.key_set.isdisjoint(b.key_set):  # else no pair of tokens shares a key
        floor = PHONETIC_FLOOR
        keys_a, keys_b = a.long_keys, b.long_keys
        for n, (s, i, j) in enumerate(scored):
            if s < floor and keys_a[i] is not None and keys_a[i] == keys_b[j]:
                scored[n] = (floor, i, j)
    return _greedy(scored, min(len(a.tokens), len(b.tokens)))


def _greedy(scored: list[tuple[float, int, int]], limit: int) -> list[Pair]:
    """The best pairs of `scored` (similarity, i, j), greedily from the most similar (ties: the
    larger i, then the larger j), each i and each j used once, at most `limit`."""
    if limit == 1:  # the first of the greedy order, without sorting the rest
        s, i, j = max(scored)
        return [(i, j, s)]
    scored.sort(reverse=True)
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs: list[Pair] = []
    for s, i, j in scored:
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((i, j, s))
        if len(pairs) == limit:
            break
    return pairs


def _features(query: NormalName, name: NormalName) -> tuple[Row, list[Pair], bool]:
    """The FEATURES of a query against a name, the aligned pairs (index in the shorter side A,
    index in B, similarity) and whether the name is A (`swap`)."""
    swap = query.size > name.size
    a, b = (name, query) if swap else (query, name)
    pairs = _align(a, b)
    scores = [0.0] * len(a.tokens)
    matched_b = 0
    b_lengths = b.lengths
    for i, j, s in pairs:
        scores[i] = s
        if s >= GOOD_TOKEN:
            matched_b += b_lengths[j]
    compact = _ratio(a.sorted_joined, b.sorted_joined) / 100.0
    joined = _jw(query.joined, name.joined)
    keys_a = a.key_set
    row = (
        sum(map(operator.mul, scores, a.lengths)) / max(1, len(a.joined)),
        min(scores),
        float(len([s for s in scores if s < GOOD_TOKEN])),
        1.0 - matched_b / max(1, len(b.joined)),
        compact if compact >= joined else joined,  # max(), the first of equals
        _token_set_ratio(query.text, name.text) / 100.0,
        float(query.text == name.text),
        len(keys_a & b.key_set) / max(1, len(keys_a)),
    )
    return row, pairs, swap


def _token_matches(
    query: NormalName, name: NormalName, pairs: Sequence[Pair], swap: bool
) -> list[TokenMatch]:
    """The aligned tokens, query's side first, in the query's token order (the shorter side's
    when the name is the shorter)."""
    qt, nt = query.tokens, name.tokens
    if swap:
        return [TokenMatch(qt[j], nt[i], s) for i, j, s in sorted(pairs, key=lambda p: p[1])]
    return [TokenMatch(qt[i], nt[j], s) for i, j, s in sorted(pairs)]


def features(query: NormalName, name: NormalName) -> tuple[list[float], list[TokenMatch]]:
    """The FEATURES of a query against a name, and the aligned tokens (query's side first)."""
    row, pairs, swap = _features(query, name)
    return list(row), _token_matches(query, name, pairs, swap)


def _logit(row: Sequence[float]) -> float:
    assert len(row) == len(COEFFICIENTS) - 1 == len(FEATURES)
    weighted: float = sum(map(operator.mul, COEFFICIENTS[1:], row))  # w * x, summed in order
    return COEFFICIENTS[0] + weighted


def _sigmoid(z: float) -> float:
    if z < -30:
        return 0.0
    if z > 30:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


def segment(word: str, parts: Sequence[str]) -> NormalName:
    """`word` cut where `parts` joined would be cut, scaled to its length ("viktorbout" by
    ("viktor", "bout") -> "viktor bout")."""
    total = sum(len(p) for p in parts)
    cuts, at = [0], 0
    for part in parts[:-1]:
        at += len(part)
        cuts.append(round(at * len(word) / total))
    cuts.append(len(word))
    return normalize(" ".join(word[x:y] for x, y in itertools.pairwise(cuts) if y > x))


def resegmented(a: NormalName, b: NormalName) -> list[NormalName]:
    """A one-word name read as the words of a longer name (`b`) it matches without spaces:
    whole ("acmetrading" / "Acme Trading") or as the first and last tokens ("viktorbout" /
    "Viktor Anatolijevitch BOUT"), when the word has JOINED_MIN_LENGTH letters or more, its
    length is within JOINED_LENGTH_RATIO of the joined form's and its Jaro-Winkler similarity
    with it is at least JOINED_MIN_SIMILARITY."""
    if len(a.tokens) != 1 or len(b.tokens) < 2 or len(a.joined) < JOINED_MIN_LENGTH:
        return []
    found = []
    for parts in dict.fromkeys((b.tokens, (b.tokens[0], b.tokens[-1]))):
        whole = "".join(parts)
        short, long_ = sorted((len(a.joined), len(whole)))
        if short >= JOINED_LENGTH_RATIO * long_ and _jw(a.joined, whole) >= JOINED_MIN_SIMILARITY:
            found.append(segment(a.joined, parts))
    return found


def best_alignment(query: NormalName, name: NormalName) -> Alignment:
    """`name_score`'s best reading, its TokenMatch objects not made yet (`aligned_tokens`)."""
    if not query.tokens or not name.tokens:
        return 0.0, query, name, [], False
    if not query.variants and not name.variants and len(query.tokens) > 1 and len(name.tokens) > 1:
        # one reading each, neither resegmented: the common case, without the loops below
        row, pairs, swap = _features(query, name)
        return _sigmoid(_logit(row)), query, name, pairs, swap
    best: Alignment = (-1.0, query, name, [], False)
    for qr in query.readings():
        for nr in name.readings():
            readings = [(qr, nr)]
            if len(qr.tokens) == 1 or len(nr.tokens) == 1:  # else neither is resegmented
                readings += [(x, nr) for x in resegmented(qr, nr)]
                readings += [(qr, y) for y in resegmented(nr, qr)]
            for x, y in readings:
                row, pairs, swap = _features(x, y)
                p = _sigmoid(_logit(row))
                if p > best[0]:
                    best = (p, x, y, pairs, swap)
    return best


def aligned_tokens(alignment: Alignment) -> list[TokenMatch]:
    """The aligned tokens of an alignment, the query's side first."""
    _, query, name, pairs, swap = alignment
    return _token_matches(query, name, pairs, swap)


def name_score(query: str | NormalName, name: str | NormalName) -> tuple[float, list[TokenMatch]]:
    """The calibrated probability that two names are the same name, with the aligned tokens:
    the best over both names' readings (normalize.NormalName.variants), a one-word name also
    read as the other name's words where it matches them without spaces (`resegmented`)."""
    q = normalize(query) if isinstance(query, str) else query
    n = normalize(name) if isinstance(name, str) else name
    best = best_alignment(q, n)
    return best[0], aligned_tokens(best)


# --- evidence --------------------------------------------------------------------------------


def dob_agrees(query: str, listed: str) -> bool:
    """Same year, and the same month and day wherever both dates give them."""
    q, e = query.split("-"), listed.split("-")
    return all(x == y for x, y in zip(q, e, strict=False))


def _year(date: str) -> int | None:
    head = date[:4]
    return int(head) if len(head) == 4 and head.isdigit() else None


def _prefixes(date: str) -> frozenset[str]:
    """The date and its shorter forms: "1970-03-01" -> {"1970", "1970-03", "1970-03-01"}."""
    parts = date.split("-")
    return frozenset("-".join(parts[:n]) for n in range(1, len(parts) + 1))


class ListedDates(NamedTuple):
    """An entry's dates of birth as `dob_evidence` reads them, derived once per entry (the
    index keeps one per entry, so NEAR_YEARS is read when the index is built).
    `dob_agrees(q, d)` holds exactly when q is one of d's `_prefixes` or d one of q's: the
    parts both dates give are the same."""

    dates: frozenset[str]
    prefixes: frozenset[str]  # every date's _prefixes
    near_years: frozenset[int]  # the years within NEAR_YEARS of a year the dates give

    @classmethod
    def of(cls, dates: Sequence[str]) -> ListedDates:
        years = [y for y in map(_year, dates) if y is not None]
        return cls(
            frozenset(dates),
            frozenset().union(*map(_prefixes, dates)),
            frozenset(y + d for y in years for d in range(-NEAR_YEARS, NEAR_YEARS + 1)),
        )


class QueryEvidence:
    """A query's date of birth and country, read once for all the entries one screening scores
    (`dob_evidence` and `country_evidence`, entry by entry)."""

    __slots__ = ("_country", "_dob", "_dob_prefixes", "_year")

    def __init__(self, date_of_birth: str | None, country: str | None) -> None:
        self._dob = date_of_birth or None
        self._dob_prefixes = _prefixes(date_of_birth) if date_of_birth else frozenset()
        self._year = _year(date_of_birth) if date_of_birth else None
        self._country = alpha2(country) if country else None

    def date_of_birth(self, listed: ListedDates) -> str | None:
        """dob_evidence against an entry's ListedDates."""
        if self._dob is None or not listed.dates:
            return None
        if self._dob in listed.prefixes or not listed.dates.isdisjoint(self._dob_prefixes):
            return "match"
        if self._year in listed.near_years:  # abs(year - y) <= NEAR_YEARS for one of them
            return "near"
        return "mismatch"

    def country(self, entry: Entry) -> str | None:
        code = self._country
        if code is None or not entry.countries:
            return None
        return "match" if code in entry.countries else "mismatch"


def dob_evidence(query: str | None, entry: Entry) -> str | None:
    """ "match" (agrees with one of the entry's dates), "near" (a year within NEAR_YEARS),
    "mismatch", or None (either side gives no date)."""
    return QueryEvidence(query, None).date_of_birth(ListedDates.of(entry.dates_of_birth))


def country_evidence(query: str | None, entry: Entry) -> str | None:
    return QueryEvidence(None, query).country(entry)


def evidence_score(name_p: float, dob: str | None, country: str | None) -> float:
    """The name's probability moved in log-odds by the evidence (none: unchanged)."""
    if dob is None and country is None:
        return name_p
    p = min(max(name_p, 1e-9), 1 - 1e-9)
    z = math.log(p / (1 - p))
    if dob is not None:
        z += {"match": DOB_MATCH, "near": DOB_NEAR}.get(dob, DOB_MISMATCH)
    if country is not None:
        z += COUNTRY_MATCH if country == "match" else COUNTRY_MISMATCH
    return _sigmoid(z)


def kind_allows(query: EntryKind | None, entry: EntryKind) -> bool:
    """A kind filter lets through its own kind and entries whose kind the list does not say."""
    return query is None or entry is EntryKind.UNKNOWN or entry is query


def best_name(q: NormalName, names: Sequence[tuple[str, NormalName]]) -> tuple[Alignment, str]:
    """An entry's best name (raw, normalised) for the query: its alignment, and the name as
    listed (the first of the best)."""
    if len(names) == 1:  # most entries have one candidate name (a score is never below 0)
        raw, normal = names[0]
        return best_alignment(q, normal), raw
    best: Alignment = (-1.0, q, q, [], False)
    best_raw = ""
    for raw, normal in names:
        alignment = best_alignment(q, normal)
        if alignment[0] > best[0]:
            best, best_raw = alignment, raw
    return best, best_raw


def explained(
    entry: Entry, score: float, alignment: Alignment, raw: str, dob: str | None, country: str | None
) -> Match:
    """The Match of an entry scored (`score_entry`), with its explanation."""
    tokens = tuple(aligned_tokens(alignment))
    return Match(entry, score, Explanation(raw, tokens, alignment[0], dob, country))


def score_entry(
    query: Query, q: NormalName, entry: Entry, names: Sequence[tuple[str, NormalName]]
) -> Match:
    """The entry's best name for the query, then the evidence."""
    alignment, raw = best_name(q, names)
    evidence = QueryEvidence(query.date_of_birth, query.country)
    dob = evidence.date_of_birth(ListedDates.of(entry.dates_of_birth))
    country = evidence.country(entry)
    return explained(
        entry, evidence_score(alignment[0], dob, country), alignment, raw, dob, country
    )


# --- the baseline (reference) ---------------------------------------------------------------

_PUNCT = re.compile(r"[^\w\s]+")


def tokens(name: str) -> list[str]:
    """The baseline's tokens: NFKC, ASCII, lower case, punctuation split."""
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
    """The baseline: best-pair Jaro-Winkler against every loaded name, no index, no evidence."""

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


def build(entries: Sequence[Entry]) -> IndexedScreener:
    """The screener over `entries`: the candidate index and the calibrated scorer."""
    from strongroom.compliance.sanctions.index import IndexedScreener

    return IndexedScreener(entries)
