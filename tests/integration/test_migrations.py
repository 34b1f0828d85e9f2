"""Upgrades of populated databases, from every earlier schema revision to head.

For every revision R before head, on SQLite and PostgreSQL: a fresh database is upgraded to R
only, populated with the data an R server would have written (plain SQL against R's tables,
tests/support/migration_data.py: every shape of transfer, gap-free entry chains with running
totals, the entry index, id blocks; tenants, keys, events and webhooks where R has them; totals
at the 64-bit edge), upgraded to head, and read back through today's services: the ledger's
verify, every account's balances at every version and time, every entry and transfer, and, for
a database that had the audit log (0005 on), the audit log's verify. New transfers are then
posted on it, including ones that resolve and reverse transfers written before the upgrade.

Audit rows at 0005 are written by hand (leaves in the frozen version-1 encoding), not by
running today's AuditLog at 0005: today's code writes today's schema, and auditing only after
the upgrade would not show that audit rows written before it survive it. A database upgraded
from before 0005 has transfers that no audit leaf records; its audit verify is not expected to
pass (test_audit_log_verifies_after_an_upgrade_from_before_the_audit_log, xfail).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from strongroom.audit import store as audit_store
from strongroom.audit.service import AuditLog
from strongroom.core.limits import AMOUNT_MAX
from strongroom.db import migrate, tables
from strongroom.db.engine import create_engine
from strongroom.db.query import sql as sql_params
from strongroom.db.uow import UnitOfWork
from strongroom.events.outbox import Outbox
from strongroom.events.service import EventService
from strongroom.ledger.model import (
    Action,
    Balances,
    Direction,
    NewTransfer,
    TransferResult,
    record_from_row,
)
from strongroom.ledger.service import AccountSpec, LedgerService
from strongroom.tenancy import store as tenancy_store
from strongroom.tenancy.service import TenancyService
from tests.support import migration_data as data
from tests.support import postgres as pg
from tests.support.migration_data import Book

REVISIONS = data.revisions()
HEAD = REVISIONS[-1]
BEFORE_HEAD = REVISIONS[:-1]
R = TransferResult


def test_every_revision_before_head_has_a_populate_function() -> None:
    """A new migration makes the revision before it an upgrade path to test: it needs a
    populate function that writes that revision's tables (head itself needs none)."""
    missing = [r for r in BEFORE_HEAD if r not in data.POPULATE]
    assert not missing, (
        f"no populate function for revision(s) {', '.join(missing)} in "
        "tests/support/migration_data.py POPULATE: write one that fills that revision's "
        "schema with plain SQL, so that upgrades from it are tested"
    )
    unknown = sorted(set(data.POPULATE) - set(REVISIONS))
    assert not unknown, f"POPULATE names revisions that do not exist: {unknown}"


def test_the_story_reaches_the_64_bit_edge() -> None:
    """The populated totals sit at 2^63-1, so a change of the amounts' storage is exercised."""
    book = data.story(data.SCHEMA_0005)
    src = book.accounts["acc_mig_big_src"]
    assert src.dp + src.dpend == data.AMOUNT_64_MAX
    assert book.transfers["tr_mig_big_1"][7] > 2**62
    assert max(a.version for a in book.accounts.values()) > 2 * data.ENTRY_INDEX_STRIDE_0001
    assert len(book.index_rows) >= 2


@dataclass
class Upgraded:
    engine: Engine
    book: Book
    revision: str

    @property
    def had_audit(self) -> bool:
        return self.book.schema.audit


@pytest.fixture(params=BEFORE_HEAD)
def upgraded(request: pytest.FixtureRequest, db_url: str) -> Iterator[Upgraded]:
    """A database populated at the revision and upgraded to head."""
    revision: str = request.param
    populate = data.POPULATE.get(revision)
    if populate is None:
        pytest.fail(f"no populate function for revision {revision} (see POPULATE)")
    engine = create_engine(db_url, sqlite_cache_mib=16)
    try:
        migrate.upgrade(engine, revision)
        assert migrate.current_revision(engine) == revision
        with engine.begin() as conn:
            book = populate(conn)
        migrate.upgrade(engine)
        yield Upgraded(engine, book, revision)
    finally:
        engine.dispose()


def _services(u: Upgraded) -> tuple[LedgerService, AuditLog | None]:
    """Wired as runtime.build_ledger does; the audit sink only where the log was kept."""
    ledger: LedgerService | None = None

    def tenant_of(ledger_ids: Sequence[str], *, uow: UnitOfWork | None = None) -> dict[str, str]:
        assert ledger is not None
        return ledger.ledger_tenants(ledger_ids, uow=uow)

    audit = AuditLog(u.engine, origin=data.AUDIT_ORIGIN, tenant_of=tenant_of)
    ledger = LedgerService(
        u.engine,
        sinks=[Outbox(), audit] if u.had_audit else [Outbox()],
        recorder=audit if u.had_audit else None,
    )
    audit.ledger = ledger
    return ledger, audit if u.had_audit else None


def _check_ledger(ledger: LedgerService, book: Book) -> None:
    report = ledger.verify()
    assert report.problems == []
    assert report.accounts == len(book.accounts)
    assert report.entries == book.entry_count()
    assert report.transfers_pending == book.open_pending()
    for g in book.ledgers.values():
        found = ledger.get_ledger(g.id)
        assert (found.name, found.tenant_id, found.created_at) == (
            g.name,
            g.tenant_id,
            g.created_at,
        )
    for acc in book.accounts.values():
        _check_account(ledger, acc)
    for tid, row in book.transfers.items():
        assert ledger.get_transfer(tid) == record_from_row(row), tid


def _check_account(ledger: LedgerService, acc: data.Acct) -> None:
    got = ledger.get_account(acc.id)
    assert got.balances == Balances(*acc.balances), acc.id
    assert (got.version, got.closed, int(got.flags), int(got.normal_balance)) == (
        acc.version,
        acc.closed,
        acc.flags,
        acc.normal,
    )
    assert (got.ledger_id, got.asset, got.name) == (acc.ledger_id, acc.asset, acc.name)
    assert (got.created_at, got.updated_at) == (acc.created_at, acc.updated_at)
    # Balances after every version, and as of every entry's time (and just before it).
    assert ledger.balance_at(acc.id, version=0)[1] == Balances()
    for e in acc.entries:
        after = Balances(e[8], e[9], e[10], e[11])
        assert ledger.balance_at(acc.id, version=e[2]) == (e[2], after, Direction(acc.normal))
    times = sorted({e[12] for e in acc.entries})
    for t in times:
        for at in (t - 1, t):
            known = [e for e in acc.entries if e[12] <= at]
            version = known[-1][2] if known else 0
            balances = Balances(*known[-1][8:12]) if known else Balances()
            assert ledger.balance_at(acc.id, as_of_us=at)[:2] == (version, balances), (acc.id, at)
    # Every entry, newest first, page by page.
    got_entries = []
    cursor: int | None = None
    while True:
        page = ledger.list_entries(acc.id, starting_after=cursor, limit=50)
        got_entries += page.data
        if not page.has_more:
            break
        cursor = page.data[-1].version
    expected = list(reversed(acc.entries))
    assert [
        (
            x.id,
            x.version,
            x.transfer_id,
            int(x.direction),
            x.amount,
            x.pending_delta,
            (
                x.balances_after.debits_posted,
                x.balances_after.credits_posted,
                x.balances_after.debits_pending,
                x.balances_after.credits_pending,
            ),
            x.created_at,
        )
        for x in got_entries
    ] == [(e[0], e[2], e[4], e[5], e[6], e[7], e[8:12], e[12]) for e in expected]


def _check_tenancy_and_events(u: Upgraded) -> None:
    s = u.book.schema
    if s.tenancy:
        tenancy = TenancyService(u.engine)  # the pepper kept in the database
        key = tenancy.authenticate(data.API_KEY_SECRET)
        assert key is not None
        assert (key.id, key.tenant_id) == ("key_mig_live", data.TENANT_ID)
        assert tenancy.authenticate(data.REVOKED_KEY_SECRET) is None
        # 0009: the API key's idempotency record is its tenant's now, its answer compressed.
        with UnitOfWork(u.engine, write=False) as uow:
            record = tenancy_store.get_idempotency_record(
                uow, data.TENANT_ID, "order-1", for_update=False
            )
        assert record is not None
        assert (record.fingerprint, record.status_code) == ("0" * 64, 200)
        assert record.body is not None
        assert zlib.decompress(record.body) == b'{"ok":true}'
    if s.events:
        events = EventService(u.engine)
        got = []
        cursor = None
        while True:
            page = events.list_events(starting_after=cursor, limit=100)
            got += page.data
            if not page.has_more:
                break
            cursor = page.data[-1].id
        written = list(reversed(u.book.events))
        assert [(e.seq, e.id, e.type, e.created_at) for e in got] == [
            (e.seq, e.id, e.type, e.created_at) for e in written
        ]
        for g, w in zip(got, written, strict=True):
            if w.data is not None:  # stored before 0005: kept as it was written
                assert g.data == w.data
            else:  # rendered from its transfer when read
                assert f'"id":"{w.transfer_id}"' in g.data
        assert events.backlog() == (data.UNROUTED_EVENTS, data.PENDING_DELIVERIES)
        endpoint = events.get_endpoint(data.ENDPOINT_ID, tenant_id=data.TENANT_ID)
        assert endpoint.url == data.ENDPOINT_URL


def _check_audit(audit: AuditLog, book: Book, *, extra_leaves: int = 0) -> None:
    report = audit.verify()
    assert report.problems == []
    assert report.logs == len({x.log_id for x in book.leaves})
    assert report.leaves == len(book.leaves) + extra_leaves
    assert report.transfers >= len(book.transfers)
    # Every leaf is still found where receipts look: a transfer's by its time (an expiry's by
    # reference), any other action's by reference.
    position: dict[str, int] = {}
    with UnitOfWork(audit.engine, write=False) as uow:
        for leaf in book.leaves:
            index = position[leaf.log_id] = position.get(leaf.log_id, -1) + 1
            if leaf.transfer_id is not None:
                assert index in audit.leaf_indexes(leaf.log_id, leaf.transfer_id), leaf
            else:
                assert leaf.ref is not None
                assert index in audit_store.ref_indexes(uow, leaf.log_id, leaf.ref), leaf


def test_upgrade_keeps_ledger_audit_and_balances(upgraded: Upgraded) -> None:
    u = upgraded
    assert migrate.current_revision(u.engine) == HEAD
    ledger, audit = _services(u)
    _check_ledger(ledger, u.book)
    _check_tenancy_and_events(u)
    if audit is not None:
        _check_audit(audit, u.book)
        assert audit.verify().checkpoints == data.audit_checkpoint_count(u.book)


def _schema(engine: Engine) -> dict[str, object]:
    """Tables with their columns, keys and indexes (partial ones with their condition), and
    PostgreSQL's sequences: what a migration must leave as a fresh database at head has it."""
    inspector = sa.inspect(engine)
    out: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
        indexes = sorted(
            (
                i["name"] or "",
                tuple(str(c) for c in i["column_names"]),
                bool(i["unique"]),
                str(i.get("dialect_options", {}).get(f"{engine.dialect.name}_where", "")),
            )
            for i in inspector.get_indexes(table)
        )
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        out[table] = (columns, key, indexes)
    if engine.dialect.name == "postgresql":
        out["sequences"] = sorted(inspector.get_sequence_names())
    else:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
            out["without_rowid"] = [name for name, text in rows if "WITHOUT ROWID" in text]
    return out


def test_the_upgraded_schema_is_that_of_head(upgraded: Upgraded, tmp_path: Path) -> None:
    """Upgrading a populated database gives the schema of db/tables.py (what today's code
    reads and writes), and that of a fresh database at head: SQLite's table rebuilds keep
    WITHOUT ROWID, partial indexes and nullability."""
    url = upgraded.engine.url
    with upgraded.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, tables.metadata) == []
    if upgraded.engine.dialect.name == "sqlite":
        fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        fresh_url = pg.create_database()
    fresh = create_engine(fresh_url, sqlite_cache_mib=16)
    try:
        migrate.upgrade(fresh)
        assert _schema(upgraded.engine) == _schema(fresh), url
    finally:
        fresh.dispose()
        if fresh.dialect.name == "postgresql":
            pg.drop_database(fresh_url)


def test_transfers_post_after_the_upgrade(upgraded: Upgraded) -> None:
    """New transfers, and ones that resolve or reverse transfers written before the upgrade,
    take new id blocks, sequence numbers and event seqs after the old ones."""
    u, book = upgraded, upgraded.book
    ledger, audit = _services(u)
    last_entry = max(e[0] for a in book.accounts.values() for e in a.entries)
    last_seq = max(row[0] for row in book.transfers.values())
    main = data.LEDGER
    batch = [
        NewTransfer("tr_new_simple", main, "acc_mig_cash", "acc_mig_alice", 777),
        NewTransfer("tr_new_post", main, action=Action.POST, target_id="tr_mig_open_hold"),
        NewTransfer("tr_new_void", main, action=Action.VOID, target_id="tr_mig_split_hold"),
        NewTransfer("tr_new_reverse", main, action=Action.REVERSE, target_id="tr_mig_split"),
        NewTransfer("tr_mig_deposit_alice", main, "acc_mig_cash", "acc_mig_alice", 1_000_000),
    ]
    outcomes = ledger.post_transfers(batch)
    assert [o.result for o in outcomes] == [R.CREATED] * 4 + [R.EXISTS]
    new_seqs = [ledger.get_transfer(t.id).seq for t in batch[:4]]
    assert min(new_seqs) > last_seq
    entries = ledger.list_entries("acc_mig_alice", limit=4).data
    assert min(e.id for e in entries) > last_entry
    alice = book.accounts["acc_mig_alice"]
    got = ledger.get_account("acc_mig_alice")
    assert got.version == alice.version + 4
    # +777 credit; the open hold posted (2,000 debit moved from pending); the split hold
    # voided (3,000 pending debit released); the split reversed (30,000 credited back).
    assert got.balances == Balances(
        alice.dp + 2_000, alice.cp + 777 + 30_000, alice.dpend - 2_000 - 3_000, alice.cpend
    )
    report = ledger.verify()
    assert report.problems == []
    assert report.transfers_pending == book.open_pending() - 2
    if book.schema.events:
        newest = EventService(u.engine).list_events(limit=4).data
        assert min(e.seq for e in newest) > len(book.events)
        assert {e.type for e in newest} == {
            "transfer.created",
            "transfer.posted",
            "transfer.voided",
            "transfer.reversed",
        }
    if audit is not None:
        assert audit.publish()
        _check_audit(audit, book, extra_leaves=4)


def test_totals_pass_2_63_after_the_upgrade(upgraded: Upgraded) -> None:
    """Once head stores 128-bit amounts, a total written at 64 bits grows past 2^63-1."""
    if AMOUNT_MAX <= data.AMOUNT_64_MAX:
        pytest.skip(
            "head's AMOUNT_MAX (core/limits.py) is still 2^63-1: amounts are 64-bit, so no "
            "total can pass 2^63-1 yet"
        )
    u, book = upgraded, upgraded.book
    ledger, audit = _services(u)
    src = book.accounts["acc_mig_big_src"]
    dst = book.accounts["acc_mig_big_dst"]
    outcome = ledger.transfer(data.BIG_LEDGER, src.id, dst.id, 2**63, id="tr_new_big")
    assert outcome.result is R.CREATED
    got = ledger.get_account(src.id)
    assert got.balances == Balances(src.dp + 2**63, src.cp, src.dpend, src.cpend)
    assert got.balances.debits_posted > data.AMOUNT_64_MAX
    assert ledger.balance_at(src.id, version=src.version)[1] == Balances(*src.balances)
    assert ledger.balance_at(src.id, version=src.version + 1)[1] == got.balances
    newest = ledger.list_entries(dst.id, limit=1).data[0]
    assert newest.balances_after.credits_posted == dst.cp + 2**63
    report = ledger.verify()
    assert report.problems == []
    if audit is not None:
        _check_audit(audit, book, extra_leaves=1)


def test_audit_log_verifies_after_an_upgrade_from_before_the_audit_log(
    upgraded: Upgraded,
) -> None:
    """Migration 0007 marks where audited history begins (audit.baseline leaves holding each
    pre-audit account's state): verify passes on the upgraded database, and still does once
    the log records new transfers that resolve and reverse pre-audit ones; a pre-audit
    account's totals changed by hand are caught all the same."""
    u, book = upgraded, upgraded.book
    if book.schema.audit:
        pytest.skip("this database had the audit log: covered by the tests above")
    _, audit = _services(u)
    assert audit is None
    report = AuditLog(u.engine, origin=data.AUDIT_ORIGIN).verify()
    assert report.problems == []
    assert report.accounts == len(book.accounts)
    assert report.entries == 0  # every entry predates the log
    # verify says, log by log, where the baseline vouches for history the log cannot prove.
    vouched = [int(line.split(": ")[1].split(" accounts")[0]) for line in report.baseline]
    assert sum(vouched) == len(book.accounts)
    assert all("start from the audit baseline at leaf" in line for line in report.baseline)
    # Down past 0007 and up again: the baselines stay (leaves are never taken out) and no
    # second one is appended.
    leaves = report.leaves
    with u.engine.begin() as conn:
        cfg = migrate._config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        command.upgrade(cfg, "head")
    assert AuditLog(u.engine, origin=data.AUDIT_ORIGIN).verify().leaves == leaves

    # From now on the log is on, as `serve` would run it after the upgrade.
    ledger = LedgerService(u.engine)
    audit = AuditLog(u.engine, origin=data.AUDIT_ORIGIN, tenant_of=ledger.ledger_tenants)
    ledger = LedgerService(u.engine, sinks=[Outbox(), audit], recorder=audit)
    main = data.LEDGER
    batch = [
        NewTransfer("tr_new_simple", main, "acc_mig_cash", "acc_mig_alice", 777),
        NewTransfer("tr_new_post", main, action=Action.POST, target_id="tr_mig_open_hold"),
        NewTransfer("tr_new_void", main, action=Action.VOID, target_id="tr_mig_split_hold"),
        NewTransfer("tr_new_reverse", main, action=Action.REVERSE, target_id="tr_mig_split"),
    ]
    assert [o.result for o in ledger.post_transfers(batch)] == [R.CREATED] * 4
    audit.publish()
    report = audit.verify()
    assert report.problems == []
    assert report.entries > 0

    # Down past 0007 and up again now that the log holds bundles written since (compressed),
    # one with an account created after the upgrade: 0007 reads them as audited, and appends
    # nothing.
    (late,) = ledger.create_accounts([AccountSpec(main, "USD", Direction.CREDIT)])
    assert ledger.transfer(main, "acc_mig_cash", late.id, 5).result is R.CREATED
    audit.publish()
    with UnitOfWork(u.engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute("SELECT data FROM audit_bundles ORDER BY first_idx DESC LIMIT 1")
        ((newest,),) = cur.fetchall()
    assert bytes(newest)[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    leaves = audit.verify().leaves
    with u.engine.begin() as conn:
        cfg = migrate._config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        command.upgrade(cfg, "head")
    again = audit.verify()
    assert (again.leaves, again.problems) == (leaves, [])

    with UnitOfWork(u.engine) as uow:
        cur = uow.cursor()
        cur.execute(
            sql_params(uow, "UPDATE accounts SET debits_posted = debits_posted + 1 WHERE id = ?"),
            ("acc_mig_bob",),
        )
        uow.commit()
    problems = audit.verify().problems
    assert len(problems) == 1, problems
    assert problems[0].startswith("account acc_mig_bob differs from its leaves: debits_posted")

    # A second baseline, written after the upgrade's (as someone with the database and the
    # signing key could, to vouch for balances no entry made), is not the upgrade's.
    tenant = ledger.ledger_tenants([main])[main]
    audit.record(tenant, "audit.baseline", "system", {"accounts": [], "transfer_seq": 0},
                 ref="audit.baseline")  # fmt: skip
    problems = audit.verify().problems
    assert any("audit baseline leaves at" in p and "not one group" in p for p in problems)


def test_0030_sanctions_versions_stored_before_count_as_rescreened(db_url: str) -> None:
    """0030 adds sanctions_list_versions.rescreened_at: the versions already stored count as
    re-screened (at their load time), so an upgrade leaves no re-screening owed."""
    engine = create_engine(db_url, sqlite_cache_mib=16)
    try:
        migrate.upgrade(engine, "0029")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO sanctions_list_versions (source, version, sha256, entry_count, "
                    "added, changed, removed, loaded_at, loaded_by) "
                    "VALUES ('un', 1, 'x', 1, 1, 0, 0, 1234, 'cli')"
                )
            )
        migrate.upgrade(engine, "0030")
        with engine.begin() as conn:
            row = conn.execute(sa.text("SELECT rescreened_at FROM sanctions_list_versions")).one()
        assert row[0] == 1234
        with engine.begin() as conn:  # and down again: the column goes, the row stays
            cfg = migrate._config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0029")
        with engine.begin() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("sanctions_list_versions")}
            count = conn.execute(sa.text("SELECT COUNT(*) FROM sanctions_list_versions")).one()
        assert "rescreened_at" not in columns
        assert count[0] == 1
    finally:
        engine.dispose()
