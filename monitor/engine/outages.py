"""Outages and the 72-hour restoration clock (42 CFR 422.504(o), 423.505(p)).

Per (contract, line), in event time, one minute at a time:

* **declared**: a ``service_down`` status event opens an outage at its own time, a
  ``service_up`` closes whatever outage is open at its time;
* **inferred**, only while the line is in required hours (:mod:`monitor.engine.hours`):

  - ``no_answers``: at least 10 calls requested a live person in the last 30 minutes and none
    was answered;
  - ``mass_drops``: at least 10 calls were received in the last 15 minutes and at least 50 % of
    them were disconnected;
  - ``silence``: no call activity at all on the line for 30 minutes while the feed keeps
    flowing (the minute is only evaluated once newer events have arrived), and the line had
    traffic in the same hours of the previous day or the previous week: at least 10 calls
    expected in the silent half hour from the same half hour a day or a week before (counted
    per clock hour, prorated by the overlap).

An inferred outage starts at the start of its qualifying period, not when it was detected: the
minute of the first qualifying call (the first unanswered request, the first of the calls
received) or the first silent minute. It never starts while the line was outside required
hours, nor before the previous outage of the line ended. Causes that overlap an open outage join
it: one outage, several causes, the first one names it. An inferred outage closes when at least
5 calls were answered with a hold of at most 120 s within 15 minutes (at the end of the minute
that shows it); an outage with a declared cause waits for ``service_up``. Hours outside required
hours count toward the 72 hours: the rule says hours.

Minute ``m`` is evaluated once, when the watermark (the newest event time) has passed its end by
``grace`` (default 2 minutes), from the per-minute counts of :mod:`monitor.engine.windows`. The
stream and a replay of the same events therefore see the same counts and give the same outages,
as long as no event arrives later than the grace; later events still count in the figures but
do not reopen a decided minute.

Each outage produces audit records, each once: ``opened``, ``escalated`` at 24 h, 48 h and 60 h,
``breached`` at 72 h, ``closed``. Their ids are deterministic, so a record re-sent after a crash
is recognisably the same record.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from monitor.engine.engine import ComplianceEngine
from monitor.engine.events import CallEvent, EventType
from monitor.engine.hours import Schedule, cms_open_day
from monitor.engine.registry import ContractRegistry
from monitor.engine.windows import (
    MINUTE_MS,
    W_ANSWERED,
    W_ANSWERED_IN_HOLD_LIMIT,
    W_DISCONNECTED,
    W_QUEUED,
    W_RECEIVED,
    W_RECEIVED_DISCONNECTED,
    W_REQUESTED,
    SeriesKey,
)

HOUR_MS = 3_600_000
DAY_MINUTES = 1440

DECLARED, NO_ANSWERS, MASS_DROPS, SILENCE = "declared", "no_answers", "mass_drops", "silence"
CAUSES: tuple[str, ...] = (DECLARED, NO_ANSWERS, MASS_DROPS, SILENCE)

OPENED, ESCALATED, BREACHED, CLOSED = "opened", "escalated", "breached", "closed"

# Closed-outage duration histogram bounds, in seconds (+Inf implied).
DURATION_BUCKETS_S: tuple[float, ...] = (
    900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 24 * 3600.0, 48 * 3600.0, 72 * 3600.0,
    96 * 3600.0, 168 * 3600.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutageRules:
    """Detection thresholds (all configurable; the defaults are the issue's)."""

    no_answer_minutes: int = 30
    no_answer_min_requests: int = 10
    drop_minutes: int = 15
    drop_min_calls: int = 10
    drop_ratio: float = 0.5
    silence_minutes: int = 30
    # "The line had traffic": at least this many calls expected in the silent half hour, from
    # the same half hour a day or a week before (hourly counts, prorated by overlap). 10
    # expected calls make 30 silent minutes a ~1-in-20 000 chance on a working line; one call
    # the day before is no reason to expect one today.
    silence_min_expected_calls: int = 10
    restore_minutes: int = 15
    restore_min_answers: int = 5
    deadline_hours: int = 72
    escalation_hours: tuple[int, ...] = (24, 48, 60)
    grace_ms: int = 2 * MINUTE_MS

    def __post_init__(self) -> None:
        windows = (self.no_answer_minutes, self.drop_minutes, self.silence_minutes,
                   self.restore_minutes)  # fmt: skip
        if min(windows) < 1 or max(windows) > DAY_MINUTES:
            raise ValueError("outage windows must lie in 1..1440 minutes")
        if min(self.no_answer_min_requests, self.drop_min_calls, self.restore_min_answers,
               self.silence_min_expected_calls) < 1:  # fmt: skip
            raise ValueError("outage call thresholds must be at least 1")
        if not 0 < self.drop_ratio <= 1:
            raise ValueError("the mass-drop ratio must lie in (0, 1]")
        if self.grace_ms < 0:
            raise ValueError("the outage grace must not be negative")
        if self.deadline_hours < 1 or any(
            not 0 < h < self.deadline_hours for h in self.escalation_hours
        ):
            raise ValueError("escalations must come before the restoration deadline")

    @property
    def lookback_minutes(self) -> int:
        return max(self.no_answer_minutes, self.drop_minutes, self.silence_minutes,
                   self.restore_minutes)  # fmt: skip


def parse_outage_rules(text: str | None) -> OutageRules:
    """``name=value,...`` over :class:`OutageRules` (e.g. ``no_answer_min_requests=20,
    drop_ratio=0.6,escalation_hours=12/24/48``); unknown names and bad values are errors."""
    if text is None or not text.strip():
        return OutageRules()
    known = {f.name: f for f in fields(OutageRules)}
    values: dict[str, Any] = {}
    for item in text.split(","):
        name, sep, raw = (part.strip() for part in item.partition("="))
        if not sep or name not in known:
            raise ValueError(
                f"outage rule {item.strip()!r}: expected name=value with a name among "
                f"{', '.join(known)}"
            )
        try:
            if name == "escalation_hours":
                values[name] = tuple(int(h) for h in raw.split("/"))
            elif name == "drop_ratio":
                values[name] = float(raw)
            else:
                values[name] = int(raw)
        except ValueError:
            raise ValueError(f"outage rule {name}: invalid value {raw!r}") from None
    return OutageRules(**values)


@dataclass(slots=True)
class Outage:
    """One outage of one (contract, line)."""

    contract_id: str
    line: str
    start_ms: int
    cause: str
    causes: list[str]
    declared: bool  # a declared cause is active: only service_up closes it
    reason: str | None = None
    end_ms: int | None = None
    escalated: list[int] = field(default_factory=list)  # hours already escalated
    breached: bool = False

    def deadline_ms(self, rules: OutageRules) -> int:
        return self.start_ms + rules.deadline_hours * HOUR_MS

    def encode(self) -> list[Any]:
        return [self.start_ms, self.cause, self.causes, self.declared, self.reason, self.end_ms,
                self.escalated, self.breached]  # fmt: skip

    @classmethod
    def decode(cls, contract_id: str, line: str, value: list[Any]) -> Outage:
        start, cause, causes, declared, reason, end, escalated, breached = value
        return cls(contract_id, line, start, cause, list(causes), declared, reason, end,
                   list(escalated), breached)  # fmt: skip


class OutageRecord(NamedTuple):
    """One audit record (``callcenter.outages``)."""

    kind: str  # opened | escalated | breached | closed
    contract_id: str
    line: str
    start_ms: int
    at_ms: int  # when the opening, milestone or closing happened (event time)
    cause: str
    causes: tuple[str, ...]
    hours: int | None = None  # escalation level
    end_ms: int | None = None
    reason: str | None = None

    @property
    def record_id(self) -> str:
        suffix = f"{self.kind}-{self.hours}h" if self.hours is not None else self.kind
        return f"{self.contract_id}|{self.line}|{self.start_ms}|{suffix}"


@dataclass(slots=True)
class _Pending:
    ts_ms: int
    down: bool
    reason: str | None
    event_id: str


@dataclass(slots=True)
class SeriesOutages:
    """The outage state of one (contract, line)."""

    last_minute: int  # the last minute evaluated
    current: Outage | None = None
    last_end_ms: int | None = None
    history: dict[int, int] = field(default_factory=dict)  # hour -> calls received
    pending: list[_Pending] = field(default_factory=list)
    opened: dict[str, int] = field(default_factory=dict)  # cause -> outages opened
    durations: dict[str, list[int]] = field(default_factory=dict)  # cause -> bucket counts+sum


def _window(
    buckets: Mapping[int, list[int]], low: int, high: int, indexes: tuple[int, ...]
) -> tuple[list[int], int]:
    """Sums of the counts over minutes low..high, and the first minute where the first of
    them is non-zero (``low`` when there is none)."""
    out = [0] * len(indexes)
    first = -1
    for minute in range(low, high + 1):
        bucket = buckets.get(minute)
        if bucket is not None:
            if first < 0 and bucket[indexes[0]]:
                first = minute
            for position, index in enumerate(indexes):
                out[position] += bucket[index]
    return out, (first if first >= 0 else low)


_SKIP_AFTER_MINUTES = 120  # spans longer than this are evaluated with skips
_HISTORY_HOURS = 8 * 24  # arrivals per hour kept for silence: a week back, and some
_NEVER = 1 << 62


class _SeriesIndex:
    """Sorted minutes of one series' answers, requests, drops (by arrival) and activity."""

    __slots__ = ("activity", "answers", "arrivals", "drops", "keys", "requests")

    def __init__(self, buckets: Mapping[int, list[int]], low: int, high: int) -> None:
        # Comprehensions over (minute, counts) pairs: this runs over every bucket of a replay.
        items = sorted((k, b) for k, b in buckets.items() if low <= k <= high)
        self.keys = [k for k, _ in items]
        self.arrivals = [k for k, b in items if b[W_RECEIVED]]
        self.answers = [k for k, b in items if b[W_ANSWERED]]
        self.requests = [k for k, b in items if b[W_REQUESTED]]
        self.drops = [  # one entry per dropped call
            k for k, b in items if b[W_RECEIVED_DISCONNECTED]
            for _ in range(b[W_RECEIVED_DISCONNECTED])
        ]  # fmt: skip
        self.activity = [
            k for k, b in items
            if b[W_RECEIVED] or b[W_REQUESTED] or b[W_QUEUED] or b[W_ANSWERED] or b[W_DISCONNECTED]
        ]  # fmt: skip

    def any_between(self, low: int, high: int) -> bool:
        i = bisect_left(self.keys, low)
        return i < len(self.keys) and self.keys[i] <= high

    def next_key(self, minute: int) -> int:
        """The first minute >= ``minute`` with counts (``_NEVER`` if none)."""
        i = bisect_left(self.keys, minute)
        return self.keys[i] if i < len(self.keys) else _NEVER

    def next_candidate(
        self, m: int, na: int, dm: int, sm: int, drops_needed: int, silence_possible: bool
    ) -> int:
        """The first minute >= m where an inferred cause might hold."""
        # no_answers: no answer in the window and a request in it.
        i = bisect_right(self.answers, m)
        last_answer = self.answers[i - 1] if i else None
        if last_answer is not None and last_answer > m - na:
            best = last_answer + na
        else:
            j = bisect_right(self.requests, m)
            if j and self.requests[j - 1] > m - na:
                best = m
            else:
                best = self.requests[j] if j < len(self.requests) else _NEVER
        # mass_drops: enough drops inside one window.
        k = bisect_left(self.drops, m - dm + 1)
        if len(self.drops) - k >= drops_needed:
            best = min(best, max(m, self.drops[k + drops_needed - 1]))
        # silence: a window without activity, on a line with traffic history.
        if silence_possible:
            a = bisect_right(self.activity, m)
            last = self.activity[a - 1] if a else None
            best = min(best, m if last is None or last <= m - sm else last + sm)
        return best


_EMPTY: dict[int, list[int]] = {}


def _any_activity(buckets: Mapping[int, list[int]], low: int, high: int) -> bool:
    """Whether any minute low..high has call activity (newest first: it usually does)."""
    get = buckets.get
    for minute in range(high, low - 1, -1):
        bucket = get(minute)
        if bucket is not None and (
            bucket[W_RECEIVED]
            or bucket[W_REQUESTED]
            or bucket[W_QUEUED]
            or bucket[W_ANSWERED]
            or bucket[W_DISCONNECTED]
        ):
            return True
    return False


class OutageTracker:
    """Outage state of every (contract, line) of one engine (a partition, or a replay)."""

    def __init__(
        self,
        registry: ContractRegistry,
        rules: OutageRules | None = None,
        *,
        keep_closed: bool = False,
    ) -> None:
        self.registry = registry
        self.rules = rules if rules is not None else OutageRules()
        self.series: dict[SeriesKey, SeriesOutages] = {}
        self.records: list[OutageRecord] = []
        self.keep_closed = keep_closed
        self.closed: list[Outage] = []  # only with keep_closed (replays)
        # Contracts whose record must be rewritten. Evaluating a quiet minute is not enough:
        # a restore re-evaluates the minutes after a contract's record from the restored
        # buckets, with the same result as long as no bucket of an evaluated minute changed
        # since (the stream engine marks the contracts where one did). So a record is written
        # on a transition, a status event, a new series, and once per hour of evaluation.
        self.dirty: set[str] = set()
        self.through_minute: int | None = None
        self._schedules: dict[SeriesKey, tuple[ZoneInfo, Schedule]] = {}
        self._required_last: dict[SeriesKey, tuple[int, bool]] = {}  # series -> (slot, value)

    # -- input -----------------------------------------------------------------------------

    def on_status(self, event: CallEvent) -> None:
        """A ``service_down`` / ``service_up`` event, applied when its minute is evaluated."""
        series = (event.contract_id, event.line)
        state = self.track(series, event.ts_ms // MINUTE_MS)
        state.pending.append(_Pending(event.ts_ms, event.type == EventType.SERVICE_DOWN,
                                      event.reason, event.event_id))  # fmt: skip
        self.dirty.add(event.contract_id)

    def track(self, series: SeriesKey, first_minute: int) -> SeriesOutages:
        """The series' state; a new series is evaluated from ``first_minute``."""
        state = self.series.get(series)
        if state is None:
            state = self.series[series] = SeriesOutages(last_minute=first_minute - 1)
            self.dirty.add(series[0])
        return state

    def through_for(self, watermark_ms: int | None) -> int | None:
        """The last minute that may be evaluated at this watermark."""
        if watermark_ms is None:
            return None
        return (watermark_ms - self.rules.grace_ms) // MINUTE_MS - 1

    def advance(
        self,
        through_minute: int,
        buckets: Mapping[SeriesKey, Mapping[int, list[int]]],
    ) -> None:
        """Evaluate every series up to ``through_minute`` (inclusive)."""
        if self.through_minute is not None and through_minute <= self.through_minute:
            return
        self.through_minute = through_minute
        for series, series_buckets in buckets.items():
            if series not in self.series and series_buckets:
                self.track(series, min(series_buckets))
        for series, state in self.series.items():
            if state.last_minute >= through_minute:
                continue
            series_buckets = buckets.get(series, _EMPTY)
            minute = state.last_minute + 1
            emitted, pending, current = len(self.records), len(state.pending), state.current
            causes = 0 if current is None else len(current.causes)
            if through_minute - minute < _SKIP_AFTER_MINUTES:
                for m in range(minute, through_minute + 1):
                    self._evaluate(series, state, m, series_buckets)
            else:
                self._evaluate_span(series, state, minute, through_minute, series_buckets)
            if (
                len(self.records) != emitted
                or len(state.pending) != pending
                or state.current is not current
                or (current is not None and len(current.causes) != causes)
                or through_minute // 60 != state.last_minute // 60
            ):
                self.dirty.add(series[0])
            state.last_minute = through_minute

    def _evaluate_span(
        self,
        series: SeriesKey,
        state: SeriesOutages,
        minute: int,
        through: int,
        buckets: Mapping[int, list[int]],
    ) -> None:
        """Evaluate a long span (a replay, a restart, a jump in event time) visiting only the
        minutes where something can happen; the result is that of evaluating every minute.

        While no outage is open, a minute can only open one if it is in required hours and
        one of the causes is possible there: no answer in the last 30 minutes with a request
        in them, enough drops in the last 15, or no activity in the last 30 with traffic in
        the history. From the sorted minutes of answers, requests, drops and activity the next
        such minute is found by bisection, and the minutes before it are skipped. The traffic
        history is added for the whole span up front: a minute only reads hours at least a
        day old, complete by then. An open outage is evaluated minute by minute.
        """
        rules = self.rules
        index = _SeriesIndex(buckets, minute - rules.lookback_minutes, through)
        history = state.history
        for k in index.arrivals:
            if k >= minute:
                hour = k // 60
                history[hour] = history.get(hour, 0) + buckets[k][W_RECEIVED]
        drops_needed = max(1, math.ceil(rules.drop_ratio * rules.drop_min_calls))
        na, dm, sm = rules.no_answer_minutes, rules.drop_minutes, rules.silence_minutes
        lookback = rules.lookback_minutes
        week = 7 * DAY_MINUTES + 120
        # The history does not change during the span (it was added up front). Half an hour
        # overlaps at most two clock hours, so silence needs an hour with at least this many.
        busy = rules.silence_min_expected_calls * 60 / rules.silence_minutes
        latest_hour = max((h for h, c in state.history.items() if c >= busy), default=None)
        while minute <= through:
            quiet_possible = latest_hour is not None and latest_hour >= (minute - week) // 60
            # A status event is applied in the minute of its time: never skip past one.
            status_due = (
                min(p.ts_ms for p in state.pending) // MINUTE_MS if state.pending else _NEVER
            )
            if state.current is None:
                target = index.next_candidate(minute, na, dm, sm, drops_needed, quiet_possible)
                target = max(min(target, status_due), minute)
                if target == minute and not self._required(series, minute):
                    target = max(min(self._next_required(series, minute, through), status_due),
                                 minute)  # fmt: skip
                if target > minute:
                    minute = target
                    continue
            elif not quiet_possible and not index.any_between(minute - lookback, minute):
                # An open outage changes only with call counts in reach (restoration, joining
                # causes), a due status event, or traffic history (silence joining); its
                # milestones carry their own times and are emitted when evaluation resumes.
                target = max(min(index.next_key(minute), status_due), minute)
                if target > through:
                    self._milestones(series, state.current, (through + 1) * MINUTE_MS)
                    break
                if target > minute:
                    minute = target
                    continue
            self._evaluate(series, state, minute, buckets, count_history=False)
            minute += 1
        horizon = through // 60 - _HISTORY_HOURS
        for old in [h for h in state.history if h < horizon]:
            del state.history[old]

    def _next_required(self, series: SeriesKey, minute: int, through: int) -> int:
        """The first minute after ``minute`` in required hours (``through + 1`` if none)."""
        slot_minutes = 15
        m = (minute // slot_minutes + 1) * slot_minutes  # hours change on 15-minute slots
        while m <= through:
            if self._required(series, m):
                return m
            m += slot_minutes
        return through + 1

    # -- one minute ------------------------------------------------------------------------

    def _evaluate(
        self,
        series: SeriesKey,
        state: SeriesOutages,
        minute: int,
        buckets: Mapping[int, list[int]],
        count_history: bool = True,
    ) -> None:
        rules = self.rules
        end_ms = (minute + 1) * MINUTE_MS
        if state.pending:
            due = sorted((p for p in state.pending if p.ts_ms < end_ms),
                         key=lambda p: (p.ts_ms, p.down, p.event_id))  # fmt: skip
            if due:
                state.pending = [p for p in state.pending if p.ts_ms >= end_ms]
                for status in due:
                    self._apply_status(series, state, status)
        bucket = buckets.get(minute)
        if count_history and bucket is not None and bucket[W_RECEIVED]:
            hour = minute * MINUTE_MS // HOUR_MS
            state.history[hour] = state.history.get(hour, 0) + bucket[W_RECEIVED]
            if len(state.history) > _HISTORY_HOURS + 2:
                horizon = hour - _HISTORY_HOURS
                for old in [h for h in state.history if h < horizon]:
                    del state.history[old]
        current = state.current
        if current is None and not self._required(series, minute):
            return
        if current is None and bucket is None:
            # Nothing happened this minute. With no call counts in reach either, only silence
            # could be due: the counting conditions need calls.
            get = buckets.get
            for m in range(minute - 1, minute - rules.lookback_minutes - 1, -1):
                if get(m) is not None:
                    break
            else:
                if not self._silence_possible(state, minute):
                    return
        if current is None and bucket is not None and bucket[W_ANSWERED]:
            # An answer this minute: neither "no answers" nor silence can hold, only drops.
            drops = self._mass_drops(minute, buckets)
            found = [] if drops is None else [drops]
        else:
            found = self._conditions(series, state, minute, buckets)
        if current is not None:
            self._milestones(series, current, end_ms)
            for cause, _start in found:
                if cause not in current.causes:
                    current.causes.append(cause)
            if not current.declared:
                low = minute - rules.restore_minutes + 1
                (good,), _ = _window(buckets, low, minute, (W_ANSWERED_IN_HOLD_LIMIT,))
                if good >= rules.restore_min_answers:
                    self._close(series, state, end_ms)
            return
        if found:
            first = min(first for _cause, first in found)
            cause = next(cause for cause, f in found if f == first)
            start = self._hours_span_start(series, first, minute) * MINUTE_MS
            if state.last_end_ms is not None:
                start = max(start, state.last_end_ms)
            self._open(series, state, Outage(series[0], series[1], start, cause,
                                             [c for c, _ in found], declared=False))  # fmt: skip
            self._milestones(series, state.current, end_ms)  # type: ignore[arg-type]

    def _silence_possible(self, state: SeriesOutages, minute: int) -> bool:
        return bool(state.history) and self._had_traffic(state, minute)

    def _had_traffic(self, state: SeriesOutages, minute: int) -> bool:
        """Enough calls expected in the silence window ending at ``minute``, from the same
        window a day or a week before (hour counts prorated by their overlap)."""
        span = self.rules.silence_minutes
        for back in (DAY_MINUTES, 7 * DAY_MINUTES):
            low = minute - span + 1 - back  # first minute of the shifted window
            high = minute - back + 1  # one past its last minute
            expected = 0.0
            hour = low // 60
            while hour * 60 < high:
                count = state.history.get(hour)
                if count:
                    overlap = min(high, hour * 60 + 60) - max(low, hour * 60)
                    expected += count * overlap / 60
                hour += 1
            if expected >= self.rules.silence_min_expected_calls:
                return True
        return False

    def _conditions(
        self, series: SeriesKey, state: SeriesOutages, minute: int, buckets: Mapping[int, list[int]]
    ) -> list[tuple[str, int]]:
        """Inferred causes that hold at the end of ``minute``, with the minute their
        qualifying period starts: the first minute holding one of the qualifying calls."""
        found: list[tuple[str, int]] = []
        for cause in (
            self._no_answers(minute, buckets),
            self._mass_drops(minute, buckets),
            self._silence(series, state, minute, buckets),
        ):
            if cause is not None:
                found.append(cause)
        return found

    def _no_answers(self, minute: int, buckets: Mapping[int, list[int]]) -> tuple[str, int] | None:
        """Enough requests for a person and no answer in the window. Newest minute first: on
        a working line an answer comes at once."""
        rules = self.rules
        get = buckets.get
        requested, first = 0, minute
        for m in range(minute, minute - rules.no_answer_minutes, -1):
            bucket = get(m)
            if bucket is not None:
                if bucket[W_ANSWERED]:
                    return None
                if bucket[W_REQUESTED]:
                    requested += bucket[W_REQUESTED]
                    first = m
        return (NO_ANSWERS, first) if requested >= rules.no_answer_min_requests else None

    def _mass_drops(self, minute: int, buckets: Mapping[int, list[int]]) -> tuple[str, int] | None:
        """Enough calls in the window and enough of them disconnected (by arrival)."""
        rules = self.rules
        get = buckets.get
        received = dropped = 0
        first = minute
        for m in range(minute, minute - rules.drop_minutes, -1):
            bucket = get(m)
            if bucket is not None and bucket[W_RECEIVED]:
                received += bucket[W_RECEIVED]
                dropped += bucket[W_RECEIVED_DISCONNECTED]
                first = m
        if received >= rules.drop_min_calls and dropped >= rules.drop_ratio * received:
            return MASS_DROPS, first
        return None

    def _silence(
        self, series: SeriesKey, state: SeriesOutages, minute: int, buckets: Mapping[int, list[int]]
    ) -> tuple[str, int] | None:
        """No activity in the window, on a line with traffic history. Newest minute first: on
        a working line there was activity a moment ago."""
        low = minute - self.rules.silence_minutes + 1
        if (
            not _any_activity(buckets, low, minute)
            and self._had_traffic(state, minute)
            # The whole silent period lies in required hours: a line that opens at 8:00 is
            # not silent at 8:00 for having been closed at 7:45.
            and all(self._required(series, m) for m in range(low, minute + 1))
        ):
            return SILENCE, low
        return None

    def _required(self, series: SeriesKey, minute: int) -> bool:
        # Hours are decided per 15-minute slot and minutes are evaluated in order: remember
        # each series' last slot.
        slot = minute // 15
        last = self._required_last.get(series)
        if last is not None and last[0] == slot:
            return last[1]
        found = self._schedules.get(series)
        if found is None:
            contract_id, line = series
            found = self._schedules[series] = (
                self.registry.zone(contract_id),
                self.registry.hours.schedule(contract_id, line),
            )
        required = self.registry.hours.is_required(found[0], found[1], minute * MINUTE_MS)
        self._required_last[series] = (slot, required)
        return required

    def _hours_span_start(self, series: SeriesKey, first: int, minute: int) -> int:
        """The earliest minute >= ``first`` from which every minute to ``minute`` is in
        required hours: an inferred outage does not start while the line may be closed."""
        for m in range(minute, first - 1, -1):
            if not self._required(series, m):
                return m + 1
        return first

    def _apply_status(self, series: SeriesKey, state: SeriesOutages, status: _Pending) -> None:
        current = state.current
        if status.down:
            if current is None:
                start = status.ts_ms
                if state.last_end_ms is not None:
                    start = max(start, state.last_end_ms)
                self._open(series, state, Outage(series[0], series[1], start, DECLARED,
                                                 [DECLARED], True, status.reason))  # fmt: skip
            else:
                current.declared = True
                if DECLARED not in current.causes:
                    current.causes.append(DECLARED)
                if current.reason is None:
                    current.reason = status.reason
        elif current is not None:
            self._close(series, state, max(status.ts_ms, current.start_ms))

    # -- transitions -----------------------------------------------------------------------

    def _emit(self, kind: str, outage: Outage, at_ms: int, hours: int | None = None) -> None:
        self.records.append(OutageRecord(kind, outage.contract_id, outage.line, outage.start_ms,
                                         at_ms, outage.cause, tuple(outage.causes), hours,
                                         outage.end_ms, outage.reason))  # fmt: skip

    def _open(self, series: SeriesKey, state: SeriesOutages, outage: Outage) -> None:
        state.current = outage
        state.opened[outage.cause] = state.opened.get(outage.cause, 0) + 1
        self._emit(OPENED, outage, outage.start_ms)

    def _milestones(self, series: SeriesKey, outage: Outage, until_ms: int) -> None:
        """Escalations and the breach whose time has come (strictly before ``until_ms``)."""
        for hours in self.rules.escalation_hours:
            at = outage.start_ms + hours * HOUR_MS
            if at < until_ms and hours not in outage.escalated:
                outage.escalated.append(hours)
                self._emit(ESCALATED, outage, at, hours)
        deadline = outage.deadline_ms(self.rules)
        if deadline < until_ms and not outage.breached:
            outage.breached = True
            self._emit(BREACHED, outage, deadline, self.rules.deadline_hours)

    def _close(self, series: SeriesKey, state: SeriesOutages, end_ms: int) -> None:
        outage = state.current
        assert outage is not None
        self._milestones(series, outage, end_ms)  # restored within 72 h: no breach
        outage.end_ms = end_ms
        state.current = None
        state.last_end_ms = end_ms
        durations = state.durations.get(outage.cause)
        if durations is None:
            durations = state.durations[outage.cause] = [0] * (len(DURATION_BUCKETS_S) + 2)
        seconds = (end_ms - outage.start_ms) / 1000.0
        slot = next((i for i, bound in enumerate(DURATION_BUCKETS_S) if seconds <= bound),
                    len(DURATION_BUCKETS_S))  # fmt: skip
        durations[slot] += 1
        durations[-1] += end_ms - outage.start_ms  # sum, in ms
        self._emit(CLOSED, outage, end_ms)
        if self.keep_closed:
            self.closed.append(outage)

    # -- output ----------------------------------------------------------------------------

    def drain_records(self) -> list[OutageRecord]:
        records, self.records = self.records, []
        return records

    def open_outages(self) -> list[Outage]:
        return [s.current for s in self.series.values() if s.current is not None]

    def all_outages(self) -> list[Outage]:
        """Closed (with keep_closed) and open outages, by contract, line and start."""
        found = self.closed + self.open_outages()
        return sorted(found, key=lambda o: (o.contract_id, o.line, o.start_ms))

    # -- persistence -----------------------------------------------------------------------

    def contract_record(self, contract_id: str) -> list[list[Any]]:
        out: list[list[Any]] = []
        for (contract, line), s in sorted(self.series.items()):
            if contract != contract_id:
                continue
            out.append([
                line, s.last_minute, None if s.current is None else s.current.encode(),
                s.last_end_ms, sorted(s.history.items()),
                [[p.ts_ms, p.down, p.reason, p.event_id] for p in s.pending],
                s.opened, s.durations,
            ])  # fmt: skip
        return out

    def load_contract(self, contract_id: str, value: Iterable[list[Any]]) -> None:
        for line, last, current, last_end, history, pending, opened, durations in value:
            self.series[(contract_id, line)] = SeriesOutages(
                last_minute=last,
                current=None if current is None else Outage.decode(contract_id, line, current),
                last_end_ms=last_end,
                history={hour: count for hour, count in history},
                pending=[_Pending(ts, down, reason, eid) for ts, down, reason, eid in pending],
                opened=dict(opened),
                durations={cause: list(counts) for cause, counts in durations.items()},
            )

    def drain_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty


def replay_outages(engine: ComplianceEngine, rules: OutageRules | None = None) -> OutageTracker:
    """The outages of a replay: what a stream fed the same events in time order finds."""
    tracker = OutageTracker(engine.registry, rules, keep_closed=True)
    buckets = engine.minute_buckets()
    # Each series is evaluated from its first minute with calls or status, as in a stream.
    firsts = {series: min(minutes) for series, minutes in buckets.items() if minutes}
    for event in engine.status_log:
        series = (event.contract_id, event.line)
        minute = event.ts_ms // MINUTE_MS
        firsts[series] = min(firsts.get(series, minute), minute)
    for series, first in firsts.items():
        tracker.track(series, first)
    for event in sorted(engine.status_log, key=lambda e: (e.ts_ms, e.event_id)):
        tracker.on_status(event)
    through = tracker.through_for(engine.latest_ms if engine.latest_ms >= 0 else None)
    if through is not None:
        tracker.advance(through, buckets)
    return tracker


def required_minutes_open(
    registry: ContractRegistry,
    outage: Outage,
    until_ms: int,
) -> dict[str, int]:
    """Minutes in required hours during which the outage was open, per local date (a minute
    counts when it starts inside the outage). Computed per local day, not per minute."""
    end = outage.end_ms if outage.end_ms is not None else until_ms
    start = outage.start_ms
    out: dict[str, int] = {}
    if end <= start:
        return out
    zone = registry.zone(outage.contract_id)
    schedule = registry.hours.schedule(outage.contract_id, outage.line)
    day = datetime.fromtimestamp(start / 1000, tz=UTC).astimezone(zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end / 1000, tz=UTC).astimezone(zone).date()
    while day <= last:
        for low, high in required_intervals(zone, schedule, day):
            a, b = max(low, start), min(high, end)
            if a < b:
                count = -(-b // MINUTE_MS) - -(-a // MINUTE_MS)
                if count > 0:
                    key = day.isoformat()
                    out[key] = out.get(key, 0) + count
        day += timedelta(days=1)
    return out


def required_intervals(zone: ZoneInfo, schedule: Schedule, day: date) -> list[tuple[int, int]]:
    """The required hours of a local date as UTC epoch-ms intervals [start, end)."""
    if schedule.kind == "cms" and not cms_open_day(day):
        return []
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)

    def at(minute: int) -> int:
        local = midnight + timedelta(minutes=minute)  # wall-clock arithmetic in the zone
        return int(local.timestamp() * 1000)

    return [(at(schedule.open_minute), at(schedule.close_minute))]
