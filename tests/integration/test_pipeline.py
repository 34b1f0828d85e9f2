"""The transfer pipeline's gate port and sinks (ledger/pipeline.py), on SQLite and PostgreSQL:
a test gate decides allow, review or block per transfer before the write transaction, every
door passes it (batches, single transfers through the group-commit coalescer, the CLI, the
HTTP API), a gate over its budget or failing fails open or closed as it declares, and the sinks
get one CommittedBatch with the decisions and the actor."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine as SAEngine
from typer.testing import CliRunner

from strongroom import runtime
from strongroom.cli import app as cli_app
from strongroom.core.errors import ErrorCode
from strongroom.ledger.coalescer import GroupCommitter
from strongroom.ledger.model import (
    Action,
    Direction,
    GateDecision,
    NewTransfer,
    Status,
    Verdict,
)
from strongroom.ledger.model import TransferResult as R
from strongroom.ledger.pipeline import GATE_UNAVAILABLE, CommittedBatch
from strongroom.ledger.service import AccountSpec, LedgerService
from tests.e2e.http_support import running, seed_tenant

D, C = Direction.DEBIT, Direction.CREDIT


@dataclass
class FakeGate:
    """Blocks transfers whose metadata says `"gate": "block"`, holds those that say
    `"review"`, sleeps `delay_s` first and raises if `fail`; records what it was asked."""

    name: str = "test"
    budget_ms: int = 2_000
    fail_open: bool = False
    errors: tuple[ErrorCode, ...] = (ErrorCode("test_blocked", 422, "The test gate blocked it"),)
    delay_s: float = 0.0
    fail: bool = False
    seen: list[tuple[list[str], str | None]] = field(default_factory=list)

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        self.seen.append(([t.id for t in batch], actor))
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("the gate's backend is down")
        out: list[GateDecision | None] = []
        for t in batch:
            wish = json.loads(t.metadata).get("gate", "allow") if t.metadata else "allow"
            if wish == "block":
                out.append(GateDecision(self.name, Verdict.BLOCK, "test_blocked"))
            elif wish == "review":
                out.append(GateDecision(self.name, Verdict.REVIEW, "test_review"))
            else:
                out.append(None)
        return out


@dataclass
class RecordingSink:
    batches: list[CommittedBatch] = field(default_factory=list)

    def __call__(self, uow: Any, batch: CommittedBatch) -> None:
        self.batches.append(batch)


def _service(engine: SAEngine, *gates: FakeGate) -> tuple[LedgerService, RecordingSink, Any]:
    sink = RecordingSink()
    svc = LedgerService(engine, sinks=[sink], gates=gates)
    ledger = svc.create_ledger("main")
    bank, alice = svc.create_accounts(
        [AccountSpec(ledger.id, "USD", D), AccountSpec(ledger.id, "USD", C)]
    )
    return svc, sink, (ledger.id, bank.id, alice.id)


def _tr(ids: Any, tid: str, wish: str = "allow", **kw: Any) -> NewTransfer:
    ledger, bank, alice = ids
    return NewTransfer(
        id=tid,
        ledger_id=ledger,
        debit_account_id=bank,
        credit_account_id=alice,
        amount=kw.pop("amount", 10),
        metadata=json.dumps({"gate": wish}, separators=(",", ":")),
        **kw,
    )


def test_a_gate_allows_holds_and_blocks_per_transfer(db_engine: SAEngine) -> None:
    gate = FakeGate()
    svc, sink, ids = _service(db_engine, gate)
    batch = [_tr(ids, "a"), _tr(ids, "b", "block"), _tr(ids, "r", "review"), _tr(ids, "c")]
    outcomes = svc.post_transfers(batch, actor="api_key:key_1")
    assert [o.result for o in outcomes] == [R.CREATED, R.BLOCKED_BY_GATE, R.CREATED, R.CREATED]
    assert outcomes[1].decision == GateDecision("test", Verdict.BLOCK, "test_blocked")
    assert outcomes[2].decision == GateDecision("test", Verdict.REVIEW, "test_review")
    assert outcomes[0].decision is None
    assert gate.seen == [(["a", "b", "r", "c"], "api_key:key_1")]
    # The held transfer is pending without a timeout; a later decision posts or voids it.
    held = svc.get_transfer("r")
    assert (held.status, held.pending, held.timeout_s) == (Status.PENDING, True, 0)
    post = NewTransfer(id="r-post", ledger_id=ids[0], action=Action.POST, target_id="r")
    assert [o.result for o in svc.post_transfers([post])] == [R.CREATED]
    with pytest.raises(Exception, match="no transfer"):
        svc.get_transfer("b")
    # The sink got one batch with named fields, the decisions and the actor.
    first = sink.batches[0]
    assert [row[1] for row in first.transfers] == ["a", "r", "c"]
    assert first.kinds == ["transfer.created"] * 3
    assert first.actor == "api_key:key_1"
    assert {k: [d.code for d in v] for k, v in first.decisions.items()} == {
        "b": ["test_blocked"],
        "r": ["test_review"],
    }
    assert len(first.entries) == 6
    assert svc.verify().ok


def test_a_blocked_member_fails_its_chain_and_a_retry_of_an_existing_transfer_is_exists(
    db_engine: SAEngine,
) -> None:
    svc, _sink, ids = _service(db_engine, FakeGate())
    chain = [_tr(ids, "c1", linked=True), _tr(ids, "c2", "block")]
    assert [o.result for o in svc.post_transfers(chain)] == [
        R.LINKED_EVENT_FAILED,
        R.BLOCKED_BY_GATE,
    ]
    assert svc.post_transfers([_tr(ids, "x")])[0].result is R.CREATED
    # The gate would block it now, but it exists: idempotency answers first.
    assert (
        svc.post_transfers([_tr(ids, "x", "block")])[0].result is R.EXISTS_WITH_DIFFERENT_METADATA
    )
    again = _tr(ids, "x")
    assert svc.post_transfers([again])[0].result is R.EXISTS


def test_a_member_of_a_chain_sent_to_review_fails_its_chain_and_is_held_when_alone(
    db_engine: SAEngine,
) -> None:
    """A held transfer cannot stand in for its chain: the rest would post while it waits, and
    a decline would void it alone. Refused with review_in_chain, the whole chain posts nothing;
    the same transfer sent alone is held."""
    svc, sink, ids = _service(db_engine, FakeGate())
    for batch, atomic in (
        ([_tr(ids, "r1", "review", linked=True), _tr(ids, "c1")], False),  # first of a chain
        ([_tr(ids, "c2", linked=True), _tr(ids, "r2", "review")], False),  # its closing member
        ([_tr(ids, "c3"), _tr(ids, "r3", "review")], True),  # an atomic batch
    ):
        outcomes = svc.post_transfers(batch, atomic=atomic)
        held = next(o for o in outcomes if o.transfer_id.startswith("r"))
        other = next(o for o in outcomes if o.transfer_id.startswith("c"))
        assert (held.result, other.result) == (R.BLOCKED_BY_GATE, R.LINKED_EVENT_FAILED)
        assert held.decision == GateDecision("test", Verdict.BLOCK, "review_in_chain")
    assert sink.batches == []  # nothing of any chain was written
    # Outside any chain (an atomic batch of one included) it is held: pending, no timeout.
    for tid, atomic in (("r1", False), ("r3", True)):
        [outcome] = svc.post_transfers([_tr(ids, tid, "review")], atomic=atomic)
        assert outcome.result is R.CREATED
        assert outcome.decision == GateDecision("test", Verdict.REVIEW, "test_review")
        assert svc.get_transfer(tid).status is Status.PENDING
    # A chain whose members all pass posts as before; another chain in the batch is unaffected.
    outcomes = svc.post_transfers(
        [
            _tr(ids, "k1", linked=True),
            _tr(ids, "k2"),
            _tr(ids, "k3", "review", linked=True),
            _tr(ids, "k4"),
        ]
    )
    assert [o.result for o in outcomes] == [
        R.CREATED,
        R.CREATED,
        R.BLOCKED_BY_GATE,
        R.LINKED_EVENT_FAILED,
    ]
    assert svc.verify().ok


def test_a_post_of_a_transfer_held_in_the_same_batch_is_refused(db_engine: SAEngine) -> None:
    """Found by the second attack round: a payment sent to review and a post of it in one
    batch (the in-process API) posted it, no case opened: the review hold reads open cases
    before the batch writes its own. The post is refused with held_for_review; the transfer
    stays held."""
    svc, _sink, ids = _service(db_engine, FakeGate())
    held = _tr(ids, "rv", "review")
    post = NewTransfer("rv_post", ids[0], action=Action.POST, target_id="rv")
    outcomes = svc.post_transfers([held, post])
    assert [o.result for o in outcomes] == [R.CREATED, R.BLOCKED_BY_GATE]
    assert outcomes[1].decision == GateDecision("test", Verdict.BLOCK, "held_for_review")
    assert svc.get_transfer("rv").status is Status.PENDING
    assert svc.verify().ok


@pytest.mark.parametrize(("fail_open", "expected"), [(True, R.CREATED), (False, R.BLOCKED_BY_GATE)])
@pytest.mark.parametrize("how", ["slow", "raises"])
def test_a_failing_gate_fails_open_or_closed(
    db_engine: SAEngine, fail_open: bool, expected: R, how: str
) -> None:
    gate = FakeGate(
        budget_ms=50,
        fail_open=fail_open,
        delay_s=0.5 if how == "slow" else 0.0,
        fail=how == "raises",
    )
    svc, _sink, ids = _service(db_engine, gate)
    [outcome] = svc.post_transfers([_tr(ids, "t")])
    assert outcome.result is expected
    if not fail_open:
        assert outcome.decision is not None
        assert outcome.decision.code == GATE_UNAVAILABLE
    assert svc.verify().ok


def test_no_gate_installed_changes_nothing(db_engine: SAEngine) -> None:
    svc, sink, ids = _service(db_engine)
    outcomes = svc.post_transfers([_tr(ids, "a", "block"), _tr(ids, "b", "review")])
    assert [o.result for o in outcomes] == [R.CREATED, R.CREATED]
    assert svc.get_transfer("b").status is Status.POSTED
    assert sink.batches[0].decisions == {}


def test_single_transfers_through_the_coalescer_pass_the_gate(db_engine: SAEngine) -> None:
    gate = FakeGate()
    svc, _sink, ids = _service(db_engine, gate)
    with GroupCommitter(svc, wait_us=2_000) as committer:
        futures = [
            committer.submit(_tr(ids, f"s{i}", "block" if i % 3 == 0 else "allow"))
            for i in range(12)
        ]
        results = [f.result(timeout=30) for f in futures]
    for i, outcome in enumerate(results):
        assert outcome.result is (R.BLOCKED_BY_GATE if i % 3 == 0 else R.CREATED)
        if i % 3 == 0:
            assert outcome.decision is not None
            assert outcome.decision.code == "test_blocked"
    assert sum(len(ids_) for ids_, _ in gate.seen) == 12


def test_the_cli_and_the_http_api_pass_the_gates_the_composition_root_installs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = FakeGate()
    monkeypatch.setattr(runtime, "installed_gates", lambda settings, **_: [gate])
    url = f"sqlite:///{tmp_path / 'gated.db'}"
    monkeypatch.setenv("STRONGROOM_DATABASE_URL", url)
    cli = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(cli_app, list(args))
        assert result.exit_code == code, (args, result.output)
        return result.output

    run("db", "upgrade")
    ledger = json.loads(run("ledger", "create-ledger", "main"))["id"]
    bank = json.loads(run("ledger", "create-account", ledger, "USD", "--normal-balance", "debit"))
    alice = json.loads(run("ledger", "create-account", ledger, "USD"))
    args = ("ledger", "transfer", ledger, bank["id"], alice["id"], "10")
    run(*args, "--metadata", '{"gate": "allow"}')
    out = run(*args, "--metadata", '{"gate": "block"}', code=1)
    assert "blocked_by_gate" in out or "test_blocked" in out
    assert gate.seen[-1][1] == "cli"

    with running(url) as api:  # its catalogue holds the gate's codes
        assert api.app.state.errors["test_blocked"].status == 422
        acme = seed_tenant(api, "acme")
        body = {
            "ledger_id": acme.ledger,
            "debit_account_id": acme.bank,
            "credit_account_id": acme.alice,
            "amount": 5,
            "metadata": {"gate": "block"},
        }
        refused = api.post("/v1/transfers", key=acme.write, json=body)
        assert (refused.status_code, refused.json()["code"]) == (422, "test_blocked")
        batch = api.ok(
            "POST",
            "/v1/transfers/batch",
            key=acme.write,
            json={"transfers": [body, {**body, "metadata": {"gate": "review"}}]},
        )
        # A held transfer's result names the review's code (it is created, pending).
        assert [(r["status"], r["code"]) for r in batch["results"]] == [
            ("refused", "test_blocked"),
            ("created", "test_review"),
        ]
        assert str(gate.seen[-1][1]).startswith("api_key:")


def test_a_gate_sees_a_consistent_batch_under_concurrency(db_engine: SAEngine) -> None:
    """Gates run outside the write transaction: several threads posting at once each get
    their own decisions, nothing is lost or crossed."""
    gate = FakeGate()
    svc, _sink, ids = _service(db_engine, gate)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            batch = [_tr(ids, f"w{k}-{i}", "block" if i % 2 else "allow") for i in range(20)]
            results = [o.result for o in svc.post_transfers(batch)]
            assert results == [R.BLOCKED_BY_GATE if i % 2 else R.CREATED for i in range(20)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert svc.verify().ok
