"""Call paths and the event stream they produce, in event-time order."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson

from monitor.engine.timestamps import format_ms
from monitor.simulator.config import Scenario, SimulationConfig

_HOUR_MS = 3_600_000

# Share of the peak load by local hour of day: quiet at night, busiest late morning.
_DIURNAL = (
    0.02,
    0.01,
    0.01,
    0.01,
    0.02,
    0.05,
    0.15,
    0.45,
    0.85,
    1.0,
    1.0,
    0.95,
    0.9,
    0.9,
    0.85,
    0.8,
    0.7,
    0.55,
    0.4,
    0.3,
    0.15,
    0.08,
    0.05,
    0.03,
)

Event = dict[str, Any]


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:  # normal approximation: exact sampling is slow for big means
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _call_events(
    rng: random.Random,
    scenario: Scenario,
    contract_id: str,
    line: str,
    call_id: str,
    arrival: int,
) -> list[tuple[int, str]]:
    """The (ts, type) path of one call."""
    path = [(arrival, "call_received")]
    t = arrival + int(rng.uniform(15_000, 75_000))  # IVR / greeting
    if rng.random() < 0.08:  # self-served in the IVR
        path.append((t, "ended"))
        return path
    drop = rng.random() < scenario.disconnect_prob
    if drop and rng.random() < 0.3:  # dropped in the IVR
        path.append((t, "disconnected"))
        return path
    path.append((t, "queued"))
    if rng.random() < 0.005:
        path.append((t + 2_000, "tty_requested"))
    hold = int(rng.expovariate(1 / scenario.mean_hold_s) * 1000) if scenario.mean_hold_s else 0
    patience = int(rng.expovariate(1 / scenario.patience_s) * 1000)
    if scenario.no_answer or hold > patience:
        if drop:
            path.append((t + patience // 2, "disconnected"))
        else:
            path.append((t + patience, "abandoned"))
        return path
    if drop and rng.random() < 0.5:  # dropped while waiting
        path.append((t + hold // 2, "disconnected"))
        return path
    t += hold
    path.append((t, "answered"))
    if any(kind == "tty_requested" for _, kind in path):
        path.append((t + int(rng.uniform(5_000, 540_000)), "tty_connected"))
    if rng.random() < 0.03:
        path.append((t + 30_000, "interpreter_requested"))
        path.append((t + 30_000 + int(rng.uniform(20_000, 600_000)), "interpreter_connected"))
    talk = int(rng.expovariate(1 / 360) * 1000) + 30_000
    path.append((t + talk, "disconnected" if drop else "ended"))
    return path


def generate_events(config: SimulationConfig) -> Iterator[Event]:
    """Canonical events of the whole simulation, ordered by event time (before any damage)."""
    rng = random.Random(config.seed)
    scenario = config.scenario
    end_ms = config.start_ms + int(config.hours * _HOUR_MS)
    zones = {c.contract_id: ZoneInfo(c.timezone) for c in config.contracts}
    lines, weights = zip(*config.lines, strict=True)
    pending: list[tuple[int, int, Event]] = []  # heap of (ts, seq, event)
    seq = 0
    call_seq = 0
    hour_start = config.start_ms
    while hour_start < end_ms:
        hour_end = min(hour_start + _HOUR_MS, end_ms)
        span = hour_end - hour_start
        for contract in config.contracts:
            local_hour = (
                datetime.fromtimestamp(hour_start / 1000, tz=UTC)
                .astimezone(zones[contract.contract_id])
                .hour
            )
            mean = config.calls_per_hour * scenario.load_factor * _DIURNAL[local_hour]
            for _ in range(_poisson(rng, mean * span / _HOUR_MS)):
                call_seq += 1
                line = rng.choices(lines, weights)[0]
                call_id = f"c{config.seed}-{call_seq:08d}"
                arrival = hour_start + int(rng.random() * span)
                path = _call_events(rng, scenario, contract.contract_id, line, call_id, arrival)
                for n, (ts, kind) in enumerate(path):
                    event: Event = {
                        "event_id": f"{call_id}-{n}",
                        "ts_ms": ts,
                        "call_id": call_id,
                        "contract_id": contract.contract_id,
                        "type": kind,
                        "ts": format_ms(ts),
                        "line": line,
                    }
                    seq += 1
                    heapq.heappush(pending, (ts, seq, event))
        # Every call not yet generated arrives at or after hour_end: earlier events are final.
        while pending and pending[0][0] < hour_end:
            yield heapq.heappop(pending)[2]
        hour_start = hour_end
    while pending:
        yield heapq.heappop(pending)[2]


_MALFORMED: tuple[bytes, ...] = (
    b"{not json",
    b'"a string, not an event"',
    b'{"event_id": "x", "contract_id": "ZZ999", "type": "queued", "ts": 1767600000}',
    b'{"event_id": "x", "contract_id": "H1234", "call_id": "c", "type": "teleport", "ts": 1}',
    b'{"event_id": "x", "contract_id": "H1234", "call_id": "c", "type": "queued", '
    b'"ts": "2026-01-05T10:00:00"}',
    b"\xff\xfe\x00garbage",
    b'{"contract_id": "H1234", "call_id": "c", "type": "queued", "ts": 1767600000}',
)


class Record(NamedTuple):
    contract_id: str  # the Kafka key: the contract the record was generated for
    ts_ms: int  # event time it was generated at (drives --speed pacing)
    value: bytes
    standalone: bool = False  # malformed: must travel alone, not inside a batch message


def damaged_records(config: SimulationConfig) -> Iterator[Record]:
    """Serialized records with the configured duplicates, reordering and malformed records."""
    rng = random.Random(config.seed * 7919 + 17)
    delayed: list[tuple[int, Record]] = []  # (release after n more records, record)
    emitted = 0
    limit = config.max_events
    for event in generate_events(config):
        if limit is not None and emitted >= limit:
            break
        ts_ms = event.pop("ts_ms")  # generation bookkeeping, not part of the canonical event
        record = Record(event["contract_id"], ts_ms, orjson.dumps(event))
        roll = rng.random()
        if roll < config.malformed_rate:
            record = record._replace(value=rng.choice(_MALFORMED), standalone=True)
        elif roll < config.malformed_rate + config.reorder_rate:
            delayed.append((emitted + rng.randint(1, 50), record))
            continue
        yield record
        emitted += 1
        if rng.random() < config.duplicate_rate:
            yield record
            emitted += 1
        if delayed and delayed[0][0] <= emitted:
            ready = [r for due, r in delayed if due <= emitted]
            delayed = [(due, r) for due, r in delayed if due > emitted]
            for late in ready:
                yield late
                emitted += 1
    for _, late in delayed:
        yield late


def write_events_file(config: SimulationConfig, out: IO[bytes]) -> int:
    """Write the simulation as JSONL; return the number of records."""
    count = 0
    buffer: list[bytes] = []
    for record in damaged_records(config):
        buffer.append(record.value)
        count += 1
        if len(buffer) >= 10_000:
            out.write(b"\n".join(buffer) + b"\n")
            buffer.clear()
    if buffer:
        out.write(b"\n".join(buffer) + b"\n")
    return count
