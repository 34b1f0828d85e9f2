"""No acknowledgement before the write is durable: traced system calls of a real writer.

A kill of the writing process cannot find a commit that was acknowledged but never fsynced (the
operating system keeps the file's pages; only a power loss or kernel crash drops them), so the
crash tests stay green with SQLite's synchronous=OFF. This test watches the order of system
calls instead. The crash worker (tests/integration/workers/streamer.py: runtime.build_ledger, the
outbox and the audit log on, as `serve` runs them) posts BATCHES batches on a SQLite file under
`strace -f`; for every acknowledgement line it writes, the trace must show, since the previous
one, the transaction's writes to the WAL file and then a successful fsync/fdatasync of the WAL
file, finished before the acknowledgement's write(2) starts.

strace is installed by .ci/run. Without it the test skips, naming the package, unless
STRONGROOM_REQUIRE_STRACE or CI is on: then it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.ledger.model import AccountFlag, Direction, NewTransfer
from strongroom.runtime import build_ledger
from strongroom.settings import Settings
from tests.support import flags

REPO_ROOT = Path(__file__).resolve().parents[2]
BATCHES = 12
CUSTOMERS_COUNT = 4
FUNDING_AMOUNT = 100_000
STRACE_TIMEOUT_S = 120
WRITE_CALLS = frozenset({"write", "pwrite64", "writev", "pwritev", "pwritev2"})
SYNC_CALLS = frozenset({"fsync", "fdatasync"})
TRACED = sorted(WRITE_CALLS | SYNC_CALLS)
STRACE_MISSING = (
    "strace is not installed (install the `strace` package, as .ci/run does; set "
    f"{flags.REQUIRE_STRACE}=1 to make its absence a failure)"
)

# `1234 pwrite64(5</tmp/x/db-wal>, "..."..., 4120, 32) = 4120`, or split by another thread:
# `1234 fdatasync(5</tmp/x/db-wal> <unfinished ...>` ... `1234 <... fdatasync resumed>) = 0`
_CALL = re.compile(r"^(?P<pid>\d+) +(?P<name>\w+)\((?P<fd>\d+)<(?P<path>[^>]*)>")
_UNFINISHED = re.compile(r"<unfinished \.\.\.>$")
_RESUMED = re.compile(r"^(?P<pid>\d+) +<\.\.\. (?P<name>\w+) resumed>")
_RESULT = re.compile(r"\) += (?P<result>-?\d+)")


@dataclass(frozen=True)
class Call:
    """One traced system call on a file descriptor: the trace lines it started and ended on."""

    name: str
    path: str
    result: int
    start: int
    end: int


def parse_trace(lines: list[str]) -> list[Call]:
    """The calls on file descriptors (strace -y names their paths), in the order they ended."""
    calls: list[Call] = []
    pending: dict[str, tuple[str, str, int]] = {}  # pid -> (name, path, start line)
    for k, line in enumerate(lines):
        line = line.rstrip("\n")
        resumed = _RESUMED.match(line)
        if resumed:
            started = pending.pop(resumed["pid"], None)
            result = _RESULT.search(line)
            if started is not None and result is not None:
                name, path, start = started
                calls.append(Call(name, path, int(result["result"]), start, k))
            continue
        call = _CALL.match(line)
        if call is None:
            continue
        if _UNFINISHED.search(line):
            pending[call["pid"]] = (call["name"], call["path"], k)
            continue
        result = _RESULT.search(line)
        if result is not None:
            calls.append(Call(call["name"], call["path"], int(result["result"]), k, k))
    return calls


def unsynced_acks(calls: list[Call], wal: str, acks: str) -> list[str]:
    """For each acknowledgement (a write to `acks`), what is wrong with the WAL before it."""
    problems = []
    previous_end = -1
    ack_calls = [c for c in calls if c.name in WRITE_CALLS and c.path == acks]
    for number, ack in enumerate(ack_calls):
        window = [c for c in calls if previous_end < c.end < ack.start and c.path == wal]
        writes = [c for c in window if c.name in WRITE_CALLS and c.result > 0]
        if not writes:
            problems.append(f"ack {number}: no write to the WAL since the previous ack")
        else:
            last_write = max(c.end for c in writes)
            synced = [
                c for c in window if c.name in SYNC_CALLS and c.result == 0 and c.start > last_write
            ]
            if not synced:
                problems.append(
                    f"ack {number} (trace line {ack.start + 1}): the WAL was not fsynced after "
                    f"its last write (line {last_write + 1}) before the ack was written"
                )
        previous_end = ack.end
    return problems


def _strace_or_skip() -> str:
    strace = shutil.which("strace")
    if strace is None:
        flags.skip_or_fail(STRACE_MISSING, flags.REQUIRE_STRACE, "CI")
    assert strace is not None
    return strace


def test_every_acknowledgement_follows_the_fsync_of_its_wal(tmp_path: Path) -> None:
    strace = _strace_or_skip()
    db = (tmp_path / "strongroom.db").resolve()
    url = f"sqlite:///{db}"
    engine = create_engine(url, pool_size=1)
    migrate.upgrade(engine)
    ledger, _audit = build_ledger(engine, Settings(database_url=url))
    created = ledger.create_ledger("durable acks")
    funding = ledger.create_account(created.id, "EUR", Direction.DEBIT, name="funding")
    customers = [
        ledger.create_account(
            created.id, "EUR", Direction.CREDIT, flags=AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
        )
        for _ in range(CUSTOMERS_COUNT)
    ]
    ledger.post_transfers(
        [
            NewTransfer(f"fund-{i}", created.id, funding.id, c.id, FUNDING_AMOUNT)
            for i, c in enumerate(customers)
        ]
    )
    engine.dispose()

    acks = tmp_path / "acks.jsonl"
    trace = tmp_path / "strace.txt"
    command = [
        strace,
        "-f",  # every thread and child
        "-y",  # file descriptors with their paths
        "-qq",
        "-s",
        "40",
        "-e",
        f"trace={','.join(TRACED)}",
        "-o",
        str(trace),
        sys.executable,
        "-W",
        "error",
        "-m",
        "tests.integration.workers.streamer",
        "--url",
        url,
        "--ledger",
        created.id,
        "--accounts",
        ",".join(c.id for c in customers),
        "--seed",
        "7",
        "--start-batch",
        "0",
        "--batches-max",
        str(BATCHES),
        "--publish-every",
        "3",
        "--acks",
        str(acks),
    ]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=STRACE_TIMEOUT_S,
        check=False,
    )
    refused = "ptrace" in done.stderr.lower() and "not permitted" in done.stderr.lower()
    if done.returncode != 0 and refused:  # a container without CAP_SYS_PTRACE
        flags.skip_or_fail(
            f"strace cannot trace here: {done.stderr.strip()}", flags.REQUIRE_STRACE, "CI"
        )
    assert done.returncode == 0, done.stderr

    lines = [json.loads(line) for line in acks.read_text(encoding="utf-8").splitlines()]
    assert [line["batch"] for line in lines] == list(range(BATCHES))
    assert any(result == "created" for line in lines for _, result in line["outcomes"])
    calls = parse_trace(trace.read_text(encoding="utf-8", errors="replace").splitlines())
    acks_path = os.path.realpath(acks)
    ack_calls = [c for c in calls if c.name in WRITE_CALLS and c.path == acks_path]
    assert len(ack_calls) == BATCHES, "each acknowledgement is one write(2) in the trace"
    problems = unsynced_acks(calls, os.path.realpath(f"{db}-wal"), acks_path)
    assert not problems, "\n".join(problems)


def _trace(*lines: str) -> list[str]:
    return list(lines)


WAL = "/d/strongroom.db-wal"
ACKS = "/d/acks.jsonl"


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            _trace(
                f'1 pwrite64(4<{WAL}>, "x", 1, 0) = 1',
                f"1 fdatasync(4<{WAL}>) = 0",
                f'1 write(5<{ACKS}>, "a", 1) = 1',
            ),
            None,
        ),
        (  # the sync finishes on another line, before the ack: still in order
            _trace(
                f'1 pwrite64(4<{WAL}>, "x", 1, 0) = 1',
                f"1 fdatasync(4<{WAL}> <unfinished ...>",
                '2 write(1<pipe:[9]>, "log", 3) = 3',
                "1 <... fdatasync resumed>) = 0",
                f'1 write(5<{ACKS}>, "a", 1) = 1',
            ),
            None,
        ),
        (  # synchronous=OFF: no sync at all
            _trace(f'1 pwrite64(4<{WAL}>, "x", 1, 0) = 1', f'1 write(5<{ACKS}>, "a", 1) = 1'),
            "not fsynced",
        ),
        (  # the sync ends only after the ack started
            _trace(
                f'1 pwrite64(4<{WAL}>, "x", 1, 0) = 1',
                f"1 fdatasync(4<{WAL}> <unfinished ...>",
                f'2 write(5<{ACKS}>, "a", 1) = 1',
                "1 <... fdatasync resumed>) = 0",
            ),
            "not fsynced",
        ),
        (  # a sync of the WAL before its last write does not cover it
            _trace(
                f"1 fdatasync(4<{WAL}>) = 0",
                f'1 pwrite64(4<{WAL}>, "x", 1, 0) = 1',
                f'1 write(5<{ACKS}>, "a", 1) = 1',
            ),
            "not fsynced",
        ),
        (  # a failed sync is no sync
            _trace(
                f'1 pwrite64(4<{WAL}>, "x", 1, 0) = 1',
                f"1 fdatasync(4<{WAL}>) = -1",
                f'1 write(5<{ACKS}>, "a", 1) = 1',
            ),
            "not fsynced",
        ),
        (  # the second ack's transaction never reached the WAL
            _trace(
                f'1 pwrite64(4<{WAL}>, "x", 1, 0) = 1',
                f"1 fsync(4<{WAL}>) = 0",
                f'1 write(5<{ACKS}>, "a", 1) = 1',
                f'1 write(5<{ACKS}>, "b", 1) = 1',
            ),
            "no write to the WAL",
        ),
    ],
    ids=["ordered", "resumed", "no-sync", "sync-after-ack", "sync-before-write", "failed", "none"],
)
def test_trace_check_names_an_ack_before_the_sync(lines: list[str], problem: str | None) -> None:
    problems = unsynced_acks(parse_trace(lines), WAL, ACKS)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problem in problems[0]
