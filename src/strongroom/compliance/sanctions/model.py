"""The screening domain's pure vocabulary, shared by the parsers, the matcher, the stored
snapshots and the API: a list entry, a query, a match with its explanation, and the matcher's
port. No database, no third-party import (an import-linter contract holds it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class EntryKind(StrEnum):
    PERSON = "person"
    ORGANIZATION = "organization"  # companies, groups, government bodies
    VESSEL = "vessel"
    AIRCRAFT = "aircraft"
    UNKNOWN = "unknown"


class ListSource(StrEnum):
    """The lists Strongroom reads (`strongroom sanctions load`), each by its own parser."""

    UN = "un"  # UN Security Council consolidated list (XML)
    OFAC_SDN = "ofac_sdn"  # OFAC SDN, legacy CSV set (sdn.csv + add.csv + alt.csv)
    OFAC_CONS = "ofac_cons"  # OFAC consolidated non-SDN (cons_prim/add/alt CSV)
    BIS_DPL = "bis_dpl"  # BIS Denied Persons List (tab-separated)
    PEP = "pep"  # politically exposed persons (Senzing JSON lines), tests and benchmarks only


@dataclass(frozen=True, slots=True)
class Entry:
    """One designated party of one list. `entry_id` is the list's own id (stable across
    versions of the list: the snapshot diff keys on it). `names[0]` is the primary name, the
    rest its aliases. Dates of birth are as the list gives them, normalised to `YYYY`,
    `YYYY-MM` or `YYYY-MM-DD`; countries are ISO 3166-1 alpha-2 where the list lets us tell."""

    source: ListSource
    entry_id: str
    kind: EntryKind
    names: tuple[str, ...]
    dates_of_birth: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()  # nationality, citizenship, address countries
    programs: tuple[str, ...] = ()  # the sanctions programmes or reasons, as the list names them
    remarks: str | None = None

    def fingerprint(self) -> str:
        """What a changed entry changes (the snapshot diff compares these): every field."""
        import hashlib
        import json

        body = json.dumps(
            [
                self.source.value,
                self.entry_id,
                self.kind.value,
                list(self.names),
                list(self.dates_of_birth),
                list(self.countries),
                list(self.programs),
                self.remarks,
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Query:
    """Who to screen: a name, with optional evidence. `kind` narrows the candidates (a person
    is not matched against vessels); `date_of_birth` (`YYYY[-MM[-DD]]`) and `country` (alpha-2)
    raise or lower the score where an entry gives them."""

    name: str
    kind: EntryKind | None = None
    date_of_birth: str | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class PayeeMatch:
    """What the payee gate keeps of a payee name's best match at or above the threshold, for
    the `sanctions_review` case it opens: the list entry (public list data) and its score;
    never the payee name the payer typed (personal data)."""

    list: str
    entry_id: str
    entry_name: str | None
    score: float
    list_version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "list": self.list,
            "entry_id": self.entry_id,
            "entry_name": self.entry_name,
            "score": round(self.score, 4),
            "list_version": self.list_version,
        }


@dataclass(frozen=True, slots=True)
class TokenMatch:
    """One aligned token pair of the best-pair alignment: the query's token, the entry name's
    token, and their similarity in [0, 1]."""

    query_token: str
    entry_token: str
    score: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an entry matched: which of its names, the aligned tokens, and the evidence."""

    matched_name: str
    tokens: tuple[TokenMatch, ...]
    name_score: float
    date_of_birth: str | None = None  # "match", "mismatch" or None (not compared)
    country: str | None = None  # "match", "mismatch" or None

    def to_dict(self) -> dict[str, Any]:
        return {
            "matched_name": self.matched_name,
            "name_score": round(self.name_score, 4),
            "tokens": [
                {"query": t.query_token, "entry": t.entry_token, "score": round(t.score, 4)}
                for t in self.tokens
            ],
            "date_of_birth": self.date_of_birth,
            "country": self.country,
        }


@dataclass(frozen=True, slots=True)
class Match:
    """A candidate entry and its calibrated score in [0, 1]."""

    entry: Entry
    score: float
    explanation: Explanation = field(compare=False)


class Screener(Protocol):
    """The matcher's port: the candidates of a query among the loaded entries, best first, at
    most `limit`, each scoring at least `min_score`."""

    def screen(self, query: Query, *, limit: int = 10, min_score: float = 0.0) -> list[Match]: ...

    def __len__(self) -> int: ...


class ScreenerFactory(Protocol):
    """Builds a screener over a list of entries (compliance.sanctions.match.build)."""

    def __call__(self, entries: Sequence[Entry]) -> Screener: ...
