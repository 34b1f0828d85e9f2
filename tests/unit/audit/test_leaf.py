"""The leaf encoding: the bulk fast path writes exactly what the general path writes, every
leaf is JSON that parses back, and text that needs escaping is escaped."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from strongroom.audit import leaf
from strongroom.audit.store import leaf_type, pack_bundle, unpack_bundle

ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
small = st.integers(min_value=0, max_value=2**63 - 1)


def _entries(tid: str, debit: str, credit: str, amount: int, at: int) -> list[tuple[int, ...]]:
    return [
        (1, debit, 3, None, tid, 0, amount, 0, amount, 0, 0, 0, at),  # type: ignore[list-item]
        (2, credit, 7, None, tid, 1, amount, 0, 0, amount, 0, 0, at),  # type: ignore[list-item]
    ]


@given(tid=ids, ledger=ids, debit=ids, credit=ids, amount=small, at=small, pending=st.booleans())
def test_the_fast_path_writes_what_the_general_path_writes(
    tid: str, ledger: str, debit: str, credit: str, amount: int, at: int, pending: bool
) -> None:
    row = (
        0,
        tid,
        ledger,
        0,
        1 if pending else 0,
        debit,
        credit,
        amount,
        None,
        None,
        pending,
        0,
        None,
        None,
        at,
        None,
    )
    entries = _entries(tid, debit, credit, amount, at)
    fast = leaf.transfer_leaf("transfer.created", row, entries)  # type: ignore[arg-type]
    general = leaf._general("transfer.created", row, entries)  # type: ignore[arg-type]
    assert fast == general
    parsed = leaf.parse(fast)
    assert parsed["transfer"]["id"] == tid
    assert parsed["entries"][0][:4] == [debit, 3, "debit", amount]
    assert leaf_type(fast) == "transfer.created"


def test_other_shapes_and_escapes() -> None:
    row = (
        0,
        'tr_"q"\\',
        "ldg_1",
        1,
        0,
        None,
        None,
        50,
        '[["a", 0, 50], ["b", 1, 50]]',
        "tr_target",
        False,
        0,
        123,
        '{"k":"v"}',
        99,
        77,
    )
    data = leaf.transfer_leaf("transfer.posted", row, [])  # type: ignore[arg-type]
    parsed = json.loads(data)
    assert parsed["transfer"]["id"] == 'tr_"q"\\'
    assert parsed["transfer"]["legs"] == [["a", 0, 50], ["b", 1, 50]]
    assert (parsed["transfer"]["expires_at"], parsed["transfer"]["effective_at"]) == (123, 77)
    assert parsed["transfer"]["metadata"] == {"k": "v"}
    record = leaf.record_leaf("audit.key_rotated", 5, "system", {"b": 1, "a": "x"})
    assert (
        record
        == b'{"v":1,"type":"audit.key_rotated","at":5,"actor":"system","data":{"a":"x","b":1}}'
    )


def test_bundles_round_trip_and_refuse_a_cut_blob() -> None:
    leaves = [b"", b"x", b"y" * 70_000]
    packed = pack_bundle(leaves)
    assert unpack_bundle(packed) == leaves
    for cut in (1, 5, len(packed) - 1):
        try:
            unpack_bundle(packed[:cut])
        except ValueError:
            continue
        raise AssertionError(f"a blob cut at {cut} was read")
