"""Structured logging: JSON lines in production, readable key=value output in a terminal.

Every record goes through one standard-library handler on the root logger whose formatter is
structlog's ``ProcessorFormatter``: our own structlog calls and the standard-library loggers of
Faust, mode, aiokafka and asyncio are rendered the same way, each with its real level and the
logger's name. In JSON mode each record is exactly one line (an exception's traceback is a
field of it), so a log pipeline can read stderr line by line.

Values of keys that name call ids, phone numbers or secrets are masked in every record
(:func:`mask_sensitive`): a careless ``log.info(..., call_id=...)`` cannot leak them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import types
from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "console", "auto"]

MASK = "***"
# Words (of a key split at "_", "-", "." or a camelCase boundary) whose values never reach a
# log: call ids (Asterisk's uniqueid, Amazon Connect's ContactId), caller numbers (ANI is the
# caller's number as the telephone network delivers it), credentials. Matching words, not
# substrings, keeps "mechanism" (sasl_mechanism) or "organization" readable.
_SENSITIVE_WORDS = frozenset({
    "ani", "caller", "callerid", "callid", "callids", "phone", "phones", "telephone",
    "msisdn", "password", "passwd", "secret", "secrets", "token", "tokens", "uniqueid",
    "contactid",
})  # fmt: skip
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_sensitive_key(key: str) -> bool:
    """Whether a log field named ``key`` may hold a call id, a phone number or a secret."""
    words = [word.lower() for word in _WORD.findall(key)]
    if any(word in _SENSITIVE_WORDS or word.endswith("phone") for word in words):
        return True
    # call_id, callId, call_ids, contact_id (Amazon Connect's): they identify a member's call.
    return any(a in ("call", "contact") and b in ("id", "ids") for a, b in pairwise(words))


def _masked(value: Any, depth: int = 0) -> Any:
    if depth > 4:  # log fields are shallow; a deep structure is not worth walking
        return value
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and is_sensitive_key(k) else _masked(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked(item, depth + 1) for item in value]
    return value


def mask_sensitive(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Replace the value of every field named like a call id, phone number or secret (at any
    depth of nested dicts and lists) with ``***``."""
    for key, value in event_dict.items():
        if is_sensitive_key(key):
            event_dict[key] = MASK
        elif isinstance(value, Mapping | list | tuple):
            event_dict[key] = _masked(value)
    return event_dict


def _record_timestamp(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """A standard-library record's own time (ISO 8601, UTC), as TimeStamper writes ours."""
    record = event_dict.get("_record")
    if record is not None and "timestamp" not in event_dict:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        event_dict["timestamp"] = moment.isoformat().replace("+00:00", "Z")
    return event_dict


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written (it may be replaced after logging is
    configured, by a test harness or a daemonizing wrapper)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _resolve(level: str | None, fmt: str | None) -> tuple[int, str]:
    level_name = (level or os.environ.get("MONITOR_LOG_LEVEL") or "INFO").upper()
    numeric = logging.getLevelName(level_name)
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level_name!r} (use DEBUG, INFO, WARNING, ERROR)")
    chosen = (fmt or os.environ.get("MONITOR_LOG_FORMAT") or "auto").lower()
    if chosen not in ("json", "console", "auto"):
        raise ValueError(f"unknown log format {chosen!r} (use json, console or auto)")
    if chosen == "auto":
        chosen = "console" if sys.stderr.isatty() else "json"
    return numeric, chosen


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Configure structlog and stdlib logging, from arguments or the environment.

    ``MONITOR_LOG_LEVEL`` (default INFO) and ``MONITOR_LOG_FORMAT`` (``json``, ``console`` or
    ``auto``: console when stderr is a terminal, else JSON) apply when no argument is given.
    Calling it again replaces the previous configuration.
    """
    numeric, chosen = _resolve(level, fmt)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
    ]
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                              mask_sensitive]  # fmt: skip
    if chosen == "json":
        # The traceback becomes the "exception" field: one line per record, always.
        final += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # ConsoleRenderer prints exceptions itself, readably, on the lines after the record.
        final.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _record_timestamp],
        processors=final,
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        # Ours from an earlier call, or anything installed before us (basicConfig, a library):
        # two handlers would print each record twice, one of them not as JSON.
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Our loggers keep the chosen level even where the root is raised for the libraries (the
    # worker runs Faust and aiokafka at INFO or above; see monitor/pipeline/worker.py).
    logging.getLogger("monitor").setLevel(numeric)
    # warnings.warn output would otherwise be printed to stderr as two plain lines.
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    sys.excepthook = _log_uncaught if chosen == "json" else sys.__excepthook__


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: types.TracebackType | None
) -> None:
    """In JSON mode an exception that ends the process is one more JSON record, not a
    traceback printed across many lines."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("monitor").critical("uncaught_exception", exc_info=(exc_type, exc, tb))


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
