"""Logging, the same in every process (`serve` and its workers, uvicorn's own lines, the
webhook worker, CLI commands): one JSON object per line on stderr, with the time in UTC to the
millisecond, the level, the logger and the message, plus the fields a record carries on
purpose (`extra=`, e.g. request_id). Secrets and card numbers are masked before a line is
written, whichever logger wrote it."""

from __future__ import annotations

import logging
import logging.config
import re
import time
from typing import Any, Final

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


class JsonFormatter(_LibraryJsonFormatter):
    """python-json-logger's formatter with Strongroom's field names: time (UTC, milliseconds,
    RFC 3339 with Z), level (lower case), logger, message, pid (which worker), then the
    record's extra fields; an exception's traceback goes to `error`."""

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
            # uvicorn adds an ANSI-coloured copy of its messages; never worth a field.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{seconds}.{int(record.msecs):03d}Z"

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


def logging_config(level: str = "INFO", *, access_log: bool = False) -> dict[str, Any]:
    """The `logging.config.dictConfig` of every Strongroom process: one JSON handler on
    stderr at the root; uvicorn's loggers hand their lines to it. Also given to uvicorn as
    its `log_config`, so that each worker process it starts configures itself the same way.
    uvicorn's access lines are off unless `access_log`: the app's own line per request
    (logger strongroom.http, message "request") carries the request id, route and tenant."""
    level = level.upper()
    assert level in LOG_LEVELS, level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"access_line": {"()": AccessLineFilter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
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


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for this process (idempotent: each call replaces the last)."""
    logging.config.dictConfig(logging_config(level))
