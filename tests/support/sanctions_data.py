"""Where the screening tests find the shared sanctions data, skipping (or failing under
STRONGROOM_REQUIRE_SHARED_DATA) when it is absent."""

from __future__ import annotations

from pathlib import Path

from tests.support import flags

SANCTIONS = Path("/work/shared/data/sanctions")
LISTS = SANCTIONS / "sanctions_lists_watchman"
NAMES = SANCTIONS / "name_bench_nomenklatura"
YENTE = SANCTIONS / "screening_bench_yente"


def need(path: Path) -> Path:
    if not path.exists():
        flags.skip_or_fail(f"shared sanctions data not found at {path}", flags.REQUIRE_SHARED_DATA)
    return path
