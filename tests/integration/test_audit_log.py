"""The audit log on a real database (SQLite and PostgreSQL): every ledger change is a leaf in
its transaction, proofs come from stored tiles and verify, checkpoints are signed and kept,
and `verify` catches a changed, deleted, inserted or reordered row, naming the first bad leaf.
"""

from __future__ import annotations

import base64
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from strongroom.audit import note as notes
from strongroom.audit.checkpoint import parse as parse_checkpoint
from strongroom.audit.leaf import parse
from strongroom.audit.merkle import (
    MemoryTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from strongroom.audit.offline import verify_export
from strongroom.audit.service import KEY_ROTATED, AuditLog, VerifyReport
from strongroom.audit.store import BundleDamaged, pack_bundle, unpack_bundle
from strongroom.audit.verify import _TransferTrail
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Action, Direction, NewTransfer, TransferResult
from strongroom.ledger.service import LedgerService

R = TransferResult
BASE = 3  # a Book's first leaves: its ledger and two accounts created


@dataclass
class Book:
    ledger: LedgerService
    audit: AuditLog
    tenant: str
    ledger_id: str
    a: str
    b: str

    def move(self, amount: int, **extra: object) -> str:
        outcome = self.ledger.transfer(self.ledger_id, self.a, self.b, amount, **extra)  # type: ignore[arg-type]
        assert outcome.result is R.CREATED
        return outcome.transfer_id

    def put_leaf(self, index: int, data: bytes) -> None:
        """Overwrite a one-leaf bundle's content (the tests move one transfer at a time)."""
        self.sql(
            "UPDATE audit_bundles SET data = ? WHERE log_id = ? AND first_idx = ?",
            pack_bundle([data]),
            self.tenant,
            index,
        )

    def sql(self, statement: str, *params: object) -> None:
        with UnitOfWork(self.ledger.engine) as uow:
            cur = uow.cursor()
            cur.execute(statement if uow.sqlite else statement.replace("?", "%s"), params)
            uow.commit()


def _book(engine: Engine, tenant: str = "ten_default") -> Book:
    ledger = LedgerService(engine)
    audit = AuditLog(engine, tenant_of=ledger.ledger_tenants)
    ledger = LedgerService(engine, sinks=[audit], recorder=audit)
    ldg = ledger.create_ledger("books", tenant_id=tenant)
    a = ledger.create_account(ldg.id, "USD", Direction.DEBIT).id
    b = ledger.create_account(ldg.id, "USD", Direction.CREDIT).id
    return Book(ledger, audit, tenant, ldg.id, a, b)


@pytest.fixture
def book(db_engine: Engine) -> Book:
    return _book(db_engine)


def _flipped(leaf: bytes) -> bytes:
    """The leaf with its last byte changed (an entry's time, in a ledger leaf)."""
    return leaf[:-1] + bytes([leaf[-1] ^ 1])


def _leaf_bytes(book: Book, start: int = 0, limit: int = 1000) -> list[bytes]:
    rows, _size = book.audit.leaves(book.tenant, start, limit)
    return [base64.b64decode(r["leaf"]) for r in rows]


def test_every_ledger_change_is_one_leaf_in_its_transaction(book: Book) -> None:
    first = book.move(10)
    hold = book.move(30, pending=True, timeout_s=3600)
    post = book.ledger.post_transfers(
        [NewTransfer("tr_post1", book.ledger_id, action=Action.POST, target_id=hold, amount=20)]
    )[0]
    assert post.result is R.CREATED
    # A refused transfer and a replay write no leaf.
    refused = book.ledger.transfer(book.ledger_id, book.a, book.a, 5)
    assert refused.result is not R.CREATED
    replay = book.ledger.transfer(book.ledger_id, book.a, book.b, 10, id=first)
    assert replay.result is R.EXISTS

    datas = _leaf_bytes(book)
    everything = [parse(d) for d in datas]
    # The ledger and its accounts came first, without names or metadata.
    assert [x["type"] for x in everything[:3]] == ["ledger.created", *["account.created"] * 2]
    assert everything[1]["data"] == {
        "account_id": book.a,
        "ledger_id": book.ledger_id,
        "asset": "USD",
        "normal_balance": "debit",
        "flags": [],
    }
    leaves = everything[3:]
    assert [(x["type"], x["transfer"]["id"]) for x in leaves] == [
        ("transfer.created", first),
        ("transfer.created", hold),
        ("transfer.posted", "tr_post1"),
    ]
    assert leaves[0]["transfer"]["amount"] == 10
    # Each entry carries the account's gap-free version and its counters after it.
    assert [(e[0], e[1], e[2], e[3]) for e in leaves[0]["entries"]] == [
        (book.a, 1, "debit", 10),
        (book.b, 1, "credit", 10),
    ]
    assert book.audit.leaf_indexes(book.tenant, first) == [3]
    book.ledger.close_account(book.b)
    closed = parse(_leaf_bytes(book)[-1])
    assert (closed["type"], closed["data"]) == ("account.closed", {"account_id": book.b})


def test_a_batch_rolled_back_leaves_no_leaf(book: Book) -> None:
    book.move(1)
    batch = [
        NewTransfer("tr_ok", book.ledger_id, book.a, book.b, 5),
        NewTransfer("tr_bad", book.ledger_id, book.a, book.a, 5),
    ]
    outcomes = book.ledger.post_transfers(batch, atomic=True)
    assert all(o.result is not R.CREATED for o in outcomes)
    assert len(_leaf_bytes(book)) == BASE + 1


def test_proofs_from_tiles_match_an_in_memory_tree_and_verify(book: Book) -> None:
    batch = [NewTransfer(f"tr_b{i:04d}", book.ledger_id, book.a, book.b, i + 1) for i in range(300)]
    assert all(o.result is R.CREATED for o in book.ledger.post_transfers(batch))
    for i in range(7):
        book.move(1000 + i)
    datas = _leaf_bytes(book)
    assert len(datas) == BASE + 307
    tree = MemoryTree()
    tree.extend(datas)
    for size in (1, 2, 17, 256, 300, 310):
        root = tree.root(size)
        for index in {0, size // 2, size - 1}:
            proof = book.audit.inclusion(book.tenant, index, size)
            assert proof == tree.inclusion_proof(index, size)
            verify_inclusion(leaf_hash(datas[index]), index, size, proof, root)
        for first in {1, size // 3 or 1, size}:
            proof = book.audit.consistency(book.tenant, first, size)
            verify_consistency(first, size, proof, tree.root(first), root)


def test_checkpoints_are_signed_notes_kept_for_every_size(book: Book) -> None:
    book.move(1)
    [cp1] = book.audit.publish()
    assert book.audit.publish() == [cp1]  # nothing new: the same checkpoint
    book.move(2)
    book.move(3)
    [cp3] = book.audit.publish()
    assert (cp1.size, cp3.size) == (BASE + 1, BASE + 3)
    [key] = book.audit.verifier_keys()
    verifier = notes.Verifier(key["verifier_key"])
    for cp in (cp1, cp3):
        opened = notes.open(cp.note, [verifier])
        parsed = parse_checkpoint(opened.text)
        assert parsed.origin == f"strongroom.localhost/audit/{book.tenant}"
        assert (parsed.size, parsed.root_hash) == (cp.size, cp.root)
    assert book.audit.checkpoint(book.tenant, BASE + 1).note == cp1.note
    assert book.audit.latest(book.tenant).size == BASE + 3
    proof = book.audit.consistency(book.tenant, BASE + 1, BASE + 3)
    verify_consistency(BASE + 1, BASE + 3, proof, cp1.root, cp3.root)


def test_key_rotation_is_a_leaf_and_both_keys_sign_the_transition(book: Book) -> None:
    book.move(1)
    [before] = book.audit.publish()
    old_key = book.audit.verifier_keys()[0]["verifier_key"]
    new_key = book.audit.rotate_key()
    keys = book.audit.verifier_keys()
    assert [k["verifier_key"] for k in keys] == [old_key, new_key]
    assert keys[0]["retired_at"] is not None
    assert keys[1]["retired_at"] is None
    rotation = parse(_leaf_bytes(book)[-1])
    assert rotation["type"] == KEY_ROTATED
    assert rotation["data"] == {"old_key": old_key, "new_key": new_key}
    transition = book.audit.latest(book.tenant)
    assert transition.size == BASE + 2
    for vkey in (old_key, new_key):  # each key alone verifies the transition checkpoint
        notes.open(transition.note, [notes.Verifier(vkey)])
    book.move(2)
    [after] = book.audit.publish()
    notes.open(after.note, [notes.Verifier(new_key)])
    with pytest.raises(notes.NoteError):
        notes.open(after.note, [notes.Verifier(old_key)])
    assert book.audit.verify().ok
    assert before.size == BASE + 1


def test_receipt_is_self_contained(book: Book) -> None:
    tid = book.move(42)
    receipt = book.audit.receipt(book.tenant, tid)
    vkey = book.audit.verifier_keys()[-1]["verifier_key"]
    checkpoint = parse_checkpoint(notes.open(receipt["checkpoint"], [notes.Verifier(vkey)]).text)
    [entry] = receipt["leaves"]
    data = base64.b64decode(entry["leaf"])
    assert parse(data)["transfer"]["id"] == tid
    proof = [base64.b64decode(h) for h in entry["inclusion_proof"]]
    verify_inclusion(leaf_hash(data), entry["index"], checkpoint.size, proof, checkpoint.root_hash)


def _published(book: Book, count: int = 20) -> None:
    for i in range(count):
        book.move(i + 1)
        if i in (4, 11):
            book.audit.publish()
    book.audit.publish()
    report = book.audit.verify()
    assert report.ok, report.problems
    assert (report.leaves, report.checkpoints, report.transfers) == (BASE + count, 3, count)


def test_verify_names_a_changed_leaf(book: Book) -> None:
    _published(book)
    book.put_leaf(7, _flipped(_leaf_bytes(book, 7, 1)[0]))
    problems = book.audit.verify().problems
    assert problems[0] == f"log {book.tenant}: leaf 7 does not match the tree (changed?)"


def test_verify_names_a_deleted_leaf(book: Book) -> None:
    _published(book)
    book.sql("DELETE FROM audit_bundles WHERE log_id = ? AND first_idx = 3", book.tenant)
    problems = book.audit.verify().problems
    assert problems[0] == f"log {book.tenant}: leaf 3 is missing (next stored: 4)"


def test_verify_catches_reordered_leaves(book: Book) -> None:
    _published(book)
    six, seven = _leaf_bytes(book, 6, 2)
    book.put_leaf(6, seven)
    book.put_leaf(7, six)
    problems = book.audit.verify().problems
    assert problems[0] == f"log {book.tenant}: leaf 6 does not match the tree (changed?)"


def test_verify_catches_an_inserted_leaf_and_a_rewritten_tree(book: Book) -> None:
    _published(book)
    fake = _leaf_bytes(book, 0, 1)[0]
    book.sql(
        "INSERT INTO audit_bundles (log_id, first_idx, count, created_at, data) "
        "VALUES (?, 23, 1, 0, ?)",
        book.tenant,
        pack_bundle([fake]),
    )
    problems = book.audit.verify().problems
    assert problems[0] == f"log {book.tenant}: leaf 23 is beyond the log's size 23"
    # A forger who rewrites leaf, tiles and size together still cannot match the signed
    # checkpoints: rebuild the tree over a changed leaf 2 and check again.
    book.sql("DELETE FROM audit_bundles WHERE log_id = ? AND first_idx = 23", book.tenant)
    book.put_leaf(5, _flipped(_leaf_bytes(book, 5, 1)[0]))
    datas = _leaf_bytes(book)
    book.sql("DELETE FROM audit_tiles WHERE log_id = ?", book.tenant)
    book.sql("UPDATE audit_logs SET size = 0 WHERE log_id = ?", book.tenant)
    book.sql("DELETE FROM audit_bundles WHERE log_id = ?", book.tenant)
    with UnitOfWork(book.ledger.engine) as uow:
        book.audit.append(uow, book.tenant, [("transfer.created", None, d) for d in datas])
        uow.commit()
    problems = book.audit.verify().problems
    assert f"log {book.tenant}: the leaves up to 8 do not give checkpoint 8's root" in problems


def test_verify_catches_a_ledger_row_changed_behind_the_log(book: Book) -> None:
    _published(book)
    tid = book.move(77)
    book.sql("UPDATE transfers SET amount = 78 WHERE id = ?", tid)
    assert book.audit.verify().problems == [f"transfer {tid} differs from its leaf"]
    last = book.audit.leaf_indexes(book.tenant, tid)[-1]
    book.sql("DELETE FROM audit_bundles WHERE first_idx = ?", last)
    book.sql("UPDATE audit_logs SET size = size - 1")
    assert f"transfer {tid} has no leaf in the audit log" in book.audit.verify().problems


def test_each_tenant_has_its_own_log(db_engine: Engine) -> None:
    one = _book(db_engine, "ten_one")
    two = _book(db_engine, "ten_two")
    one.move(1)
    two.move(2)
    two.move(3)
    assert len(_leaf_bytes(one)) == BASE + 1
    assert len(_leaf_bytes(two)) == BASE + 2
    sizes = {cp.log_id: cp.size for cp in one.audit.publish()}
    assert sizes == {"ten_one": BASE + 1, "ten_two": BASE + 2}


def test_an_expiry_is_a_second_leaf_of_its_transfer(book: Book) -> None:
    hold = book.move(9, pending=True, timeout_s=1)
    time.sleep(1.05)  # the shortest timeout is a second
    expired = book.ledger.expire_due()
    assert expired == 1
    created, gone = book.audit.leaf_indexes(book.tenant, hold)
    leaves = [parse(d) for d in _leaf_bytes(book, created, gone - created + 1)]
    assert (leaves[0]["type"], leaves[-1]["type"]) == ("transfer.created", "transfer.expired")
    assert leaves[-1]["transfer"]["status"] == "expired"
    assert leaves[-1]["entries"][0][4] == -9  # the reservation released
    receipt = book.audit.receipt(book.tenant, hold)
    assert [x["index"] for x in receipt["leaves"]] == [created, gone]
    assert book.audit.verify().ok


def test_a_bulk_batch_is_one_bundle_and_a_changed_leaf_in_it_is_named(book: Book) -> None:
    batch = [NewTransfer(f"tr_k{i:03d}", book.ledger_id, book.a, book.b, i + 1) for i in range(50)]
    assert all(o.result is R.CREATED for o in book.ledger.post_transfers(batch))
    book.audit.publish()
    assert book.audit.leaf_indexes(book.tenant, "tr_k017") == [BASE + 17]
    with UnitOfWork(book.ledger.engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute(
            "SELECT first_idx, count, data FROM audit_bundles WHERE first_idx = "
            + ("?" if uow.sqlite else "%s"),
            (BASE,),
        )
        first, count, data = cur.fetchone()
    assert (first, count) == (BASE, 50)
    leaves = unpack_bundle(bytes(data))
    assert parse(leaves[17])["transfer"]["amount"] == 18
    leaves[17] = _flipped(leaves[17])
    book.sql("UPDATE audit_bundles SET data = ? WHERE first_idx = ?", pack_bundle(leaves), BASE)
    problems = book.audit.verify().problems
    assert problems[0] == f"log {book.tenant}: leaf {BASE + 17} does not match the tree (changed?)"


def test_a_damaged_compressed_bundle_is_named_by_verify_and_by_every_read(book: Book) -> None:
    batch = [NewTransfer(f"tr_z{i:03d}", book.ledger_id, book.a, book.b, i + 1) for i in range(40)]
    assert all(o.result is R.CREATED for o in book.ledger.post_transfers(batch))
    book.audit.publish()
    with UnitOfWork(book.ledger.engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute(
            "SELECT data FROM audit_bundles WHERE first_idx = " + ("?" if uow.sqlite else "%s"),
            (BASE,),
        )
        stored = bytes(cur.fetchone()[0])
    assert stored[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert len(unpack_bundle(stored)) == 40
    damaged = bytearray(stored)
    damaged[len(damaged) // 2] ^= 0x55
    book.sql("UPDATE audit_bundles SET data = ? WHERE first_idx = ?", bytes(damaged), BASE)
    problems = book.audit.verify().problems
    named = f"log {book.tenant}: leaves from {BASE} are unreadable"
    assert any(p.startswith(named) for p in problems), problems
    with pytest.raises(BundleDamaged, match=f"log {book.tenant}: the bundle of leaves from {BASE}"):
        book.audit.leaves(book.tenant, BASE + 3, 1)
    with pytest.raises(BundleDamaged, match=f"the bundle of leaves from {BASE}"):
        book.audit.receipt(book.tenant, "tr_z003")


def test_one_batch_across_ledgers_and_tenants_goes_to_each_log(db_engine: Engine) -> None:
    one = _book(db_engine, "ten_one")
    other_ledger = one.ledger.create_ledger("second", tenant_id="ten_one").id
    c = one.ledger.create_account(other_ledger, "USD", Direction.DEBIT).id
    d = one.ledger.create_account(other_ledger, "USD", Direction.CREDIT).id
    two = _book(db_engine, "ten_two")
    batch = [
        NewTransfer("tr_x1", one.ledger_id, one.a, one.b, 1),
        NewTransfer("tr_x2", two.ledger_id, two.a, two.b, 2),
        NewTransfer("tr_x3", other_ledger, c, d, 3, pending=True, timeout_s=1),
        NewTransfer("tr_x4", two.ledger_id, two.a, two.b, 4),
    ]
    assert all(o.result is R.CREATED for o in one.ledger.post_transfers(batch))
    time.sleep(1.05)
    assert one.ledger.expire_due() == 1  # its expiry leaf is found by reference
    ones = [
        parse(x)["transfer"]["id"]
        for x in _leaf_bytes(one)
        if parse(x)["type"] != "ledger.created" and "transfer" in parse(x)
    ]
    twos = [parse(x)["transfer"]["id"] for x in _leaf_bytes(two) if "transfer" in parse(x)]
    assert ones == ["tr_x1", "tr_x3", "tr_x3"]
    assert twos == ["tr_x2", "tr_x4"]
    assert len(one.audit.leaf_indexes("ten_one", "tr_x3")) == 2
    assert one.audit.leaf_indexes("ten_two", "tr_x4") == [BASE + 1]
    with pytest.raises(NotFound):
        one.audit.leaf_indexes("ten_one", "tr_x2")
    one.audit.publish()
    report = one.audit.verify()
    assert report.ok, report.problems
    assert report.transfers == 4


def test_a_forger_with_a_key_of_his_own_is_caught(book: Book) -> None:
    """Rewrite a leaf, rebuild the tiles, re-sign every checkpoint with a new key and put the
    key in the database: that key was never handed over by a trusted one."""
    _published(book)
    first_key = book.audit.verifier_keys()[0]["verifier_key"]
    forged = _flipped(_leaf_bytes(book, 5, 1)[0])
    book.put_leaf(5, forged)
    datas = _leaf_bytes(book)
    book.sql("DELETE FROM audit_tiles WHERE log_id = ?", book.tenant)
    layout = book.audit.layout
    for (level, index), hashes in layout.append(0, {}, [leaf_hash(d) for d in datas]).items():
        book.sql(
            "INSERT INTO audit_tiles (log_id, level, idx, hashes) VALUES (?, ?, ?, ?)",
            book.tenant,
            level,
            index,
            hashes,
        )
    forger = notes.generate_signer("strongroom.localhost/audit")
    tree = MemoryTree()
    tree.extend(datas)
    for size in (8, 15, 23):
        text = f"strongroom.localhost/audit/{book.tenant}\n{size}\n"
        text += base64.b64encode(tree.root(size)).decode() + "\n"
        book.sql(
            "UPDATE audit_checkpoints SET note = ?, root = ? WHERE log_id = ? AND size = ?",
            notes.sign(text, [forger]),
            tree.root(size),
            book.tenant,
            size,
        )
    book.sql(
        "INSERT INTO audit_keys (key_id, name, verifier_key, signer_key, created_at) "
        "VALUES (?, ?, ?, NULL, ?)",
        f"{forger.key_id:08x}",
        forger.name,
        forger.verifier_key,
        2**62,
    )
    for trusted in (None, [first_key]):
        problems = book.audit.verify(trusted_keys=trusted).problems
        assert any("checkpoint 8 is not signed by a trusted key" in p for p in problems)
        assert any(p.startswith(f"signing key {forger.key_id:08x}") for p in problems)
    # A forger who also makes his key the database's first fools a check against the
    # database alone (audit.md says so); not one against the key the operator holds.
    book.sql("UPDATE audit_keys SET created_at = -1 WHERE key_id = ?", f"{forger.key_id:08x}")
    problems = book.audit.verify(trusted_keys=[first_key]).problems
    assert any("checkpoint 8 is not signed by a trusted key" in p for p in problems)


def test_a_changed_status_or_inner_tile_is_caught(book: Book) -> None:
    hold = book.move(30, pending=True, timeout_s=3600)
    settled = book.move(40, pending=True, timeout_s=3600)
    post = NewTransfer("tr_settle", book.ledger_id, action=Action.POST, target_id=settled)
    assert book.ledger.post_transfers([post])[0].result is R.CREATED
    for i in range(40):
        book.move(i + 1)
    book.audit.publish()
    assert book.audit.verify().ok  # the posted one is `posted` as its leaves say
    book.sql("UPDATE transfers SET status = 0 WHERE id = ?", hold)
    assert book.audit.verify().problems == [
        f"transfer {hold} has a status its leaves do not lead to"
    ]
    book.sql("UPDATE transfers SET status = 1 WHERE id = ?", hold)
    assert book.audit.verify().ok
    # An inner tile (level 1) feeds proofs but no leaf check: it is compared all the same.
    with UnitOfWork(book.ledger.engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute("SELECT hashes FROM audit_tiles WHERE level = 1 AND idx = 0")
        hashes = bytes(cur.fetchone()[0])
    book.sql(
        "UPDATE audit_tiles SET hashes = ? WHERE level = 1 AND idx = 0",
        bytes([hashes[0] ^ 1]) + hashes[1:],
    )
    problems = book.audit.verify().problems
    assert problems == [f"log {book.tenant}: tile (1, 0) does not match the leaves"]


def test_a_missing_or_surplus_tile_is_named(book: Book) -> None:
    """The tiles are rebuilt as the leaves stream: a complete inner tile is compared when the
    leaves complete it, the right edge's at the end, and a tile the leaves do not make is
    found by counting."""
    with UnitOfWork(book.ledger.engine) as uow:  # tile (1, 0) complete, (1, 1) not
        book.audit.record_all(uow, book.tenant, "test", [("test.note", None, {})] * 280)
        uow.commit()
    assert book.audit.verify().ok

    def tile(level: int, index: int) -> bytes:
        with UnitOfWork(book.ledger.engine, write=False) as uow:
            cur = uow.cursor()
            cur.execute(f"SELECT hashes FROM audit_tiles WHERE level = {level} AND idx = {index}")
            return bytes(cur.fetchone()[0])

    inner, edge = tile(1, 0), tile(1, 1)
    delete = "DELETE FROM audit_tiles WHERE level = ? AND idx = ?"
    insert = "INSERT INTO audit_tiles (log_id, level, idx, hashes) VALUES (?, ?, ?, ?)"
    for level, index, hashes in ((1, 0, inner), (1, 1, edge)):
        book.sql(delete, level, index)
        problems = book.audit.verify().problems
        assert problems == [f"log {book.tenant}: tile ({level}, {index}) is missing"]
        book.sql(insert, book.tenant, level, index, hashes)
    book.sql(
        "UPDATE audit_tiles SET hashes = ? WHERE level = 1 AND idx = 0",
        bytes([inner[0] ^ 1]) + inner[1:],
    )
    problems = book.audit.verify().problems
    assert problems == [f"log {book.tenant}: tile (1, 0) does not match the leaves"]
    book.sql("UPDATE audit_tiles SET hashes = ? WHERE level = 1 AND idx = 0", inner)
    assert book.audit.verify().ok
    with UnitOfWork(book.ledger.engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute("SELECT COUNT(*) FROM audit_tiles")
        made = int(cur.fetchone()[0])
    for level, index in ((0, 19), (3, 0)):
        book.sql(insert, book.tenant, level, index, edge)
        problems = book.audit.verify().problems
        assert problems == [
            f"log {book.tenant}: {made + 1} tiles stored where the leaves make {made}: "
            f"tile ({level}, {index}) is not one of them"
        ]
        book.sql(delete, level, index)
    assert book.audit.verify().ok


def test_a_pending_transfer_settled_behind_the_log_is_caught(book: Book) -> None:
    """A transfer created pending stays open until a leaf settles it; its row must end with
    the status those leaves lead to: pending while none has, posted after a post leaf."""
    hold = book.move(30, pending=True, timeout_s=3600)
    settled = book.move(40, pending=True, timeout_s=3600)
    post = NewTransfer("tr_settle2", book.ledger_id, action=Action.POST, target_id=settled)
    assert book.ledger.post_transfers([post])[0].result is R.CREATED
    assert book.audit.verify().ok
    book.sql("UPDATE transfers SET status = 0 WHERE id = ?", hold)  # posted, with no post leaf
    assert book.audit.verify().problems == [
        f"transfer {hold} has a status its leaves do not lead to"
    ]
    book.sql("UPDATE transfers SET status = 1 WHERE id = ?", hold)
    book.sql("UPDATE transfers SET status = 2 WHERE id = ?", settled)  # voided, posted by a leaf
    assert book.audit.verify().problems == [
        f"transfer {settled} has a status its leaves do not lead to"
    ]
    book.sql("UPDATE transfers SET status = 0 WHERE id = ?", settled)
    assert book.audit.verify().ok


def test_transfers_out_of_seq_order_still_match(book: Book) -> None:
    """PostgreSQL may commit a transfer with a lower seq after one with a higher: the transfer
    check holds what runs ahead on either side, up to its window, and names what it had to
    let go rather than grow."""
    late = [book.move(11), book.move(12)]
    early = [book.move(13), book.move(14)]
    for tid in late:
        book.sql("UPDATE transfers SET seq = seq + ? WHERE id = ?", 2**40, tid)
    assert book.audit.verify().ok
    with UnitOfWork(book.ledger.engine, write=False) as uow:
        wide, narrow = VerifyReport(), VerifyReport()
        _TransferTrail(uow, window=2).check(wide)
        _TransferTrail(uow, window=1).check(narrow)
    assert wide.problems == []
    assert narrow.problems[:2] == [
        f"the audit log has transfer {late[0]}, the ledger does not",
        f"transfer {early[0]} has no leaf in the audit log",
    ]
    # Transfers up to an audit baseline's seq may have no leaf (audit/replay.py): those that
    # have one are still matched and compared, and the others let no leaf go.
    book.sql("UPDATE transfers SET amount = 99 WHERE id = ?", early[1])
    with UnitOfWork(book.ledger.engine, write=False) as uow:
        based = VerifyReport()
        _TransferTrail(uow, before_log_seq=2**41, window=2).check(based)
    assert based.problems == [f"transfer {early[1]} differs from its leaf"]


def test_configured_keys_hand_over_and_may_come_back(db_engine: Engine) -> None:
    k1 = notes.generate_signer("strongroom.localhost/audit")
    k2 = notes.generate_signer("strongroom.localhost/audit")
    ledger = LedgerService(db_engine)
    logs = {
        name: AuditLog(db_engine, tenant_of=ledger.ledger_tenants, signer_key=k.skey)
        for name, k in (("k1", k1), ("k2", k2))
    }
    book = _book(db_engine)
    book.move(1)
    logs["k1"].publish()
    book.move(2)
    logs["k2"].publish()  # K2 takes over: a rotation leaf, signed by K2 only (K1 is elsewhere)
    [rotation] = [x for x in map(parse, _leaf_bytes(book)) if x["type"] == KEY_ROTATED]
    assert rotation["data"] == {"old_key": k1.verifier_key, "new_key": k2.verifier_key}
    book.move(3)
    logs["k1"].publish()  # and back: no duplicate key, another hand-over
    both = [k1.verifier_key, k2.verifier_key]
    report = book.audit.verify(trusted_keys=both)
    assert report.ok, report.problems
    assert report.trust == "the keys given"
    only_first = book.audit.verify(trusted_keys=[k1.verifier_key]).problems
    assert any("is not signed by a trusted key" in p for p in only_first)


def test_an_export_verifies_and_swapped_or_bare_logs_do_not(
    db_engine: Engine, tmp_path: Path
) -> None:
    one, two = _book(db_engine, "ten_one"), _book(db_engine, "ten_two")
    one.move(1)
    two.move(2)
    two.move(3)
    out = tmp_path / "export"
    assert one.audit.export(out) == (BASE + 1) + (BASE + 2)
    keys = (out / "keys.txt").read_text().split()
    good = verify_export(out, keys)
    assert (good.problems, good.logs, good.checkpoints) == ([], 2, 2)
    # ten_two's directory replaced by a copy of ten_one's: its checkpoints name ten_one.
    shutil.rmtree(out / "ten_two")
    shutil.copytree(out / "ten_one", out / "ten_two")
    swapped = verify_export(out, keys).problems
    assert f"ten_two: checkpoint {BASE + 1} is of log strongroom.localhost/audit/ten_one" in swapped
    assert "ten_two: no checkpoint that verifies" in swapped
    # A log with its checkpoints gone proves nothing; a stray file is a problem, not a crash.
    shutil.rmtree(out / "ten_two" / "checkpoints")
    (out / "ten_one" / "checkpoints" / "notes.txt").write_text("hello")
    problems = verify_export(out, keys).problems
    assert "ten_two: no checkpoint that verifies" in problems
    assert any(p.startswith("ten_one: checkpoint notes.txt") for p in problems)


def test_a_held_checkpoint_catches_a_database_rolled_back_to_an_older_state(
    tmp_path: Path,
) -> None:
    """The stored checkpoints can be deleted with the leaves they cover (or the whole database
    restored from an older backup, which is consistent in itself): a checkpoint kept outside
    the database cannot. `verify` holds the log to it: the log must still hold its size in
    leaves, with its root there."""
    from strongroom.db.engine import create_engine
    from strongroom.db.migrate import upgrade

    path = tmp_path / "ledger.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    book = _book(engine)
    book.move(5)
    book.audit.publish()
    key = str(book.audit.verifier_keys()[0]["verifier_key"])
    engine.dispose()
    backup = tmp_path / "backup.db"
    shutil.copy(path, backup)  # a consistent older state: the log before the next transfer

    engine = create_engine(f"sqlite:///{path}")
    book = _book_on(engine, book)
    book.move(7)
    (later,) = book.audit.publish()
    report = book.audit.verify(trusted_keys=[key], held_checkpoints=[later.note])
    assert (report.problems, report.held_checkpoints) == ([], 1)
    engine.dispose()

    shutil.copy(backup, path)  # the rollback: transfer 7 and its checkpoint are gone
    engine = create_engine(f"sqlite:///{path}")
    book = _book_on(engine, book)
    assert book.audit.verify(trusted_keys=[key]).problems == []  # consistent in itself
    report = book.audit.verify(trusted_keys=[key], held_checkpoints=[later.note])
    assert report.problems == [
        f"log {book.tenant}: a held checkpoint has {later.size} leaves, the log "
        f"{later.size - 1}: leaves were removed"
    ]
    # A checkpoint no trusted key signed counts for nothing: a problem, named.
    other = notes.generate_signer("someone-else").verifier_key
    problems = book.audit.verify(trusted_keys=[other], held_checkpoints=[later.note]).problems
    assert any(p.startswith("held checkpoint 1 is not signed by a trusted key") for p in problems)
    # A file that is no signed checkpoint at all is refused before anything is checked.
    with pytest.raises(InvalidRequest, match="not a signed checkpoint"):
        book.audit.verify(trusted_keys=[key], held_checkpoints=["not a note\n"])
    engine.dispose()


def test_a_held_checkpoint_signed_after_a_key_rotation_and_a_trailing_newline_hold(
    book: Book,
) -> None:
    """Found by the second attack round: a checkpoint signed by the key a rotation handed over
    to was refused (only the first key was tried), and so was a note with a trailing newline
    (what `jq -r`, `echo` and editors write)."""
    book.move(5)
    book.audit.publish()
    first_key = str(book.audit.verifier_keys()[0]["verifier_key"])
    book.audit.rotate_key()
    book.move(6)
    (after,) = book.audit.publish()
    report = book.audit.verify(trusted_keys=[first_key], held_checkpoints=[after.note + "\n\n"])
    assert (report.problems, report.held_checkpoints) == ([], 1)


def _book_on(engine: Engine, like: Book) -> Book:
    """The same book, on an engine opened again."""
    ledger = LedgerService(engine)
    audit = AuditLog(engine, tenant_of=ledger.ledger_tenants)
    ledger = LedgerService(engine, sinks=[audit], recorder=audit)
    return Book(ledger, audit, like.tenant, like.ledger_id, like.a, like.b)


def test_a_log_under_no_checkpoint_is_noted(book: Book) -> None:
    """Not a problem (a log is written before its first checkpoint), but said: nothing holds
    such a log to its leaves."""
    book.move(5)
    report = book.audit.verify()
    assert report.ok
    assert report.notes == [
        f"log {book.tenant}: none of its {BASE + 1} leaves is under a checkpoint a trusted key "
        "signed (publish one, and keep it outside the database: --checkpoint)"
    ]
    book.audit.publish()
    assert book.audit.verify().notes == []
