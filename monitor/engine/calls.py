"""Per-call state and the facts CMS counts for a call.

A call's state keeps only the earliest time of each event type (and the line of the events that
can define its arrival), so it is a fixed handful of integers whatever the number of events, and
the facts derived from it do not depend on the order in which the events arrived.
"""

from __future__ import annotations

from typing import NamedTuple

from monitor.engine.events import EventType

NEVER = 1 << 62  # "no such event yet": larger than any valid epoch ms, so min() just works

ANSWER_TARGET_MS = 30_000
TTY_TARGET_MS = 420_000
INTERPRETER_TARGET_MS = 480_000

_CALL_RECEIVED = int(EventType.CALL_RECEIVED)
_N_CALL_TYPES = int(EventType.INTERPRETER_CONNECTED) + 1


class CallFacts(NamedTuple):
    """What one call contributes to its day; the unit that aggregates add and retract."""

    arrival_ms: int
    line: str
    requested_live: bool
    answered: bool
    answered_within_30s: bool
    hold_ms: int  # 0 unless answered
    disconnected: bool
    tty: bool
    tty_in_time: bool
    interpreter: bool
    interpreter_in_time: bool
    clock_skew: bool  # answered before its hold started: counted, hold clamped to 0


class CallState:
    """Earliest time of each call event type, plus arrival-line bookkeeping."""

    __slots__ = ("any_line", "any_ms", "earliest", "received_line")

    def __init__(self) -> None:
        # earliest[t] is the earliest ts of event type t (NEVER when unseen).
        self.earliest: list[int] = [NEVER] * _N_CALL_TYPES
        self.received_line: str = ""  # line of the earliest call_received
        self.any_ms: int = NEVER  # earliest ts of any event of the call
        self.any_line: str = ""  # line of that event

    def observe(self, event_type: int, ts_ms: int, line: str) -> bool:
        """Fold one event in; return whether the state changed.

        When two arrival-defining events share a time, the alphabetically first line wins, so
        the call's line does not depend on the order in which its events arrived.
        """
        changed = False
        earliest = self.earliest
        if ts_ms < earliest[event_type]:
            earliest[event_type] = ts_ms
            if event_type == _CALL_RECEIVED:
                self.received_line = line
            changed = True
        elif (
            event_type == _CALL_RECEIVED
            and ts_ms == earliest[event_type]
            and line < self.received_line
        ):
            self.received_line = line
            changed = True
        if ts_ms < self.any_ms:
            self.any_ms = ts_ms
            self.any_line = line
            changed = True
        elif ts_ms == self.any_ms and line < self.any_line:
            self.any_line = line
            changed = True
        return changed

    def event_time(self, event_type: EventType) -> int | None:
        ts = self.earliest[event_type]
        return None if ts == NEVER else ts

    @property
    def arrival_ms(self) -> int:
        received = self.earliest[_CALL_RECEIVED]
        return received if received != NEVER else self.any_ms

    def facts(self) -> CallFacts:
        # Unpacked in EventType order (CALL_RECEIVED=0 ... INTERPRETER_CONNECTED=9).
        (received, queued, answered_at, _abandoned, disconnected, _ended,
         tty_req, tty_conn, int_req, int_conn) = self.earliest  # fmt: skip
        if received != NEVER:
            arrival, line = received, self.received_line
        else:
            arrival, line = self.any_ms, self.any_line
        answered = answered_at != NEVER
        hold = 0
        skew = False
        if answered:
            gap = answered_at - (queued if queued != NEVER else arrival)
            if gap < 0:
                skew = True
            else:
                hold = gap
        tty = tty_req != NEVER
        interpreter = int_req != NEVER
        # Positional: keyword construction of a NamedTuple costs twice as much, once per call.
        return CallFacts(
            arrival,
            line,
            answered or queued != NEVER,
            answered,
            answered and hold <= ANSWER_TARGET_MS,
            hold,
            disconnected != NEVER,
            tty,
            tty and tty_conn != NEVER and tty_conn - tty_req <= TTY_TARGET_MS,
            interpreter,
            interpreter and int_conn != NEVER and int_conn - int_req <= INTERPRETER_TARGET_MS,
            skew,
        )
