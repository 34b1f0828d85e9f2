"""The list parsers on the real list files (each parsed once for the module): counts as the
data's README gives them, names, aliases, dates of birth and countries, and refusals."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from strongroom.compliance.sanctions import lists
from strongroom.compliance.sanctions.countries import alpha2
from strongroom.compliance.sanctions.model import Entry, EntryKind, ListSource
from tests.support.sanctions_data import LISTS, need


@pytest.fixture(scope="module")
def un() -> list[Entry]:
    return lists.load(ListSource.UN, [need(LISTS / "un_consolidated_2026-02-27.xml")])


@pytest.fixture(scope="module")
def sdn() -> list[Entry]:
    names = ["sdn_2021-07", "add_2021-07", "alt_2021-07", "sdn_comments_2021-07"]
    return lists.load(ListSource.OFAC_SDN, [need(LISTS / f"ofac_{n}.csv") for n in names])


def test_un_counts_individuals_and_entities(un: list[Entry]) -> None:
    kinds = Counter(e.kind for e in un)
    assert kinds == {EntryKind.PERSON: 730, EntryKind.ORGANIZATION: 273}
    assert len({e.entry_id for e in un}) == len(un)


def test_un_person_has_aliases_dob_and_nationality(un: list[Entry]) -> None:
    badege = next(e for e in un if e.entry_id == "6907993")
    assert badege.names[0] == "ERIC BADEGE"
    assert badege.dates_of_birth == ("1971",)
    assert badege.countries[0] == "CD"  # "Democratic Republic of the Congo"
    adf = next(e for e in un if e.names[0] == "ADF")
    assert "Allied Democratic Forces" in adf.names
    assert "NALU" in adf.names
    # every non-empty alias of the file is somewhere (2,308 individual alias elements, some empty)
    assert sum(len(e.names) for e in un if e.kind is EntryKind.PERSON) > 730 + 1000
    assert sum(1 for e in un if e.dates_of_birth) > 600


def test_sdn_counts_and_remarks(sdn: list[Entry]) -> None:
    assert len(sdn) == 8976
    kinds = Counter(e.kind for e in sdn)
    assert kinds[EntryKind.VESSEL] > 0
    assert kinds[EntryKind.AIRCRAFT] > 0
    assert sum(len(e.names) - 1 for e in sdn) > 11_800  # 11,910 alt rows, a few duplicates
    nasser = next(e for e in sdn if e.entry_id == "6333")
    assert nasser.names == ("NASSER ARANA, Carlos Alberto",)
    assert nasser.dates_of_birth == ("1964-11-21",)
    assert nasser.kind is EntryKind.PERSON
    bnc = next(e for e in sdn if e.entry_id == "306")
    assert "NATIONAL BANK OF CUBA" in bnc.names
    assert {"CH", "ES"} <= set(bnc.countries)  # address countries from add.csv
    assert all(e.remarks is None or not e.remarks.startswith("-0-") for e in sdn)


def test_cons_dpl_and_pep() -> None:
    cons = lists.load(
        ListSource.OFAC_CONS,
        [need(LISTS / f"ofac_cons_{n}_2025-12.csv") for n in ("prim", "add", "alt", "comments")],
    )
    assert 440 <= len(cons) <= 443
    haniya = next(e for e in cons if e.entry_id == "9639")
    assert haniya.names[:2] == ("HANIYA, Ismail Abdul Salah", "HANIYA, Ismail")
    assert haniya.dates_of_birth == ("1962",)
    dpl = lists.load(ListSource.BIS_DPL, [need(LISTS / "bis_dpl_2019-07.txt")])
    assert 300 < len(dpl) <= 545  # 545 rows, one entry per distinct name
    assert len({e.entry_id for e in dpl}) == len(dpl)
    again = lists.load(ListSource.BIS_DPL, [LISTS / "bis_dpl_2019-07.txt"])
    assert [e.entry_id for e in again] == [e.entry_id for e in dpl]  # stable ids
    pep = lists.load(
        ListSource.PEP, [need(LISTS / "opensanctions_us_congress_senzing_2026-01.json")]
    )
    assert len(pep) == 1319
    assert pep[0].names == ("Jennifer L. McClellan",)
    assert pep[0].countries == ("US",)


def test_xml_with_a_doctype_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "un.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        "<CONSOLIDATED_LIST><INDIVIDUALS/></CONSOLIDATED_LIST>"
    )
    with pytest.raises(lists.UnsafeXml):
        lists.load(ListSource.UN, [bomb])
    other = tmp_path / "other.xml"
    other.write_text("<OTHER/>")
    with pytest.raises(lists.ListFormatError):
        lists.load(ListSource.UN, [other])


def test_ofac_set_without_primary_file_is_refused(tmp_path: Path) -> None:
    alt = tmp_path / "alt.csv"
    alt.write_text('1,2,"aka","X",-0- \n')
    with pytest.raises(lists.ListFormatError):
        lists.load(ListSource.OFAC_SDN, [alt])


def test_country_names_to_alpha2() -> None:
    assert alpha2("Iran (Islamic Republic of)") == "IR"
    assert alpha2("Korea, North") == "KP"
    assert alpha2("Türkiye") == "TR"
    assert alpha2("us") == "US"
    assert alpha2("Atlantis") is None
