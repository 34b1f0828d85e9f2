"""A synthetic transfer history with planted money-laundering typologies and ground-truth
labels (docs/aml.md, "The generator"). Written from published descriptions, not from the
detectors (this module must not import compliance.aml.typologies; a test holds it):

- FATF, "Money Laundering and Terrorist Financing Typologies" and the Recommendations'
  guidance: structuring / smurfing (several cash deposits kept just under the reporting
  threshold over days), rapid movement of funds (in and straight out), dormant accounts
  reactivated for laundering, high-risk jurisdictions (the FATF "call for action" list), and
  cash transaction reports at the threshold (US CTR: USD 10,000);
- AMLworld (Altman et al., "Realistic Synthetic Financial Transactions for Anti-Money
  Laundering Models", NeurIPS 2023, arXiv:2306.16424) and IBM AMLSim's alert models: fan-out
  (one account distributes large or round sums to many), fan-in (many send to one, which then
  moves it on: gather-scatter), and the cycle (each member passes about 90% on, the last pays
  the origin back).

Normal activity, with hard negatives: salaries (monthly, one employer to many employees: a
fan-out that is not laundering), rent, card purchases at merchants (shops are fan-ins),
high-ticket merchants (many payments of hundreds), cash businesses depositing weekly, savings
sweeps right after payday, refunds (money back to where it came from in two hops), family
remittances abroad (some to high-risk jurisdictions, small), near-threshold one-off purchases,
and rarely used accounts that wake up for small amounts.

Owners: every monitored account has a customer. Most own one account; HOUSEHOLD_PCT of the
persons are paired into customers of two accounts, each living its own life (a hard negative
for looking at a customer's accounts together); and SPLIT_SHARE of the planted structurers
spread their deposits over two or three accounts of theirs (the other ones drawn from the
persons living normally), so that no account receives three (FATF: smurfing over several
accounts). The owners are drawn with their own generator: the transfers are those drawn
without them, but for the accounts that split deposits are paid into.

Seeded and deterministic: the same (accounts, seed, days) gives the same rows."""

from __future__ import annotations

import csv
import itertools
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

US_PER_DAY: Final = 86_400 * 1_000_000
START_US: Final = 1_767_225_600 * 1_000_000  # 2026-01-01T00:00:00Z
ASSET: Final = "USD"
LEDGER: Final = "sim"
# Published figures the generator plants around (not the detectors' configuration).
CASH_REPORT_THRESHOLD: Final = 1_000_000  # USD 10,000.00: FinCEN CTR, EU cash threshold
FATF_CALL_FOR_ACTION: Final = ("KP", "IR", "MM")  # FATF high-risk list, February 2025
OTHER_JURISDICTIONS: Final = ("GB", "DE", "FR", "MX", "IN", "PH", "NG", "PL", "TR", "VN")
HOME: Final = "US"

TYPOLOGIES: Final = (
    "structuring",
    "rapid_movement",
    "fan_in",
    "fan_out",
    "round_tripping",
    "dormant_reactivation",
    "high_risk_jurisdiction",
    "large_transaction",
)
# Typologies are planted after a run-in of normal life (except the dormant accounts' early
# activity), so that a monitor judging behaviour against an account's own past has a past.
RUN_IN_DAYS: Final = 40
PLANTED_PER_10K: Final = 10  # accounts planted per typology per 10,000 accounts (at least 2)
HOUSEHOLD_PCT: Final = 10  # persons paired into customers of two accounts
SPLIT_SHARE: Final = 0.5  # planted structurers who spread their deposits over their accounts


@dataclass(frozen=True, slots=True)
class SimAccount:
    id: str
    role: str  # person, employer, merchant, luxury_merchant, cash, foreign, client
    jurisdiction: str
    monitored: bool
    customer: str | None = None  # its owner, when known (several accounts may share one)


@dataclass(frozen=True, slots=True)
class SimTransfer:
    id: str
    at_us: int
    debit: str
    credit: str
    amount: int
    asset: str = ASSET
    ledger: str = LEDGER


@dataclass(slots=True)
class Simulation:
    accounts: list[SimAccount]
    transfers: list[SimTransfer]
    labels: dict[str, set[str]] = field(default_factory=dict)  # typology -> accounts
    days: int = 0
    seed: int = 0

    @property
    def monitored(self) -> int:
        return sum(1 for a in self.accounts if a.monitored)


class _Builder:
    def __init__(self, rng: random.Random, days: int) -> None:
        self.rng = rng
        self.days = days
        self.rows: list[tuple[int, str, str, int]] = []

    def at(self, day: float) -> int:
        """A time on `day` (fractional days allowed), jittered within business hours."""
        base = START_US + int(day * US_PER_DAY)
        return base + self.rng.randrange(7 * 3_600, 21 * 3_600) * 1_000_000 // 1

    def pay(self, at_us: int, debit: str, credit: str, amount: int) -> None:
        if amount <= 0 or debit == credit:
            return
        if at_us >= START_US + self.days * US_PER_DAY:
            return
        self.rows.append((at_us, debit, credit, amount))

    def money(self, low: int, high: int) -> int:
        """Minor units, log-uniform in [low, high)."""
        return int(math.exp(self.rng.uniform(math.log(low), math.log(high))))


def simulate(accounts: int, seed: int, days: int = 240) -> Simulation:
    """`accounts` monitored accounts (persons and businesses) plus the system and foreign
    accounts they pay, over `days` days from 2026-01-01, with each typology planted in about
    PLANTED_PER_10K per 10,000 accounts."""
    assert accounts >= 500, "at least 500 accounts: each typology needs its own"
    assert days >= 220, "dormant reactivation needs 180 quiet days and a start"
    rng = random.Random(seed)
    b = _Builder(rng, days)
    n_employers = max(2, accounts // 250)
    n_merchants = max(5, accounts // 100)
    n_luxury = max(2, accounts // 1_000)
    n_persons = accounts - n_employers - n_merchants - n_luxury
    persons = [f"acc_p{i:06d}" for i in range(n_persons)]
    employers = [f"acc_e{i:05d}" for i in range(n_employers)]
    merchants = [f"acc_m{i:05d}" for i in range(n_merchants)]
    luxury = [f"acc_l{i:05d}" for i in range(n_luxury)]
    cash = "sys_cash"
    clients = [f"ext_client{i:04d}" for i in range(max(4, n_employers * 3))]
    foreign = {j: [f"ext_{j.lower()}{i:03d}" for i in range(20)] for j in OTHER_JURISDICTIONS}
    risky = {j: [f"ext_{j.lower()}{i:03d}" for i in range(10)] for j in FATF_CALL_FOR_ACTION}
    sim_accounts = (
        [SimAccount(a, "person", HOME, True) for a in persons]
        + [SimAccount(a, "employer", HOME, True) for a in employers]
        + [SimAccount(a, "merchant", HOME, True) for a in merchants]
        + [SimAccount(a, "luxury_merchant", HOME, True) for a in luxury]
        + [SimAccount(cash, "cash", HOME, False)]
        + [SimAccount(a, "client", HOME, False) for a in clients]
        + [SimAccount(a, "foreign", j, False) for j, xs in foreign.items() for a in xs]
        + [SimAccount(a, "foreign", j, False) for j, xs in risky.items() for a in xs]
    )

    # The planted accounts, drawn from the persons, and the persons left to live normally.
    per = max(2, accounts * PLANTED_PER_10K // 10_000)
    shuffled = persons[:]
    rng.shuffle(shuffled)
    planted: dict[str, list[str]] = {}
    cursor = 0
    for typology in TYPOLOGIES:
        if typology == "large_transaction":
            continue
        planted[typology] = shuffled[cursor : cursor + per]
        cursor += per
    planted["large_transaction"] = shuffled[cursor : cursor + per]
    cursor += per
    # Dormant accounts are quiet by construction: they do not live the normal life below.
    quiet = set(planted["dormant_reactivation"])
    normal = [p for p in persons if p not in quiet]
    # Owners, from their own generator (the transfers below are drawn as without them).
    owners_rng = random.Random(seed * 7_919 + 1)
    owner: dict[str, str] = {}
    paired = owners_rng.sample(persons, len(persons) * HOUSEHOLD_PCT // 200 * 2)
    for k in range(0, len(paired), 2):
        owner[paired[k]] = owner[paired[k + 1]] = f"cus_h{k // 2:05d}"
    taken = {a for accs in planted.values() for a in accs} | set(paired)
    free = [p for p in normal if p not in taken]  # a structurer's other accounts
    owners_rng.shuffle(free)

    # -- normal life ----------------------------------------------------------------------
    employer_of = {p: rng.choice(employers) for p in normal}
    salary = {p: b.money(180_000, 700_000) for p in normal}
    landlords = rng.sample(normal, max(2, len(normal) // 60))
    weights = [1.0 / (k + 1) for k in range(len(merchants))]  # popular shops
    months = days // 30 + 1
    payroll: dict[str, int] = {}
    for p in normal:
        payday = rng.randint(25, 28)
        rent_day = rng.randint(1, 4)
        rent = salary[p] * rng.randint(25, 40) // 100
        landlord = rng.choice(landlords)
        saver = rng.random() < 0.15
        for m in range(months):
            b.pay(b.at(m * 30 + payday), employer_of[p], p, salary[p])
            payroll[employer_of[p]] = payroll.get(employer_of[p], 0) + salary[p]
            if landlord != p:
                b.pay(b.at(m * 30 + rent_day), p, landlord, rent)
            if saver:  # a sweep to savings (another own account) the day after payday
                b.pay(b.at(m * 30 + payday + 1), p, rng.choice(foreign["GB"]), salary[p] * 8 // 10)
        for _ in range(int(days / 30 * rng.uniform(2, 6))):
            shop = rng.choices(merchants, weights)[0]
            at_us = b.at(rng.uniform(0, days))
            amount = b.money(500, 15_000)
            b.pay(at_us, p, shop, amount)
            if rng.random() < 0.02:  # a refund
                b.pay(at_us + rng.randrange(1, 5) * US_PER_DAY, shop, p, amount)
        for _ in range(int(days / 30 * rng.uniform(0, 1.5))):  # friends
            b.pay(b.at(rng.uniform(0, days)), p, rng.choice(normal), b.money(2_000, 50_000))
        r = rng.random()
        if r < 0.03:  # a cash business: deposits most weeks
            for w in range(days // 7):
                if rng.random() < 0.8:
                    b.pay(b.at(w * 7 + rng.uniform(0, 6)), cash, p, b.money(30_000, 700_000))
        elif r < 0.05:  # family remittances abroad, some to a high-risk jurisdiction
            where = rng.choice([*OTHER_JURISDICTIONS, *FATF_CALL_FOR_ACTION])
            to = rng.choice(foreign.get(where) or risky[where])
            for m in range(months):
                b.pay(b.at(m * 30 + rng.uniform(0, 29)), p, to, b.money(5_000, 40_000))
        elif r < 0.06:  # a one-off purchase just under the threshold (a used car)
            b.pay(b.at(rng.uniform(0, days)), p, rng.choice(luxury), b.money(800_000, 995_000))
        elif r < 0.07:  # a one-off near-threshold cash deposit (selling something)
            b.pay(b.at(rng.uniform(0, days)), cash, p, b.money(850_000, 995_000))
        elif r < 0.09:  # buys at high-ticket shops now and then
            for _ in range(rng.randint(1, 4)):
                b.pay(b.at(rng.uniform(0, days)), p, rng.choice(luxury), b.money(20_000, 300_000))
    # High-ticket merchants: many payments of hundreds from many people.
    for shop in luxury:
        for d in range(days):
            for _ in range(rng.randint(0, 3)):
                b.pay(b.at(d), rng.choice(normal), shop, b.money(20_000, 250_000))
        for m in range(months):  # pays its suppliers' invoices monthly
            for _ in range(rng.randint(2, 4)):
                b.pay(
                    b.at(m * 30 + rng.randint(5, 10)),
                    shop,
                    rng.choice(clients),
                    b.money(200_000, 950_000),
                )
    # Employers: invoices paid by clients through the month fund the payroll.
    for e in employers:
        total = max(payroll.get(e, 0) // max(1, months), 100_000)
        for m in range(months):
            # Invoices under the threshold (businesses' large transfers are left out so that
            # the large-transaction labels stay a few per 10,000 accounts).
            k = max(rng.randint(4, 8), -(-total * 11 // 10) // 900_000)
            for _ in range(k):
                b.pay(
                    b.at(m * 30 + rng.uniform(0, 29)),
                    rng.choice(clients),
                    e,
                    total * 11 // (10 * k) * rng.randint(70, 100) // 100,  # invoices vary
                )
    # Merchants settle their takings to a supplier monthly.
    for shop in merchants:
        for m in range(months):
            b.pay(
                b.at(m * 30 + rng.randint(1, 28)),
                shop,
                rng.choice(clients),
                b.money(50_000, 800_000),
            )
    # Rarely used accounts: a few small movements, some after a long quiet spell.
    for p in rng.sample(normal, max(2, len(normal) // 100)):
        b.pay(b.at(rng.uniform(0, 20)), cash, p, b.money(2_000, 20_000))
        b.pay(
            b.at(rng.uniform(days - 30, days - 1)), p, rng.choice(merchants), b.money(2_000, 25_000)
        )

    # -- planted typologies -----------------------------------------------------------------
    active = normal
    # Structuring (FATF smurfing): 3 to 6 cash deposits just under the threshold in days.
    # Some spread them over two or three accounts of theirs, fewer than three into each.
    for n, acc in enumerate(planted["structuring"]):
        start = rng.uniform(RUN_IN_DAYS, days - 15)
        count = rng.randint(3, 6)
        group = [acc]
        if owners_rng.random() < SPLIT_SHARE:
            group += [free.pop() for _ in range(-(-count // 2) - 1)]
            owner.update(dict.fromkeys(group, f"cus_s{n:03d}"))
        for i in range(count):
            at_us = b.at(start + i * rng.uniform(0.5, 2))
            b.pay(at_us, cash, group[i % len(group)], b.money(870_000, 999_000))
    # Rapid movement: a large sum in and nearly all of it out again within hours.
    for acc in planted["rapid_movement"]:
        at_us = b.at(rng.uniform(RUN_IN_DAYS, days - 5))
        amount = b.money(2_000_000, 15_000_000)
        b.pay(at_us, rng.choice(foreign[rng.choice(OTHER_JURISDICTIONS)]), acc, amount)
        left = amount * rng.randint(90, 98) // 100
        for i, share in enumerate(_split(rng, left, rng.randint(1, 2))):
            b.pay(
                at_us + (i + 1) * rng.randint(2, 18) * 3_600_000_000,  # within 36 hours
                acc,
                rng.choice(foreign["MX"]),
                share,
            )
    # Fan-in (AMLworld): many accounts send to one, which mostly moves it on (gather-scatter).
    for acc in planted["fan_in"]:
        start = rng.uniform(RUN_IN_DAYS, days - 10)
        senders = rng.sample(active, rng.randint(9, 16))
        total = 0
        for s in senders:
            amount = (
                rng.choice([100_000, 200_000, 250_000, 300_000, 500_000])
                - rng.randrange(0, 3) * 1_000
            )
            b.pay(b.at(start + rng.uniform(0, 4)), s, acc, amount)
            total += amount
        if rng.random() < 0.8:
            b.pay(b.at(start + 5), acc, rng.choice(foreign["TR"]), total * 9 // 10)
    # Fan-out (AMLworld): one account receives a sum and distributes it to many.
    for acc in planted["fan_out"]:
        start = rng.uniform(RUN_IN_DAYS, days - 10)
        receivers = rng.sample(active, rng.randint(9, 16))
        parts = [rng.choice([100_000, 200_000, 300_000, 450_000]) for _ in receivers]
        b.pay(b.at(start), rng.choice(clients), acc, sum(parts) * 105 // 100)
        for r_, part in zip(receivers, parts, strict=True):
            b.pay(b.at(start + 0.5 + rng.uniform(0, 4)), acc, r_, part)
    # Round-tripping (AMLworld cycle): the origin pays the first member; each passes about 90%
    # on after a day or so; the last pays the origin back.
    for acc in planted["round_tripping"]:
        members = rng.sample(active, rng.randint(2, 5))
        amount = b.money(300_000, 950_000)
        at_us = b.at(rng.uniform(RUN_IN_DAYS, days - 15))
        chain = [acc, *members, acc]
        for src, dst in itertools.pairwise(chain):
            b.pay(at_us, src, dst, amount)
            amount = amount * rng.randint(88, 95) // 100
            at_us += int(rng.uniform(0.3, 2) * US_PER_DAY)  # each hop after the last
    # Dormant reactivation: a little activity early, 180+ quiet days, then money through it.
    for acc in planted["dormant_reactivation"]:
        for _ in range(rng.randint(1, 3)):
            b.pay(b.at(rng.uniform(0, 20)), rng.choice(active), acc, b.money(2_000, 30_000))
        wake = rng.uniform(205, days - 8)
        total = 0
        for i in range(rng.randint(2, 4)):
            amount = b.money(200_000, 900_000)
            b.pay(b.at(wake + i * rng.uniform(0.2, 2)), rng.choice(clients), acc, amount)
            total += amount
        b.pay(b.at(wake + 6), acc, rng.choice(foreign["PH"]), total * 9 // 10)
    # High-risk jurisdictions: payments to and from the FATF call-for-action list.
    for acc in planted["high_risk_jurisdiction"]:
        where = rng.choice(FATF_CALL_FOR_ACTION)
        day = rng.uniform(RUN_IN_DAYS, days - 20)
        for _ in range(rng.randint(1, 3)):
            peer = rng.choice(risky[where])
            amount = b.money(150_000, 900_000)
            if rng.random() < 0.5:
                b.pay(b.at(day), acc, peer, amount)
            else:
                b.pay(b.at(day), peer, acc, amount)
            day += rng.uniform(1, 8)
    # Large transactions: a sum at or over the cash reporting threshold.
    for acc in planted["large_transaction"]:
        amount = b.money(CASH_REPORT_THRESHOLD, 5 * CASH_REPORT_THRESHOLD)
        if rng.random() < 0.5:
            b.pay(b.at(rng.uniform(RUN_IN_DAYS, days)), cash, acc, amount)
        else:
            b.pay(b.at(rng.uniform(RUN_IN_DAYS, days)), acc, rng.choice(clients), amount)

    # Every monitored account has an owner: its own customer unless drawn above.
    sim_accounts = [
        replace(a, customer=owner.get(a.id, f"cus_{a.id.removeprefix('acc_')}"))
        if a.monitored
        else a
        for a in sim_accounts
    ]
    b.rows.sort()
    transfers = [
        SimTransfer(f"tr_sim{i:09d}", at_us, debit, credit, amount)
        for i, (at_us, debit, credit, amount) in enumerate(b.rows)
    ]
    labels = {t: set(planted[t]) for t in TYPOLOGIES}
    # A report is due for every monitored account with a movement at or over the threshold,
    # whatever else it was doing (the rule is the threshold: the label is too).
    monitored = {a.id for a in sim_accounts if a.monitored}
    for t in transfers:
        if t.amount >= CASH_REPORT_THRESHOLD:
            labels["large_transaction"].update({t.debit, t.credit} & monitored)
    return Simulation(sim_accounts, transfers, labels, days, seed)


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    if parts == 1:
        return [total]
    first = total * rng.randint(30, 70) // 100
    return [first, total - first]


# -- files ----------------------------------------------------------------------------------


def _paths(out: Path) -> tuple[Path, Path]:
    stem = out.with_suffix("")
    return Path(f"{stem}.accounts.csv"), Path(f"{stem}.labels.csv")


def write(sim: Simulation, out: Path) -> list[Path]:
    """The transfers to `out` (.csv or .parquet), the accounts and the labels beside it
    (`<stem>.accounts.csv`: account, role, jurisdiction, monitored, customer;
    `<stem>.labels.csv`: account, typology)."""
    accounts_path, labels_path = _paths(out)
    columns = ["id", "at_us", "debit", "credit", "amount", "asset", "ledger"]
    if out.suffix == ".parquet":
        import pyarrow as pa  # only for Parquet output
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "id": [t.id for t in sim.transfers],
                "at_us": pa.array([t.at_us for t in sim.transfers], pa.int64()),
                "debit": [t.debit for t in sim.transfers],
                "credit": [t.credit for t in sim.transfers],
                # Minor units may pass 64 bits in general: text keeps them exact.
                "amount": [str(t.amount) for t in sim.transfers],
                "asset": [t.asset for t in sim.transfers],
                "ledger": [t.ledger for t in sim.transfers],
            }
        )
        pq.write_table(table, out)
    else:
        with out.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            for t in sim.transfers:
                w.writerow([t.id, t.at_us, t.debit, t.credit, t.amount, t.asset, t.ledger])
    with accounts_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account", "role", "jurisdiction", "monitored", "customer"])
        for a in sim.accounts:
            w.writerow([a.id, a.role, a.jurisdiction, int(a.monitored), a.customer or ""])
    with labels_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account", "typology"])
        for typology in TYPOLOGIES:
            for acc in sorted(sim.labels[typology]):
                w.writerow([acc, typology])
    return [out, accounts_path, labels_path]


def label_counts(sim: Simulation) -> dict[str, int]:
    return {t: len(sim.labels[t]) for t in TYPOLOGIES}


def planted_per_typology(accounts: int) -> int:
    return max(2, accounts * PLANTED_PER_10K // 10_000)
