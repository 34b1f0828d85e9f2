"""The screener a process keeps over every list's current entries, rebuilt when a list changes.

Building one over the ~10,000 entries of the real lists takes seconds; the payee gate has 250 ms.
So the cache answers two kinds of reader:

- `get(fresh=True)`, the screening points (a customer created or renamed), a list load's
  re-screening and ad-hoc screening: always the screener of the current versions. When a list
  changed, the caller waits for the new screener (building it, or waiting for the build already
  under way): a customer screened after a load is screened against it.
- `get(fresh=False)`, the payee gate: never waits for a build. When a list changed, it keeps
  answering with the previous screener while the new one is built in a background thread, and
  the new one is swapped in when ready. When none was built yet (a process that did not warm
  up), it starts the build and raises ScreenerNotReady: the gate answers its fail policy
  (`sanctions_unavailable` when closed), never a silent allow.

`strongroom serve` builds it before it takes requests (`warm`, in the app's startup), and a load
in this process builds the new one before its re-screening (`rebuild`); a version loaded by
another process (`strongroom sanctions load`) is noticed by reading the versions table (one
small aggregate over its primary key) at most once a `refresh_s`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from sqlalchemy.engine import Engine

from strongroom.compliance.sanctions import store
from strongroom.compliance.sanctions.errors import ListsNotLoaded, ScreenerNotReady
from strongroom.compliance.sanctions.match import build as build_indexed
from strongroom.compliance.sanctions.model import Screener, ScreenerFactory
from strongroom.compliance.sanctions.snapshot import entry_from_json
from strongroom.db.uow import UnitOfWork

log = logging.getLogger("strongroom.compliance.sanctions")

REFRESH_S_DEFAULT: Final = 1.0
BUILDER_THREAD: Final = "sanctions-screener"

# The versions of the lists a screener was built over: ((source, version), ...), sorted.
Stamp = tuple[tuple[str, int], ...]


class ScreenerCache:
    def __init__(
        self,
        engine: Engine,
        *,
        factory: ScreenerFactory = build_indexed,
        refresh_s: float = REFRESH_S_DEFAULT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert refresh_s >= 0.0
        self.engine = engine
        self.factory = factory
        self.refresh_s = refresh_s
        self.monotonic = monotonic
        self._lock = threading.Lock()  # the fields below; held for no database read or build
        self._build_lock = threading.Lock()  # one build at a time
        self._current: tuple[Stamp, Screener] | None = None
        self._stamp: Stamp | None = None  # the versions table as last read
        self._checked_at = float("-inf")
        self._builder: threading.Thread | None = None
        self.builds = 0  # screeners built so far (a test and a log read it)

    # -- reading ---------------------------------------------------------------------------

    def _latest(self) -> Stamp:
        """The current versions, read from the database at most once a `refresh_s`."""
        now = self.monotonic()
        with self._lock:
            if self._stamp is not None and now - self._checked_at < self.refresh_s:
                return self._stamp
        with UnitOfWork(self.engine, write=False) as uow:
            found = store.stamp(uow)
        with self._lock:
            self._stamp, self._checked_at = found, now
        return found

    def invalidate(self) -> None:
        """Read the versions table at the next `get` (a load in this process changed it)."""
        with self._lock:
            self._checked_at = float("-inf")

    def get(self, *, fresh: bool = True) -> tuple[Screener, Stamp]:
        """The screener and the versions it was built over. No list loaded: ListsNotLoaded.
        `fresh`: the current versions' (waiting for their build); else the newest one built
        (a stale one while the new one builds; none yet: ScreenerNotReady)."""
        latest = self._latest()
        if not latest:
            raise ListsNotLoaded("no sanctions list is loaded: run `strongroom sanctions load`")
        with self._lock:
            current = self._current
        if current is not None and current[0] == latest:
            return current[1], current[0]
        if fresh:
            return self._build(latest)
        self._build_in_background()
        if current is None:
            raise ScreenerNotReady(
                "the sanctions screener is being built: payments with a payee name are "
                "answered by STRONGROOM_SCREENING_FAIL until it is ready"
            )
        return current[1], current[0]  # the previous lists' until the new one is swapped in

    # -- building --------------------------------------------------------------------------

    def _build(self, wanted: Stamp | None) -> tuple[Screener, Stamp]:
        """Build over the current entries, unless a build that finished while this one waited
        for the lock already covers `wanted` (None: build whatever is current)."""
        with self._build_lock:
            with self._lock:
                current = self._current
            if current is not None and wanted is not None and current[0] == wanted:
                return current[1], current[0]
            with UnitOfWork(self.engine, write=False) as uow:
                stamp = store.stamp(uow)
                bodies = store.current_bodies(uow) if stamp else []
            if not stamp:
                raise ListsNotLoaded("no sanctions list is loaded: run `strongroom sanctions load`")
            started = self.monotonic()
            screener = self.factory([entry_from_json(b) for b in bodies])
            with self._lock:
                self._current = (stamp, screener)
                self._stamp, self._checked_at = stamp, self.monotonic()
                self.builds += 1
            log.info(
                "sanctions: screener built over %d entries (%s) in %.1f s",
                len(bodies),
                ", ".join(f"{s} v{v}" for s, v in stamp),
                self.monotonic() - started,
            )
            return screener, stamp

    def _build_in_background(self) -> None:
        """Start a build in a daemon thread, unless one is under way."""
        with self._lock:
            if self._builder is not None and self._builder.is_alive():
                return
            self._builder = threading.Thread(
                target=self._build_quietly, name=BUILDER_THREAD, daemon=True
            )
            self._builder.start()

    def _build_quietly(self) -> None:
        try:
            self._build(None)
        except ListsNotLoaded:
            pass
        except Exception:  # reported, and the next `get` starts another build
            log.exception("sanctions: the screener could not be built")

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for a background build under way, if any (tests, shutdown)."""
        with self._lock:
            builder = self._builder
        if builder is not None:
            builder.join(timeout_s)

    def warm(self) -> bool:
        """Build the screener now if a list is loaded (`serve`'s startup, before it takes a
        request): whether one was built."""
        self.invalidate()
        try:
            self._build(self._latest())
        except ListsNotLoaded:
            return False
        return True

    def rebuild(self) -> None:
        """A load in this process stored a new version: build its screener now, in the loading
        thread, and swap it in (the gate keeps the previous one meanwhile)."""
        self.invalidate()
        self._build(self._latest())
