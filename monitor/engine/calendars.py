"""Local calendar dates of event times, in a contract's time zone.

CMS counts a call on the local date of its arrival. ``zoneinfo`` conversion costs microseconds,
so dates are cached per 15-minute slot of UTC: since 2000 every zone's UTC offset is a whole
multiple of 15 minutes, so local midnight always falls on a slot boundary and every instant of a
slot has the same local date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_SLOT_MS = 15 * 60 * 1000
_CACHE_LIMIT = 200_000


class LocalDates:
    """Maps (zone, epoch ms) to the ISO local date, with a bounded cache."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], str] = {}

    def date_of(self, zone: ZoneInfo, ts_ms: int) -> str:
        key = (zone.key, ts_ms // _SLOT_MS)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        slot_start = key[1] * _SLOT_MS
        local = datetime.fromtimestamp(slot_start / 1000, tz=UTC).astimezone(zone)
        value = local.date().isoformat()
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = value
        return value
