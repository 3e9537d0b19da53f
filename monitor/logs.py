"""Structured logging: JSON lines in production, readable key=value output in a terminal."""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog

LogFormat = Literal["json", "console", "auto"]


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Configure structlog and stdlib logging once, from arguments or the environment.

    ``MONITOR_LOG_LEVEL`` (default INFO) and ``MONITOR_LOG_FORMAT`` (``json``, ``console`` or
    ``auto``: console when stderr is a terminal, else JSON) apply when no argument is given.
    """
    level_name = (level or os.environ.get("MONITOR_LOG_LEVEL") or "INFO").upper()
    numeric = logging.getLevelName(level_name)
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level_name!r} (use DEBUG, INFO, WARNING, ERROR)")
    chosen = (fmt or os.environ.get("MONITOR_LOG_FORMAT") or "auto").lower()
    if chosen not in ("json", "console", "auto"):
        raise ValueError(f"unknown log format {chosen!r} (use json, console or auto)")
    if chosen == "auto":
        chosen = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if chosen == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s", force=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written (it may be replaced after logging is
    configured, by a test harness or a daemonizing wrapper)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
