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
import os
import platform
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cryptography

from strongroom.benchmarks.common import fsync_rate
from strongroom.benchmarks.fields import (
    ACTOR,
    TENANT,
    Progress,
    bench_customer_overhead,
    bench_pii,
    rate,
    raw_open,
    raw_seal,
    row,
    vault,
)
from strongroom.core import ids
from strongroom.security.envelope import Envelope
from strongroom.security.kms import LocalKeyring, master_key_from_secret, new_master_secret
from strongroom.security.vault.committer import GroupCommit
from strongroom.security.vault.model import check_card
from strongroom.security.vault.service import (
    CARD_REVEALED,
    AuditNote,
    NewCard,
    VaultWrite,
)

CARD: Final = ("4242424242424242", 12, 2040, "Ada Lovelace", "123")


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
        with vault(tmp, f"vault{run}") as (svc, _):
            made = ids.new_ids("card", 2 * plan.cards)
            with GroupCommit[VaultWrite](svc.commit) as committer:

                def sealed(i: int, made: list[str] = made) -> NewCard:
                    card = check_card(number, month, year, holder, cvc, year=2026, month=1)
                    return svc.seal(TENANT, ACTOR, card, made[i])

                # As POST /v1/cards: check and seal on the event loop, await the commit.
                async def tokenize_one(i: int) -> None:
                    await committer.submit_async(sealed(i))

                seconds = _as_the_routes_do(plan.callers, plan.cards, tokenize_one, plan.threads)
                tokenize.append(rate(plan.cards, seconds))
                batches.append(committer.stats.items / max(1, committer.stats.batches))

                # As GET /v1/cards/{id}/number: read in the pool, await the audit leaf.
                async def reveal_one(i: int, made: list[str] = made) -> None:
                    loop = asyncio.get_running_loop()
                    revealed = await loop.run_in_executor(None, svc.open, TENANT, made[i])
                    assert revealed.number == number
                    await committer.submit_async(AuditNote(CARD_REVEALED, TENANT, ACTOR, made[i]))

                seconds = _as_the_routes_do(plan.callers, reveals, reveal_one, plan.threads)
                detokenize.append(rate(reveals, seconds))

                # The same tokenizations from plain threads, each waiting for its commit.
                def tokenize_in_thread(i: int) -> None:
                    committer.submit(sealed(plan.cards + i)).result()

                seconds = _in_threads(plan.threads, plan.cards, tokenize_in_thread)
                in_threads.append(rate(plan.cards, seconds))
        ref_seal.append(raw_seal(plain, plan.cards))
        ref_open.append(raw_open(plain, reveals))
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
        row(
            "tokenize",
            tokenize,
            ref_seal,
            plan.cards,
            cards_per_commit=round(statistics.median(batches), 1),
            threads_ops_per_s=round(statistics.median(in_threads), 1),
            reference="raw AESGCM: wrap 32 B + seal number + name, fresh keys, no database",
            note=note + f"; threads_ops_per_s: {plan.threads} threads calling the service",
        ),
        row(
            "detokenize",
            detokenize,
            ref_open,
            reveals,
            reference="raw AESGCM: unwrap 32 B + open number + name, no database",
            note=note + "; each reveal's audit leaf committed before it answers",
        ),
    ]


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
