"""The AML detectors on hand-built sequences: each typology's positive case and a hard negative
that looks like it (docs/aml.md), the bounds of their state, and the generator's determinism,
label counts and independence from the detectors."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from strongroom.compliance.aml import simulate as sim
from strongroom.compliance.aml.typologies import (
    US_PER_DAY,
    US_PER_HOUR,
    AccountInfo,
    AmlConfig,
    AssetLimits,
    Detectors,
    Hit,
    Posted,
    Typology,
    best_per_account,
    best_per_owner,
)

T0 = 1_767_225_600 * 1_000_000
_ids = itertools.count()


def tr(day: float, debit: str, credit: str, amount: int, asset: str = "USD") -> Posted:
    return Posted(f"t{next(_ids)}", T0 + int(day * US_PER_DAY), debit, credit, amount, asset)


def run(
    transfers: Iterable[Posted],
    infos: dict[str, AccountInfo] | None = None,
    config: AmlConfig | None = None,
) -> list[Hit]:
    known = infos or {}
    detectors = Detectors(config, lambda a: known.get(a, AccountInfo()))
    return detectors.run(sorted(transfers, key=lambda t: t.at_us))


def flagged(hits: list[Hit], typology: Typology) -> set[str]:
    return {h.account for h in hits if h.typology is typology}


CASH = {"cash": AccountInfo(monitored=False)}


def test_structuring_several_deposits_just_under_the_threshold() -> None:
    hits = run([tr(d, "cash", "smurf", 950_000) for d in (0, 1.5, 3)], CASH)
    assert flagged(hits, Typology.STRUCTURING) == {"smurf"}
    [hit] = [h for h in hits if h.typology is Typology.STRUCTURING]
    assert hit.amount == 2_850_000
    assert hit.counterparties == 3
    assert len(hit.transfer_ids) == 3


def test_structuring_hard_negatives_one_near_deposit_monthly_salary_and_spread_deposits() -> None:
    hits = run(
        [tr(0, "cash", "seller", 990_000)]  # one near-threshold deposit
        + [tr(m * 30, "employer", "worker", 920_000) for m in range(4)]  # monthly
        + [tr(d * 12, "cash", "slow", 950_000) for d in range(4)]  # outside the window
        + [tr(d, "cash", "small", 400_000) for d in range(6)],  # well under
        CASH,
    )
    assert flagged(hits, Typology.STRUCTURING) == set()


def test_structuring_ranks_one_sum_split_above_a_firm_paid_by_many_clients() -> None:
    """Structuring splits one sum: three cash deposits under the threshold rank above a firm
    that many clients paid near-threshold invoices (more of them, a larger total)."""
    smurf = [tr(d, "cash", "smurf", 900_000) for d in (0, 1, 2)]
    firm = [tr(i * 0.4, f"client{i}", "firm", 950_000 + i) for i in range(12)]
    hits = run(smurf + firm, CASH)
    best = best_per_account(hits)[Typology.STRUCTURING]
    assert set(best) == {"smurf", "firm"}  # both raised: the firm is a look-alike
    assert best["firm"].amount > best["smurf"].amount
    assert best["smurf"].score > best["firm"].score


def test_rapid_movement_in_and_straight_out() -> None:
    hits = run([tr(0, "ext", "mule", 5_000_000), tr(0.5, "mule", "abroad", 4_800_000)])
    assert "mule" in flagged(hits, Typology.RAPID_MOVEMENT)


def test_rapid_movement_hard_negatives_salary_spent_slowly_and_late_transfer() -> None:
    hits = run(
        [tr(0, "employer", "alice", 600_000), tr(0.2, "alice", "landlord", 200_000)]  # noqa: RUF005 (one group of the scenario a line)
        + [tr(0, "ext", "bob", 5_000_000), tr(5, "bob", "house", 4_900_000)]  # days later
        + [tr(0, "ext", "carol", 5_000_000), tr(0.5, "carol", "sav", 1_000_000)]  # a fifth
    )
    assert flagged(hits, Typology.RAPID_MOVEMENT) == set()


def test_fan_in_and_fan_out_rank_mules_above_a_landlord_and_an_employer() -> None:
    mule_in = [tr(i * 0.3, f"s{i}", "collector", 200_000) for i in range(10)]
    mule_in.append(tr(4, "collector", "abroad", 1_800_000))
    mule_out = [tr(0, "ext", "spreader", 3_000_000)] + [
        tr(0.5 + i * 0.2, "spreader", f"r{i}", 300_000) for i in range(10)
    ]
    landlord = [tr(1 + i * 0.1, f"tenant{i}", "landlord", 123_456 + i) for i in range(12)]
    landlord.append(tr(3, "landlord", "shop", 20_000))
    payroll = [tr(28, "employer", f"emp{i}", 345_678 + i) for i in range(12)]
    payroll += [tr(2 + 5 * k, f"client{k}", "employer", 1_100_000) for k in range(5)]
    hits = run(mule_in + mule_out + landlord + payroll)
    best = best_per_account(hits)
    fan_in = sorted(best[Typology.FAN_IN].values(), key=lambda h: -h.score)
    fan_out = sorted(best[Typology.FAN_OUT].values(), key=lambda h: -h.score)
    assert fan_in[0].account == "collector"
    assert {h.account for h in fan_in} == {"collector", "landlord"}  # raised, ranked lower
    assert fan_out[0].account == "spreader"
    assert fan_in[0].counterparties == 10


def test_fan_in_ranks_a_mule_that_kept_the_money_above_a_shop_with_new_customers() -> None:
    """A fan-in is a burst unusual for the account: ten new senders to a person who had one
    before ranks above a high-ticket shop whose customers are all new but as many came in
    each of the weeks before, and which pays its supplier what came in."""
    days = 42
    mule = [tr(m * 30 + 1, "employer", "mule", 250_000 + m) for m in range(2)]
    mule += [tr(days - 3 + i * 0.3, f"sender{i}", "mule", 199_000 - i) for i in range(10)]
    shop = [
        tr(d + h / 3, f"buyer{d}_{h}", "shop", 61_234 + 1_000 * h)  # two new customers a day
        for d in range(days)
        for h in range(2)
    ]
    shop += [tr(w * 7 + 6, "shop", "supplier", 900_000) for w in range(days // 7)]
    # Once the lookback holds the shop's weeks (in its first week it is a new account whose
    # every customer is a surge; a deployment rebuilds that history at start).
    learned_us = T0 + 35 * US_PER_DAY
    hits = [h for h in run(mule + shop) if h.at_us >= learned_us]
    best = best_per_account(hits)[Typology.FAN_IN]
    assert set(best) == {"mule", "shop"}
    assert best["shop"].counterparties >= best["mule"].counterparties  # as many senders
    assert best["mule"].score > best["shop"].score


def test_fan_in_needs_enough_counterparties_of_enough_money() -> None:
    shop = [tr(i * 0.05, f"buyer{i}", "shop", 3_000) for i in range(40)]  # small tickets
    few = [tr(i, f"s{i}", "few", 500_000) for i in range(5)]
    assert flagged(run(shop + few), Typology.FAN_IN) == set()


def test_round_tripping_money_back_at_its_origin_after_three_hops_or_more() -> None:
    hits = run(
        [
            tr(0, "origin", "a", 500_000),
            tr(1, "a", "b", 460_000),
            tr(2, "b", "c", 420_000),
            tr(3, "c", "origin", 390_000),
        ]
    )
    [hit] = [h for h in hits if h.typology is Typology.ROUND_TRIPPING]
    assert hit.account == "origin"
    assert hit.counterparties == 4
    assert len(hit.transfer_ids) == 4


def test_round_tripping_hard_negatives_a_refund_an_economic_loop_and_a_slow_cycle() -> None:
    hits = run(
        [tr(0, "buyer", "shop", 500_000), tr(2, "shop", "buyer", 500_000)]  # refund: 2 hops  # noqa: RUF005 (one group of the scenario a line)
        # salary, a purchase of a fraction of it, the shop's supplier, who pays the employer
        + [
            tr(0, "employer", "worker", 500_000),
            tr(1, "worker", "store", 120_000),
            tr(2, "store", "supplier", 900_000),
            tr(3, "supplier", "employer", 450_000),
        ]
        # the same money round, but over weeks
        + [
            tr(0, "o2", "x", 500_000),
            tr(8, "x", "y", 480_000),
            tr(16, "y", "o2", 470_000),
        ]
    )
    assert flagged(hits, Typology.ROUND_TRIPPING) == set()


def test_dormant_reactivation() -> None:
    hits = run(
        [tr(0, "friend", "sleeper", 5_000), tr(200, "ext", "sleeper", 400_000)]  # noqa: RUF005 (one group of the scenario a line)
        + [tr(0, "friend", "nap", 5_000), tr(100, "ext", "nap", 400_000)]  # not long enough
        + [tr(0, "friend", "quiet", 5_000), tr(200, "quiet", "shop", 8_000)]  # small
    )
    assert flagged(hits, Typology.DORMANT_REACTIVATION) == {"sleeper"}


def test_high_risk_jurisdictions_are_configurable() -> None:
    infos = {
        "kp1": AccountInfo(jurisdiction="KP", monitored=False),
        "de1": AccountInfo(jurisdiction="DE", monitored=False),
    }
    moves = [
        tr(0, "alice", "kp1", 300_000),
        tr(0, "bob", "de1", 300_000),  # abroad, not high-risk
        tr(0, "carol", "kp1", 20_000),  # a small remittance
    ]
    assert flagged(run(moves, infos), Typology.HIGH_RISK_JURISDICTION) == {"alice"}
    config = AmlConfig(high_risk_jurisdictions=frozenset({"DE"}))
    assert flagged(run(moves, infos, config), Typology.HIGH_RISK_JURISDICTION) == {"bob"}


def test_large_transactions_at_the_configured_threshold_per_asset() -> None:
    moves = [
        tr(0, "cash", "a", 1_000_000),
        tr(0, "b", "c", 999_999),
        tr(0, "d", "e", 1_000_000, asset="JPY"),
    ]
    # An asset without limits of its own gets the defaults (a currency of scale 2).
    assert flagged(run(moves, CASH), Typology.LARGE_TRANSACTION) == {"a", "d", "e"}
    jpy = AmlConfig(limits={"JPY": AssetLimits(large_threshold=1_500_000)})
    assert flagged(run(moves, CASH, jpy), Typology.LARGE_TRANSACTION) == {"a"}
    low = AmlConfig(default_limits=AssetLimits(large_threshold=999_999))
    assert flagged(run(moves, CASH, low), Typology.LARGE_TRANSACTION) == {"a", "b", "c", "d", "e"}


def test_unmonitored_accounts_are_never_a_subject() -> None:
    hits = run([tr(0, "cash", "a", 2_000_000)], CASH)
    assert {h.account for h in hits} == {"a"}


def test_state_is_bounded_and_evicts_the_least_recently_active() -> None:
    config = AmlConfig(accounts_max=10, events_per_account_max=4)
    detectors = Detectors(config)
    for i in range(50):
        detectors.feed(tr(i * 0.001, "hub", f"x{i}", 100))
    assert detectors.accounts == 10
    assert detectors.evicted == 41  # 51 accounts seen, the hub kept (active every time)
    hub = detectors._accounts["hub"]
    assert len(hub.moves) <= 4  # its small movements folded into tallies when it filled


def test_old_movements_leave_the_window() -> None:
    # Two near-threshold deposits, then a third past the longest window: no structuring.
    config = AmlConfig()
    late = config.window_max_us / US_PER_DAY + 1
    moves = [tr(0, "cash", "s", 950_000), tr(1, "cash", "s", 950_000)]
    hits = run([*moves, tr(late, "cash", "s", 950_000)], CASH)
    assert flagged(hits, Typology.STRUCTURING) == set()
    soon = 2 + US_PER_HOUR / US_PER_DAY
    assert flagged(run([*moves, tr(soon, "cash", "s", 950_000)], CASH), Typology.STRUCTURING)


# -- a customer's accounts together -------------------------------------------------------

# Customer c1 owns a1, a2 and a3; c2 owns b1; c3 owns b2; the cash desk is exempt.
OWNED = {
    **CASH,
    "a1": AccountInfo("c1"),
    "a2": AccountInfo("c1"),
    "a3": AccountInfo("c1"),
    "b1": AccountInfo("c2"),
    "b2": AccountInfo("c3"),
}


def of(hits: list[Hit], typology: Typology) -> list[Hit]:
    return [h for h in hits if h.typology is typology]


def test_structuring_split_over_a_customers_accounts_is_one_customer_hit() -> None:
    """Three deposits just under the threshold, one into each of a customer's three accounts:
    no account saw three, the customer did. One hit, about the customer, naming the accounts
    and the transfers; the same deposits into accounts nobody owns raise nothing."""
    deposits = [tr(d, "cash", a, 950_000) for d, a in ((0, "a1"), (1, "a2"), (2, "a3"))]
    [hit] = run(deposits, OWNED)
    assert (hit.typology, hit.subject, hit.owner) == (Typology.STRUCTURING, "customer:c1", "c1")
    assert hit.account == "a3"  # its movement completed it
    assert hit.accounts == ("a1", "a2", "a3")
    assert hit.transfer_ids == tuple(t.id for t in deposits)
    assert (hit.amount, hit.counterparties) == (2_850_000, 3)
    evidence = hit.evidence()
    assert (evidence["customer"], evidence["accounts"]) == ("c1", ["a1", "a2", "a3"])
    assert evidence["transfer_ids"] == [t.id for t in deposits]
    assert run(deposits, CASH) == []


def test_two_customers_never_aggregate_nor_a_customers_unrelated_activity() -> None:
    """The deposits into accounts of three customers raise nothing; nor does one customer's
    unrelated activity: a salary, one near-threshold deposit, and money moved between its own
    accounts days apart (not deposits into the customer, whatever their amounts: summed over
    the accounts as they are, the four near-threshold credits would be structuring)."""
    spread = [tr(d, "cash", a, 950_000) for d, a in ((0, "a1"), (1, "b1"), (2, "b2"))]
    assert run(spread, OWNED) == []
    own = [
        tr(0, "employer", "a1", 420_000),
        tr(0.5, "cash", "a2", 960_000),
        tr(1, "a1", "a2", 900_000),
        tr(4, "a2", "a3", 900_000),
        tr(7, "a3", "a1", 900_000),
        tr(8, "a1", "shop", 12_000),
    ]
    assert run(own, OWNED) == []


def test_one_accounts_structuring_stays_its_own_and_names_the_owner_for_the_dedupe() -> None:
    """Three deposits into one of the customer's accounts: the account's hit (as before),
    naming its owner so that the alert is deduped per customer; a fourth into another
    account then raises the customer hit, which the same dedupe folds into that alert."""
    deposits = [tr(d, "cash", "a1", 950_000) for d in (0, 1, 2)]
    hits = run([*deposits, tr(3, "cash", "a2", 950_000)], OWNED)
    first, second = of(hits, Typology.STRUCTURING)
    assert (first.subject, first.owner, first.accounts) == ("account:a1", "c1", ())
    assert (second.subject, second.owner, second.accounts) == ("customer:c1", "c1", ("a1", "a2"))
    assert set(best_per_owner(hits)[Typology.STRUCTURING]) == {"c1"}  # one alert between them
    # Within one movement, a customer hit replaces the accounts' own hits of its typology:
    # the third deposit into a1 completes both, and raises the customer's only.
    detectors = Detectors(info=lambda a: OWNED.get(a, AccountInfo()))
    detectors.run([tr(-1, "cash", "a2", 950_000), *deposits[:2]])
    [only] = detectors.feed(deposits[2])
    assert (only.subject, only.accounts) == ("customer:c1", ("a1", "a2"))
    assert only.transfer_ids[-3:] == tuple(t.id for t in deposits)


def test_rapid_movement_fan_in_and_round_trips_over_a_customers_accounts() -> None:
    """Money in and out through two accounts, each under the rapid-movement minimum; eight
    senders split four and four (each account short of the fan-in count); money back at
    another account of its origin's owner after three hops. Each a customer hit; none is an
    account's."""
    rapid = [
        tr(0, "ext1", "a1", 300_000),
        tr(0.1, "ext2", "a2", 300_000),
        tr(0.5, "a1", "abroad1", 290_000),
        tr(0.6, "a2", "abroad2", 290_000),
    ]
    [hit] = of(run(rapid, OWNED), Typology.RAPID_MOVEMENT)
    assert (hit.subject, hit.amount, hit.accounts) == ("customer:c1", 580_000, ("a1", "a2"))
    fan = [tr(i * 0.3, f"s{i}", "a1" if i % 2 else "a2", 200_000) for i in range(8)]
    [hit] = of(run(fan, OWNED), Typology.FAN_IN)
    assert (hit.subject, hit.counterparties) == ("customer:c1", 8)
    assert of(run(fan, CASH), Typology.FAN_IN) == []
    cycle = [
        tr(0, "a1", "x", 500_000),
        tr(1, "x", "y", 460_000),
        tr(2, "y", "a2", 420_000),
    ]
    [hit] = of(run(cycle, OWNED), Typology.ROUND_TRIPPING)
    assert (hit.subject, hit.account, hit.accounts) == ("customer:c1", "a2", ("a1", "a2"))
    assert of(run(cycle, CASH), Typology.ROUND_TRIPPING) == []


def test_large_transactions_and_dormancy_stay_per_account() -> None:
    hits = run([tr(0, "cash", "a1", 1_200_000), tr(0, "cash", "a2", 1_300_000)], OWNED)
    assert {(h.typology, h.subject, h.owner) for h in hits} == {
        (Typology.LARGE_TRANSACTION, "account:a1", "a1"),
        (Typology.LARGE_TRANSACTION, "account:a2", "a2"),
    }


def test_a_trial_copies_the_owners_views_and_adopting_it_keeps_them() -> None:
    """A batch fed to a trial (monitor.py) sees the customer's view as the detectors hold it,
    and leaves it unchanged until adopted."""
    detectors = Detectors(info=lambda a: OWNED.get(a, AccountInfo()))
    detectors.run([tr(0, "cash", "a1", 950_000), tr(1, "cash", "a2", 950_000)])
    trial = detectors.trial(["cash", "a3"])
    [hit] = trial.feed(tr(2, "cash", "a3", 950_000))
    assert hit.subject == "customer:c1"
    assert len(detectors._customers["c1"].moves) == 2  # unchanged until adopted
    detectors.adopt(trial)
    assert len(detectors._customers["c1"].moves) == 3
    assert detectors.customers == 1


def test_a_customers_view_is_bounded() -> None:
    config = AmlConfig(customers_max=2, events_per_customer_max=3)
    infos = {f"x{i}": AccountInfo(f"c{i % 4}") for i in range(8)}
    detectors = Detectors(config, lambda a: infos.get(a, AccountInfo()))
    for i in range(8):
        for k in range(5):
            detectors.feed(tr(i + k * 0.01, "ext", f"x{i}", 100))
    assert detectors.customers == 2
    assert all(len(v.moves) <= 3 for v in detectors._customers.values())


# -- the generator ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> sim.Simulation:
    return sim.simulate(600, seed=3)


def test_the_generator_is_deterministic(small: sim.Simulation) -> None:
    again = sim.simulate(600, seed=3)
    assert again.transfers == small.transfers
    assert again.labels == small.labels
    other = sim.simulate(600, seed=4)
    assert other.transfers != small.transfers


def test_the_generator_plants_each_typology_with_labels(small: sim.Simulation) -> None:
    counts = sim.label_counts(small)
    per = sim.planted_per_typology(600)
    assert set(counts) == set(sim.TYPOLOGIES) == {t.value for t in Typology}
    for typology in sim.TYPOLOGIES:
        if typology == "large_transaction":
            # every monitored account with a movement at or over the threshold
            assert counts[typology] >= per
        else:
            assert counts[typology] == per
    planted = [a for t in sim.TYPOLOGIES if t != "large_transaction" for a in small.labels[t]]
    assert len(planted) == len(set(planted))  # one typology per planted account
    monitored = {a.id for a in small.accounts if a.monitored}
    assert set(planted) <= monitored
    times = [t.at_us for t in small.transfers]
    assert times == sorted(times)
    assert all(t.amount > 0 and t.debit != t.credit for t in small.transfers)


def test_the_generator_gives_every_account_an_owner_and_some_owners_several(
    small: sim.Simulation,
) -> None:
    """Every monitored account has a customer; households own two accounts each; a split
    structurer's deposits go to two or three accounts of its customer, fewer than three into
    each, the label on one of them; no other customer owns several accounts."""
    owned: dict[str, list[str]] = {}
    for a in small.accounts:
        assert (a.customer is not None) == a.monitored
        if a.customer is not None:
            owned.setdefault(a.customer, []).append(a.id)
    households = [accs for c, accs in owned.items() if c.startswith("cus_h")]
    assert households
    assert all(len(accs) == 2 for accs in households)
    split = {c: accs for c, accs in owned.items() if c.startswith("cus_s")}
    assert split  # this seed has them (half the structurers, drawn)
    near = [t for t in small.transfers if t.debit == "sys_cash" and 870_000 <= t.amount < 999_000]
    for accounts in split.values():
        assert 2 <= len(accounts) <= 3
        assert len(set(accounts) & small.labels["structuring"]) == 1
        into = [sum(1 for t in near if t.credit == a) for a in accounts]
        assert sum(into) >= 3
        assert max(into) < 3
    assert {tuple(sorted(accs)) for accs in owned.values() if len(accs) > 1} == {
        tuple(sorted(accs)) for accs in [*households, *split.values()]
    }


def test_the_generator_does_not_import_the_detectors() -> None:
    tree = ast.parse(Path(sim.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not any(name and "aml" in name for name in imported), imported


def test_the_generator_writes_csv_and_parquet(small: sim.Simulation, tmp_path: Path) -> None:
    paths = sim.write(small, tmp_path / "h.csv")
    assert [p.name for p in paths] == ["h.csv", "h.accounts.csv", "h.labels.csv"]
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == "id,at_us,debit,credit,amount,asset,ledger"
    assert len(lines) == len(small.transfers) + 1
    labels = (tmp_path / "h.labels.csv").read_text().splitlines()
    assert len(labels) == 1 + sum(sim.label_counts(small).values())
    import pyarrow.parquet as pq

    sim.write(small, tmp_path / "h.parquet")
    table = pq.read_table(tmp_path / "h.parquet")
    assert table.num_rows == len(small.transfers)
    assert table.column("amount")[0].as_py() == str(small.transfers[0].amount)


# -- the ledger's transfers as movements ------------------------------------------------------


def _row(
    action: int,
    status: int,
    *,
    pending: bool = False,
    legs: str | None = None,
    amount: object = 500,
) -> tuple[Any, ...]:
    debit, credit = (None, None) if legs else ("acc_a", "acc_b")
    return (1, "tr_1", "ldg_1", action, status, debit, credit, amount, legs, None, pending,
            0, None, None, T0, None)  # fmt: skip


def test_only_transfers_that_moved_money_are_movements() -> None:
    from strongroom.compliance.aml.monitor import movements
    from strongroom.core.money import to_stored_int
    from strongroom.ledger.model import Action, Status

    def asset(account: str) -> str:
        return "USD"

    moved = [("acc_a", "acc_b", 500, "USD")]
    assert movements(_row(Action.TRANSFER, Status.POSTED), asset) == moved
    assert movements(_row(Action.POST, Status.POSTED), asset) == moved  # a pending's post
    assert movements(_row(Action.TRANSFER, Status.PENDING, pending=True), asset) == []
    # A pending transfer later posted: its own row is not the movement (the post's row is).
    assert movements(_row(Action.TRANSFER, Status.POSTED, pending=True), asset) == []
    assert movements(_row(Action.VOID, Status.POSTED), asset) == []
    assert movements(_row(Action.REVERSE, Status.POSTED), asset) == []
    wide = 2**70  # stored as bytes past 64 bits
    assert movements(_row(Action.TRANSFER, Status.POSTED, amount=to_stored_int(wide)), asset) == [
        ("acc_a", "acc_b", wide, "USD")
    ]
    one_to_two = '[["acc_a",0,500],["acc_b",1,300],["acc_c",1,200]]'
    assert movements(_row(Action.TRANSFER, Status.POSTED, legs=one_to_two), asset) == [
        ("acc_a", "acc_b", 300, "USD"),
        ("acc_a", "acc_c", 200, "USD"),
    ]
    two_to_two = '[["acc_a",0,250],["acc_d",0,250],["acc_b",1,300],["acc_c",1,200]]'
    # Several debits and several credits: each debit shared pro rata (tests/unit/test_aml_flows.py).
    assert movements(_row(Action.TRANSFER, Status.POSTED, legs=two_to_two), asset) == [
        ("acc_a", "acc_b", 150, "USD"),
        ("acc_a", "acc_c", 100, "USD"),
        ("acc_d", "acc_b", 150, "USD"),
        ("acc_d", "acc_c", 100, "USD"),
    ]


def test_the_simulate_command_writes_the_three_files(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from strongroom.cli import app

    out = tmp_path / "sim.csv"
    done = CliRunner().invoke(
        app, ["aml", "simulate", "--accounts", "500", "--seed", "1", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    answer = json.loads(done.output)
    assert answer["accounts"] == 500
    assert answer["labels"]["structuring"] == sim.planted_per_typology(500)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sim.accounts.csv", "sim.csv", "sim.labels.csv",
    ]  # fmt: skip
    refused = CliRunner().invoke(app, ["aml", "simulate", "--out", str(tmp_path / "x.json")])
    assert refused.exit_code != 0
