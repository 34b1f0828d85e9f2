"""Normalisation, the Watchman-compatible scorer on Watchman's own vectors, the calibrated name
score, its explanation, the kind filter and the date-of-birth and country evidence."""

from __future__ import annotations

import csv

import pytest

from strongroom.compliance.sanctions import match, watchman
from strongroom.compliance.sanctions.index import IndexedScreener
from strongroom.compliance.sanctions.model import Entry, EntryKind, ListSource, Query
from strongroom.compliance.sanctions.normalize import normalize, phonetic, reorder
from tests.support.sanctions_data import LISTS, need


def test_normalize_case_punctuation_diacritics_and_scripts() -> None:
    assert normalize("Recep Tayyip Erdoğan").tokens == ("recep", "tayyip", "erdogan")
    assert normalize("AL-QA'IDA").tokens == ("al", "qaida")
    assert normalize("Владимир Путин").tokens == ("vladimir", "putin")
    assert normalize("Mr. John SMITH Jr.").tokens == ("john", "smith")
    assert normalize("Mr. John SMITH Jr.").stop == ("mr", "jr")
    assert normalize("ANGLO-CARIBBEAN CO., LTD.").tokens == ("anglo", "caribbean")
    assert normalize("Co. Ltd.").tokens == ("co", "ltd")  # nothing but stop words: kept


def test_last_comma_first_is_reordered_but_not_a_legal_form() -> None:
    assert reorder("MADURO MOROS, Nicolas") == "Nicolas MADURO MOROS"
    assert reorder("Acme, Inc.") == "Acme, Inc."
    assert normalize("BADEGE, Eric").text == normalize("Eric Badege").text


def test_phonetic_keys_join_spelling_variants() -> None:
    assert phonetic("mohammed") == phonetic("muhamad")
    assert phonetic("1234") == "1234"


@pytest.fixture(scope="module")
def watchman_cases() -> list[dict[str, str]]:
    with need(LISTS / "watchman_jw_expected_scores.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_watchman_mode_reproduces_watchman_expected_scores(
    watchman_cases: list[dict[str, str]],
) -> None:
    assert len(watchman_cases) == 94
    for row in watchman_cases:
        search = watchman.transform(row["search"], row["search_transform"])
        indexed = watchman.transform(row["indexed"], row["indexed_transform"])
        got = watchman.score(search, indexed)
        assert got == pytest.approx(float(row["expected_score"]), abs=0.0101), row


def test_watchman_edge_cases() -> None:
    assert watchman.score("", "hello") == 0.0
    assert watchman.score("a", "a") == 1.0
    assert watchman.score("abc", "αβγ") == 0.0


def test_name_score_is_a_probability_and_orders_sensibly() -> None:
    same, _ = match.name_score("Nicolas Maduro", "MADURO MOROS, Nicolas")
    typo, _ = match.name_score("Nicolas Madura", "Nicolas Maduro")
    other, _ = match.name_score("Angela Merkel", "Nicolas Maduro")
    assert 0.0 <= other < typo <= 1.0
    assert same >= match.NAME_THRESHOLD
    assert other < match.NAME_THRESHOLD
    assert match.name_score("", "x")[0] == 0.0


def _entry(entry_id: str, kind: EntryKind, *names: str, dob: str = "", country: str = "") -> Entry:
    return Entry(
        ListSource.UN,
        entry_id,
        kind,
        names,
        dates_of_birth=(dob,) if dob else (),
        countries=(country,) if country else (),
    )


ENTRIES = [
    _entry("1", EntryKind.PERSON, "BADEGE, Eric", "Eric Badeghe", dob="1971", country="CD"),
    _entry("2", EntryKind.ORGANIZATION, "Eric Badege Trading Company"),
    _entry("3", EntryKind.VESSEL, "ERIC BADEGE"),
    _entry("4", EntryKind.UNKNOWN, "Erik Badege"),
    _entry("5", EntryKind.PERSON, "Angela Merkel", dob="1954-07-17", country="DE"),
]


@pytest.fixture(scope="module")
def screener() -> IndexedScreener:
    return match.build(ENTRIES)


def test_explanation_names_the_matched_name_and_aligned_tokens(
    screener: IndexedScreener,
) -> None:
    hits = screener.screen(Query("Eric Badege", kind=EntryKind.PERSON))
    top = hits[0]
    assert top.entry.entry_id == "1"
    assert top.explanation.matched_name == "BADEGE, Eric"
    pairs = {(t.query_token, t.entry_token) for t in top.explanation.tokens}
    assert pairs == {("eric", "eric"), ("badege", "badege")}
    assert all(t.score == 1.0 for t in top.explanation.tokens)
    as_dict = top.explanation.to_dict()
    assert as_dict["matched_name"] == "BADEGE, Eric"
    assert as_dict["date_of_birth"] is None


def test_kind_filter_keeps_unknown_kinds(screener: IndexedScreener) -> None:
    people = {
        m.entry.entry_id for m in screener.screen(Query("Eric Badege", kind=EntryKind.PERSON))
    }
    assert "1" in people
    assert "4" in people  # the list does not say what entry 4 is
    assert "2" not in people
    assert "3" not in people
    vessels = {
        m.entry.entry_id for m in screener.screen(Query("Eric Badege", kind=EntryKind.VESSEL))
    }
    assert "3" in vessels
    assert "1" not in vessels
    everyone = {m.entry.entry_id for m in screener.screen(Query("Eric Badege"))}
    assert {"1", "2", "3", "4"} <= everyone


def test_date_of_birth_and_country_are_evidence(screener: IndexedScreener) -> None:
    def score(**evidence: str) -> tuple[float, str | None, str | None]:
        hit = next(
            m
            for m in screener.screen(Query("Eric Badege", kind=EntryKind.PERSON, **evidence))
            if m.entry.entry_id == "1"
        )
        return hit.score, hit.explanation.date_of_birth, hit.explanation.country

    bare, _, _ = score()
    same, dob_same, _ = score(date_of_birth="1971-05-02")
    near, dob_near, _ = score(date_of_birth="1972")
    other, dob_other, _ = score(date_of_birth="1990-01-01")
    assert (dob_same, dob_near, dob_other) == ("match", "near", "mismatch")
    assert same > bare > other
    assert near == pytest.approx(bare)
    elsewhere, _, country = score(country="Germany")
    assert country == "mismatch"
    assert elsewhere < bare
    assert score(country="cd")[2] == "match"


def test_limit_and_min_score(screener: IndexedScreener) -> None:
    assert len(screener.screen(Query("Eric Badege"), limit=2)) == 2
    strong = screener.screen(Query("Eric Badege"), min_score=0.99)
    assert all(m.score >= 0.99 for m in strong)
    assert screener.screen(Query("!!!")) == []
    assert len(screener) == len(ENTRIES)


def test_baseline_linear_scan_still_answers() -> None:
    linear = match.LinearScreener(ENTRIES)
    hits = linear.screen(Query("Angela Merkel"), limit=1)
    assert hits[0].entry.entry_id == "5"
    assert match.tokens("Al-Qa'ida") == ["al", "qa", "ida"]
