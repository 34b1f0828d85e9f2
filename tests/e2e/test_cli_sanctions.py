"""`strongroom sanctions` in-process on a SQLite file: load tells the list from its files,
stores a version and its diff (the same content again: nothing stored), lists the versions, and
screen prints one JSON object a line per name, names from arguments and a file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strongroom.cli import app
from tests.support.sanctions_data import LISTS, need

HEADER = (
    '"Name"\t"Street_Address"\t"City"\t"State"\t"Country"\t"Postal_Code"\t"Effective_Date"\t'
    '"Expiration_Date"\t"Standard_Order"\t"Last_Update"\t"Action"\t"FR_Citation"'
)


def dpl(path: Path, *names: str) -> Path:
    rows = [
        f'"{n}"\t"1 Main St"\t"Springfield"\t""\t"US"\t""\t"01/01/2020"\t""\t"Y"\t'
        f'"2020-01-01"\t"FR NOTICE ADDED"\t"85 F.R. 1"'
        for n in names
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STRONGROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    return runner


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output)
    return result.output


def test_load_versions_and_screen(cli: CliRunner, tmp_path: Path) -> None:
    out = run(cli, "sanctions", "screen", "Viktor Bout", code=2)
    assert "sanctions_lists_not_loaded" in out
    first = dpl(tmp_path / "dpl_v1.txt", "VIKTOR BOUT", "JOHN SMITH TRADING")
    out = run(cli, "sanctions", "load", str(first))
    assert "bis_dpl: version 1, 2 entries (+2 added, ~0 changed, -0 removed)" in out
    out = run(cli, "sanctions", "load", str(first))
    assert "bis_dpl: unchanged (version 1, 2 entries): nothing stored" in out
    second = dpl(tmp_path / "denied.txt", "VIKTOR BOUT", "ALI HASSAN")  # told by its content
    out = run(cli, "sanctions", "load", "--json", str(second))
    (loaded,) = json.loads(out[out.index("[") :])
    assert (loaded["version"], loaded["added"], loaded["removed"]) == (2, 1, 1)
    listed = json.loads(run(cli, "sanctions", "lists", "--json"))
    assert [(x["source"], x["version"], x["entries"]) for x in listed] == [
        ("bis_dpl", 1, 2),
        ("bis_dpl", 2, 2),
    ]
    names = tmp_path / "names.txt"
    names.write_text("Ali Hassan\n\nJane Doe\n", encoding="utf-8")
    out = run(cli, "sanctions", "screen", "Victor Bout", "--file", str(names), "--json")
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(x["name"], x["hit"]) for x in lines] == [
        ("Victor Bout", True),
        ("Ali Hassan", True),
        ("Jane Doe", False),
    ]
    best = lines[0]["matches"][0]
    assert (best["list"], best["entry_name"]) == ("bis_dpl", "VIKTOR BOUT")
    assert best["explanation"]["tokens"]
    # A stricter threshold: the same matches, no hit.
    strict = run(cli, "sanctions", "screen", "Victor Bout", "--json", "--threshold", "1.0")
    assert json.loads(strict.splitlines()[-1])["hit"] is False
    out = run(cli, "sanctions", "load", str(tmp_path / "nothing.txt"), code=2)
    assert "no file" in out


def test_lists_say_a_version_whose_rescreening_is_still_owed(
    cli: CliRunner, tmp_path: Path
) -> None:
    """A load killed after storing its version leaves its re-screening owed: `lists` says so
    (a line, a field); the next load completes it."""
    first = dpl(tmp_path / "dpl_v1.txt", "VIKTOR BOUT")
    run(cli, "sanctions", "load", str(first))
    assert "still owed" not in run(cli, "sanctions", "lists")
    (row,) = json.loads(run(cli, "sanctions", "lists", "--json"))
    assert row["rescreen_owed"] is False
    assert row["rescreened_at"]
    with sqlite3.connect(tmp_path / "cli.db") as db:  # as a kill after the version's commit
        db.execute("UPDATE sanctions_list_versions SET rescreened_at = NULL")
    assert "bis_dpl version 1: re-screening still owed" in run(cli, "sanctions", "lists")
    (row,) = json.loads(run(cli, "sanctions", "lists", "--json"))
    assert (row["rescreen_owed"], row["rescreened_at"]) == (True, None)
    run(cli, "sanctions", "load", str(first))  # unchanged: completes what is owed
    assert "still owed" not in run(cli, "sanctions", "lists")


def test_load_the_real_un_list(cli: CliRunner) -> None:
    path = need(LISTS / "un_consolidated_2026-02-27.xml")
    out = run(cli, "sanctions", "load", str(path))
    assert "un: version 1, 1003 entries (+1003 added" in out


def _un(path: Path, *ids: str) -> Path:
    people = "".join(
        f"<INDIVIDUAL><DATAID>{i}</DATAID><FIRST_NAME>PERSON</FIRST_NAME>"
        f"<SECOND_NAME>NUMBER {i}</SECOND_NAME></INDIVIDUAL>"
        for i in ids
    )
    body = f"<CONSOLIDATED_LIST><INDIVIDUALS>{people}</INDIVIDUALS></CONSOLIDATED_LIST>"
    path.write_text(body, encoding="utf-8")
    return path


def _sdn(path: Path, *rows: tuple[str, str]) -> Path:
    empty = ",".join(["-0-"] * 8)
    lines = [f'{n},"{name}","individual","SDGT",{empty}' for n, name in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_list_naming_an_entry_id_twice_is_refused_whole(cli: CliRunner, tmp_path: Path) -> None:
    """Neither an AssertionError nor the last row silently winning: the load exits non-zero
    naming the duplicate id, and nothing of the list is stored."""
    out = run(cli, "sanctions", "load", str(_un(tmp_path / "un.xml", "11", "12", "11")), code=2)
    assert "error: invalid_request: un: entry id(s) 11 appear more than once" in out
    assert "nothing was loaded" in out
    sdn = _sdn(tmp_path / "sdn.csv", ("36", "AEROCARIBBEAN AIRLINES"), ("36", "ANOTHER NAME"))
    out = run(cli, "sanctions", "load", str(sdn), code=2)
    assert "ofac_sdn: entry id(s) 36 appear more than once" in out
    assert json.loads(run(cli, "sanctions", "lists", "--json")) == []
    # The same files with each id once load.
    out = run(cli, "sanctions", "load", str(_un(tmp_path / "un.xml", "11", "12")))
    assert "un: version 1, 2 entries" in out


def test_screen_refuses_what_it_cannot_screen_in_one_line(cli: CliRunner, tmp_path: Path) -> None:
    """A missing `--file` is one error line (no traceback), exit 2, before anything is
    screened; a name with no letter or digit is not reported as "no match": an error line
    naming where it was, the other names screened, exit 2."""
    run(cli, "sanctions", "load", str(dpl(tmp_path / "dpl_v1.txt", "VIKTOR BOUT")))
    missing = tmp_path / "nope.txt"
    result = cli.invoke(app, ["sanctions", "screen", "--file", str(missing)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"error: invalid_request: no file {missing}" in result.output
    out = run(cli, "sanctions", "screen", "--", "", "Victor Bout", "---", code=2)
    assert "error: invalid_name: argument 1: name has no letter or digit to screen" in out
    assert "error: invalid_name: argument 3" in out
    assert "HIT Victor Bout" in out
    assert "no match" not in out
    names = tmp_path / "names.txt"
    names.write_text("Jane Doe\n!!!\n", encoding="utf-8")
    out = run(cli, "sanctions", "screen", "--json", "--file", str(names), code=2)
    assert "error: invalid_name: line 2" in out
    assert [json.loads(x)["name"] for x in out.splitlines() if x.startswith("{")] == ["Jane Doe"]
