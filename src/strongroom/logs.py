"""Logging, the same in every process (`serve` and its workers, uvicorn's own lines, the
webhook worker, CLI commands): one JSON object per line on stderr, with the time in UTC to the
millisecond, the level, the logger and the message, plus the fields a record carries on
purpose (`extra=`, e.g. request_id). Secrets and card numbers are masked before a line is
written, whichever logger wrote it."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import threading
import time
import weakref
from typing import IO, Any, Final

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Chatty libraries whose INFO lines would carry URLs (webhook targets) or SQL.
_QUIET_LOGGERS: Final = ("httpx", "httpcore", "sqlalchemy", "alembic", "multipart")

# An API key, a webhook secret, a bearer credential, or a run of 13 to 19 digits (a card
# number if it passes the Luhn check). One pass of one expression over each string field.
_SENSITIVE: Final = re.compile(
    r"(?P<key>\bsk_[A-Za-z0-9_\-]{8,})"
    r"|(?P<webhook>\bwhsec_[A-Za-z0-9+/=]{8,})"
    r"|(?P<bearer>\b[Bb]earer\s+[^\s\"',;]+)"
    r"|(?P<digits>(?<![\w.])\d(?:[ \-]?\d){12,18}(?![\w.]))"
)


# Fields whose values Strongroom itself makes (names, ids, route templates): not scanned, which
# keeps the per-request line cheap. Every other string, the message first, is.
_SAFE_FIELDS: Final = frozenset(
    {"time", "level", "logger", "request_id", "tenant", "api_key", "method", "route"}
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask(match: re.Match[str]) -> str:
    if match.lastgroup == "key":
        return "sk_[redacted]"
    if match.lastgroup == "webhook":
        return "whsec_[redacted]"
    if match.lastgroup == "bearer":
        return "Bearer [redacted]"
    text = match.group(0)
    digits = "".join(c for c in text if c.isdigit())
    return "[redacted card number]" if _luhn_valid(digits) else text


def redact(text: str) -> str:
    """`text` with API keys, webhook secrets, bearer credentials and card numbers masked."""
    return _SENSITIVE.sub(_mask, text)


# A record's own attributes, never written as extra fields (uvicorn adds an ANSI-coloured copy
# of its messages: never worth a field).
_RESERVED: Final = frozenset([*RESERVED_ATTRS, "color_message"])
# Extra values the fast path of JsonFormatter.format writes as they are.
_PLAIN: Final = frozenset({int, float, bool, type(None)})


class JsonFormatter(_LibraryJsonFormatter):
    """python-json-logger's formatter with Strongroom's field names: time (UTC, milliseconds,
    RFC 3339 with Z), level (lower case), logger, message, pid (which worker), then the
    record's extra fields; an exception's traceback goes to `error`.

    A record with no exception or stack and only strings, numbers, booleans and None as extra
    fields (every request's line) is written by `format` itself, the same JSON the library
    writes (tests/unit/test_logs.py compares them) in about a third of its time."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message", "process"],
            rename_fields={
                "asctime": "time",
                "process": "pid",
                "levelname": "level",
                "name": "logger",
                "exc_info": "error",
                "stack_info": "stack",
            },
            reserved_attrs=list(_RESERVED),
            json_ensure_ascii=False,
        )
        # The last whole second formatTime wrote and its text (one tuple, replaced whole).
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info or isinstance(record.msg, dict):
            return super().format(record)
        data: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "pid": record.process,
        }
        for name, value in record.__dict__.items():
            if name in _RESERVED or name.startswith("_"):  # the library skips those too
                continue
            if name in data:
                return super().format(record)
            kind = value.__class__
            if kind is str:
                data[name] = value if name in _SAFE_FIELDS else redact(value)
            elif kind in _PLAIN:
                data[name] = value
            else:
                return super().format(record)
        return json.dumps(data, ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        cached, text = self._second
        if second != cached:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{int(record.msecs):03d}Z"

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        level = log_data.get("level")
        if isinstance(level, str):
            log_data["level"] = level.lower()
        for name, value in log_data.items():
            if isinstance(value, str) and name not in _SAFE_FIELDS:
                log_data[name] = redact(value)
        return log_data


class AccessLineFilter(logging.Filter):
    """uvicorn's access lines without the query string (it may carry filter values)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


# A server's request lines are written together (LineBatchingHandler): at most this long after
# the first of them waits, or at once past this many characters.
BATCH_INTERVAL_S: Final = 0.05
BATCH_CHARS_MAX: Final = 64 * 1024
# A write of at most this many bytes to a pipe is atomic (POSIX PIPE_BUF, 4,096 on Linux): a
# batch goes out in writes no larger, cut at line ends, so that the lines of several workers
# sharing one pipe (a container's stderr, journald) never mix within a line.
WRITE_BYTES_MAX: Final = 4096
# The loggers whose INFO and DEBUG lines wait: the line of every request. Any other line is
# written at once, after those waiting; uvicorn's lines at a stop ("Shutting down", "Finished
# server process") thus write every request's before the process ends, which after SIGTERM is
# by the signal again, without atexit or logging.shutdown.
BATCHED_LOGGERS: Final = frozenset({"strongroom.http"})


class LineBatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes the request lines (BATCHED_LOGGERS, INFO and below)
    together: in writes of at most WRITE_BYTES_MAX bytes at line ends, at most
    BATCH_INTERVAL_S after the first waits (a background thread's), or at once when
    BATCH_CHARS_MAX characters wait. Any other line (a warning, an error, uvicorn's lines at
    start and stop) is written at once, after those waiting, so the order of lines holds and an
    error's line is never late. `flush` (and logging.shutdown) writes what waits. A process
    killed with SIGKILL, or a machine that loses power, loses at most the last BATCH_INTERVAL_S
    of request lines.

    Why: a write to stderr lets go of the GIL, and taking it back while another thread of the
    worker wants it (the group-commit committer, a threadpool read) cost each request a wait
    behind that thread and two context switches. With `strongroom serve --workers 2` on 2
    cores, the request line's write per request cost POST /v1/transfers about 0.1 ms of CPU."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._chars = 0
        self._due = threading.Event()
        self._flusher_started = False
        _batching_handlers.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        # Called with the handler's lock held (Handler.handle).
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._waiting.append(line)
        self._chars += len(line)
        if (
            record.name not in BATCHED_LOGGERS
            or record.levelno >= logging.WARNING
            or self._chars >= BATCH_CHARS_MAX
        ):
            self._write(record)
            return
        if not self._flusher_started:
            self._flusher_started = True
            threading.Thread(target=self._flusher, name="log-lines", daemon=True).start()
        if len(self._waiting) == 1:
            self._due.set()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write(None)
            super().flush()

    def _write(self, record: logging.LogRecord | None) -> None:
        """Writes what waits (the lock held), in writes of at most WRITE_BYTES_MAX bytes cut at
        line ends (a longer line alone)."""
        if not self._waiting:
            return
        lines, self._waiting, self._chars = self._waiting, [], 0
        stream = self.stream
        try:
            chunk: list[str] = []
            size = 0
            for line in lines:
                length = len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
                if chunk and size + length > WRITE_BYTES_MAX:
                    stream.write("".join(chunk))
                    stream.flush()
                    chunk, size = [], 0
                chunk.append(line)
                size += length
            stream.write("".join(chunk))
            stream.flush()
        except Exception:
            self.handleError(record or logging.makeLogRecord({"msg": "log lines lost"}))

    def _flusher(self) -> None:
        while True:
            self._due.wait()
            time.sleep(BATCH_INTERVAL_S)
            with self.lock:  # type: ignore[union-attr]
                self._due.clear()
                self._write(None)

    def _after_fork_in_child(self) -> None:
        """A child forked with lines of its parent's waiting: they are the parent's to write
        (and are dropped here), and the flusher thread did not come along."""
        self._waiting, self._chars = [], 0
        self._due = threading.Event()
        self._flusher_started = False


_batching_handlers: weakref.WeakSet[LineBatchingHandler] = weakref.WeakSet()


def _reset_batching_after_fork() -> None:
    for handler in list(_batching_handlers):
        handler._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_batching_after_fork)


def logging_config(
    level: str = "INFO", *, access_log: bool = False, batched: bool = False
) -> dict[str, Any]:
    """The `logging.config.dictConfig` of every Strongroom process: one JSON handler on
    stderr at the root; uvicorn's loggers hand their lines to it. Also given to uvicorn as
    its `log_config`, so that each worker process it starts configures itself the same way.
    uvicorn's access lines are off unless `access_log`: the app's own line per request
    (logger strongroom.http, message "request") carries the request id, route and tenant.
    `batched`: the server's processes write their INFO lines together (LineBatchingHandler)."""
    level = level.upper()
    assert level in LOG_LEVELS, level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"access_line": {"()": AccessLineFilter}},
        "handlers": {
            "stderr": {
                "class": (
                    f"{__name__}.LineBatchingHandler" if batched else "logging.StreamHandler"
                ),
                "stream": "ext://sys.stderr",
                "formatter": "json",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "strongroom": {"handlers": [], "level": level, "propagate": True},
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {
                "handlers": [],
                "level": level,
                "propagate": access_log,
                "filters": ["access_line"],
            },
            **{
                name: {"handlers": [], "level": "WARNING", "propagate": True}
                for name in _QUIET_LOGGERS
            },
        },
    }


def configure_logging(level: str = "INFO", *, batched: bool = False) -> None:
    """JSON lines on stderr for this process (idempotent: each call replaces the last);
    `batched` as in logging_config (the server's processes).

    No line carries where a call was made, its thread's or its process's name: the logging
    module is told not to look them up (the Logging HOWTO's "Optimization"; finding the caller
    alone cost about 4 us a line)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(logging_config(level, batched=batched))
