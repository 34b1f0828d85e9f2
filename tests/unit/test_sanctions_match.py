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


# --- evasion: lookalike letters, digits for letters, spelled-out letters, no spaces ----------

EVADED = [
    _entry("bout", EntryKind.PERSON, "BOUT, Viktor Anatolijevitch"),
    _entry("ubl", EntryKind.PERSON, "Usama bin Laden"),
    _entry("acme", EntryKind.ORGANIZATION, "Acme Trading LLC"),
    _entry("5", EntryKind.PERSON, "Angela Merkel"),
]


def test_lookalike_cyrillic_and_greek_letters_in_latin_words_become_latin() -> None:
    # Cyrillic і, о, В mixed into Latin words (anyascii alone makes В a "V": "vout")
    assert normalize("V\u0456kt\u043er \u0412\u043eut").tokens == ("viktor", "bout")
    assert normalize("\u03a1utin").tokens == ("putin",)  # Greek capital rho
    # a wholly Cyrillic word keeps its transliteration
    assert normalize("\u0412\u043e\u0440").tokens == ("vor",)
    assert normalize("Владимир Путин").tokens == ("vladimir", "putin")


def test_digits_for_letters_are_a_second_reading_not_a_replacement() -> None:
    name = normalize("V1kt0r B0ut")
    assert name.tokens == ("v1kt0r", "b0ut")
    assert [v.tokens for v in name.variants] == [("viktor", "bout")]
    assert normalize("Usama b1n L4din").variants[0].tokens == ("usama", "bin", "ladin")
    assert normalize("$m1th @cme").variants[0].tokens == ("smith", "acme")
    assert normalize("7 Tir 1984").variants == ()  # words of digits only stay
    # an alphanumeric name keeps its own reading: still an exact match of itself
    assert match.name_score("X5 Retail", "X5 Retail")[0] == match.name_score("Acme", "Acme")[0]


def test_letters_spelled_out_one_by_one_are_joined() -> None:
    assert normalize("V i k t o r  B o u t").tokens == ("viktor", "bout")
    assert normalize("V.i.k.t.o.r B.o.u.t").tokens == ("viktor", "bout")
    assert normalize("J. R. Smith").tokens == ("j", "r", "smith")  # initials stay
    assert normalize("J R Smith").tokens == ("j", "r", "smith")
    joined = normalize("J.R.R. Tolkien")
    assert joined.tokens == ("jrr", "tolkien")
    assert ("j", "r", "r", "tolkien") in [v.tokens for v in joined.variants]


def test_camel_case_is_a_second_reading() -> None:
    assert normalize("ViktorBout").tokens == ("viktorbout",)
    assert [v.tokens for v in normalize("ViktorBout").variants] == [("viktor", "bout")]
    assert [v.tokens for v in normalize("ACMETrading").variants] == [("acme", "trading")]


def test_a_name_without_spaces_is_read_as_the_listed_words() -> None:
    word, listed = normalize("viktorbout"), normalize("BOUT, Viktor Anatolijevitch")
    assert [r.tokens for r in match.resegmented(word, listed)] == [("viktor", "bout")]
    assert match.resegmented(normalize("gazprom"), normalize("Gazprom Neft")) == []
    assert match.name_score("acmetrading", "Acme Trading")[0] == pytest.approx(
        match.name_score("Acme Trading", "Acme Trading")[0]
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ViktorBout", "bout"),
        ("viktorbout", "bout"),
        ("VIKTORBOUT", "bout"),
        ("V i k t o r  B o u t", "bout"),
        ("V i k t o r B o u t", "bout"),
        ("V.i.k.t.o.r B.o.u.t", "bout"),
        ("\uff36\uff49\uff4b\uff54\uff4f\uff52\uff22\uff4f\uff55\uff54", "bout"),  # full width
        ("V\u0456kt\u043er \u0412\u043eut", "bout"),  # Cyrillic і, о, В
        ("V1kt0r B0ut", "bout"),
        ("Usama b1n L4din", "ubl"),
        ("AcmeTrading LLC", "acme"),
        ("acmetrading llc", "acme"),
    ],
)
def test_evasions_still_screen_above_the_threshold(query: str, expected: str) -> None:
    hits = match.build(EVADED).screen(Query(query))
    assert hits, query
    assert hits[0].entry.entry_id == expected
    assert hits[0].score >= match.SCREEN_THRESHOLD


def test_folds_do_not_match_other_names() -> None:
    screener = match.build(EVADED)
    for query in ("Victor Boutros", "Angela Merkel", "Acme Holdings", "Usama Khan"):
        hits = screener.screen(Query(query), min_score=match.SCREEN_THRESHOLD)
        assert all(h.entry.entry_id == "5" for h in hits), query
