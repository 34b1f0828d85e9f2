"""The leak scanner (tests/support/leaks.py) finds a planted secret in every form it claims
to: otherwise a clean scan would prove nothing."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import sqlalchemy as sa

from tests.support import leaks

PAN = "4111111111111111"


def test_a_planted_value_is_found_in_each_form(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (a TEXT, b BLOB)"))
        for a, b in (
            (f"card {PAN} here", None),
            (base64.b64encode(PAN.encode()).decode(), None),
            (PAN.encode().hex(), None),
            (None, zlib.compress(b'{"number":"' + PAN.encode() + b'"}')),
            ("nothing", b"nothing"),
        ):
            conn.execute(sa.text("INSERT INTO t VALUES (:a, :b)"), {"a": a, "b": b})
    cells = list(leaks.database_cells(engine))
    assert len(leaks.find(cells, {"pan": PAN})) == 2  # t.a (three rows) and t.b
    hits = [where for where, blob in cells if any(form in blob for form in leaks.forms(PAN))]
    assert hits.count("t.a") == 3
    assert hits.count("t.b") == 1
    assert leaks.find([("x", b"nothing to see")], {"pan": PAN}) == []
    engine.dispose()
