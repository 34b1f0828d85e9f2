"""The test suite's on/off environment flags (STRONGROOM_REQUIRE_*, ...), read one way.

A flag is on when its value, stripped and lower-cased, is one of TRUE_VALUES; anything else
(unset, empty, `0`, `no`, a typo) is off. CI sets the require flags so that a missing
PostgreSQL server, missing shared data or a missing tool fails a test instead of skipping it.
"""

from __future__ import annotations

import os

import pytest

__all__ = [
    "REQUIRE_BROWSER",
    "REQUIRE_POSTGRES",
    "REQUIRE_REDIS",
    "REQUIRE_SHARED_DATA",
    "REQUIRE_STRACE",
    "TRUE_VALUES",
    "flag",
    "skip_or_fail",
]

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})

REQUIRE_BROWSER = "STRONGROOM_REQUIRE_BROWSER"  # Debian's chromium and chromium-driver
REQUIRE_POSTGRES = "STRONGROOM_REQUIRE_POSTGRES"
REQUIRE_REDIS = "STRONGROOM_REQUIRE_REDIS"
REQUIRE_SHARED_DATA = "STRONGROOM_REQUIRE_SHARED_DATA"
REQUIRE_STRACE = "STRONGROOM_REQUIRE_STRACE"


def flag(name: str) -> bool:
    """True when the environment variable `name` is set to one of TRUE_VALUES."""
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


def skip_or_fail(message: str, *require: str) -> None:
    """Skip the current test, or fail it when any of the `require` flags is on (pass "CI"
    among them for a tool that CI installs itself)."""
    on = [name for name in require if flag(name)]
    if on:
        pytest.fail(f"{message} ({', '.join(on)} set, so this is an error)")
    pytest.skip(message)
