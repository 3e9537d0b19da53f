"""Logs a log pipeline can read (issue 11, section 4): ``monitor.logs``.

In JSON mode every record, ours (structlog) or a library's (standard ``logging``: Faust, mode,
aiokafka, asyncio), is exactly one JSON line with its real level and its logger's name; the
console format stays readable; fields named like call ids, phone numbers or secrets are masked.
"""

from __future__ import annotations

import ast
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from monitor.logs import MASK, configure_logging, get_logger, is_sensitive_key, mask_sensitive

ROOT = Path(__file__).resolve().parents[1]
LEVELS = {"debug", "info", "warning", "error", "critical"}


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test configures logging for the whole process: put back what was there."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monitor_level = logging.getLogger("monitor").level
    config = structlog.get_config()
    hook = sys.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("monitor").setLevel(monitor_level)
    structlog.configure(**config)
    sys.excepthook = hook
    logging.captureWarnings(False)


def json_lines(err: str) -> list[dict[str, Any]]:
    """Every line of stderr as a JSON object (fails on any line that is not one)."""
    records = []
    for line in err.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


def boom() -> None:
    raise ZeroDivisionError("division by zero")


def test_json_every_record_is_one_line_with_its_level_and_logger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    capsys.readouterr()
    logging.getLogger("faust.worker").info("[^Worker]: Starting %s on %r", "app", 6066)
    logging.getLogger("faust.worker").warning("Timer %s woke up too late", "adopt")
    logging.getLogger("aiokafka.consumer").error("Unable connect to node with id 1: %s", "boom")
    logging.getLogger("mode").critical("We experienced a crash!")
    logging.getLogger("asyncio").warning("Executing <Task> took 0.2 seconds")
    # Faust logs tables over several lines: still one JSON line.
    logging.getLogger("faust.tables.recovery").info("Highwater:\n+-----+\n| a 1 |\n+-----+")
    logging.getLogger("aiokafka.consumer").debug("below INFO: dropped")
    ours = get_logger("monitor.worker")
    ours.info("worker_starting", topic="callcenter.events", partitions=8)
    ours.warning("gc_pause", seconds=0.25)
    ours.debug("below INFO: dropped")
    try:
        boom()
    except ZeroDivisionError:
        ours.exception("event_failed", contract="H1001")
        logging.getLogger("faust.agents").exception("Agent crashed: %r", "process-events")
    records = json_lines(capsys.readouterr().err)
    seen = [(r["event"], r["level"], r["logger"]) for r in records]
    assert seen == [
        ("[^Worker]: Starting app on 6066", "info", "faust.worker"),
        ("Timer adopt woke up too late", "warning", "faust.worker"),
        ("Unable connect to node with id 1: boom", "error", "aiokafka.consumer"),
        ("We experienced a crash!", "critical", "mode"),
        ("Executing <Task> took 0.2 seconds", "warning", "asyncio"),
        ("Highwater:\n+-----+\n| a 1 |\n+-----+", "info", "faust.tables.recovery"),
        ("worker_starting", "info", "monitor.worker"),
        ("gc_pause", "warning", "monitor.worker"),
        ("event_failed", "error", "monitor.worker"),
        ("Agent crashed: 'process-events'", "error", "faust.agents"),
    ]
    assert records[6]["topic"] == "callcenter.events" and records[6]["partitions"] == 8
    assert records[8]["contract"] == "H1001"
    for record in records[-2:]:
        # The traceback is a field of the record, not lines after it.
        assert record["exception"].startswith("Traceback (most recent call last):")
        assert "in boom" in record["exception"]
        assert record["exception"].rstrip().endswith("ZeroDivisionError: division by zero")
    for record in records:
        assert record["level"] in LEVELS
        stamp = record["timestamp"]
        assert stamp.endswith("Z")
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert moment.utcoffset() == UTC.utcoffset(None)
        assert abs((datetime.now(UTC) - moment).total_seconds()) < 60


def test_debug_level_reaches_every_logger_unless_the_root_is_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("DEBUG", "json")
    capsys.readouterr()
    get_logger("monitor.partitions").debug("ours")
    logging.getLogger("aiokafka.conn").debug("theirs")
    assert [r["event"] for r in json_lines(capsys.readouterr().err)] == ["ours", "theirs"]
    # What the worker does (monitor/pipeline/worker.py): the libraries at INFO, ours as chosen.
    logging.getLogger().setLevel(logging.INFO)
    get_logger("monitor.partitions").debug("ours")
    logging.getLogger("aiokafka.conn").debug("theirs")
    assert [r["event"] for r in json_lines(capsys.readouterr().err)] == ["ours"]


def test_configuring_twice_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))  # e.g. a basicConfig
    configure_logging("INFO", "json")
    configure_logging("INFO", "json")
    capsys.readouterr()
    logging.getLogger("faust").info("once")
    get_logger("monitor.x").info("once too")
    assert [r["event"] for r in json_lines(capsys.readouterr().err)] == ["once", "once too"]


def test_warnings_and_uncaught_exceptions_are_json_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("coroutine 'x' was never awaited", RuntimeWarning, stacklevel=1)
    try:
        boom()
    except ZeroDivisionError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    warned, crashed = json_lines(capsys.readouterr().err)
    assert (warned["logger"], warned["level"]) == ("py.warnings", "warning")
    assert "never awaited" in warned["event"]
    assert (crashed["event"], crashed["level"]) == ("uncaught_exception", "critical")
    assert "ZeroDivisionError" in crashed["exception"]


def test_environment_chooses_the_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONITOR_LOG_FORMAT", "json")
    monkeypatch.setenv("MONITOR_LOG_LEVEL", "warning")
    configure_logging()
    capsys.readouterr()
    get_logger("monitor.x").info("dropped")
    logging.getLogger("mode").warning("kept")
    assert [r["event"] for r in json_lines(capsys.readouterr().err)] == ["kept"]
    with pytest.raises(ValueError, match="unknown log format"):
        configure_logging(fmt="xml")
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(level="LOUD")


def test_console_is_readable_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "console")
    capsys.readouterr()
    get_logger("monitor.worker").info("worker_starting", topic="callcenter.events")
    logging.getLogger("faust.worker").warning("Timer %s woke up too late", "adopt")
    try:
        boom()
    except ZeroDivisionError:
        get_logger("monitor.worker").exception("event_failed", contract="H1001")
    lines = capsys.readouterr().err.splitlines()
    assert not any(line.startswith("{") for line in lines)
    first, second, third = lines[:3]
    assert "[info" in first and "worker_starting" in first and "[monitor.worker]" in first
    assert "topic=callcenter.events" in first
    assert "[warning" in second and "Timer adopt woke up too late" in second
    assert "[faust.worker]" in second
    assert "[error" in third and "event_failed" in third and "contract=H1001" in third
    # The traceback follows, on lines of its own.
    assert any("ZeroDivisionError" in line for line in lines[3:])
    assert "\x1b[" not in "\n".join(lines)  # no colours: stderr is not a terminal here


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    "key",
    ["call_id", "callId", "call_ids", "CallID", "contact_id", "ContactId", "uniqueid", "caller",
     "caller_number", "callerid", "ANI", "ani", "phone", "phone_number", "telephone",
     "homePhone", "msisdn", "password", "sasl_password", "passwd", "secret", "client_secret",
     "token", "access_token", "refresh-token"],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    ["event", "event_id", "contract", "contract_id", "sasl_mechanism", "sasl_username",
     "organization", "calls", "calls_tracked", "bootstrap_servers", "topic", "queue", "line",
     "animation", "partitions", "error", "detail"],
)  # fmt: skip
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_masking_reaches_nested_fields() -> None:
    event = {
        "event": "x",
        "call_id": "c-1",
        "contract": "H1001",
        "calls": [{"callId": "c-2", "queue": "q"}, ("c-3",)],
        "credentials": {"username": "svc", "password": "hunter2", "inner": {"token": "t"}},
    }
    assert mask_sensitive(None, "info", event) == {
        "event": "x",
        "call_id": MASK,
        "contract": "H1001",
        "calls": [{"callId": MASK, "queue": "q"}, ["c-3"]],
        "credentials": {"username": "svc", "password": MASK, "inner": {"token": MASK}},
    }


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_no_call_id_phone_number_or_secret_reaches_the_output(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", fmt)
    capsys.readouterr()
    get_logger("monitor.adapters.asterisk").warning(
        "careless", call_id="c-4711", caller="3125550101", ani="+13125550102",
        sasl_password="hunter2", sasl_mechanism="PLAIN", nested={"phone_number": "8005551212"},
        items=[{"access_token": "eyJhbGciOi"}],
    )  # fmt: skip
    err = capsys.readouterr().err
    for secret in ("c-4711", "3125550101", "3125550102", "hunter2", "8005551212", "eyJhbGciOi"):
        assert secret not in err
    assert MASK in err and "PLAIN" in err
    if fmt == "json":
        (record,) = json_lines(err)
        assert record["call_id"] == record["sasl_password"] == MASK
        assert record["nested"] == {"phone_number": MASK}


def _log_calls(tree: ast.AST) -> Iterator[ast.Call]:
    methods = {"debug", "info", "warning", "warn", "error", "exception", "critical", "msg", "bind"}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in methods):  # fmt: skip
            yield node


def test_no_log_call_of_ours_passes_a_sensitive_field() -> None:
    """The masking is a safety net; the code itself never logs such a field."""
    offenders = []
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for call in _log_calls(tree):
            for keyword in call.keywords:
                if keyword.arg is not None and is_sensitive_key(keyword.arg):
                    offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}: {keyword.arg}")
    assert offenders == []
