"""docs/operations.md names every setting, so that none is a secret to its operators."""

from __future__ import annotations

from pathlib import Path

from strongroom.settings import ENV_PREFIX, Settings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_setting_is_in_the_settings_table() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    table = text[text.index("## Settings") :]
    missing = [
        name for name in Settings.model_fields if f"| `{ENV_PREFIX}{name.upper()}` |" not in table
    ]
    assert not missing, f"document these settings in docs/operations.md: {missing}"
