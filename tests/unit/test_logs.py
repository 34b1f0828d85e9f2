"""JSON log lines (core/logs.py): the fields, UTC time to the millisecond, and masking of
secrets and card numbers whichever logger writes them."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator

import pytest
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

from strongroom import logs
from strongroom.logs import (
    BATCH_CHARS_MAX,
    WRITE_BYTES_MAX,
    AccessLineFilter,
    JsonFormatter,
    LineBatchingHandler,
    logging_config,
    redact,
)

TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CARD = "4111 1111 1111 1111"  # a test card number: passes the Luhn check


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("strongroom.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield out
    logger.removeHandler(handler)


def parsed(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_has_time_in_utc_to_the_millisecond_level_logger_message(
    lines: io.StringIO,
) -> None:
    record = logging.LogRecord(
        "strongroom.test_logs", logging.WARNING, __file__, 1, "hi %s", ("x",), None
    )
    record.created = 1_767_225_600.25  # 2026-01-01T00:00:00.250Z
    record.msecs = 250.0
    logging.getLogger("strongroom.test_logs").handle(record)
    (line,) = parsed(lines)
    assert line["time"] == "2026-01-01T00:00:00.250Z"
    assert line["level"] == "warning"
    assert line["logger"] == "strongroom.test_logs"
    assert line["message"] == "hi x"
    assert isinstance(line["pid"], int)


def test_extra_fields_are_kept_and_an_exception_is_one_field(lines: io.StringIO) -> None:
    log = logging.getLogger("strongroom.test_logs")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", extra={"request_id": "req_1", "status": 500})
    (line,) = parsed(lines)
    assert TIME.match(str(line["time"]))
    assert (line["request_id"], line["status"]) == ("req_1", 500)
    assert "ValueError: boom" in str(line["error"])


def test_secrets_and_card_numbers_never_reach_a_line(lines: io.StringIO) -> None:
    log = logging.getLogger("strongroom.test_logs")
    key = "sk_" + "A1b2" * 10
    webhook = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    log.info("key %s secret %s card %s", key, webhook, CARD, extra={"detail": f"Bearer {key}"})
    log.error("oops", extra={"pan": "4111111111111111"})
    text = lines.getvalue()
    for secret in (key, webhook, CARD, "4111111111111111", "A1b2A1b2"):
        assert secret not in text
    first, second = parsed(lines)
    assert first["message"] == (
        "key sk_[redacted] secret whsec_[redacted] card [redacted card number]"
    )
    assert first["detail"] == "Bearer [redacted]"
    assert second["pan"] == "[redacted card number]"


def test_numbers_that_are_not_card_numbers_are_kept() -> None:
    assert redact("amount 4111111111111112 of 12345") == "amount 4111111111111112 of 12345"
    assert redact("tr_4111111111111111") == "tr_4111111111111111"  # an id, not a number
    assert redact("2" * 25) == "2" * 25  # longer than any card number


def test_uvicorn_access_lines_lose_their_query_string() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/v1/accounts?metadata[email]=a@b.c", "1.1", 200),
        None,
    )
    assert AccessLineFilter().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /v1/accounts HTTP/1.1" 200'


def test_the_config_sends_every_logger_through_one_json_handler() -> None:
    config = logging_config("debug")
    assert config["root"] == {"handlers": ["stderr"], "level": "DEBUG"}
    for name in ("strongroom", "uvicorn", "uvicorn.error"):
        assert config["loggers"][name]["handlers"] == []
        assert config["loggers"][name]["propagate"] is True
    # The app's own request line is the access log; uvicorn's is off unless asked for.
    assert config["loggers"]["uvicorn.access"]["propagate"] is False
    assert logging_config(access_log=True)["loggers"]["uvicorn.access"]["propagate"] is True


def test_the_fast_path_writes_what_the_library_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    formatter = JsonFormatter()
    extras: list[dict[str, object]] = [
        {"request_id": "req_1", "tenant": None, "api_key": "key_1", "method": "POST",
         "route": "/v1/transfers", "status": 201, "duration_ms": 1.25},
        {"note": f"card {CARD}", "ok": True, "big": 10**30, "ratio": 1e300},
        {"detail": "Bearer abc.def", "text": "é ü ✓"},
        {"_private": "skipped by the library, so by the fast path", "n": 2},
        {},
    ]  # fmt: skip
    for extra in extras:
        record = logging.LogRecord(
            "strongroom.http", logging.INFO, __file__, 1, "request %s", ("sk_" + "x" * 12,), None
        )
        record.__dict__.update(extra)
        library = _LibraryJsonFormatter.format(formatter, record)
        with monkeypatch.context() as patched:  # the fast path's own, not the library's
            patched.setattr(_LibraryJsonFormatter, "format", _not_called)
            assert formatter.format(record) == library
    # Anything else (a value JSON cannot take as it is, an exception) is the library's.
    odd = logging.LogRecord("strongroom.x", logging.INFO, __file__, 1, "m", (), None)
    odd.__dict__["raw"] = b"xy"
    assert json.loads(formatter.format(odd))["raw"] == "eHk="
    # A dict logged as the message: its keys become fields, as the library writes them.
    as_dict = logging.LogRecord("strongroom.x", logging.INFO, __file__, 1, {"k": 1}, (), None)
    assert formatter.format(as_dict) == _LibraryJsonFormatter.format(formatter, as_dict)
    assert json.loads(formatter.format(as_dict))["k"] == 1


def _not_called(*_args: object) -> str:
    raise AssertionError("the fast path handed the record to the library")


class Writes(io.StringIO):
    """A stream that keeps each write apart, to see how lines were cut."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def batched() -> Iterator[tuple[Writes, logging.Logger, LineBatchingHandler]]:
    out = Writes()
    handler = LineBatchingHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("strongroom.http")  # the request lines' logger: batched
    logger.addHandler(handler)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield out, logger, handler
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate


def test_info_lines_are_written_together_and_a_warning_at_once(
    batched: tuple[Writes, logging.Logger, LineBatchingHandler],
) -> None:
    out, log, handler = batched
    with handler.lock:  # type: ignore[union-attr]  # the flusher thread waits meanwhile
        log.info("one")
        log.info("two")
        assert out.getvalue() == ""
        log.warning("three")  # written at once, after the lines before it
        assert [line["message"] for line in parsed(out)] == ["one", "two", "three"]
        log.info("four")
        assert len(parsed(out)) == 3
    handler.flush()
    assert [line["message"] for line in parsed(out)] == ["one", "two", "three", "four"]


def test_waiting_lines_are_written_by_the_flusher_without_a_flush(
    batched: tuple[Writes, logging.Logger, LineBatchingHandler],
) -> None:
    out, log, _handler = batched
    log.info("soon")
    deadline = time.monotonic() + 30  # BATCH_INTERVAL_S is 50 ms; a loaded machine is slower
    while not out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [line["message"] for line in parsed(out)] == ["soon"]


def test_many_waiting_characters_are_written_at_once(
    batched: tuple[Writes, logging.Logger, LineBatchingHandler],
) -> None:
    out, log, handler = batched
    with handler.lock:  # type: ignore[union-attr]
        for _ in range(BATCH_CHARS_MAX // 100 + 1):
            log.info("x" * 100)
        assert len(out.getvalue()) >= BATCH_CHARS_MAX


def test_other_loggers_lines_are_written_at_once_after_those_waiting(
    batched: tuple[Writes, logging.Logger, LineBatchingHandler],
) -> None:
    out, log, handler = batched
    other = logging.getLogger("uvicorn.error.test_logs")
    other.addHandler(handler)
    other.setLevel(logging.DEBUG)
    other.propagate = False
    try:
        with handler.lock:  # type: ignore[union-attr]
            log.info("request")
            assert out.getvalue() == ""
            other.info("Finished server process")  # uvicorn's last line at a stop
            assert [line["message"] for line in parsed(out)] == [
                "request",
                "Finished server process",
            ]
    finally:
        other.removeHandler(handler)


def test_a_batch_is_written_in_pipe_atomic_pieces_cut_at_line_ends(
    batched: tuple[Writes, logging.Logger, LineBatchingHandler],
) -> None:
    out, log, handler = batched
    with handler.lock:  # type: ignore[union-attr]
        for k in range(200):
            log.info("line %d %s", k, "é" * (k % 50))
        log.info("long " + "x" * (2 * WRITE_BYTES_MAX))  # alone in its write
    handler.flush()
    assert len(parsed(out)) == 201
    long = [w for w in out.writes if len(w.encode()) > WRITE_BYTES_MAX]
    assert len(long) == 1
    assert long[0].count("\n") == 1
    for piece in out.writes:
        assert piece.endswith("\n")
    assert len(out.writes) < 201 / 5  # together, not a write a line


def test_a_forked_child_drops_its_parents_waiting_lines(
    batched: tuple[Writes, logging.Logger, LineBatchingHandler],
) -> None:
    out, log, handler = batched
    with handler.lock:  # type: ignore[union-attr]
        log.info("the parent's")
        logs._reset_batching_after_fork()  # as os.fork runs it in the child
        handler.flush()
    assert out.getvalue() == ""
    log.info("the child's")
    handler.flush()
    assert [line["message"] for line in parsed(out)] == ["the child's"]


def test_the_server_config_batches_and_the_cli_config_does_not() -> None:
    assert logging_config()["handlers"]["stderr"]["class"] == "logging.StreamHandler"
    assert logging_config(batched=True)["handlers"]["stderr"]["class"] == (
        "strongroom.logs.LineBatchingHandler"
    )
