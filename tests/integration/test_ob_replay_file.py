"""The replay file of a SQLite deployment's resource requests (openbanking.authz.replay): a
proof remembered until it expires, shared by every process that maps the file, never
forgotten to make room."""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest

from strongroom.core.slotfile import SlotFile
from strongroom.openbanking.authz.replay import FileReplayStore
from strongroom.openbanking.authz.wiring import replay_store
from strongroom.openbanking.errors import ReplayCacheFull
from tests.e2e.http_support import build_app, running

S = 1_000_000
NOW = 1_800_000_000 * S


def test_a_key_is_refused_until_it_expires_then_taken_again(tmp_path: Path) -> None:
    store = FileReplayStore(tmp_path / "r")
    assert store.first_use("dpop:jkt:a", NOW + 60 * S, NOW)
    assert not store.first_use("dpop:jkt:a", NOW + 60 * S, NOW + 59 * S)
    assert store.first_use("dpop:jkt:b", NOW + 60 * S, NOW)  # another key
    assert store.first_use("dpop:jkt:a", NOW + 200 * S, NOW + 60 * S)  # expired: new again
    assert not store.first_use("dpop:jkt:a", NOW + 200 * S, NOW + 61 * S)
    store.close()
    # Closed and opened again (another lifespan, a restarted worker): still remembered.
    again = FileReplayStore(tmp_path / "r")
    assert not again.first_use("dpop:jkt:a", NOW + 200 * S, NOW + 62 * S)
    again.close()
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o600


def test_a_full_set_refuses_a_new_key_and_forgets_none(tmp_path: Path) -> None:
    store = FileReplayStore(tmp_path / "r", sets=1, slots=3)
    for n in range(3):
        assert store.first_use(f"k{n}", NOW + (10 + n) * S, NOW)
    with pytest.raises(ReplayCacheFull) as caught:
        store.first_use("k3", NOW + 60 * S, NOW)
    assert caught.value.retry_after_s == 10  # when the first slot frees
    assert caught.value.status == 503
    for n in range(3):  # none forgotten
        assert not store.first_use(f"k{n}", NOW + 60 * S, NOW + 1)
    # Once one has expired, the new key takes its slot.
    assert store.first_use("k3", NOW + 60 * S, NOW + 10 * S)
    assert not store.first_use("k3", NOW + 60 * S, NOW + 10 * S)
    assert not store.first_use("k1", NOW + 60 * S, NOW + 10 * S)
    store.close()


def _race(path: str, key: str, start: multiprocessing.synchronize.Event, out: object) -> None:
    store = FileReplayStore(Path(path))
    start.wait(10)
    won = sum(store.first_use(f"{key}:{n}", NOW + 60 * S, NOW) for n in range(2_000))
    out.put(won)  # type: ignore[attr-defined]
    store.close()


def test_processes_racing_on_the_same_keys_each_key_wins_once(tmp_path: Path) -> None:
    """Four processes (workers) offer the same 2,000 keys at once: every key is first used
    exactly once across them."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(str(tmp_path / "r"), "same", start, out)) for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    start.set()
    wins = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert sum(wins) == 2_000


def test_runtime_places_it_beside_a_sqlite_database_only(tmp_path: Path) -> None:
    db = str(tmp_path / "strongroom.db")
    store = replay_store(db)
    assert store is not None
    assert store.path == Path(db + ".dpop-replay")
    assert store.first_use("k", NOW + S, NOW)
    assert os.path.exists(db + ".dpop-replay")
    store.close()
    assert replay_store(None) is None
    assert replay_store(":memory:") is None


def test_digests_are_keyed_by_the_files_own_random_key(tmp_path: Path) -> None:
    """No one can compute which set a proof lands in (and crowd one set with chosen jtis): the
    digest is keyed by a random key made with the file, kept while the file is."""
    one = SlotFile(tmp_path / "one", magic=b"SRTEST01", sets=4, slots=2)
    two = SlotFile(tmp_path / "two", magic=b"SRTEST01", sets=4, slots=2)
    assert one.digest("dpop:jkt:a") != two.digest("dpop:jkt:a")
    assert one.digest("dpop:jkt:a") != hashlib.blake2b(b"dpop:jkt:a", digest_size=16).digest()
    again = SlotFile(tmp_path / "one", magic=b"SRTEST01", sets=4, slots=2)
    assert again.digest("dpop:jkt:a") == one.digest("dpop:jkt:a")
    for table in (one, two, again):
        table.close()


def test_a_file_others_may_read_or_write_is_refused(tmp_path: Path) -> None:
    """A replay file made beforehand by someone else (a shared directory) or loosened since:
    who can read it has the key (and can crowd one set), who can write it can clear the
    slots and replay. The store refuses it, loudly, rather than use it."""
    path = tmp_path / "strongroom.db.dpop-replay"
    path.touch()
    path.chmod(0o666)
    store = FileReplayStore(path)
    with pytest.raises(PermissionError, match="mode 0600"):
        store.first_use("dpop:jkt:a", NOW + 60 * S, NOW)
    path.chmod(0o640)
    with pytest.raises(PermissionError, match="mode 0600"):
        store.first_use("dpop:jkt:a", NOW + 60 * S, NOW)
    path.chmod(0o600)
    assert store.first_use("dpop:jkt:a", NOW + 60 * S, NOW)
    store.close()


def test_a_truncated_file_starts_afresh_rather_than_failing_every_request(tmp_path: Path) -> None:
    """A file whose header is intact but whose size is not the layout's (cut short while the
    server was stopped) could not be mapped: every resource request failed."""
    path = tmp_path / "r"
    store = FileReplayStore(path, sets=4, slots=2)
    assert store.first_use("dpop:jkt:a", NOW + 60 * S, NOW)
    store.close()
    os.truncate(path, 100)
    again = FileReplayStore(path, sets=4, slots=2)
    assert again.first_use("dpop:jkt:b", NOW + 60 * S, NOW)
    assert path.stat().st_size == 32 + 4 * 2 * 24
    again.close()


def test_a_server_with_an_unusable_replay_file_does_not_start(tmp_path: Path) -> None:
    """Refused at start, naming the file, rather than at every resource request."""
    db = tmp_path / "strongroom.db"
    replay = Path(str(db) + ".dpop-replay")
    replay.touch()
    replay.chmod(0o644)
    app = build_app(f"sqlite:///{db}")

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    try:
        with pytest.raises(PermissionError, match=r"strongroom\.db\.dpop-replay"):
            asyncio.run(start())
    finally:
        app.state.engine.dispose()
    replay.chmod(0o600)
    with running(f"sqlite:///{db}") as api:
        assert api.request("GET", "/readyz").status_code == 200
