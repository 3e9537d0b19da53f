"""Required operating hours: when a contract's line must answer calls (42 CFR 422.111(h)(1)).

CMS requires a call center to be open at least 8:00 a.m.-8:00 p.m. local time:

* Oct 1 - Mar 31: every day, except Thanksgiving Day and Christmas Day;
* Apr 1 - Sep 30: Monday to Friday, except Federal holidays.

Federal holidays (5 U.S.C. 6103) are computed for any year, with the observed-day rule: a
holiday on a Saturday is observed the Friday before, one on a Sunday the Monday after. Both the
holiday and its observed day are closed days. Juneteenth counts from 2021, when it became one.

A line can follow another schedule (``pharmacy_help_desk`` open around the clock, say): an
operating-hours CSV with the header ``contract_id,line,hours`` where ``contract_id`` may be
``*`` (every contract) and ``hours`` is ``cms`` (the rule above), ``24x7``, or ``HH:MM-HH:MM``
(that window every day of the year, holidays included). A contract's own row wins over ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.engine.csvtable import read_table_text, table_rows
from monitor.engine.validation import CONTRACT_ID_PATTERN

CMS_OPEN_MINUTE = 8 * 60
CMS_CLOSE_MINUTE = 20 * 60
_SLOT_MS = 15 * 60 * 1000  # every UTC offset since 2000 is a multiple of 15 minutes
_CACHE_LIMIT = 200_000
_WINDOW = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
HOURS_COLUMNS = ("contract_id", "line", "hours")


class HoursError(ValueError):
    """The operating-hours file cannot be used; the message names the file, line and problem."""


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Monday=0) of a month; n=-1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=256)
def federal_holidays(year: int) -> dict[date, str]:
    """The year's Federal holidays (5 U.S.C. 6103), with their observed days, by date."""
    fixed = [(1, 1, "New Year's Day"), (7, 4, "Independence Day"), (11, 11, "Veterans Day"),
             (12, 25, "Christmas Day")]  # fmt: skip
    if year >= 2021:
        fixed.append((6, 19, "Juneteenth National Independence Day"))
    out: dict[date, str] = {}
    for month, day, name in fixed:
        actual = date(year, month, day)
        out[actual] = name
        out.setdefault(_observed(actual), f"{name} (observed)")
    # New Year's Day of the next year falling on a Saturday is observed on Dec 31.
    if date(year + 1, 1, 1).weekday() == 5:
        out[date(year, 12, 31)] = "New Year's Day (observed)"
    out[_nth_weekday(year, 1, 0, 3)] = "Birthday of Martin Luther King, Jr."
    out[_nth_weekday(year, 2, 0, 3)] = "Washington's Birthday"
    out[_nth_weekday(year, 5, 0, -1)] = "Memorial Day"
    out[_nth_weekday(year, 9, 0, 1)] = "Labor Day"
    out[_nth_weekday(year, 10, 0, 2)] = "Columbus Day"
    out[_nth_weekday(year, 11, 3, 4)] = "Thanksgiving Day"
    return out


def thanksgiving(year: int) -> date:
    return _nth_weekday(year, 11, 3, 4)


def cms_open_day(day: date) -> bool:
    """Whether CMS requires the call center to be open on this local date."""
    if day.month >= 10 or day.month <= 3:
        return day != thanksgiving(day.year) and not (day.month == 12 and day.day == 25)
    return day.weekday() < 5 and day not in federal_holidays(day.year)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A line's required hours: ``cms``, ``24x7`` or a daily local window [open, close)."""

    kind: str  # "cms" | "24x7" | "daily"
    open_minute: int = CMS_OPEN_MINUTE
    close_minute: int = CMS_CLOSE_MINUTE

    @classmethod
    def parse(cls, text: str) -> Schedule:
        value = text.strip().lower()
        if value == "cms":
            return CMS_SCHEDULE
        if value in ("24x7", "24/7"):
            return cls("24x7", 0, 24 * 60)
        match = _WINDOW.match(value)
        if match is None:
            raise ValueError(f"hours {text!r}: expected cms, 24x7 or HH:MM-HH:MM")
        open_minute = int(match[1]) * 60 + int(match[2])
        close_minute = int(match[3]) * 60 + int(match[4])
        if not 0 <= open_minute < close_minute <= 24 * 60:
            raise ValueError(f"hours {text!r}: the window must open before it closes, by 24:00")
        return cls("daily", open_minute, close_minute)

    def is_open(self, local: datetime) -> bool:
        if self.kind == "24x7":
            return True
        minute = local.hour * 60 + local.minute
        if not self.open_minute <= minute < self.close_minute:
            return False
        return self.kind == "daily" or cms_open_day(local.date())

    def __str__(self) -> str:
        if self.kind in ("cms", "24x7"):
            return self.kind
        o, c = self.open_minute, self.close_minute
        return f"{o // 60:02d}:{o % 60:02d}-{c // 60:02d}:{c % 60:02d}"


CMS_SCHEDULE = Schedule("cms")


class OperatingHours:
    """Schedules per (contract, line); everything else follows the CMS rule."""

    def __init__(self, overrides: dict[tuple[str, str], Schedule] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self._cache: dict[tuple[str, Schedule, int], bool] = {}

    def schedule(self, contract_id: str, line: str) -> Schedule:
        found = self.overrides.get((contract_id, line))
        if found is None:
            found = self.overrides.get(("*", line), CMS_SCHEDULE)
        return found

    def is_required(self, zone: ZoneInfo, schedule: Schedule, ts_ms: int) -> bool:
        """Whether the instant falls in required hours (decided per 15-minute slot)."""
        if schedule.kind == "24x7":
            return True
        key = (zone.key, schedule, ts_ms // _SLOT_MS)
        cached = self._cache.get(key)
        if cached is None:
            local = datetime.fromtimestamp(key[2] * _SLOT_MS / 1000, tz=UTC).astimezone(zone)
            cached = schedule.is_open(local)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    @classmethod
    def from_csv(cls, path: str | Path) -> OperatingHours:
        path = Path(path)
        text = read_table_text(path, "operating-hours file", HoursError)
        return cls(parse_hours_rows(text.splitlines(), str(path)))


def parse_hours_rows(lines: Iterable[str], source: str) -> dict[tuple[str, str], Schedule]:
    out: dict[tuple[str, str], Schedule] = {}
    seen: dict[tuple[str, str], int] = {}
    for line_no, row in table_rows(lines, source, HOURS_COLUMNS, HoursError):
        contract_id, line = row["contract_id"], row["line"]
        if contract_id != "*" and CONTRACT_ID_PATTERN.fullmatch(contract_id) is None:
            raise HoursError(
                f"{source}:{line_no}: contract_id {contract_id!r} is neither * nor a contract id"
            )
        if not line:
            raise HoursError(f"{source}:{line_no}: line is empty")
        try:
            schedule = Schedule.parse(row["hours"])
        except ValueError as exc:
            raise HoursError(f"{source}:{line_no}: {exc}") from None
        key = (contract_id, line)
        if key in seen:
            raise HoursError(
                f"{source}:{line_no}: {contract_id},{line} already listed on line {seen[key]}"
            )
        seen[key] = line_no
        out[key] = schedule
    return out
