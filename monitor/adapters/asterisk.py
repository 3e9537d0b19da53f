"""Asterisk ``queue_log`` -> canonical events (docs/adapters.md has the reasoning per event).

A queue_log line is ``epoch|uniqueid|queue|agent|EVENT|data1|data2|...`` (docs.asterisk.org,
"Queue Logs"); PBX products that keep it in a database export the same fields as CSV
(``time``/``date_time``, ``callid``, ``queuename``/``queue_name``, ``agent``, ``event``,
``data1..5``/``param1..3`` or ``data``). Both become :class:`QueueLogLine` and go through one
converter, so the same call logged either way gives the same events.

* The call's first line (``DID`` or ``ENTERQUEUE``) gives ``call_received``; ``ENTERQUEUE``
  ``queued``; ``CONNECT`` ``answered``; ``ABANDON`` ``abandoned``; the other ends are
  ``ended`` or ``disconnected`` by a configurable table (:data:`DEFAULT_ACTIONS`).
* Agent and queue-admin events are ignored and counted; unknown events and damaged lines are
  counted and reported, never fatal.
* Event ids are derived from the line's content (the call's first line for ``call_received``):
  re-reading a file, an overlapping rotated file or the CSV export of the same data never
  counts a call twice.
* The caller's number (ENTERQUEUE's data2) is never copied anywhere.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.adapters.queue_map import Target
from monitor.engine.registry import load_zone
from monitor.logs import get_logger

log = get_logger("monitor.adapters.asterisk")

# Queue outcomes and ends, by queue_log event; each is configurable (``--map EVENT=type``).
DEFAULT_ACTIONS: dict[str, str] = {
    "ENTERQUEUE": "queued",
    "CONNECT": "answered",
    "ABANDON": "abandoned",  # the caller hung up while waiting
    "EXITWITHTIMEOUT": "ended",  # the queue's timeout sent the caller on in the dialplan
    "EXITWITHKEY": "ended",  # the caller chose to leave the queue (a menu key)
    "EXITEMPTY": "disconnected",  # no agent at all: the system threw the caller out
    "COMPLETECALLER": "ended",  # conversation over, caller hung up
    "COMPLETEAGENT": "ended",  # conversation over, agent hung up
    "BLINDTRANSFER": "ended",  # handed on to another extension: not dropped
    "ATTENDEDTRANSFER": "ended",
    "TRANSFER": "ended",
}
ALLOWED_TYPES = ("queued", "answered", "abandoned", "ended", "disconnected", "ignore")
# Agent and queue-administration events: not about a caller.
IGNORED_EVENTS = frozenset({
    "ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL", "PENALTY",
    "CONFIGRELOAD", "QUEUESTART", "RINGNOANSWER", "RINGCANCELED", "AGENTLOGIN", "AGENTLOGOFF",
    "AGENTCALLBACKLOGIN", "AGENTCALLBACKLOGOFF", "AGENTDUMP", "SYSCOMPAT", "INFO", "DID_INFO",
})  # fmt: skip
CALL_START_EVENTS = frozenset({"DID", "ENTERQUEUE"})
_ID_PREFIX = "ast-"


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    epoch: int
    uniqueid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]


@dataclass
class IngestStats:
    """What an ingest did with its input: everything is counted, nothing is silent."""

    lines: int = 0
    events: Counter[str] = field(default_factory=Counter)  # canonical events by type
    ignored: Counter[str] = field(default_factory=Counter)  # queue_log events ignored
    bad: Counter[str] = field(default_factory=Counter)  # damaged lines by reason
    unknown_events: Counter[str] = field(default_factory=Counter)
    unmapped_queues: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "events": dict(sorted(self.events.items())),
            "ignored": dict(sorted(self.ignored.items())),
            "bad_lines": dict(sorted(self.bad.items())),
            "unknown_events": dict(sorted(self.unknown_events.items())),
            "unmapped_queues": dict(sorted(self.unmapped_queues.items())),
        }


def parse_actions(items: Iterable[str]) -> dict[str, str]:
    """``EVENT=type`` overrides of :data:`DEFAULT_ACTIONS`."""
    actions = dict(DEFAULT_ACTIONS)
    for item in items:
        event, sep, kind = item.partition("=")
        event, kind = event.strip().upper(), kind.strip().lower()
        if not sep or not event or kind not in ALLOWED_TYPES:
            raise ValueError(
                f"--map {item!r}: expected EVENT=type with type among {', '.join(ALLOWED_TYPES)}"
            )
        actions[event] = kind
    return actions


def parse_pipe_line(raw: bytes) -> QueueLogLine | str:
    """A raw queue_log line, or the reason it is damaged."""
    if b"\x00" in raw:
        return "nul_bytes"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    fields = text.rstrip("\r\n").split("|")
    if len(fields) < 5:
        return "too_few_fields"
    return _make_line(fields[0], fields[1], fields[2], fields[3], fields[4], fields[5:], None)


def _make_line(
    when: str,
    uniqueid: str,
    queue: str,
    agent: str,
    event: str,
    data: Iterable[str],
    zone: ZoneInfo | None,
) -> QueueLogLine | str:
    when = when.strip()
    try:
        epoch = int(when) if when.isdigit() else _datetime_epoch(when, zone)
    except ValueError:
        return "bad_time"
    if not event.strip():
        return "no_event"
    values = [d.strip() for d in data]
    while values and not values[-1]:  # a CSV export pads data columns: same line, same id
        values.pop()
    return QueueLogLine(epoch, uniqueid.strip(), queue.strip(), agent.strip(),
                        event.strip().upper(), tuple(values))  # fmt: skip


def _datetime_epoch(text: str, zone: ZoneInfo | None) -> int:
    """``2026-01-05 08:00:00[.ffffff]``: naive times are in ``zone`` (the PBX's clock)."""
    moment = datetime.fromisoformat(text.replace("T", " ").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        if zone is None:
            raise ValueError("naive time")
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp())


CSV_ALIASES = {
    "time": ("time", "date_time", "datetime", "timestamp"),
    "callid": ("callid", "call_id", "uniqueid"),
    "queue": ("queuename", "queue_name", "queue"),
    "agent": ("agent",),
    "event": ("event", "verb"),
}


def looks_like_csv_header(first_line: bytes) -> bool:
    text = first_line.decode("utf-8", "replace").strip().lower()
    names = {name.strip().strip('"') for name in text.split(",")}
    return "event" in names and bool(names & {"callid", "call_id", "uniqueid"})


def iter_csv_lines(
    lines: Iterable[bytes], zone: ZoneInfo | None, stats: IngestStats
) -> Iterator[QueueLogLine | str]:
    """Rows of a queue_log table exported as CSV, header detected."""
    iterator = iter(lines)
    header_raw = next(iterator, b"")
    header = [h.strip().lower() for h in next(csv.reader([header_raw.decode("utf-8-sig")]))]
    position: dict[str, int] = {}
    for key, names in CSV_ALIASES.items():
        for name in names:
            if name in header:
                position[key] = header.index(name)
                break
    if {"time", "callid", "queue", "event"} - set(position):
        raise ValueError(f"CSV header {header_raw!r} lacks time, callid, queuename or event")
    data_columns = [i for i, name in enumerate(header)
                    if name.startswith(("data", "param", "arg"))]  # fmt: skip
    for raw in iterator:
        stats.lines += 1
        if not raw.strip():
            yield "blank"
            continue
        if b"\x00" in raw:
            yield "nul_bytes"
            continue
        try:
            (row,) = csv.reader(io.StringIO(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError, csv.Error):
            yield "unparseable_csv"
            continue
        if len(row) != len(header):
            yield "wrong_column_count"
            continue
        data = [row[i] for i in data_columns]
        if len(data) == 1 and "|" in data[0]:  # a single "data" column holding p1|p2|...
            data = data[0].split("|")
        yield _make_line(row[position["time"]], row[position["callid"]], row[position["queue"]],
                         row[position["agent"]] if "agent" in position else "",
                         row[position["event"]], data, zone)  # fmt: skip


@dataclass(slots=True)
class _Call:
    first_epoch: int
    first_key: str
    target: Target | None = None
    received_sent: bool = False


class AsteriskConverter:
    """queue_log lines in file order -> canonical events (dicts ready for JSON)."""

    def __init__(
        self,
        queues: dict[str, Target],
        actions: dict[str, str] | None = None,
        stats: IngestStats | None = None,
    ) -> None:
        self.queues = queues
        self.actions = actions if actions is not None else dict(DEFAULT_ACTIONS)
        self.stats = stats if stats is not None else IngestStats()
        self.calls: dict[str, _Call] = {}

    def convert(self, item: QueueLogLine | str) -> list[dict[str, Any]]:
        if isinstance(item, str):
            self.stats.bad[item] += 1
            return []
        event = item.event
        if event in IGNORED_EVENTS:
            self.stats.ignored[event] += 1
            return []
        kind = "received" if event == "DID" else self.actions.get(event)
        if kind is None:
            self.stats.unknown_events[event] += 1
            return []
        if kind == "ignore":
            self.stats.ignored[event] += 1
            return []
        if not item.uniqueid or item.uniqueid == "NONE":
            self.stats.bad["no_call_id"] += 1
            return []
        call = self.calls.get(item.uniqueid)
        if call is None:
            if event not in CALL_START_EVENTS and not self._known_queue(item.queue):
                return []
            call = self.calls[item.uniqueid] = _Call(item.epoch, _line_key(item))
        target = self._target(item.queue)
        if target is not None:
            call.target = target
        out: list[dict[str, Any]] = []
        if call.target is None:
            if event != "DID":
                self._unmapped(item.queue)
            return out
        if not call.received_sent:
            call.received_sent = True
            out.append(self._event(f"{_ID_PREFIX}{_digest(call.first_key)}-r", item.uniqueid,
                                   "call_received", call.first_epoch, call.target))  # fmt: skip
        if kind != "received":
            out.append(self._event(f"{_ID_PREFIX}{_digest(_line_key(item))}", item.uniqueid,
                                   kind, item.epoch, call.target))  # fmt: skip
        if kind in ("abandoned", "ended", "disconnected"):
            # The call left the queue: its state is no longer needed (ids are content-based).
            self.calls.pop(item.uniqueid, None)
        return out

    def _known_queue(self, queue: str) -> bool:
        if queue in self.queues:
            return True
        self._unmapped(queue)
        return False

    def _target(self, queue: str) -> Target | None:
        return self.queues.get(queue)

    def _unmapped(self, queue: str) -> None:
        if queue in ("", "NONE"):
            return
        if queue not in self.stats.unmapped_queues:
            log.warning("unmapped_queue", queue=queue, hint="add it to the queue mapping")
        self.stats.unmapped_queues[queue] += 1

    def _event(self, event_id: str, uniqueid: str, kind: str, epoch: int,
               target: Target) -> dict[str, Any]:  # fmt: skip
        self.stats.events[kind] += 1
        return {"event_id": event_id, "contract_id": target.contract_id,
                "call_id": f"ast-{uniqueid}", "type": kind, "ts": epoch, "line": target.line,
                "source": "asterisk_queue_log"}  # fmt: skip


def _line_key(item: QueueLogLine) -> str:
    """The line's identity whatever its format (pipe or CSV): its normalized fields."""
    return "|".join((str(item.epoch), item.uniqueid, item.queue, item.agent, item.event,
                     *item.data))  # fmt: skip


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def zone_or_none(name: str | None) -> ZoneInfo | None:
    return None if name is None else load_zone(name)
