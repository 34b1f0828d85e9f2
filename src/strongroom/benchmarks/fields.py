"""The figures `bench security` shares between its rows: the raw AES-GCM references, a
vault on a durable SQLite database, and the rows of field encryption (a customer's personal
data sealed and opened; the cost of sealing on creating customers). See security.py."""

from __future__ import annotations

import contextlib
import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.benchmarks.common import migrated_engine, sqlite_database
from strongroom.db.uow import UnitOfWork
from strongroom.runtime import build_ledger
from strongroom.security.envelope import Envelope, SubjectKind
from strongroom.security.kms import LocalKeyring, master_key_from_secret, new_master_secret
from strongroom.security.vault.service import VaultService
from strongroom.settings import Settings

Progress = Callable[[str], None]
TENANT: Final = "ten_bench"
ACTOR: Final = "api_key:key_bench"


class FieldsPlan(Protocol):
    @property
    def customers(self) -> int: ...
    @property
    def batches(self) -> int: ...
    @property
    def runs(self) -> int: ...


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


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def raw_seal(plaintexts: list[bytes], count: int) -> float:
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
    return rate(count, time.perf_counter() - t0)


def raw_open(plaintexts: list[bytes], count: int) -> float:
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
    return rate(count, time.perf_counter() - t0)


def row(
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
def vault(tmp: Path, name: str) -> Iterator[tuple[VaultService, Envelope]]:
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


def bench_pii(envelope: Envelope, plan: FieldsPlan, progress: Progress) -> list[dict[str, Any]]:
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
        seal.append(rate(plan.customers, time.perf_counter() - t0))
        key, wrapped = envelope.prepare_subject(TENANT, subject)
        sealed = [(n, key.seal("customers/1", n, v)) for n, v in CUSTOMER_FIELDS]
        t0 = time.perf_counter()
        for _ in range(plan.customers):
            opened = envelope.unwrap_subject(TENANT, subject, wrapped)
            for name, blob in sealed:
                opened.open("customers/1", name, blob)
        open_.append(rate(plan.customers, time.perf_counter() - t0))
        ref_seal.append(raw_seal(plain, plan.customers))
        ref_open.append(raw_open(plain, plan.customers))
        progress(
            f"pii: run {run + 1}: seal {seal[-1]:,.0f} customers/s, open {open_[-1]:,.0f}/s; "
            f"raw AES-GCM {ref_seal[-1]:,.0f} / {ref_open[-1]:,.0f}/s"
        )
    fields = len(CUSTOMER_FIELDS)
    return [
        row(
            "pii_encrypt",
            seal,
            ref_seal,
            plan.customers,
            fields_per_op=fields,
            reference=f"raw AESGCM: wrap 32 B + {fields} fields, fresh keys",
            note="ops are customers: a fresh data key, wrapped, and six fields sealed",
        ),
        row(
            "pii_decrypt",
            open_,
            ref_open,
            plan.customers,
            fields_per_op=fields,
            reference=f"raw AESGCM: unwrap 32 B + {fields} fields",
            note="ops are customers: the data key unwrapped and six fields opened",
        ),
    ]


def bench_customer_overhead(tmp: Path, plan: FieldsPlan, progress: Progress) -> dict[str, Any]:
    """Customer-shaped rows in durable batches, sealed vs in clear, alternating runs."""
    columns = ", ".join(n for n, _ in CUSTOMER_FIELDS)
    table = f"CREATE TABLE bench_customers (id TEXT PRIMARY KEY, tenant_id TEXT, {columns})"
    insert = f"INSERT INTO bench_customers VALUES (?, ?{', ?' * len(CUSTOMER_FIELDS)})"
    sealed_rates: list[float] = []
    clear_rates: list[float] = []
    serial = itertools.count()
    with vault(tmp, "customers") as (svc, envelope):
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
                measured = rate(count, time.perf_counter() - t0)
                (sealed_rates if sealed else clear_rates).append(measured)
            progress(
                f"customer_create_overhead: run {run + 1}: sealed {sealed_rates[-1]:,.0f}/s, "
                f"in clear {clear_rates[-1]:,.0f}/s"
            )
    return row(
        "customer_create_overhead",
        sealed_rates,
        clear_rates,
        plan.batches * CUSTOMER_BATCH,
        reference="the same rows in clear, no data key",
        note=f"batches of {CUSTOMER_BATCH} per durable SQLite transaction; ratio = sealed / clear",
    )
