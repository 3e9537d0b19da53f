"""Event-time parsing: RFC 3339 strings and Unix epoch numbers to integer milliseconds.

The engine keeps every time as an ``int`` of milliseconds since the Unix epoch (UTC). Parsing is on
the hot path of every replay and every worker, so the common RFC 3339 shape is parsed by slicing
with a per-date cache instead of ``datetime``; anything unusual falls back to one strict regex.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal, localcontext

MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z, inclusive
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z, exclusive

_MS_PER_DAY = 86_400_000
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# RFC 3339 section 5.6 (``date-time``): the separator "T" may be lower case or, as the RFC's
# note allows, a space; the offset is "Z"/"z" or ±hh:mm. A missing offset is not RFC 3339.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)

# Date prefix "YYYY-MM-DD" -> epoch ms of its UTC midnight. Feeds carry few distinct dates, so
# this bounded cache turns date validation into one dict lookup.
_day_cache: dict[str, int] = {}
_DAY_CACHE_LIMIT = 20_000


class TimestampError(ValueError):
    """The value is not an acceptable event time; the message says why."""


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = month + 9 if month <= 2 else month - 3
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _day_ms(date_text: str) -> int:
    cached = _day_cache.get(date_text)
    if cached is not None:
        return cached
    year, month, day = int(date_text[0:4]), int(date_text[5:7]), int(date_text[8:10])
    if not 1 <= month <= 12:
        raise TimestampError(f"month {month:02d} out of range")
    last = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= last:
        raise TimestampError(f"day {day:02d} out of range for {year:04d}-{month:02d}")
    value = days_from_civil(year, month, day) * _MS_PER_DAY
    if len(_day_cache) >= _DAY_CACHE_LIMIT:
        _day_cache.clear()
    _day_cache[date_text] = value
    return value


# "YYYY-MM-DDTHH:MM" prefix -> epoch ms of that UTC minute, filled by validated slow parses.
_minute_cache: dict[str, int] = {}


def parse_rfc3339_ms(text: str) -> int:
    """Parse an RFC 3339 date-time with an offset to epoch ms, rounding half up.

    Fractions beyond milliseconds are rounded to the nearest millisecond (ties up, on the exact
    decimal text). A leap second (``:60``) is accepted and lands on the next minute's ``:00``.
    """
    # Fast path for what producers overwhelmingly send: "2026-01-05T10:15:30.123Z". Digits are
    # checked with isdigit()+isascii() because int() also takes spaces, "_" and other scripts.
    if len(text) == 24 and text[23] == "Z" and text[19] == "." and text[16] == ":":
        base = _minute_cache.get(text[:16])
        if base is not None:
            sec_millis = text[17:19] + text[20:23]  # "SSmmm" reads as seconds*1000 + ms
            if sec_millis.isdigit() and sec_millis.isascii() and sec_millis < "6":
                return base + int(sec_millis)
    match = _RFC3339.fullmatch(text)
    if match is None:
        if len(text) >= 19 and _RFC3339.fullmatch(text + "Z") is not None:
            raise TimestampError("timestamp has no UTC offset (add Z or ±hh:mm)")
        raise TimestampError("not an RFC 3339 date-time")
    hour, minute, second = int(match[4]), int(match[5]), int(match[6])
    if hour > 23 or minute > 59 or second > 60:
        raise TimestampError("time of day out of range")
    minute_ms = _day_ms(text[0:10]) + hour * 3_600_000 + minute * 60_000
    if text[10] == "T":
        if len(_minute_cache) >= _DAY_CACHE_LIMIT:
            _minute_cache.clear()
        _minute_cache[text[:16]] = minute_ms
    value = minute_ms + second * 1000
    fraction = match[7]
    if fraction:
        value += int(fraction[:3].ljust(3, "0"))
        if len(fraction) > 3 and fraction[3] >= "5":
            value += 1
    if match[8] is None:
        off_hour, off_minute = int(match[10]), int(match[11])
        if off_hour > 23 or off_minute > 59:
            raise TimestampError("UTC offset out of range")
        offset = off_hour * 3_600_000 + off_minute * 60_000
        value = value - offset if match[9] == "+" else value + offset
    return value


# Beyond this many seconds (about year 33 658) a number cannot be a valid time; checking first
# keeps 1e308 from overflowing the arithmetic below.
_EPOCH_SECONDS_LIMIT = 1e12


def is_near_half_ms(seconds: float) -> bool:
    """Whether a double lies so close to a half millisecond that its written digits decide."""
    scaled = seconds * 1000.0
    return math.isfinite(scaled) and abs(abs(scaled - int(scaled)) - 0.5) < 1e-3


def epoch_seconds_to_ms(seconds: int | float | Decimal) -> int:
    """Unix epoch seconds (JSON number) to ms, ties rounded half up on the number as written.

    Pass a ``Decimal`` when the exact written digits are at hand; a float near a tie is read
    from its shortest repr, which is the written number whenever a double can hold it.
    """
    if isinstance(seconds, int):
        return seconds * 1000
    if isinstance(seconds, Decimal):
        if not seconds.is_finite() or abs(seconds) > _EPOCH_SECONDS_LIMIT:
            raise TimestampError("epoch seconds out of range")
        # The default context keeps 28 digits, which would round a long written number
        # before the half-up rounding; the limit above bounds the integer part.
        with localcontext(prec=len(seconds.as_tuple().digits) + 20):
            return int(seconds.scaleb(3).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if not math.isfinite(seconds):
        raise TimestampError("epoch seconds must be finite")
    if abs(seconds) > _EPOCH_SECONDS_LIMIT:
        raise TimestampError("epoch seconds out of range")
    # Binary floats cannot hold most decimal fractions exactly: only near a tie does it matter
    # which way the written number lies, so only then pay for an exact decimal.
    if is_near_half_ms(seconds):
        return epoch_seconds_to_ms(Decimal(repr(seconds)))
    return round(seconds * 1000.0)


def check_range(ts_ms: int) -> int:
    """Reject times outside [2000-01-01, 2100-01-01) UTC, the contract's accepted span."""
    if not MIN_TS_MS <= ts_ms < MAX_TS_MS:
        raise TimestampError("timestamp outside [2000-01-01, 2100-01-01) UTC")
    return ts_ms


def format_ms(ts_ms: int) -> str:
    """Epoch ms as an RFC 3339 UTC string with milliseconds (for logs and reports)."""
    days, rest = divmod(ts_ms, _MS_PER_DAY)
    year, month, day = civil_from_days(days)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{year:04d}-{month:02d}-{day:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def civil_from_days(days: int) -> tuple[int, int, int]:
    """Inverse of :func:`days_from_civil`."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day
