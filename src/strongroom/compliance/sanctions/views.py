"""A match as the API and the CLI show it (JSON-ready): score, list, entry id, the entry's
primary name and kind, and the explanation."""

from __future__ import annotations

from typing import Any

from strongroom.compliance.sanctions.model import Match


def match_dict(match: Match) -> dict[str, Any]:
    return {
        "score": round(match.score, 4),
        "list": match.entry.source.value,
        "entry_id": match.entry.entry_id,
        "entry_name": match.entry.names[0] if match.entry.names else None,
        "kind": match.entry.kind.value,
        "programs": list(match.entry.programs),
        "explanation": match.explanation.to_dict(),
    }
