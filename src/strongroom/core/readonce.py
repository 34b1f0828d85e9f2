"""Values that never change once read (an account's tenant, ledger, scale), kept in memory so
that each is read once: `get` loads only the keys it does not hold. Thread-safe; bounded by
`max_size` (a read that would pass it empties the store first)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


class ReadOnce(Generic[V]):
    def __init__(self, max_size: int) -> None:
        assert max_size > 0
        self._max_size = max_size
        self._values: dict[str, V] = {}
        self._lock = threading.Lock()

    def get(
        self, keys: Iterable[str], load: Callable[[list[str]], Mapping[str, V]]
    ) -> dict[str, V]:
        """The values of `keys` (a key `load` does not answer is left out), `load` asked once,
        for the missing keys sorted, none repeated, and only when some are missing."""
        keys = list(keys)
        with self._lock:
            found = {k: self._values[k] for k in keys if k in self._values}
        missing = sorted(set(keys) - found.keys())
        if missing:
            read = load(missing)
            found.update(read)
            with self._lock:
                if len(self._values) + len(read) > self._max_size:
                    self._values.clear()
                self._values.update(read)
        return found

    def peek(self, key: str) -> V | None:
        """The value held for `key`, if any; never loads."""
        return self._values.get(key)
