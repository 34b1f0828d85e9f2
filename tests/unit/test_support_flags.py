"""One function decides every STRONGROOM_REQUIRE_* flag of the test suite."""

from __future__ import annotations

import pytest

from tests.support import flags
from tests.support import postgres as pg

ON = ["1", "true", "TRUE", "yes", "Yes", "on", " on ", "1\n"]
OFF = ["", "0", "false", "no", "off", "2", "enabled", "y"]
REQUIRE_FLAGS = [flags.REQUIRE_POSTGRES, flags.REQUIRE_SHARED_DATA, flags.REQUIRE_STRACE]


@pytest.mark.parametrize("name", REQUIRE_FLAGS)
@pytest.mark.parametrize("value", ON)
def test_flag_is_on_for_every_true_spelling(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    assert flags.flag(name)


@pytest.mark.parametrize("name", REQUIRE_FLAGS)
@pytest.mark.parametrize("value", OFF)
def test_flag_is_off_otherwise(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    assert not flags.flag(name)


def test_unset_flag_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(flags.REQUIRE_STRACE, raising=False)
    assert not flags.flag(flags.REQUIRE_STRACE)


@pytest.mark.parametrize("value", ON + OFF)
def test_postgres_flag_reads_the_same_function(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pg.ENV_REQUIRE, value)
    assert pg.require_postgres() is flags.flag(flags.REQUIRE_POSTGRES)


@pytest.mark.parametrize("value", ["true", "yes", "on", "1"])
def test_any_true_spelling_turns_a_skip_into_a_failure(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(flags.REQUIRE_SHARED_DATA, value)
    with pytest.raises(pytest.fail.Exception, match=flags.REQUIRE_SHARED_DATA):
        flags.skip_or_fail("no data", flags.REQUIRE_SHARED_DATA)


def test_skip_or_fail_skips_when_no_flag_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*REQUIRE_FLAGS, "CI"]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no strace"):
        flags.skip_or_fail("no strace", flags.REQUIRE_STRACE, "CI")


def test_skip_or_fail_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(flags.REQUIRE_STRACE, raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI"):
        flags.skip_or_fail("no strace", flags.REQUIRE_STRACE, "CI")
