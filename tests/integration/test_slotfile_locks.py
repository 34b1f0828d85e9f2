"""The set locks of a slot file (core.slotfile): taken on Linux by libc with the GIL held, they
are the same fcntl record locks every other process sees, and a set another process holds is
waited for, never skipped."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import platform
import struct
import sys
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from strongroom.core import slotfile
from strongroom.core.slotfile import SlotFile

MAGIC = b"SRTEST01"
SETS, SLOTS = 8, 4


def _table(path: Path) -> SlotFile:
    return SlotFile(path, magic=MAGIC, sets=SETS, slots=SLOTS)


def _try_lock(path: str, length: int, offset: int, answer: Connection) -> None:
    """In another process: whether the byte range can be locked now (without waiting)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, offset)
    except OSError:
        answer.send(False)
    else:
        answer.send(True)
    finally:
        os.close(fd)


def _could_lock(path: Path, length: int, offset: int) -> bool:
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=_try_lock, args=(str(path), length, offset, theirs)
    )
    child.start()
    answer = bool(ours.recv())
    child.join(30)
    return answer


def test_the_fast_path_is_taken_on_linux_x86_64_and_arm64() -> None:
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("the GIL-holding path is Linux's on x86-64 and 64-bit Arm only")
    assert slotfile._FCNTL is not None


def test_a_set_locked_here_is_locked_for_every_other_process(tmp_path: Path) -> None:
    table = _table(tmp_path / "t")
    digest = table.digest("some name")
    with table.locked(digest) as offset:
        assert not _could_lock(tmp_path / "t", table.set_bytes, offset)
        # Another set of the file is free meanwhile.
        other = next(
            o
            for o in (slotfile._HEADER.size + k * table.set_bytes for k in range(SETS))
            if o != offset
        )
        assert _could_lock(tmp_path / "t", table.set_bytes, other)
    assert _could_lock(tmp_path / "t", table.set_bytes, offset)
    table.close()


def _hold_then_write(path: str, length: int, offset: int, value: int, ready: Connection) -> None:
    """In another process: lock the range, say so, wait for the word to go, write `value` into
    the set's first slot's number, then unlock."""
    fd = os.open(path, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX, length, offset)
    ready.send("locked")
    ready.recv()
    os.pwrite(fd, struct.pack("<q", value), offset + slotfile.DIGEST_BYTES)
    fcntl.lockf(fd, fcntl.LOCK_UN, length, offset)
    os.close(fd)


def test_a_set_another_process_holds_is_waited_for(tmp_path: Path) -> None:
    table = _table(tmp_path / "t")
    digest = table.digest("waited")
    offset = slotfile._HEADER.size + int.from_bytes(digest[:8], "little") % SETS * table.set_bytes
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(
        target=_hold_then_write, args=(str(tmp_path / "t"), table.set_bytes, offset, 77, theirs)
    )
    child.start()
    try:
        assert ours.recv() == "locked"
        if slotfile._FCNTL is not None:
            # The non-blocking try sees the other process's lock (and then waits for it).
            assert not table._ranges._call(fcntl.F_WRLCK, table.set_bytes, offset)
        ours.send("go")
        # Taken only once the other process let go: its write is seen under our lock.
        with table.locked(digest) as at:
            assert at == offset
            (value,) = struct.unpack("<q", os.pread(table._fd, 8, at + slotfile.DIGEST_BYTES))
            assert value == 77
    finally:
        child.join(30)
        table.close()
    assert child.exitcode == 0
