"""Sizing figures for a deployment (``make bench``): memory, changelog and /metrics cost.

Measures, on the pure engine (the per-partition state a worker keeps, built and fed as
``monitor worker`` does: :class:`OwnedPartitions` over a dict standing in for the
``memory://`` table, events decoded from ``monitor publish``'s batch messages, state written
after every message batch), repeatably (fixed seeds, a fixed hash seed):

* memory per contract: traced bytes (tracemalloc, after a full collection) of the engines and
  the table after a simulated day, for several contract counts; the slope of a least-squares
  fit. Also the table's bytes per contract: the compacted changelog a recovery reads back;
* memory per live call: the same with calls left open (queued or answered, never ended);
* the resident set (RSS) of a process holding the same state, fed the same way without
  tracing, and of one holding none: the base and the per-contract RSS;
* the cost of rendering /metrics (prometheus_client ``generate_latest`` on the worker's
  collectors) per contract, an input for the scrape interval.

Figures go to their own section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from prometheus_client import CollectorRegistry, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import machine_description, write_section

from monitor.engine import CallEvent, ContractRegistry, EventType, Rejection
from monitor.logs import configure_logging
from monitor.metrics.collector import MonitorCollector, PipelineHealth
from monitor.metrics.runtime import register_runtime
from monitor.pipeline.broker import BrokerWatch
from monitor.pipeline.messages import decode_message
from monitor.pipeline.partitioning import contract_partition
from monitor.pipeline.partitions import OwnedPartitions, StateTable
from monitor.pipeline.producer import Message, MessageBuilder
from monitor.pipeline.settings import WorkerSettings
from monitor.simulator import SimulationConfig, add_simulate_arguments
from monitor.simulator.generator import damaged_records

ROOT = Path(__file__).resolve().parent.parent
SECTION = "sizing"
# A day ending at 16:00 in New York (13:00 in Los Angeles): the busiest hours' calls are still
# in state (calls stay until idle for --lateness), and a whole de-duplication horizon (a day)
# of event ids, the most a partition keeps. The peak of the state, not its average.
START = "2026-01-05T21:00:00+00:00"
HOURS = 24.0
SEED = 11
RENDERS = 5
MIB = 2**20


def day_end() -> str:
    """The simulated day's last instant, New York time."""
    end = dt.datetime.fromisoformat(START) + dt.timedelta(hours=HOURS)
    return end.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M")


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of ``ys`` against ``xs``."""
    if len(xs) != len(ys) or len(set(xs)) < 2:
        raise ValueError("a line needs at least two distinct x values, one y for each")
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def simulation(contracts: int, calls_per_hour: float) -> SimulationConfig:
    """What ``monitor simulate`` generates with these flags (synthetic contracts)."""
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    flags = ["--contract-count", str(contracts), "--calls-per-hour", str(calls_per_hour),
             "--start", START, "--hours", str(HOURS), "--seed", str(SEED)]  # fmt: skip
    return SimulationConfig.from_args(parser.parse_args(flags), ContractRegistry())


def message_batches(config: SimulationConfig) -> Iterator[list[Message]]:
    """The day as ``monitor publish`` sends it: each flush of the builder (a 2-minute span of
    event time, or a full batch) is one batch the worker processes and then persists."""
    builder = MessageBuilder()
    for record in damaged_records(config):
        ready = builder.add(record)
        if ready:
            yield ready
    yield builder.flush()


@dataclass
class State:
    """A worker's state for every partition: the engines and the ``memory://`` table."""

    partitions: OwnedPartitions
    table: StateTable
    registry: ContractRegistry
    events: int = 0
    calls_received: int = 0
    opened: int = 0  # calls left open so far

    @classmethod
    def empty(cls, registry: ContractRegistry, partitions: OwnedPartitions | None = None) -> State:
        """Every partition owned, as by a worker alone in its group."""
        if partitions is None:
            partitions = OwnedPartitions(WorkerSettings(), registry)
        table: StateTable = {}
        partitions.sync(set(range(partitions.settings.partitions)), table)
        return cls(partitions, table, registry)

    def feed(self, batch: Sequence[Message]) -> None:
        """The worker's batch handling without Kafka: decode, process, persist."""
        engines = self.partitions.engines
        count = self.partitions.settings.partitions
        touched: set[int] = set()
        for message in batch:
            assert message.key is not None
            partition = contract_partition(message.key.decode(), count)
            engine = engines[partition]
            touched.add(partition)
            for item in decode_message(message.value, message.headers).items:
                if isinstance(item, Rejection):
                    raise RuntimeError(f"the simulator made an invalid event: {item}")
                engine.process(item)
                self.events += 1
                if item.type is EventType.CALL_RECEIVED:
                    self.calls_received += 1
        for partition in touched:
            self.partitions.persist(partition, self.table)
        # As the worker does after each batch: the long-lived state leaves the cyclic
        # collector's scans (which would otherwise walk all of it, again and again).
        gc.freeze()

    def calls(self) -> int:
        return sum(engine.calls_tracked for engine in self.partitions.engines.values())

    def table_bytes(self) -> int:
        return sum(len(key) + len(value) for key, value in self.table.items())

    def open_calls(self, count: int) -> None:
        """``count`` calls that stay open: received and queued, every other one answered, none
        ended; spread over the contracts and the last 30 minutes before each watermark."""
        contracts = sorted(self.registry)
        by_partition: dict[int, list[CallEvent]] = {}
        size = self.partitions.settings.partitions
        for n in range(self.opened, self.opened + count):
            contract = contracts[n % len(contracts)]
            partition = contract_partition(contract, size)
            watermark = self.partitions.engines[partition].watermark_ms
            assert watermark is not None
            arrival = watermark - 1_800_000 + (n * 7_919) % 1_740_000
            call = f"open-{n:06d}"
            kinds = [(EventType.CALL_RECEIVED, 0), (EventType.QUEUED, 20_000)]
            if n % 2:
                kinds.append((EventType.ANSWERED, 50_000))
            by_partition.setdefault(partition, []).extend(
                CallEvent(f"{call}-{i}", contract, call, kind, arrival + offset, "member_services")
                for i, (kind, offset) in enumerate(kinds)
            )
        for partition, events in sorted(by_partition.items()):
            engine = self.partitions.engines[partition]
            for event in events:
                engine.process(event)
                self.events += 1
            self.partitions.persist(partition, self.table)
        self.opened += count

    def render(self) -> tuple[float, int, int]:
        """CPU seconds of rendering /metrics as the worker does (the least of a few renders:
        other processes on the machine only ever add to it), its bytes and samples."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(
            MonitorCollector(self.partitions.engines_items, self.registry, PipelineHealth())
        )
        register_runtime(registry, BrokerWatch())
        times: list[float] = []
        body = b""
        gc.freeze()  # the worker's state is frozen between batches, when a scrape runs
        for _ in range(RENDERS):
            start = time.process_time()
            body = generate_latest(registry)
            times.append(time.process_time() - start)
        gc.unfreeze()
        samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        return min(times), len(body), samples


@dataclass
class DayFigures:
    contracts: int
    events: int
    calls: int  # calls received in the day
    calls_tracked: int
    traced: int  # bytes of the engines and the table, tracemalloc
    table: int  # bytes of the table's keys and values
    records: int
    render_s: float = 0.0
    render_bytes: int = 0
    samples: int = 0


def full_collection() -> None:
    gc.unfreeze()
    gc.collect()


def traced_now(baseline: int) -> int:
    full_collection()
    return tracemalloc.get_traced_memory()[0] - baseline


def day(contracts: int, calls_per_hour: float, open_calls: Sequence[int]) -> tuple[
    DayFigures, list[tuple[int, int, int]]
]:  # fmt: skip
    """The traced figures of one simulated day and, if asked, of calls left open after it:
    (open calls, traced bytes, table bytes) per step."""
    config = simulation(contracts, calls_per_hour)
    batches = list(message_batches(config))  # built before tracing: the producer's side
    registry = ContractRegistry(config.contracts)
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    state = State.empty(registry)
    for batch in batches:
        state.feed(batch)
    del batches
    figures = DayFigures(contracts, state.events, state.calls_received, state.calls(),
                         traced_now(baseline),
                         state.table_bytes(), len(state.table))  # fmt: skip
    live: list[tuple[int, int, int]] = []
    done = 0
    for target in open_calls:
        state.open_calls(target - done)
        done = target
        live.append((target, traced_now(baseline), state.table_bytes()))
    tracemalloc.stop()
    figures.render_s, figures.render_bytes, figures.samples = state.render()
    return figures, live


def rss_child(contracts: int, calls_per_hour: float) -> dict[str, float]:
    """Run in a fresh process: RSS of the worker built (imports, Faust app), owning nothing;
    then with a day's state."""
    from monitor.pipeline.worker import Worker  # noqa: PLC0415 - its imports are the base

    config = simulation(contracts, calls_per_hour)
    registry = ContractRegistry(config.contracts)
    with tempfile.TemporaryDirectory() as data_dir:
        worker = Worker(WorkerSettings(data_dir=data_dir), registry)
    gc.collect()
    base = rss_mib()
    state = State.empty(registry, worker.partitions)
    for batch in message_batches(config):  # streamed: nothing but the state stays behind
        state.feed(batch)
    full_collection()
    return {"base": base, "rss": rss_mib(), "events": state.events}


def rss_of(contracts: int, calls_per_hour: float) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(contracts),
         "--calls-per-hour", str(calls_per_hour)],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    value: dict[str, float] = orjson.loads(result.stdout.splitlines()[-1])
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contracts", default="10,25,50,100",
                        help="contract counts simulated (comma-separated)")  # fmt: skip
    parser.add_argument("--calls-per-hour", type=float, default=120.0,
                        help="calls per contract in its busiest local hour")  # fmt: skip
    parser.add_argument("--open-calls", default="0,1000,5000,20000",
                        help="calls left open on the smallest day (comma-separated)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Set iteration order shapes the state's containers: one seed, the same bytes each run.
        os.execve(sys.executable, [sys.executable, *sys.argv],
                  {**os.environ, "PYTHONHASHSEED": "0"})  # fmt: skip
    configure_logging("WARNING")
    if args.rss_child is not None:
        print(orjson.dumps(rss_child(args.rss_child, args.calls_per_hour)).decode())
        return 0

    started = time.monotonic()
    counts = sorted(int(n) for n in args.contracts.split(","))
    opens = sorted(int(n) for n in args.open_calls.split(","))
    days: list[DayFigures] = []
    live: list[tuple[int, int, int]] = []
    for n in counts:
        print(f"{time.monotonic() - started:5.0f} s: day of {n} contracts, traced", flush=True)
        figures, steps = day(n, args.calls_per_hour, opens if n == counts[0] else [])
        days.append(figures)
        live = live or steps
    rss: list[dict[str, float]] = []
    for n in counts:
        print(f"{time.monotonic() - started:5.0f} s: day of {n} contracts, RSS", flush=True)
        rss.append(rss_of(n, args.calls_per_hour))
    base_rss = statistics.median(r["base"] for r in rss)
    runtime = time.monotonic() - started

    xs = [float(d.contracts) for d in days]
    per_contract, traced_0 = fit_line(xs, [d.traced for d in days])
    table_per_contract, _ = fit_line(xs, [d.table for d in days])
    render_per_contract, _ = fit_line(xs, [d.render_s for d in days])
    samples_per_contract, _ = fit_line(xs, [d.samples for d in days])
    rss_per_contract, rss_0 = fit_line(xs, [r["rss"] for r in rss])
    live_x = [float(m) for m, _, _ in live]
    per_live, _ = fit_line(live_x, [b for _, b, _ in live])
    table_per_live, _ = fit_line(live_x, [t for _, _, t in live])
    events_per_contract = statistics.fmean(d.events / d.contracts for d in days)
    held_per_contract = statistics.fmean(d.calls_tracked / d.contracts for d in days)
    events_per_call = sum(d.events for d in days) / sum(d.calls for d in days)
    calls_per_day = statistics.fmean(d.calls / d.contracts for d in days)

    rows = "\n".join(
        f"| {d.contracts} | {d.events:,} | {d.calls_tracked:,} | {d.traced / MIB:.1f} | "
        f"{d.table / MIB:.1f} ({d.records:,} records) | {r['rss']:.0f} | "
        f"{d.render_s * 1000:.0f} ms, {d.samples:,} samples, {d.render_bytes / MIB:.1f} MiB |"
        for d, r in zip(days, rss, strict=True)
    )
    live_rows = "\n".join(f"| {m:,} | {b / MIB:.1f} | {t / MIB:.1f} |" for m, b, t in live)
    body = f"""## Sizing: memory, changelog and `/metrics` per contract (issue 12)

- Date: {dt.date.today().isoformat()}; machine: {machine_description()}
- `scripts/bench_sizing.py`, {runtime:.0f} s, no broker: the engines a worker keeps for its
  partitions (`OwnedPartitions`, {WorkerSettings().partitions} partitions, default settings)
  fed as `monitor worker` feeds them (`monitor publish`'s batch messages decoded, state written
  after each batch, one per 2 minutes of event time, into a dict standing in for the
  `memory://` table) one simulated day: `monitor simulate --hours {HOURS:g} --start {START}
  --calls-per-hour {args.calls_per_hour:g} --seed {SEED}` (`normal` scenario; calls per
  contract in its busiest local hour). The day ends at {day_end()} in New York: the busiest
  hours' calls are still in state, and a whole de-duplication horizon of event ids.
- Traced: tracemalloc's current bytes after a full collection (engines and table); seeds
  fixed, a rerun differs by a few KiB. RSS: a fresh process with the worker built (imports,
  Faust app) holding the same state, fed without tracing. Table: its keys and values, what a
  recovery reads back from the compacted changelog. `/metrics`: CPU time of `generate_latest`
  on the worker's collectors, the least of {RENDERS} renders (tracing off, the state frozen as
  the worker freezes it between batches).
- The day's traffic per contract: {calls_per_day:,.0f} calls, {events_per_contract:,.0f} events
  ({events_per_call:.2f} events per call); at the end {held_per_contract:,.0f} calls per
  contract are still in state (`callcenter_calls_tracked`: calls idle less than `--lateness`).

| contracts | events | calls in state | traced MiB | table MiB | RSS MiB | `/metrics` render CPU |
|---|---|---|---|---|---|---|
{rows}

| figure | value |
|---|---|
| memory per contract (traced, least-squares slope) | {per_contract / MIB:.2f} MiB |
| RSS per contract (slope) | {rss_per_contract:.2f} MiB |
| RSS of the worker process built, no state (imports, Faust app) | {base_rss:.0f} MiB |
| RSS fit at 0 contracts (the above plus empty engines) | {rss_0:.0f} MiB |
| changelog (table) bytes per contract | {table_per_contract / MIB:.2f} MiB |
| traced fit at 0 contracts | {traced_0 / MIB:.1f} MiB |
| `/metrics` render CPU per contract | {render_per_contract * 1000:.2f} ms |
| `/metrics` samples per contract | {samples_per_contract:.0f} |

Calls left open (received and queued, every other one answered, never ended), on the
{days[0].contracts}-contract day:

| open calls | traced MiB | table MiB |
|---|---|---|
{live_rows}

| figure | value |
|---|---|
| memory per live call (traced, slope) | {per_live:,.0f} bytes |
| changelog (table) bytes per live call | {table_per_live:,.0f} bytes |
"""
    write_section(args.output, body, SECTION)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
