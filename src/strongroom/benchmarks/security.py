"""`strongroom bench security`: the card vault and field encryption, each against the raw
`cryptography` AES-GCM rate of the same work measured in the same run.

Rows (`ratio` = ours / the reference, higher is better; each figure the median of `runs`):

- tokenize: cards tokenized per second through the service as POST /v1/cards does it (the
  rules, the keyed fingerprint, a fresh data key wrapped by the keyring, the number and the
  holder's name sealed, on the event loop; then the group committer: the rows, the data key
  and a `card.created` audit leaf committed durably), from `callers` concurrent requests on an
  event loop, on a file SQLite database in WAL with synchronous=FULL as `serve` runs it;
  `threads_ops_per_s`: the same from `threads` plain threads, each waiting for its commit
  (fewer waiters than the batch a commit could take, and the GIL handed between them).
  Reference: AESGCM encrypting the same plaintexts (a 32-byte key, the number, the name)
  under fresh keys, no database.
- detokenize: reveals per second as GET /v1/cards/{id}/number does it (read the card and its
  wrapped key in the thread pool, unwrap, open both fields, await the `card.revealed` leaf's
  commit). Reference: AESGCM decrypting the same three ciphertexts.
- pii_encrypt / pii_decrypt: a customer's six personal fields sealed (opened) through DataKey
  under a fresh data key per customer, wrapped (unwrapped) by the keyring; no database.
  Reference: AESGCM on the same seven plaintexts.
- customer_create_overhead: customer-shaped rows (six text fields) inserted in batches of
  CUSTOMER_BATCH per durable transaction, sealed with their data keys (the key rows too)
  against the same rows in clear: `ratio` = sealed / clear, the cost of field encryption on
  creating customers, measured without the customers domain.

Targets (for a 2-core machine) are reported per row, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import platform
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cryptography
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.benchmarks.common import fsync_rate, migrated_engine, sqlite_database
from strongroom.core import ids
from strongroom.db.uow import UnitOfWork
from strongroom.runtime import build_ledger
from strongroom.security.envelope import Envelope, SubjectKind
from strongroom.security.kms import LocalKeyring, master_key_from_secret, new_master_secret
from strongroom.security.vault.committer import GroupCommit
from strongroom.security.vault.model import check_card
from strongroom.security.vault.service import (
    CARD_REVEALED,
    AuditNote,
    NewCard,
    VaultService,
    VaultWrite,
)
from strongroom.settings import Settings

Progress = Callable[[str], None]
TENANT: Final = "ten_bench"
ACTOR: Final = "api_key:key_bench"
CARD: Final = ("4242424242424242", 12, 2040, "Ada Lovelace", "123")
# A customer's personal fields as the customers domain seals them (typical sizes).
CUSTOMER_FIELDS: Final = (
    ("name", b"Ada Augusta King, Countess of Lovelace"),
    ("email", b"ada.lovelace@example.com"),
    ("phone", b"+44 20 7946 0958"),
    ("address", b"12 St James's Square, London SW1Y 4JH, GB"),
    ("date_of_birth", b"1815-12-10"),
    ("national_id", b"QQ 12 34 56 C"),
)
CUSTOMER_BATCH: Final = 100
TARGETS: Final = {"tokenize": ">= 5,000/s", "detokenize": "", "pii_encrypt": "", "pii_decrypt": ""}


@dataclass(frozen=True)
class Plan:
    cards: int  # tokenizations per run (and reveals per run: up to as many)
    reveals: int
    customers: int  # pii_encrypt / pii_decrypt per run
    batches: int  # customer_create_overhead: batches of CUSTOMER_BATCH per run
    threads: int  # the thread pool (and the plain threads of threads_ops_per_s)
    callers: int  # concurrent requests on the event loop
    runs: int

    @classmethod
    def full(cls) -> Plan:
        return cls(
            cards=10_000,
            reveals=5_000,
            customers=20_000,
            batches=40,
            threads=32,
            callers=128,
            runs=3,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            cards=3_000, reveals=2_000, customers=5_000, batches=10, threads=32, callers=128, runs=3
        )

    @classmethod
    def smoke(cls) -> Plan:
        """Seconds: every row from the same code, at sizes whose figures mean nothing."""
        return cls(cards=200, reveals=100, customers=200, batches=2, threads=4, callers=8, runs=1)


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _in_threads(threads: int, count: int, work: Callable[[int], None]) -> float:
    """Seconds for `threads` threads to call work(i) for i in range(count) between them."""
    shares = [range(t, count, threads) for t in range(threads)]
    start = threading.Barrier(threads + 1)

    def worker(share: range) -> None:
        start.wait()
        for i in share:
            work(i)

    pool = [threading.Thread(target=worker, args=(s,)) for s in shares]
    for t in pool:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - t0


def _raw_seal(plaintexts: list[bytes], count: int) -> float:
    """Ops per second of AESGCM encrypting `plaintexts` under fresh keys, op after op (a key
    for the first, which stands for the data key, the data key for the others)."""
    kek = AESGCM(os.urandom(32))
    t0 = time.perf_counter()
    for _ in range(count):
        data_key = os.urandom(32)
        kek.encrypt(os.urandom(12), data_key, b"wrap")
        aes = AESGCM(data_key)
        for text in plaintexts:
            aes.encrypt(os.urandom(12), text, b"field")
    return _rate(count, time.perf_counter() - t0)


def _raw_open(plaintexts: list[bytes], count: int) -> float:
    kek_key = os.urandom(32)
    data_key = os.urandom(32)
    wrap_nonce, field_nonce = os.urandom(12), os.urandom(12)
    wrapped = AESGCM(kek_key).encrypt(wrap_nonce, data_key, b"wrap")
    sealed = [AESGCM(data_key).encrypt(field_nonce, t, b"field") for t in plaintexts]
    kek = AESGCM(kek_key)
    t0 = time.perf_counter()
    for _ in range(count):
        aes = AESGCM(kek.decrypt(wrap_nonce, wrapped, b"wrap"))
        for blob in sealed:
            aes.decrypt(field_nonce, blob, b"field")
    return _rate(count, time.perf_counter() - t0)


def _row(
    scenario: str, ops: list[float], refs: list[float], count: int, **extra: Any
) -> dict[str, Any]:
    ops_per_s, reference_per_s = statistics.median(ops), statistics.median(refs)
    target = TARGETS.get(scenario, "")
    met = None
    if scenario == "tokenize":
        met = ops_per_s >= 5_000
    return {
        "scenario": scenario,
        "ops_per_s": round(ops_per_s, 1),
        "reference_per_s": round(reference_per_s, 1),
        "ratio": round(ops_per_s / reference_per_s, 4) if reference_per_s else 0.0,
        "ops": count,
        "runs": len(ops),
        "runs_ops_per_s": [round(x, 1) for x in ops],
        "target": target,
        "meets_target": met,
        **extra,
    }


@contextlib.contextmanager
def _vault(tmp: Path, name: str) -> Iterator[tuple[VaultService, Envelope]]:
    """A vault on a fresh durable SQLite database, with the audit log on, as serve has it."""
    keyring = LocalKeyring.create(
        tmp / f"{name}-keyring.json", master_key_from_secret(new_master_secret())
    )
    with sqlite_database(tmp, name) as url:
        engine = migrated_engine(url, pool_size=32)
        try:
            _, audit = build_ledger(engine, Settings(database_url=url))
            envelope = Envelope(keyring)
            yield VaultService(engine, envelope, audit), envelope
        finally:
            engine.dispose()


def _as_the_routes_do(
    callers: int, count: int, work: Callable[[int], Awaitable[None]], threads: int
) -> float:
    """Seconds for `callers` concurrent coroutines on one event loop to await work(i) for i in
    range(count) between them, with a thread pool of `threads` for blocking reads: how the
    API's routes run (serve's event loop and its thread pool)."""

    async def main() -> float:
        queue = iter(range(count))

        async def caller() -> None:
            for i in queue:
                await work(i)

        t0 = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return time.perf_counter() - t0

    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(threads))
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def bench_vault(tmp: Path, plan: Plan, progress: Progress) -> list[dict[str, Any]]:
    tokenize: list[float] = []
    in_threads: list[float] = []
    detokenize: list[float] = []
    batches: list[float] = []
    ref_seal: list[float] = []
    ref_open: list[float] = []
    number, month, year, holder, cvc = CARD
    plain = [number.encode(), holder.encode()]
    reveals = min(plan.reveals, plan.cards)
    for run in range(plan.runs):
        with _vault(tmp, f"vault{run}") as (svc, _):
            made = ids.new_ids("card", 2 * plan.cards)
            with GroupCommit[VaultWrite](svc.commit) as committer:

                def sealed(i: int, made: list[str] = made) -> NewCard:
                    card = check_card(number, month, year, holder, cvc, year=2026, month=1)
                    return svc.seal(TENANT, ACTOR, card, made[i])

                # As POST /v1/cards: check and seal on the event loop, await the commit.
                async def tokenize_one(i: int) -> None:
                    await committer.submit_async(sealed(i))

                seconds = _as_the_routes_do(plan.callers, plan.cards, tokenize_one, plan.threads)
                tokenize.append(_rate(plan.cards, seconds))
                batches.append(committer.stats.items / max(1, committer.stats.batches))

                # As GET /v1/cards/{id}/number: read in the pool, await the audit leaf.
                async def reveal_one(i: int, made: list[str] = made) -> None:
                    loop = asyncio.get_running_loop()
                    revealed = await loop.run_in_executor(None, svc.open, TENANT, made[i])
                    assert revealed.number == number
                    await committer.submit_async(AuditNote(CARD_REVEALED, TENANT, ACTOR, made[i]))

                seconds = _as_the_routes_do(plan.callers, reveals, reveal_one, plan.threads)
                detokenize.append(_rate(reveals, seconds))

                # The same tokenizations from plain threads, each waiting for its commit.
                def tokenize_in_thread(i: int) -> None:
                    committer.submit(sealed(plan.cards + i)).result()

                seconds = _in_threads(plan.threads, plan.cards, tokenize_in_thread)
                in_threads.append(_rate(plan.cards, seconds))
        ref_seal.append(_raw_seal(plain, plan.cards))
        ref_open.append(_raw_open(plain, reveals))
        progress(
            f"tokenize: run {run + 1}: {tokenize[-1]:,.0f}/s ({batches[-1]:.0f} a commit; "
            f"{in_threads[-1]:,.0f}/s from {plan.threads} threads), detokenize "
            f"{detokenize[-1]:,.0f}/s; raw AES-GCM {ref_seal[-1]:,.0f} / {ref_open[-1]:,.0f}/s"
        )
    note = (
        f"{plan.callers} concurrent callers on an event loop, as the routes run, and a pool of "
        f"{plan.threads} threads; SQLite WAL synchronous=FULL, audit on"
    )
    return [
        _row(
            "tokenize",
            tokenize,
            ref_seal,
            plan.cards,
            cards_per_commit=round(statistics.median(batches), 1),
            threads_ops_per_s=round(statistics.median(in_threads), 1),
            reference="raw AESGCM: wrap 32 B + seal number + name, fresh keys, no database",
            note=note + f"; threads_ops_per_s: {plan.threads} threads calling the service",
        ),
        _row(
            "detokenize",
            detokenize,
            ref_open,
            reveals,
            reference="raw AESGCM: unwrap 32 B + open number + name, no database",
            note=note + "; each reveal's audit leaf committed before it answers",
        ),
    ]


def bench_pii(envelope: Envelope, plan: Plan, progress: Progress) -> list[dict[str, Any]]:
    plain = [value for _, value in CUSTOMER_FIELDS]
    seal: list[float] = []
    open_: list[float] = []
    ref_seal: list[float] = []
    ref_open: list[float] = []
    subject = "cus_bench"
    for run in range(plan.runs):
        t0 = time.perf_counter()
        for n in range(plan.customers):
            key, _ = envelope.prepare_subject(TENANT, f"{subject}_{run}_{n}")
            for name, value in CUSTOMER_FIELDS:
                key.seal(f"customers/{n}", name, value)
        seal.append(_rate(plan.customers, time.perf_counter() - t0))
        key, wrapped = envelope.prepare_subject(TENANT, subject)
        sealed = [(n, key.seal("customers/1", n, v)) for n, v in CUSTOMER_FIELDS]
        t0 = time.perf_counter()
        for _ in range(plan.customers):
            opened = envelope.unwrap_subject(TENANT, subject, wrapped)
            for name, blob in sealed:
                opened.open("customers/1", name, blob)
        open_.append(_rate(plan.customers, time.perf_counter() - t0))
        ref_seal.append(_raw_seal(plain, plan.customers))
        ref_open.append(_raw_open(plain, plan.customers))
        progress(
            f"pii: run {run + 1}: seal {seal[-1]:,.0f} customers/s, open {open_[-1]:,.0f}/s; "
            f"raw AES-GCM {ref_seal[-1]:,.0f} / {ref_open[-1]:,.0f}/s"
        )
    fields = len(CUSTOMER_FIELDS)
    return [
        _row(
            "pii_encrypt",
            seal,
            ref_seal,
            plan.customers,
            fields_per_op=fields,
            reference=f"raw AESGCM: wrap 32 B + {fields} fields, fresh keys",
            note="ops are customers: a fresh data key, wrapped, and six fields sealed",
        ),
        _row(
            "pii_decrypt",
            open_,
            ref_open,
            plan.customers,
            fields_per_op=fields,
            reference=f"raw AESGCM: unwrap 32 B + {fields} fields",
            note="ops are customers: the data key unwrapped and six fields opened",
        ),
    ]


def bench_customer_overhead(tmp: Path, plan: Plan, progress: Progress) -> dict[str, Any]:
    """Customer-shaped rows in durable batches, sealed vs in clear, alternating runs."""
    columns = ", ".join(n for n, _ in CUSTOMER_FIELDS)
    table = f"CREATE TABLE bench_customers (id TEXT PRIMARY KEY, tenant_id TEXT, {columns})"
    insert = f"INSERT INTO bench_customers VALUES (?, ?{', ?' * len(CUSTOMER_FIELDS)})"
    sealed_rates: list[float] = []
    clear_rates: list[float] = []
    serial = itertools.count()
    with _vault(tmp, "customers") as (svc, envelope):
        with UnitOfWork(svc.engine) as uow:
            uow.cursor().execute(table)
            uow.commit()
        for run in range(plan.runs):
            for sealed in (False, True):
                count = plan.batches * CUSTOMER_BATCH
                t0 = time.perf_counter()
                for _ in range(plan.batches):
                    customers = [
                        f"cus_{run}_{sealed}_{next(serial)}" for _ in range(CUSTOMER_BATCH)
                    ]
                    keys, rows = [], []
                    for c in customers:
                        if sealed:
                            key, wrapped = envelope.prepare_subject(TENANT, c)
                            keys.append((key, wrapped))
                            values = [key.seal(f"customers/{c}", n, v) for n, v in CUSTOMER_FIELDS]
                        else:
                            values = [v for _, v in CUSTOMER_FIELDS]
                        rows.append((c, TENANT, *values))
                    with UnitOfWork(svc.engine) as uow:
                        envelope.store_subjects(uow, SubjectKind.CUSTOMER, keys)
                        uow.cursor().executemany(insert, rows)
                        uow.commit()
                rate = _rate(count, time.perf_counter() - t0)
                (sealed_rates if sealed else clear_rates).append(rate)
            progress(
                f"customer_create_overhead: run {run + 1}: sealed {sealed_rates[-1]:,.0f}/s, "
                f"in clear {clear_rates[-1]:,.0f}/s"
            )
    return _row(
        "customer_create_overhead",
        sealed_rates,
        clear_rates,
        plan.batches * CUSTOMER_BATCH,
        reference="the same rows in clear, no data key",
        note=f"batches of {CUSTOMER_BATCH} per durable SQLite transaction; ratio = sealed / clear",
    )


def run(
    *, quick: bool, progress: Progress, smoke: bool = False, directory: Path | None = None
) -> dict[str, Any]:
    assert not (quick and smoke), "--quick and --smoke exclude each other"
    plan = Plan.smoke() if smoke else Plan.quick() if quick else Plan.full()
    info: dict[str, Any] = {
        "quick": quick,
        "smoke": smoke,
        "cards": plan.cards,
        "customers": plan.customers,
        "threads": plan.threads,
        "callers": plan.callers,
        "runs": plan.runs,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cryptography": cryptography.__version__,
    }
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    parent = (directory or Path(".")).resolve()
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-security-", dir=parent) as name:
        tmp = Path(name)
        info["fsync_per_s"] = round(fsync_rate(tmp, seconds=0.5), 1)
        progress(f"disk: {info['fsync_per_s']:,.0f} fsyncs/s; {plan.runs} run(s) of each row")
        rows += bench_vault(tmp, plan, progress)
        keyring = LocalKeyring.create(
            tmp / "pii-keyring.json", master_key_from_secret(new_master_secret())
        )
        rows += bench_pii(Envelope(keyring), plan, progress)
        rows.append(bench_customer_overhead(tmp, plan, progress))
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    progress(f"done in {info['elapsed_s']:.0f} s")
    return {"info": info, "results": rows}


def table(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | ops/s | reference/s | ratio | target (2 cores) | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in report["results"]:
        met = {True: "yes", False: "no", None: ""}[r["meets_target"]]
        lines.append(
            f"| {r['scenario']} | {r['ops_per_s']:,.0f} | {r['reference_per_s']:,.0f} "
            f"| {r['ratio']:.3f} | {r['target']} | {met} |"
        )
    info = report["info"]
    lines.append("")
    lines.append(
        f"median of {info['runs']} run(s); reference: raw `cryptography` AESGCM "
        f"{info['cryptography']} on the same plaintexts (customer_create_overhead: the same "
        "rows in clear); ratio: ours / reference, higher is better"
    )
    return "\n".join(lines)
