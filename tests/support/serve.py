"""`strongroom serve` as a real process for the tests that need one (uvicorn's own settings,
a SIGKILL): on a free loopback port, its output in a log file (a pipe nobody reads would stall
it once full), ready when /healthz answers, and its process group killed on the way out."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

START_S_MAX = 60.0  # past it the server is stuck, not slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(
    url: str, log: Path, port: int | None = None, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """(the process, its base URL); `env` adds STRONGROOM_* settings; `port` is a free one by
    default (a test that must name its origin in a setting picks it first). The log is
    appended to, so a test that restarts the server keeps every run's output."""
    port = port or free_port()
    strongroom = Path(sys.executable).with_name("strongroom")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(strongroom), "serve", "--port", str(port)],
            env={**os.environ, "STRONGROOM_DATABASE_URL": url, **env},
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S_MAX
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield proc, base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
