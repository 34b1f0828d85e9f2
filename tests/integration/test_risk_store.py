"""The risk gate's storage side, on SQLite and PostgreSQL: the feature store tails risk_events
(events by seq, labels by label_seq) in bounded reads and warm-starts from the last 37 days; two
stores over one database (two processes) converge; the gate's fail policies; allowed decisions
reach the sink but not the audit leaf's decisions."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy.engine import Engine

from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Action, GateDecision, NewTransfer, Payment, Verdict
from strongroom.ledger.pipeline import GateRunner
from strongroom.risk import store
from strongroom.risk.featurestore import WARM_DAYS, FeatureStore
from strongroom.risk.gate import FailPolicy, RiskGate
from strongroom.risk.model import PaymentEvent
from tests.support import schema
from tests.support.risk_fakes import AmountPolicy, CountingSource

DAY_US = 86_400 * 1_000_000
NOW_US = 1_800_000_000 * 1_000_000


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    schema.upgrade(db_url)
    engine = create_engine(db_url, sqlite_cache_mib=16)
    try:
        yield engine
    finally:
        engine.dispose()


def _write(engine: Engine, tenant: str, ids: Sequence[str], at_us: int, customer: str) -> None:
    """As the risk sink writes: the tenant's counter drawn, then the events, one transaction."""
    with UnitOfWork(engine) as uow:
        first = store.draw_seqs(uow, tenant, len(ids))
        store.insert_events(
            uow,
            [
                store.EventRow(
                    tenant, first + i, tid, at_us, 12_345, 2, customer, None, None, None, None
                )
                for i, tid in enumerate(ids)
            ],
        )
        uow.commit()


def _label(engine: Engine, tenant: str, transfer_id: str, fraud: bool) -> bool:
    with UnitOfWork(engine) as uow:
        found = store.label(uow, tenant, transfer_id, fraud, NOW_US)
        uow.commit()
    return found is not None


def _store(engine: Engine, sources: list[CountingSource], **options: int) -> FeatureStore:
    def make() -> CountingSource:
        sources.append(CountingSource())
        return sources[-1]

    return FeatureStore(engine, make, now_us=lambda: NOW_US, **options)


def test_the_store_warm_starts_then_tails_events_and_labels_in_bounded_reads(
    engine: Engine,
) -> None:
    _write(engine, "ten_a", ["tr_old"], NOW_US - (WARM_DAYS + 1) * DAY_US, "cus_1")
    _write(engine, "ten_a", ["tr_1", "tr_2"], NOW_US - DAY_US, "cus_1")
    _write(engine, "ten_b", ["tr_b"], NOW_US - DAY_US, "cus_9")  # another tenant's
    assert _label(engine, "ten_a", "tr_1", True)
    sources: list[CountingSource] = []
    features = _store(engine, sources, tail_rows_max=2)
    assert features.sync("ten_a") == 2  # warm: the last 37 days, of this tenant only
    (source,) = sources
    assert [e.event_id for e in source.observed] == ["tr_1", "tr_2"]
    assert source.observed[0].amount == 123.45  # minor units over the asset's scale
    assert source.labels == {"tr_1": True}  # a label recorded before is on its row
    assert features.sync("ten_a") == 0
    # Three new events and a label: read two at a time, nothing skipped, in counter order.
    _write(engine, "ten_a", ["tr_3", "tr_4", "tr_5"], NOW_US, "cus_1")
    assert _label(engine, "ten_a", "tr_2", True)
    assert features.sync("ten_a") == 2
    assert features.sync("ten_a") == 2
    assert features.sync("ten_a") == 0
    assert [e.event_id for e in source.observed] == ["tr_1", "tr_2", "tr_3", "tr_4", "tr_5"]
    assert source.labels == {"tr_1": True, "tr_2": True}
    # Scoring syncs first: the row counts every payment of the customer so far.
    event = PaymentEvent("tr_6", NOW_US / 1e6, 1.0, "cus_1")
    _write(engine, "ten_a", ["tr_x"], NOW_US, "cus_1")
    (row,) = features.features("ten_a", [event])
    assert row["customer_count"] == 6
    assert row["customer_fraud"] == 2
    assert not _label(engine, "ten_a", "tr_b", True)  # another tenant's payment


def test_two_stores_on_one_database_see_the_same_rows(engine: Engine) -> None:
    """As two worker processes: each tails the database, neither needs the other."""
    one: list[CountingSource] = []
    two: list[CountingSource] = []
    first, second = _store(engine, one), _store(engine, two)
    first.sync("ten_a")
    _write(engine, "ten_a", ["tr_1"], NOW_US, "cus_1")
    second.sync("ten_a")
    _write(engine, "ten_a", ["tr_2"], NOW_US, "cus_1")
    _label(engine, "ten_a", "tr_1", False)
    first.sync("ten_a")
    second.sync("ten_a")
    assert [e.event_id for e in one[0].observed] == [e.event_id for e in two[0].observed]
    assert one[0].labels == two[0].labels == {"tr_1": False}


def test_a_number_not_drawn_from_the_counter_cannot_freeze_the_tail(engine: Engine) -> None:
    """A row numbered far past the tenant's counter (a hand edit) is not read: read, it would
    move the store's `after` past every later real row, and the features would stop moving."""
    sources: list[CountingSource] = []
    features = _store(engine, sources)
    _write(engine, "ten_a", ["tr_1"], NOW_US, "cus_1")
    assert features.sync("ten_a") == 1
    forged = store.EventRow(
        "ten_a", 10**15, "tr_forged", NOW_US, 1, 2, "cus_1", None, None, None, None
    )
    with UnitOfWork(engine) as uow:
        store.insert_events(uow, [forged])
        uow.commit()
    _write(engine, "ten_a", ["tr_2", "tr_3"], NOW_US, "cus_1")
    assert features.sync("ten_a") == 2
    _write(engine, "ten_a", ["tr_4"], NOW_US, "cus_1")
    (row,) = features.features("ten_a", [PaymentEvent("tr_5", NOW_US / 1e6, 1.0, "cus_1")])
    assert row["customer_count"] == 4
    assert [e.event_id for e in sources[-1].observed] == ["tr_1", "tr_2", "tr_3", "tr_4"]


def test_a_warm_start_that_fails_half_way_is_retried_from_nothing(engine: Engine) -> None:
    _write(engine, "ten_a", ["tr_1"], NOW_US - DAY_US, "cus_1")
    with UnitOfWork(engine) as uow:  # a damaged row: 10^400 is past a float
        seq = store.draw_seqs(uow, "ten_a", 1)
        damaged = store.EventRow(
            "ten_a", seq, "tr_bad", NOW_US - DAY_US, 1, 400, "cus_1", None, None, None, None
        )
        store.insert_events(uow, [damaged])
        uow.commit()
    sources: list[CountingSource] = []
    features = _store(engine, sources)
    with pytest.raises(OverflowError):
        features.sync("ten_a")
    with UnitOfWork(engine) as uow:
        uow.cursor().execute("UPDATE risk_events SET scale = 2 WHERE transfer_id = 'tr_bad'")
        uow.commit()
    assert features.sync("ten_a") == 2
    (row,) = features.features("ten_a", [PaymentEvent("tr_2", NOW_US / 1e6, 1.0, "cus_1")])
    assert row["customer_count"] == 2  # tr_1 once, not once per attempt


class _Features:
    def __init__(self) -> None:
        self.source = CountingSource()

    def features(self, tenant_id: str, events: Sequence[PaymentEvent]) -> list[dict[str, float]]:
        return self.source.features(events)


def _gate(policy: AmountPolicy, fail: FailPolicy) -> RiskGate:
    return RiskGate(
        policy,
        _Features(),
        lambda ids: dict.fromkeys(ids, store.PayerAccount("ten_a", 2, "ldg_1")),
        lambda tenant, purpose, value: b"\x00" * 32,
        fail=fail,
    )


def _batch() -> list[NewTransfer]:
    pay = Payment("cus_1")
    return [
        NewTransfer("tr_1", "ldg_1", "acc_a", "acc_b", 5_000, payment=pay),
        NewTransfer("tr_2", "ldg_1", "acc_a", "acc_b", 5_000),
        NewTransfer("tr_3", "ldg_1", "acc_a", "acc_b", 50_000, payment=pay),
    ]


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        (FailPolicy.CLOSED, [Verdict.BLOCK, None, Verdict.BLOCK]),
        (FailPolicy.OPEN, [None, None, None]),
        (FailPolicy.REVIEW, [Verdict.REVIEW, None, Verdict.REVIEW]),
    ],
)
def test_a_failing_policy_follows_the_fail_setting_and_says_so(
    fail: FailPolicy,
    expected: list[Verdict | None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = AmountPolicy()
    policy.fail = True
    gate = _gate(policy, fail)
    counted: list[tuple[str, int]] = []
    gate.on_unscored = lambda outcome, n: counted.append((outcome, n))
    with caplog.at_level(logging.WARNING, logger="strongroom.risk.gate"):
        answers = gate.decide(_batch(), None)
    assert [a.verdict if a is not None else None for a in answers] == expected
    assert counted == [(fail.value, 2)]  # the two payments, not the plain transfer
    assert any(f"STRONGROOM_RISK_FAIL={fail.value}" in r.getMessage() for r in caplog.records)


def test_a_gate_that_finishes_past_its_budget_counts_its_payments_unscored() -> None:
    """The runner has dropped a late answer (it applied the fail policy): those payments were
    not scored, and the metric says so, even though the gate finished without an error."""
    gate = _gate(AmountPolicy(), FailPolicy.OPEN)
    now = [0.0]
    gate.monotonic = lambda: now[0]
    # The last step, recording the blocked decision, is what runs late (a slow write).
    gate.record_blocked = lambda rows: now.__setitem__(0, 10.0)
    batch = [
        *_batch(),
        NewTransfer("tr_4", "ldg_1", "acc_a", "acc_b", 5_000_000, payment=Payment("cus_1")),
    ]
    counted: list[tuple[str, int]] = []
    gate.on_unscored = lambda outcome, n: counted.append((outcome, n))
    gate.decide(batch, None)
    assert counted == [("open", 3)]
    assert gate.failures["open"] == 3
    on_time = _gate(AmountPolicy(), FailPolicy.OPEN)
    on_time.on_unscored = lambda outcome, n: counted.append((outcome, n))
    on_time.decide(batch, None)
    assert counted == [("open", 3)]  # scored in time: nothing more counted


def test_allowed_decisions_reach_the_sinks_but_not_the_audited_decisions() -> None:
    """GateRunner: an allow carrying a detail goes to `allowed`; `decisions` (what the audit
    leaf records) holds only the review and the block, as without a detail."""
    policy = AmountPolicy()
    gate = _gate(policy, FailPolicy.CLOSED)
    batch = [
        *_batch(),
        NewTransfer("tr_4", "ldg_1", "acc_a", "acc_b", 5_000_000, payment=Payment("cus_1")),
    ]
    runner = GateRunner([gate])
    try:
        outcome = runner.run(batch, None)
    finally:
        runner.close()
    assert policy.rows_seen == [3]  # one call, the payments only
    assert set(outcome.allowed) == {"tr_1"}
    assert {tid: [d.verdict for d in ds] for tid, ds in outcome.decisions.items()} == {
        "tr_3": [Verdict.REVIEW],
        "tr_4": [Verdict.BLOCK],
    }
    assert outcome.decisions["tr_3"][0].to_dict() == {
        "gate": "risk",
        "verdict": "review",
        "code": "risk_review",
    }
    assert set(outcome.held) == {2}
    assert set(outcome.blocked) == {3}


class _Clock:
    """A monotonic clock that moves `step_s` at every reading."""

    def __init__(self, step_s: float) -> None:
        self.now_s = 0.0
        self.step_s = step_s

    def __call__(self) -> float:
        self.now_s += self.step_s
        return self.now_s


@pytest.mark.parametrize("fail", [False, True])
def test_a_gate_past_its_budget_records_no_blocked_decision(fail: bool) -> None:
    """The runner dropped the answer of a gate past its budget (the batch got gate_unavailable):
    the gate's own blocks, or its fail-closed blocks, are not recorded against it."""
    recorded: list[list[str]] = []

    def gate_with(clock: _Clock) -> RiskGate:
        policy = AmountPolicy()
        policy.fail = fail
        return RiskGate(
            policy,
            _Features(),
            lambda ids: dict.fromkeys(ids, store.PayerAccount("ten_a", 2, "ldg_1")),
            lambda tenant, purpose, value: b"\x00" * 32,
            record_blocked=lambda rows: recorded.append([r.transfer_id for r in rows]),
            monotonic=clock,
        )

    batch = [NewTransfer("tr_9", "ldg_1", "acc_a", "acc_b", 5_000_000, payment=Payment("cus_1"))]
    within = gate_with(_Clock(0.0))
    (answer,) = within.decide(batch, None)
    assert answer is not None
    assert answer.verdict is Verdict.BLOCK
    assert recorded == [["tr_9"]]
    late = gate_with(_Clock(1.0))  # each reading a second later: past the 50 ms budget
    (answer,) = late.decide(batch, None)
    assert answer is not None
    assert answer.verdict is Verdict.BLOCK  # the runner drops it
    assert recorded == [["tr_9"]]
    assert late.unrecorded == 1


def test_only_a_plain_transfer_may_be_a_payment() -> None:
    from strongroom.core.errors import InvalidRequest
    from strongroom.ledger.model import validate_transfer

    voiding = NewTransfer(
        "tr_v", "ldg_1", action=Action.VOID, target_id="tr_1", payment=Payment("cus_1")
    )
    with pytest.raises(InvalidRequest) as raised:
        validate_transfer(voiding)
    assert (raised.value.code, raised.value.param) == ("invalid_payment", "payment")
    decision = GateDecision("risk", Verdict.ALLOW, detail=object())
    assert decision == GateDecision("risk", Verdict.ALLOW)  # the detail is not compared
