"""The leaf encoding: the bulk fast path writes exactly what the general path writes, every
leaf decodes back to what was encoded (amounts across the whole 128-bit range), the layout is
the documented one, version 1 leaves still decode, and bytes that are not a leaf are refused."""

from __future__ import annotations

import struct

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from strongroom.audit import leaf
from strongroom.audit.store import (
    leaves_holding,
    open_bundle,
    pack_bundle,
    split_bundle,
    unpack_bundle,
)
from strongroom.core.limits import AUDIT_BUNDLE_BYTES_MAX

ids = st.text(min_size=1, max_size=64)
i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
amount = st.integers(min_value=0, max_value=2**63 - 1)
amount128 = st.integers(min_value=1, max_value=2**128 - 1) | st.sampled_from(
    [2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**27, 2**128 - 1]
)


def _row(tid: str, ledger: str, debit: str, credit: str, n: int, at: int, pending: bool) -> tuple:  # type: ignore[type-arg]
    return (0, tid, ledger, 0, 1 if pending else 0, debit, credit, n, None, None, pending,
            0, None, None, at, None)  # fmt: skip


def _entries(tid: str, debit: str, credit: str, n: int, at: int) -> list[tuple]:  # type: ignore[type-arg]
    return [
        (1, debit, 3, None, tid, 0, n, 0, n, 0, 0, 0, at),
        (2, credit, 7, None, tid, 1, n, 0, 0, n, 0, 0, at),
    ]


@given(tid=ids, ledger=ids, debit=ids, credit=ids, n=amount, at=i64, pending=st.booleans())
def test_the_fast_path_writes_what_the_general_path_writes(
    tid: str, ledger: str, debit: str, credit: str, n: int, at: int, pending: bool
) -> None:
    row = _row(tid, ledger, debit, credit, n, at, pending)
    entries = _entries(tid, debit, credit, n, at)
    fast = leaf.transfer_leaf("transfer.created", row, entries, wide=False)  # type: ignore[arg-type]
    assert fast == leaf._general("transfer.created", row, entries)  # type: ignore[arg-type]
    assert fast == leaf.transfer_leaf("transfer.created", row, entries)  # type: ignore[arg-type]
    parsed = leaf.parse(fast)
    assert parsed["type"] == leaf.leaf_type(fast) == "transfer.created"
    assert parsed["transfer"]["id"] == tid
    assert parsed["transfer"]["pending"] is pending
    assert parsed["entries"] == [
        [debit, 3, "debit", n, 0, n, 0, 0, 0, at],
        [credit, 7, "credit", n, 0, 0, n, 0, 0, at],
    ]
    assert fast[3:].startswith(leaf.transfer_id_prefix(tid))


@given(tid=ids, actor=st.none() | ids, other=st.none() | ids, n=amount, paired=st.booleans())
def test_the_fast_path_writes_each_actor_as_the_general_path_does(
    tid: str, actor: str | None, other: str | None, n: int, paired: bool
) -> None:
    """One actor for a batch, or one per transfer (a coalesced batch of several keys)."""
    rows = [_row(tid, "ldg", "acc_a", "acc_b", n, 1, False),
            _row(tid + "2", "ldg", "acc_a", "acc_b", n, 1, False)]  # fmt: skip
    entries = [*_entries(tid, "acc_a", "acc_b", n, 1), *_entries(tid + "2", "acc_a", "acc_b", n, 1)]
    kinds = ["transfer.created"] * 2
    one = leaf.batch_leaves(kinds, rows, entries, wide=False, actor=actor)  # type: ignore[arg-type]
    assert one == [leaf._general(k, r, entries[2 * i : 2 * i + 2], actor)  # type: ignore[arg-type]
                   for i, (k, r) in enumerate(zip(kinds, rows, strict=True))]  # fmt: skip
    assert [leaf.parse(x)["actor"] for x in one] == [actor, actor]
    actors = {tid: actor, tid + "2": other}
    each = leaf.batch_leaves(kinds, rows, entries, wide=paired, actors=actors)  # type: ignore[arg-type]
    assert [leaf.parse(x)["actor"] for x in each] == [actor, other]
    assert each[0] == one[0]


@given(n=amount128, pending=st.booleans())
def test_wide_amounts_round_trip_and_only_wide_leaves_are_wide(n: int, pending: bool) -> None:
    row = _row("tr_1", "ldg_1", "acc_a", "acc_b", n, 5, pending)
    entries = _entries("tr_1", "acc_a", "acc_b", n, 5)
    entries.append((3, "acc_c", 1, None, "tr_1", 1, 0, -n, 0, 0, 0, 0, 5))  # a release
    data = leaf.transfer_leaf("transfer.created", row, entries)  # type: ignore[arg-type]
    wide = n > 2**63 - 1
    assert data[16] == (leaf.WIDTH_WIDE if wide else leaf.WIDTH_NARROW)  # after id and ledger
    parsed = leaf.parse(data)
    assert parsed["transfer"]["amount"] == n
    assert parsed["entries"][0] == ["acc_a", 3, "debit", n, 0, n, 0, 0, 0, 5]
    assert parsed["entries"][2] == ["acc_c", 1, "credit", 0, -n, 0, 0, 0, 0, 5]
    assert (parsed["actor"], parsed["gates"]) == (None, None)


def test_the_layout_is_the_documented_one() -> None:
    row = _row("tr_1", "ldg_1", "acc_a", "acc_b", 500, 1_000, False)
    data = leaf.transfer_leaf("transfer.posted", row, _entries("tr_1", "acc_a", "acc_b", 500, 9))  # type: ignore[arg-type]
    head = b"\x02\x01\x01" + b"\x00\x04tr_1" + b"\x00\x05ldg_1" + b"\x08" + b"\x00\x00"
    head += b"\x00\x05acc_a\x00\x05acc_b" + struct.pack(">q", 500) + b"\xff\xff\xff\xff"
    head += b"\x00" + struct.pack(">q", 0) + b"\x00\x00" + b"\xff\xff" + struct.pack(">q", 1_000)
    head += b"\x00\x02"
    assert data.startswith(head)
    assert data.endswith(b"\xff\xff\xff\xff")  # no actor, no gate decisions
    # Each entry refers to the transfer's debit or credit account (2 bytes), not the id again.
    assert len(data) == len(head) + 2 * (2 + 8 + 1 + 7 * 8) + 4
    # The same change past 64 bits: every money field is 17 bytes, two's complement.
    big = 2**100
    wide = leaf.transfer_leaf(
        "transfer.posted",
        _row("tr_1", "ldg_1", "acc_a", "acc_b", big, 1_000, False),
        _entries("tr_1", "acc_a", "acc_b", big, 9),
    )  # type: ignore[arg-type]
    head = b"\x02\x01\x01" + b"\x00\x04tr_1" + b"\x00\x05ldg_1" + b"\x11" + b"\x00\x00"
    head += b"\x00\x05acc_a\x00\x05acc_b" + big.to_bytes(17, "big") + b"\xff\xff\xff\xff"
    assert wide.startswith(head)
    assert len(wide) == len(data) + 9 + 2 * 6 * 9


def test_version_1_leaves_still_decode() -> None:
    """A leaf as written before 128-bit amounts (version 1: no width byte, 8-byte money, no
    actor or gate fields), byte for byte as docs/audit.md described it."""
    v1 = b"\x01\x01\x00" + b"\x00\x04tr_1" + b"\x00\x05ldg_1" + b"\x00\x00"
    v1 += b"\x00\x05acc_a\x00\x05acc_b" + struct.pack(">q", 500) + b"\xff\xff\xff\xff"
    v1 += b"\x00" + struct.pack(">q", 0) + b"\x00\x00" + b"\xff\xff" + struct.pack(">q", 1_000)
    v1 += b"\x00\x01" + b"\x00\x05acc_a" + struct.pack(">qBqqqqqqq", 1, 0, 500, 0, 500, 0, 0, 0, 9)
    parsed = leaf.parse(v1)
    assert parsed["v"] == 1
    assert parsed["transfer"]["amount"] == 500
    assert parsed["entries"] == [["acc_a", 1, "debit", 500, 0, 500, 0, 0, 0, 9]]
    assert "actor" not in parsed
    assert leaf.leaf_type(v1) == "transfer.created"
    assert leaf.is_ledger_change(v1)
    record_v1 = b"\x01\x02" + b"\x00\x03x.y" + struct.pack(">q", 5) + b"\x00\x01a\x00\x02{}"
    assert leaf.parse(record_v1) == {"v": 1, "type": "x.y", "at": 5, "actor": "a", "data": {}}


def test_a_wide_leaf_of_narrow_money_is_not_canonical() -> None:
    data = leaf.transfer_leaf("transfer.created", _row("t", "l", "a", "b", 7, 1, False), [])  # type: ignore[arg-type]
    assert data[9] == leaf.WIDTH_NARROW  # after the header, "t" and "l"
    forged = data[:9] + bytes([leaf.WIDTH_WIDE]) + data[10:18] + (7).to_bytes(17, "big") + data[26:]
    with pytest.raises(leaf.LeafError, match="not canonical"):
        leaf.parse(forged)


def test_other_shapes_decode() -> None:
    row = (0, 'tr_"q"\\é', "ldg_1", 1, 0, None, None, 50, '[["a", 0, 50], ["b", 1, 50]]',
           "tr_target", False, 0, 123, '{"k":"v"}', 99, 77)  # fmt: skip
    parsed = leaf.parse(leaf.transfer_leaf("transfer.posted", row, []))  # type: ignore[arg-type]
    transfer = parsed["transfer"]
    assert transfer["id"] == 'tr_"q"\\é'
    assert transfer["legs"] == [["a", 0, 50], ["b", 1, 50]]
    assert (transfer["expires_at"], transfer["effective_at"]) == (123, 77)
    assert (transfer["metadata"], transfer["action"], parsed["entries"]) == ({"k": "v"}, "post", [])
    record = leaf.record_leaf("audit.key_rotated", 5, "system", {"b": 1, "a": "x"})
    assert leaf.parse(record) == {
        "v": 2,
        "type": "audit.key_rotated",
        "at": 5,
        "actor": "system",
        "data": {"a": "x", "b": 1},
    }
    assert leaf.leaf_type(record) == "audit.key_rotated"


def test_bytes_that_are_not_a_leaf_are_refused() -> None:
    good = leaf.record_leaf("x.y", 1, "a", {})
    for bad in (b"", b"\x02\x01", b"\x01\x09", good[:-1], good + b"\x00", b"\x01\x01\x07",
                b"\x03\x02\x00\x01x", b"\x02\x01\x00\x00\x01t\x00\x01l\x09"):  # fmt: skip
        with pytest.raises(leaf.LeafError):
            leaf.parse(bad)
    assert leaf.leaf_type(b"\x07") == "unknown"


def test_bundles_round_trip_and_refuse_a_cut_blob() -> None:
    leaves = [b"", b"x", b"y" * 70_000]
    packed = pack_bundle(leaves)
    assert unpack_bundle(packed) == leaves
    assert len(packed) < 1_000  # stored compressed
    for cut in (len(packed) // 2, len(packed) - 1):
        with pytest.raises(ValueError, match="a bundle does not open"):
            unpack_bundle(packed[:cut])
    opened = open_bundle(packed)
    assert split_bundle(opened) == leaves
    for cut in (1, 5, len(opened) - 1):
        with pytest.raises(ValueError, match="bundle ends"):
            split_bundle(opened[:cut])


def test_a_bundle_written_before_compression_still_reads() -> None:
    leaves = [b"\x02\x01abc", b"", b"z" * 300]
    legacy = b"".join(len(x).to_bytes(4, "big") + x for x in leaves)
    assert open_bundle(legacy) == legacy
    assert unpack_bundle(legacy) == leaves


def test_a_damaged_compressed_bundle_is_refused_before_it_is_allocated() -> None:
    packed = pack_bundle([b"leaf" * 100] * 50)
    with pytest.raises(ValueError, match="does not decompress"):
        unpack_bundle(packed + b"\x00")
    flipped = bytearray(packed)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(ValueError, match="bundle"):
        unpack_bundle(bytes(flipped))
    # A frame header (single segment, 8-byte content size) claiming a terabyte: refused from
    # the header, nothing decompressed.
    huge = b"\x28\xb5\x2f\xfd" + bytes([0b1110_0000]) + (1 << 40).to_bytes(8, "little")
    with pytest.raises(ValueError, match="says it holds"):
        unpack_bundle(huge + b"\x01\x00\x00")
    # A frame that does not record its size: refused, not decompressed into a guess.
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(b"x" * 1_000)
    with pytest.raises(ValueError, match="does not record its size"):
        unpack_bundle(unsized)


def test_a_bundle_too_large_to_compress_is_stored_packed() -> None:
    leaves = [bytes([i % 251]) * 65_000 for i in range(AUDIT_BUNDLE_BYTES_MAX // 65_000 + 1)]
    packed = pack_bundle(leaves)
    assert packed[:4] == (65_000).to_bytes(4, "big")  # packed, not a frame
    assert unpack_bundle(packed) == leaves


def test_a_bulk_batch_bundle_compresses_several_times() -> None:
    leaves = []
    for i in range(1_000):
        tid, debit, credit = f"tr_{i:026d}", f"acc_{i % 97:026d}", f"acc_{i % 89 + 97:026d}"
        row = _row(tid, "ldg_1", debit, credit, 500 + i, 1_000, False)
        entries = _entries(tid, debit, credit, 500 + i, 1_000)
        leaves.append(leaf.transfer_leaf("transfer.created", row, entries))  # type: ignore[arg-type]
    raw = sum(4 + len(x) for x in leaves)
    packed = pack_bundle(leaves)
    assert unpack_bundle(packed) == leaves
    assert len(packed) * 4 < raw


def test_entries_refer_to_the_transfers_accounts_and_only_that_way() -> None:
    row = _row("tr_1", "ldg_1", "acc_a", "acc_b", 500, 1_000, False)
    entries = _entries("tr_1", "acc_a", "acc_b", 500, 9)
    data = leaf.transfer_leaf("transfer.created", row, entries)  # type: ignore[arg-type]
    parsed = leaf.parse(data)
    assert [e[0] for e in parsed["entries"]] == ["acc_a", "acc_b"]
    # The same leaf with the debit entry's account written out in full: another encoding of
    # the same change, refused.
    ref = b"\xff\xfe" + struct.pack(">q", 3)
    assert data.count(ref) == 1
    full = data.replace(ref, b"\x00\x05acc_a" + struct.pack(">q", 3))
    with pytest.raises(leaf.LeafError, match="not canonical"):
        leaf.parse(full)
    # A reference where the transfer names no such account (a multi-leg transfer's row).
    legs = (0, "tr_2", "ldg_1", 0, 0, None, None, 5, '[["x", 0, 5], ["y", 1, 5]]', None,
            False, 0, None, None, 1, None)  # fmt: skip
    multi = leaf.transfer_leaf(
        "transfer.created", legs, [(1, "x", 1, None, "tr_2", 0, 5, 0, 5, 0, 0, 0, 1)]
    )  # type: ignore[arg-type]
    assert leaf.parse(multi)["entries"][0][0] == "x"
    forged = multi.replace(b"\x00\x01x" + struct.pack(">q", 1), b"\xff\xfe" + struct.pack(">q", 1))
    with pytest.raises(leaf.LeafError, match="does not name"):
        leaf.parse(forged)


@given(
    tid=ids,
    debit=ids,
    n=amount128,
    pending=st.booleans(),
    target=st.none() | ids,
    expires=st.none() | i64,
    metadata=st.none() | st.just('{"k":"v"}'),
)
def test_transfer_head_reads_what_parse_reads(
    tid: str,
    debit: str,
    n: int,
    pending: bool,
    target: str | None,
    expires: int | None,
    metadata: str | None,
) -> None:
    """verify's partial decoder: the fields it returns are parse's, and its body is every byte
    of the transfer but the status: equal for two leaves of one transfer in two states, and
    different as soon as anything else differs."""
    row = (0, tid, "ldg_1", 1, 1 if pending else 0, debit, "acc_b", n, None, target, pending,
           60, expires, metadata, 99, None)  # fmt: skip
    entries = _entries(tid, debit, "acc_b", n, 5)
    data = leaf.transfer_leaf("transfer.posted", row, entries)  # type: ignore[arg-type]
    head = leaf.transfer_head(data)
    assert head is not None
    parsed = leaf.parse(data)["transfer"]
    assert (head.event, head.id, head.action, head.target_id) == (
        "transfer.posted",
        tid,
        parsed["action"],
        target,
    )
    assert head.status == (1 if pending else 0)
    voided = leaf.transfer_leaf("transfer.expired", (*row[:4], 2, *row[5:]), entries)  # type: ignore[arg-type]
    assert (other := leaf.transfer_head(voided)) is not None
    assert other.body == head.body
    assert other.status == 2
    changed = leaf.transfer_leaf("transfer.posted", (*row[:14], 100, None), entries)  # type: ignore[arg-type]
    assert (third := leaf.transfer_head(changed)) is not None
    assert third.body != head.body
    for cut in range(3, 4 + len(head.body)):  # cut anywhere in the transfer
        with pytest.raises(leaf.LeafError):
            leaf.transfer_head(data[:cut])
    assert leaf.transfer_head(leaf.record_leaf("x.y", 1, "a", {})) is None


def test_leaves_holding_finds_only_the_leaves_that_hold_a_needle() -> None:
    """A transfer's receipt reads the one leaf of a bulk bundle that names it: the bundle is
    searched whole, then walked only to the last match, cutting out only the leaves found."""
    leaves = [b"alpha-1", b"beta-22", b"gamma-333", b"beta-22 again beta-22", b"omega"]
    opened = open_bundle(pack_bundle(leaves))
    assert leaves_holding(opened, [b"beta-22"]) == [(1, leaves[1]), (3, leaves[3])]
    assert leaves_holding(opened, [b"alpha", b"omega"]) == [(0, leaves[0]), (4, leaves[4])]
    assert leaves_holding(opened, [b"nowhere"]) == []
    # Bytes that only occur across a length prefix (not inside one leaf) are no leaf's.
    prefix_bytes = (len(leaves[2])).to_bytes(4, "big")
    assert all(prefix_bytes not in leaf for leaf in leaves)
    assert leaves_holding(opened, [prefix_bytes]) == []
    # A bundle whose prefixes do not hold together, before the match, is refused.
    broken = b"\x7f" + opened[1:]  # the first leaf's length, now past the end
    with pytest.raises(ValueError, match="ends inside"):
        leaves_holding(broken, [b"omega"])
