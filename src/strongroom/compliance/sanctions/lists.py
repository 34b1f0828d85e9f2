"""List parsers: each list's files -> list[Entry] (model.Entry), pure (files in, entries out).

`load(source, paths)` picks the parser of a ListSource; one function per format:

- UN consolidated XML (`parse_un`): individuals (PERSON) and entities (ORGANIZATION); the name
  parts joined, the original-script name and every alias as aliases; dates of birth (DATE, YEAR,
  FROM_YEAR..TO_YEAR); nationality, address and birth countries. entry_id = DATAID.
- OFAC SDN legacy CSV set (`parse_ofac`): sdn.csv (no header; `-0- ` is empty) + add.csv
  (address countries) + alt.csv (aliases) + optional comments (remarks continued); DOBs and
  nationalities read from the remarks (`DOB 01 Jan 1960`, `nationality Iraq`, `citizen ...`).
  entry_id = ent_num. The consolidated non-SDN set (cons_prim/add/alt) has the same layout.
- BIS Denied Persons List (`parse_dpl`): tab-separated with a header; one entry per distinct
  name (several addresses of one party are one entry); entry_id = `dpl-` + a digest of the
  normalised name (the list has no id; the name is what stays stable between versions).
- PEP, Senzing JSON lines (`parse_senzing`): entry_id = RECORD_ID.

XML: parsed with the standard library's expat, which never fetches external entities; a
document with a DOCTYPE (where entity declarations live) is refused outright (UnsafeXml).
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from strongroom.compliance.sanctions.countries import alpha2
from strongroom.compliance.sanctions.model import Entry, EntryKind, ListSource

__all__ = [
    "ListFormatError",
    "UnsafeXml",
    "load",
    "parse_dpl",
    "parse_ofac",
    "parse_senzing",
    "parse_un",
]


class ListFormatError(ValueError):
    """A list file is not in the format its source declares."""


class UnsafeXml(ListFormatError):
    """An XML list carries a DOCTYPE (entity declarations): refused, never expanded."""


_EMPTY = "-0-"


def _cell(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if not value or value == _EMPTY else value


def _dedupe(values: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return tuple(seen)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# --- dates ---------------------------------------------------------------------------------

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DOB_DMY = re.compile(r"^(\d{1,2}) ([A-Za-z]{3})[a-z]* (\d{4})$")
_DOB_MY = re.compile(r"^([A-Za-z]{3})[a-z]* (\d{4})$")
_DOB_Y = re.compile(r"^(\d{4})$")
_DOB_RANGE = re.compile(r"^(\d{4}) to (\d{4})$")
_ISO = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def _dob_text(text: str) -> list[str]:
    """`01 Jan 1960`, `Jan 1960`, `1960`, `1958 to 1960`, `circa 1960`, ISO -> YYYY[-MM[-DD]]."""
    text = re.sub(r"^(circa|approximately|about)\s+", "", text.strip(), flags=re.I).strip()
    if m := _DOB_DMY.match(text):
        month = _MONTHS.get(m.group(2).lower())
        return [f"{m.group(3)}-{month:02d}-{int(m.group(1)):02d}"] if month else [m.group(3)]
    if m := _DOB_MY.match(text):
        month = _MONTHS.get(m.group(1).lower())
        return [f"{m.group(2)}-{month:02d}"] if month else [m.group(2)]
    if m := _DOB_RANGE.match(text):
        low, high = int(m.group(1)), int(m.group(2))
        return [str(y) for y in range(low, min(high, low + 20) + 1)]
    if m := _ISO.match(text):
        return [m.group(0)]
    return []


# --- UN consolidated XML ---------------------------------------------------------------------


def _safe_xml(data: bytes) -> ET.Element:
    """Parse with expat (external entities are never fetched), refusing any DOCTYPE: the
    prolog is scanned before parsing, and the tree builder refuses one should it get past."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise UnsafeXml("XML lists with a DOCTYPE or entity declarations are refused")

    class _Builder(ET.TreeBuilder):
        def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
            raise UnsafeXml("XML lists with a DOCTYPE are refused")

    # A DOCTYPE was refused above, so no entity can be declared; expat fetches nothing.
    parser = ET.XMLParser(target=_Builder())  # noqa: S314
    try:
        parser.feed(data)
        root: ET.Element = parser.close()
    except ET.ParseError as exc:
        raise ListFormatError(f"not well-formed XML: {exc}") from exc
    return root


def _text(node: ET.Element | None, tag: str) -> str | None:
    if node is None:
        return None
    child = node.find(tag)
    return _cell(child.text) if child is not None else None


def _un_countries(node: ET.Element, prefix: str) -> list[str | None]:
    out: list[str | None] = []
    nationality = node.find("NATIONALITY")
    if nationality is not None:
        out += [alpha2(v.text) for v in nationality.findall("VALUE") if _cell(v.text) != "na"]
    for address in node.findall(f"{prefix}_ADDRESS"):
        out.append(alpha2(_text(address, "COUNTRY")))
    for birth in node.findall(f"{prefix}_PLACE_OF_BIRTH"):
        out.append(alpha2(_text(birth, "COUNTRY")))
    return out


def _un_dobs(node: ET.Element) -> list[str]:
    out: list[str] = []
    for dob in node.findall("INDIVIDUAL_DATE_OF_BIRTH"):
        if date := _text(dob, "DATE"):
            out += _dob_text(date)
        if year := _text(dob, "YEAR"):
            out += _dob_text(year)
        low, high = _text(dob, "FROM_YEAR"), _text(dob, "TO_YEAR")
        if low and high:
            out += _dob_text(f"{low} to {high}")
    return out


def _un_entry(node: ET.Element, kind: EntryKind, prefix: str) -> Entry:
    entry_id = _text(node, "DATAID")
    if entry_id is None:
        raise ListFormatError(f"UN {prefix.lower()} without DATAID")
    parts = [_text(node, tag) for tag in ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")]
    primary = " ".join(p for p in parts if p)
    aliases = [_text(a, "ALIAS_NAME") for a in node.findall(f"{prefix}_ALIAS")]
    original = _text(node, "NAME_ORIGINAL_SCRIPT")
    programs = [_text(node, "UN_LIST_TYPE"), _text(node, "REFERENCE_NUMBER")]
    return Entry(
        source=ListSource.UN,
        entry_id=entry_id,
        kind=kind,
        names=_dedupe([primary, original, *aliases]),
        dates_of_birth=_dedupe(_un_dobs(node)),
        countries=_dedupe(_un_countries(node, prefix)),
        programs=_dedupe(programs),
        remarks=_text(node, "COMMENTS1"),
    )


def parse_un(path: Path) -> list[Entry]:
    """The UN Security Council consolidated list (XML)."""
    root = _safe_xml(path.read_bytes())
    if root.tag != "CONSOLIDATED_LIST":
        raise ListFormatError(f"not a UN consolidated list: root <{root.tag}>")
    entries = [_un_entry(n, EntryKind.PERSON, "INDIVIDUAL") for n in root.iter("INDIVIDUAL")]
    entries += [_un_entry(n, EntryKind.ORGANIZATION, "ENTITY") for n in root.iter("ENTITY")]
    return entries


# --- OFAC legacy CSV (SDN and consolidated non-SDN) ------------------------------------------

_OFAC_KINDS = {
    "individual": EntryKind.PERSON,
    "vessel": EntryKind.VESSEL,
    "aircraft": EntryKind.AIRCRAFT,
}
_REMARK_DOB = re.compile(r"(?:^|;\s*)(?:alt\.\s*)?DOB\s+([^;]+?)\s*(?=;|\.?$)", re.I)
_REMARK_COUNTRY = re.compile(
    r"(?:^|;\s*)(?:alt\.\s*)?(?:nationality|citizen)\s+([^;]+?)\s*(?=;|\.?$)", re.I
)


def _rows(path: Path) -> list[list[str]]:
    """The CSV rows, less blank ones and the DOS end-of-file mark (0x1A) OFAC's files end in."""
    text = _read_text(path).rstrip("\x1a\r\n")
    return [row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]


def _role(path: Path) -> str:
    stem = path.name.lower()
    for role in ("comment", "alt", "add"):
        if re.search(rf"(^|[_\-.]){role}", stem):
            return role
    return "prim"


def parse_ofac(source: ListSource, paths: Sequence[Path]) -> list[Entry]:
    """An OFAC legacy CSV set: the primary file (sdn.csv or cons_prim.csv) plus any of add,
    alt and comments, told apart by their file names."""
    by_role: dict[str, list[Path]] = {}
    for path in paths:
        by_role.setdefault(_role(path), []).append(path)
    if not by_role.get("prim"):
        raise ListFormatError("an OFAC set needs its primary file (sdn.csv / cons_prim.csv)")
    # Every row of the primary files, each ent_num as often as it appears: one named twice is
    # refused by the load (snapshot.unique_entries), never merged by the last row winning.
    prim: list[tuple[str, list[str]]] = []
    for path in by_role["prim"]:
        for row in _rows(path):
            if len(row) < 12:
                raise ListFormatError(f"{path.name}: a row of {len(row)} fields, not 12")
            prim.append((row[0].strip(), row))
    aliases: dict[str, list[str]] = {}
    for path in by_role.get("alt", []):
        for row in _rows(path):
            if len(row) >= 4 and (name := _cell(row[3])):
                aliases.setdefault(row[0].strip(), []).append(name)
    countries: dict[str, list[str | None]] = {}
    for path in by_role.get("add", []):
        for row in _rows(path):
            if len(row) >= 5:
                countries.setdefault(row[0].strip(), []).append(alpha2(_cell(row[4])))
    comments: dict[str, str] = {}
    for path in by_role.get("comment", []):
        for row in _rows(path):
            if len(row) >= 2 and (text := _cell(row[1])):
                comments[row[0].strip()] = text
    entries: list[Entry] = []
    for ent_num, row in prim:
        name = _cell(row[1])
        if name is None:
            continue
        kind = _OFAC_KINDS.get((_cell(row[2]) or "").lower(), EntryKind.ORGANIZATION)
        remarks = " ".join(p for p in (_cell(row[11]), comments.get(ent_num)) if p) or None
        dobs: list[str] = []
        nat: list[str | None] = []
        if remarks:
            for m in _REMARK_DOB.finditer(remarks):
                dobs += _dob_text(m.group(1))
            nat += [alpha2(m.group(1)) for m in _REMARK_COUNTRY.finditer(remarks)]
        entries.append(
            Entry(
                source=source,
                entry_id=ent_num,
                kind=kind,
                names=_dedupe([name, *aliases.get(ent_num, [])]),
                dates_of_birth=_dedupe(dobs),
                countries=_dedupe([*nat, *countries.get(ent_num, [])]),
                programs=_dedupe(p.strip() for p in (_cell(row[3]) or "").split("]")),
                remarks=remarks,
            )
        )
    return entries


# --- BIS Denied Persons List -----------------------------------------------------------------

_ORG_WORDS = re.compile(
    r"\b(INC|LTD|LLC|L\.L\.C|CO|CORP|CORPORATION|COMPANY|GMBH|LIMITED|S\.?A|AG|BV|PLC|"
    r"ENTERPRISES?|INDUSTRIES|TRADING|INTERNATIONAL|GROUP|TECHNOLOGY|TECHNOLOGIES|SYSTEMS|"
    r"ELECTRONICS|AVIATION|AIRLINES?|SERVICES|BANK|FZE|LLP|PTE|SRL|SPA|SA DE CV)\b\.?",
    re.I,
)


def _dpl_id(name: str) -> str:
    key = " ".join(re.sub(r"[^\w]+", " ", name.upper()).split())
    return "dpl-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def parse_dpl(path: Path) -> list[Entry]:
    """The BIS Denied Persons List (tab-separated, header row). The list gives no party kind:
    names with a legal form are ORGANIZATION, the rest UNKNOWN (which every kind filter lets
    through)."""
    reader = csv.DictReader(io.StringIO(_read_text(path)), delimiter="\t")
    if not reader.fieldnames or "Name" not in reader.fieldnames:
        raise ListFormatError(f"{path.name}: no Name column, not a DPL file")
    grouped: dict[str, dict[str, Any]] = {}
    for row in reader:
        name = " ".join((row.get("Name") or "").split())
        if not name:
            continue
        entry_id = _dpl_id(name)
        item = grouped.setdefault(entry_id, {"name": name, "countries": [], "orders": []})
        item["countries"].append(alpha2(_cell(row.get("Country"))))
        item["orders"].append(_cell(row.get("FR_Citation")))
    return [
        Entry(
            source=ListSource.BIS_DPL,
            entry_id=entry_id,
            kind=EntryKind.ORGANIZATION if _ORG_WORDS.search(item["name"]) else EntryKind.UNKNOWN,
            names=(item["name"],),
            countries=_dedupe(item["countries"]),
            programs=("DPL",),
            remarks="; ".join(o for o in _dedupe(item["orders"])) or None,
        )
        for entry_id, item in grouped.items()
    ]


# --- Senzing JSON lines (PEP) ----------------------------------------------------------------

_SENZING_KINDS = {"PERSON": EntryKind.PERSON, "ORGANIZATION": EntryKind.ORGANIZATION}


def _senzing_name(name: dict[str, Any]) -> str | None:
    if full := name.get("NAME_FULL") or name.get("NAME_ORG"):
        return str(full)
    parts = [name.get(k) for k in ("NAME_FIRST", "NAME_MIDDLE", "NAME_LAST")]
    return " ".join(str(p) for p in parts if p) or None


def parse_senzing(path: Path, source: ListSource = ListSource.PEP) -> list[Entry]:
    """Senzing JSON lines (OpenSanctions' export): one record a line."""
    entries: list[Entry] = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ListFormatError(f"{path.name}:{number}: not JSON ({exc.msg})") from exc
        names = [_senzing_name(n) for n in record.get("NAMES", [])]
        if not any(names) or "RECORD_ID" not in record:
            continue
        dobs = [
            d
            for date in record.get("DATES", [])
            if date.get("DATE_OF_BIRTH")
            for d in _dob_text(str(date["DATE_OF_BIRTH"]))
        ]
        countries = [alpha2(str(v)) for c in record.get("COUNTRIES", []) for v in c.values()]
        risks = [str(r.get("TOPIC")) for r in record.get("RISKS", []) if r.get("TOPIC")]
        entries.append(
            Entry(
                source=source,
                entry_id=str(record["RECORD_ID"]),
                kind=_SENZING_KINDS.get(str(record.get("RECORD_TYPE")), EntryKind.UNKNOWN),
                names=_dedupe(names),
                dates_of_birth=_dedupe(dobs),
                countries=_dedupe(countries),
                programs=_dedupe(risks),
            )
        )
    return entries


# --- dispatch --------------------------------------------------------------------------------


def load(source: ListSource, paths: Sequence[Path]) -> list[Entry]:
    """The entries of one list from its files (the OFAC sets take several files)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ListFormatError("no files given")
    if source in (ListSource.OFAC_SDN, ListSource.OFAC_CONS):
        return parse_ofac(source, paths)
    if len(paths) != 1:
        raise ListFormatError(f"{source.value} takes one file, not {len(paths)}")
    if source is ListSource.UN:
        return parse_un(paths[0])
    if source is ListSource.BIS_DPL:
        return parse_dpl(paths[0])
    if source is ListSource.PEP:
        return parse_senzing(paths[0])
    raise ListFormatError(f"no parser for {source.value}")
