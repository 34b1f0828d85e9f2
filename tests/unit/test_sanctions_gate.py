"""The sanctions payee gate with fakes: a confirmed payee blocked, a probable one held (its case
naming what matched), others and non-payments let through, another tenant's statuses never
consulted, and a lookup that fails (or no screener built yet) answered by the fail policy; and
the blocking keys that re-screening relies on."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from strongroom.compliance.sanctions.errors import InvalidName, ScreenerNotReady
from strongroom.compliance.sanctions.gate import SanctionsGate
from strongroom.compliance.sanctions.model import PayeeMatch
from strongroom.compliance.sanctions.snapshot import diff, phonetic_keys
from strongroom.core.limits import SCREENING_PAYEE_NAMES_PER_BATCH_MAX
from strongroom.ledger.model import Action, NewTransfer, Payment, Verdict

ACCOUNTS = {"acc_a": ("ten_a", "ldg_1"), "acc_b": ("ten_b", "ldg_1"), "acc_c": ("ten_b", "ldg_2")}
HIT = PayeeMatch("ofac_sdn", "200", "Viktor BOUT", 0.9512, 1)  # a payee name's best match
STATUSES = {
    "ten_a": {"counterparty:cpty_bad": "confirmed", "counterparty:cpty_maybe": "probable"},
    "ten_b": {"counterparty:cpty_ok": "confirmed"},
}


def pay(payee: str | None, account: str = "acc_a") -> NewTransfer:
    return NewTransfer(
        id="tr_1", ledger_id="ldg_1", debit_account_id=account, credit_account_id="acc_x",
        amount=1, payment=Payment("cus_1", payee=payee),
    )  # fmt: skip


def tenants(account_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    return {a: ACCOUNTS[a] for a in account_ids if a in ACCOUNTS}


def statuses(tenant: str, subjects: Sequence[str]) -> dict[str, str]:
    return {s: STATUSES[tenant][s] for s in subjects if s in STATUSES[tenant]}


def test_confirmed_blocked_probable_held_the_rest_allowed() -> None:
    gate = SanctionsGate(tenants, statuses)
    batch = [
        pay("cpty_bad"),
        pay("cpty_maybe"),
        pay("cpty_ok"),  # confirmed in B only: A's payee is clear
        pay("term_42"),
        pay(None),
        NewTransfer(id="tr_2", ledger_id="ldg_1", debit_account_id="acc_a",
                    credit_account_id="acc_x", amount=1),
        pay("cpty_bad", account="acc_unknown"),
        NewTransfer(id="tr_3", ledger_id="ldg_1", action=Action.VOID, target_id="tr_1",
                    payment=Payment("cus_1", payee="cpty_bad")),
        # B's account of another ledger: the engine refuses it; B's statuses (cpty_ok is
        # confirmed there) never answer for a payment of this ledger.
        pay("cpty_ok", account="acc_c"),
    ]  # fmt: skip
    out = gate.decide(batch, "key:1")
    assert [(d.verdict, d.code) if d else None for d in out] == [
        (Verdict.BLOCK, "sanctions_blocked"),
        (Verdict.REVIEW, "sanctions_review"),
        None, None, None, None, None, None, None,
    ]  # fmt: skip
    assert gate.decide([pay("cpty_ok", account="acc_b")], "key:1")[0] is not None  # B's own


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        ("closed", (Verdict.BLOCK, "sanctions_unavailable")),
        ("review", (Verdict.REVIEW, "sanctions_unavailable")),
        ("open", None),
    ],
)
def test_a_failed_lookup_follows_the_fail_policy(
    fail: str, expected: tuple[Verdict, str] | None
) -> None:
    def broken(tenant: str, subjects: Sequence[str]) -> dict[str, str]:
        raise OSError("database unreachable")

    gate = SanctionsGate(tenants, broken, fail=fail)
    (decision, other) = gate.decide([pay("cpty_maybe"), pay("term_1")], None)
    assert ((decision.verdict, decision.code) if decision else None) == expected
    # A payee the gate does not screen still has a payer it could not check: the same answer.
    assert other == decision
    assert gate.fail_open is (fail == "open")


def test_blocking_keys_meet_across_spellings_and_scripts() -> None:
    assert phonetic_keys(["Osama bin Laden"]) & phonetic_keys(["Usama BIN LADIN"])
    assert phonetic_keys(["Mohammed Ali"]) & phonetic_keys(["Muhammad"])
    assert phonetic_keys(["Владимир Путин"]) & phonetic_keys(["Vladimir Putin"])
    assert not phonetic_keys(["Jane Smith"]) & phonetic_keys(["Viktor Bout"])
    # Short tokens and a moved token boundary meet too (the matcher finds those names).
    assert phonetic_keys(["Wu Yi"]) & phonetic_keys(["WU Yi"])
    assert phonetic_keys(["Lauren Tnkunda"]) & phonetic_keys(["Laurent Nkunda"])


def test_diff_between_versions() -> None:
    change = diff({"1": "a", "2": "b", "3": "c"}, {"1": "a", "2": "B", "4": "d"})
    assert (change.added, change.changed, change.removed) == (("4",), ("2",), ("3",))
    assert not diff({"1": "a"}, {"1": "a"})


def test_a_payee_name_is_screened_in_memory() -> None:
    screened: list[str] = []

    def is_hit(name: str) -> PayeeMatch | None:
        screened.append(name)
        return HIT if name == "Viktor Bout" else None

    gate = SanctionsGate(tenants, statuses, screen_name=is_hit)
    named = [
        NewTransfer(id=f"tr_{i}", ledger_id="ldg_1", debit_account_id="acc_a",
                    credit_account_id="acc_x", amount=1,
                    payment=Payment("cus_1", payee=payee, payee_name=name))
        for i, (payee, name) in enumerate(
            [("term_1", "Viktor Bout"), (None, "Jane Roe"), ("cpty_bad", "Jane Roe")]
        )
    ]  # fmt: skip
    out = gate.decide(named, None)
    assert [(d.verdict, d.code) if d else None for d in out] == [
        (Verdict.REVIEW, "sanctions_review"),
        None,
        (Verdict.BLOCK, "sanctions_blocked"),  # the stored confirmation wins
    ]
    assert screened == ["Viktor Bout", "Jane Roe"]  # each distinct name once a batch


def test_a_confirmed_payer_pays_nobody() -> None:
    """A customer whose match was confirmed is blocked as a payer, whatever the payee (an
    account opened after the freeze included)."""

    def confirmed_payer(tenant: str, subjects: Sequence[str]) -> dict[str, str]:
        return {s: "confirmed" for s in subjects if s == "customer:cus_1"}

    gate = SanctionsGate(tenants, confirmed_payer)
    (decision,) = gate.decide([pay("term_1")], None)
    assert decision is not None
    assert (decision.verdict, decision.code) == (Verdict.BLOCK, "sanctions_blocked")


def _named(*names: str) -> list[NewTransfer]:
    return [
        NewTransfer(id=f"tr_{i}", ledger_id="ldg_1", debit_account_id="acc_a",
                    credit_account_id="acc_x", amount=1,
                    payment=Payment("cus_1", payee="iban_x", payee_name=name))
        for i, name in enumerate(names)
    ]  # fmt: skip


class SlowMatcher:
    """A matcher that costs 100 ms of the gate's (fake) clock per name: the clock moves only
    when a name is screened, so what the gate does past its budget is the same on any machine."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.screened: list[str] = []

    def clock(self) -> float:
        return self.now_s

    def __call__(self, name: str) -> PayeeMatch | None:
        self.screened.append(name)
        self.now_s += 0.1
        return None


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        ("closed", (Verdict.BLOCK, "sanctions_unavailable")),
        ("review", (Verdict.REVIEW, "sanctions_unavailable")),
        ("open", None),
    ],
)
def test_payee_names_stop_being_screened_at_the_budget(
    fail: str, expected: tuple[Verdict, str] | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Past its budget (250 ms: the third name ends at 300 ms) the gate screens no more names,
    rather than holding a worker of the shared gate pool: the payments whose names it did not
    screen get the fail policy's answer, counted and logged, never silently allowed."""
    slow = SlowMatcher()
    told: list[tuple[str, int]] = []
    gate = SanctionsGate(
        tenants, statuses, screen_name=slow, fail=fail, budget_ms=250,
        monotonic=slow.clock, on_unscreened=lambda outcome, n: told.append((outcome, n)),
    )  # fmt: skip
    names = [f"Payee Number {i}" for i in range(10)]
    out = gate.decide(_named(*names, names[0]), None)
    assert slow.screened == names[:3]  # 0, 100, 200 ms: in budget; at 300 ms it stops
    got = [(d.verdict, d.code) if d else None for d in out]
    assert got == [None, None, None, *[expected] * 7, None]  # names[0] again: screened once
    assert told == [(fail, 7)]
    assert gate.failures[fail] == 7
    assert "7 payments' payee names not screened" in caplog.text
    assert "Payee Number" not in caplog.text  # never a name in a log


def test_payee_names_screened_a_batch_are_bounded() -> None:
    """However fast the matcher, at most `names_max` distinct names a batch."""
    screened: list[str] = []

    def fast(name: str) -> PayeeMatch | None:
        screened.append(name)
        return HIT if name == "Viktor Bout" else None

    gate = SanctionsGate(tenants, statuses, screen_name=fast, names_max=2)
    out = gate.decide(_named("Viktor Bout", "Jane Roe", "John Doe", "Jane Roe"), None)
    assert screened == ["Viktor Bout", "Jane Roe"]
    assert [(d.verdict, d.code) if d else None for d in out] == [
        (Verdict.REVIEW, "sanctions_review"),
        None,
        (Verdict.BLOCK, "sanctions_unavailable"),  # the default fail policy: closed
        None,
    ]
    assert gate.failures == {"closed": 1, "open": 0, "review": 0}
    assert SanctionsGate(tenants, statuses).names_max == SCREENING_PAYEE_NAMES_PER_BATCH_MAX


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        ("closed", (Verdict.BLOCK, "sanctions_unavailable")),
        ("review", (Verdict.REVIEW, "sanctions_unavailable")),
        ("open", None),
    ],
)
def test_no_screener_yet_is_the_fail_policy_for_named_payees_only(
    fail: str, expected: tuple[Verdict, str] | None
) -> None:
    """This process's first screener still building (or no list loaded): the payments with a
    payee name get the fail policy's answer with the documented code, `sanctions_unavailable`;
    the others are decided on their stored screenings as ever."""
    asked: list[str] = []

    def building(name: str) -> PayeeMatch | None:
        asked.append(name)
        raise ScreenerNotReady("building")

    gate = SanctionsGate(tenants, statuses, screen_name=building, fail=fail)
    batch = [*_named("Jane Roe", "John Doe"), pay("cpty_bad"), pay("cpty_maybe")]
    out = gate.decide(batch, None)
    assert [(d.verdict, d.code) if d else None for d in out] == [
        expected, expected,
        (Verdict.BLOCK, "sanctions_blocked"), (Verdict.REVIEW, "sanctions_review"),
    ]  # fmt: skip
    assert asked == ["Jane Roe"]  # not asked again in the batch
    assert gate.failures[fail] == 2


def test_a_held_payment_names_its_evidence_never_the_payee_name() -> None:
    """The `sanctions_review` case's detail: the matched list entry and its score for a payee
    name, the stored subject for a known payee; a name with no letter or digit is held too."""

    def screen(name: str) -> PayeeMatch | None:
        if not any(c.isalnum() for c in name):
            raise InvalidName()
        return HIT if name == "Wiktor Bout" else None

    gate = SanctionsGate(tenants, statuses, screen_name=screen)
    out = gate.decide([*_named("Wiktor Bout", "!!!", "Jane Roe"), pay("cpty_maybe")], None)
    details = [(d.verdict, d.detail) if d else None for d in out]
    assert details == [
        (Verdict.REVIEW, {"payee_name": HIT.to_dict()}),
        (Verdict.REVIEW, {"payee_name": {"unscreenable": True}}),
        None,
        (Verdict.REVIEW, {"payee": {"subject": "counterparty:cpty_maybe", "status": "probable"}}),
    ]
    assert HIT.to_dict() == {
        "list": "ofac_sdn", "entry_id": "200", "entry_name": "Viktor BOUT", "score": 0.9512,
        "list_version": 1,
    }  # fmt: skip
    assert "Wiktor" not in repr(details)
