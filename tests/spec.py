"""The event contract and report columns as issue 2 writes them, for tests to check against.

Written out here rather than imported from ``monitor`` so that a test compares the code with the
specification, not the code with itself.
"""

from __future__ import annotations

from monitor.engine import EventType

# §2: call event types, then status event types.
CALL_TYPES: tuple[str, ...] = (
    "call_received",
    "queued",
    "answered",
    "abandoned",
    "disconnected",
    "ended",
    "tty_requested",
    "tty_connected",
    "interpreter_requested",
    "interpreter_connected",
)
STATUS_TYPES: tuple[str, ...] = ("service_down", "service_up")

# §4 and §6: the key columns, then every daily figure, in report order.
ROW_FIELDS: tuple[str, ...] = (
    "contract_id",
    "line",
    "date",
    "parent_org",
    "calls_received",
    "calls_queued",
    "calls_answered",
    "answered_within_30s",
    "answered_within_30s_ratio",
    "avg_hold_seconds",
    "calls_disconnected",
    "disconnect_rate",
    "tty_calls",
    "tty_connected_within_7m",
    "interpreter_calls",
    "interpreter_connected_within_8m",
    "compliant_hold",
    "compliant_answer",
    "compliant_disconnect",
)

SEC = 1_000
MIN = 60 * SEC

# Short names for hand-built calls.
R = EventType.CALL_RECEIVED
Q = EventType.QUEUED
A = EventType.ANSWERED
AB = EventType.ABANDONED
D = EventType.DISCONNECTED
E = EventType.ENDED
TR = EventType.TTY_REQUESTED
TC = EventType.TTY_CONNECTED
IR = EventType.INTERPRETER_REQUESTED
IC = EventType.INTERPRETER_CONNECTED
