"""A table of small numbers shared by the processes of one host: a memory-mapped file.

Each entry is a 16-byte digest of a name and one signed 64-bit number (a time, in the uses
here). A name hashes to one set of slots; a set is read and written under an fcntl lock on its
bytes (other processes) and a thread lock (this process: fcntl locks belong to the process,
not the thread). Nothing is fsynced: the kernel writes the pages back when it likes, so a
crash of the machine may lose the last writes, and a restart of the processes loses nothing.
What to do when a name is not in its set and the set is full is the user's choice: `lookup`
offers the slot with the smallest number. Names are hashed with a random key made with the
file (in its header), so that no one can choose names that crowd one set.

A set's fcntl lock is taken and given back, on Linux, through libc called with the GIL held
(`_RangeLocks`): Python's `fcntl.lockf` lets go of the GIL around the system call, and taking
it back, while another thread of the process (the group-commit committer, a threadpool read)
wants it, cost a request a wait behind that thread's Python and two context switches. Measured
with `strongroom serve --workers 2` on 2 cores, POST /v1/transfers with the rate limit's two
lockf calls a request: about 0.16 ms more CPU a request than with no rate limit at all. A lock
another process holds is waited for the usual way (`fcntl.lockf`, the GIL let go).

Used by the rate limits shared by the workers (tenancy.ratelimit) and by the open banking
replay store of DPoP proofs (openbanking.authz.replay).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import platform
import secrets
import stat
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, NamedTuple

_HEADER: Final = struct.Struct("<8sII16s")  # magic, sets, slots a set, the digests' key
_SLOT: Final = struct.Struct("<16sq")  # the name's digest, its number
DIGEST_BYTES: Final = 16


_FIXED_CALL_MACHINES: Final = frozenset({"x86_64", "aarch64", "arm64"})


class _Flock(ctypes.Structure):
    """Linux's `struct flock` on a 64-bit build (off_t of 64 bits)."""

    _fields_ = (
        ("l_type", ctypes.c_short),
        ("l_whence", ctypes.c_short),
        ("l_start", ctypes.c_int64),
        ("l_len", ctypes.c_int64),
        ("l_pid", ctypes.c_int),
    )


def _libc_fcntl() -> Callable[[int, int, object], int] | None:
    """libc's fcntl(fd, cmd, struct flock *), called without letting go of the GIL
    (ctypes.PyDLL); None where struct flock's layout or fcntl's variadic call is not known to
    match: anything but Linux on x86-64 or 64-bit Arm, whose calling conventions pass a
    variadic pointer as a fixed one (ppc64le's, say, does not: the callee may write into stack
    space a fixed call does not reserve)."""
    if not sys.platform.startswith("linux") or platform.machine() not in _FIXED_CALL_MACHINES:
        return None
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        call = ctypes.PyDLL(None, use_errno=True).fcntl
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Flock))
    call.restype = ctypes.c_int
    fcntl_call: Callable[[int, int, object], int] = call
    return fcntl_call


_FCNTL: Final = _libc_fcntl()


class _RangeLocks:
    """Exclusive fcntl record locks on byte ranges of one file, for callers that already
    exclude each other (SlotFile's thread lock): a free range is locked, and every range
    unlocked, by one non-blocking call with the GIL held; a range another process holds is
    waited for by `fcntl.lockf`, which lets go of the GIL while it waits."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._flock = _Flock() if _FCNTL is not None else None

    def lock(self, length: int, offset: int) -> None:
        if _FCNTL is not None and self._call(fcntl.F_WRLCK, length, offset):
            return
        fcntl.lockf(self._fd, fcntl.LOCK_EX, length, offset)

    def unlock(self, length: int, offset: int) -> None:
        if _FCNTL is not None and self._call(fcntl.F_UNLCK, length, offset):
            return
        fcntl.lockf(self._fd, fcntl.LOCK_UN, length, offset)

    def _call(self, kind: int, length: int, offset: int) -> bool:
        """True when done; False when another process holds the range (wait for it)."""
        assert _FCNTL is not None
        flock = self._flock
        assert flock is not None
        flock.l_type = kind
        flock.l_whence = os.SEEK_SET
        flock.l_start = offset
        flock.l_len = length
        flock.l_pid = 0
        if _FCNTL(self._fd, fcntl.F_SETLK, ctypes.byref(flock)) == 0:
            return True
        code = ctypes.get_errno()
        if code in (errno.EACCES, errno.EAGAIN):
            return False
        raise OSError(code, os.strerror(code))


class Slot(NamedTuple):
    """Where a name is (`found`), with its number; or, not found, the slot of its set with the
    smallest number (a free slot holds 0), with that number."""

    at: int
    value: int
    found: bool


class SlotFile:
    """`sets` sets of `slots` slots in the file at `path`, created (mode 0600) when missing,
    with a new random key for the digests. A file of another layout, size or `magic` is
    started afresh (every slot free); one that is not a regular file of this user's with
    mode 0600 is refused (PermissionError)."""

    def __init__(self, path: Path, *, magic: bytes, sets: int, slots: int) -> None:
        assert len(magic) == 8
        assert sets >= 1
        assert slots >= 1
        self.path = path
        self.sets = sets
        self.slots = slots
        self.set_bytes = slots * _SLOT.size
        self._set = struct.Struct("<" + "16sq" * slots)
        size = _HEADER.size + sets * self.set_bytes
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            # A file someone else made or may read (made before us in a shared directory, or
            # loosened since) could hand them the key or let them clear the slots: refused.
            info = os.fstat(self._fd)
            if (
                not stat.S_ISREG(info.st_mode)
                or info.st_uid != os.geteuid()
                or info.st_mode & 0o077
            ):
                raise PermissionError(f"{path} is not a file of this user's alone (mode 0600)")
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                header = os.pread(self._fd, _HEADER.size, 0)
                fields = _HEADER.unpack(header) if len(header) == _HEADER.size else None
                # A file of another size (the 16-byte header of the files before the key, a
                # truncated one) cannot be mapped as it is: started afresh like another layout.
                if (
                    fields is None
                    or fields[:3] != (magic, sets, slots)
                    or not any(fields[3])
                    or os.fstat(self._fd).st_size != size
                ):
                    key = secrets.token_bytes(DIGEST_BYTES)
                    os.ftruncate(self._fd, 0)
                    os.ftruncate(self._fd, size)
                    os.pwrite(self._fd, _HEADER.pack(magic, sets, slots, key), 0)
                else:
                    key = fields[3]
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise
        self._key = key
        self._lock = threading.Lock()
        self._ranges = _RangeLocks(self._fd)

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self._map.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def digest(self, name: str) -> bytes:
        """`name`'s digest in this file (keyed by the file's key)."""
        return hashlib.blake2b(name.encode(), digest_size=DIGEST_BYTES, key=self._key).digest()

    @contextlib.contextmanager
    def locked(self, digest: bytes) -> Iterator[int]:
        """The set of `digest`, locked; yields its offset in the file."""
        offset = _HEADER.size + int.from_bytes(digest[:8], "little") % self.sets * self.set_bytes
        with self._lock:
            self._ranges.lock(self.set_bytes, offset)
            try:
                yield offset
            finally:
                self._ranges.unlock(self.set_bytes, offset)

    def lookup(self, offset: int, digest: bytes) -> Slot:
        """`digest` in the locked set at `offset` (see Slot)."""
        fields = self._set.unpack_from(self._map, offset)
        least, least_value = 0, fields[1]
        for k in range(0, 2 * self.slots, 2):
            value = fields[k + 1]
            if fields[k] == digest:
                return Slot(offset + k // 2 * _SLOT.size, value, True)
            if value < least_value:
                least, least_value = k // 2, value
        return Slot(offset + least * _SLOT.size, least_value, False)

    def write(self, at: int, digest: bytes, value: int) -> None:
        _SLOT.pack_into(self._map, at, digest, value)


class SlotFileHandle:
    """A SlotFile opened on first use by `opener` (each use's own, layout included), and again
    after `close` (an app's lifespan may run more than once, as in tests); safe to share
    between threads."""

    def __init__(self, opener: Callable[[], SlotFile]) -> None:
        self._opener = opener
        self._table: SlotFile | None = None
        self._lock = threading.Lock()

    def open(self) -> SlotFile:
        """The file, opened (made) if it is not yet: PermissionError for one that is not this
        user's alone, OSError for one that cannot be made."""
        table = self._table
        if table is None:
            with self._lock:
                if self._table is None:
                    self._table = self._opener()
                table = self._table
        return table

    def close(self) -> None:
        with self._lock:
            table, self._table = self._table, None
        if table is not None:
            table.close()
