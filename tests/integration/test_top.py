"""`monitor top --once` against a real worker fed through the real broker: every row it prints
carries the figures the worker's /metrics exports for that contract and line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.services import (
    MONITOR,
    ROOT,
    Kafka,
    Samples,
    WorkerProcess,
    run_monitor,
    scrape,
    wait_for,
)

pytestmark = pytest.mark.integration

CONTRACTS = ROOT / "deploy" / "contracts.csv"
STRUCK = "H1001"  # New York: its call center fails from 07:00 (the demo's outage)
SHOWN = ("callcenter_avg_hold_seconds", "callcenter_answered_within_30s_ratio",
         "callcenter_disconnect_rate", "callcenter_queue_calls_waiting",
         "callcenter_queue_oldest_wait_seconds", "callcenter_outage_open",
         "callcenter_outage_age_seconds")  # fmt: skip
LINES = {"member_services": "member", "pharmacy_help_desk": "pharmacy",
         "prospective_enrollee": "prospect"}  # fmt: skip


def simulate(tmp_path: Path, name: str, scenario: str, seed: str, *contracts: str) -> list[str]:
    registry = tmp_path / f"{name}.csv"
    rows = CONTRACTS.read_text().splitlines()
    registry.write_text("\n".join([rows[0], *(r for r in rows[1:] if r.split(",")[0] in
                                              contracts)]) + "\n")  # fmt: skip
    out = tmp_path / f"{name}.jsonl"
    run_monitor("simulate", "--contracts", str(registry), "--scenario", scenario, "--hours", "3",
                "--calls-per-hour", "80", "--start", "2026-01-05T12:00:00+00:00", "--seed", seed,
                "--output", str(out))  # fmt: skip
    return out.read_text().splitlines()


def value(samples: Samples, name: str, **labels: str) -> float | None:
    found = samples.get(name, {}).get(tuple(sorted(labels.items())))
    return None if found is None else float(found)


def pair(samples: Samples, name: str, contract: str, line: str, scale: float, fmt: str) -> str:
    def one(window: str) -> str:
        v = value(samples, name, contract=contract, line=line, window=window)
        return "–" if v is None else format(v * scale, fmt)

    return f"{one('1h')}/{one('today')}"


def duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}"


def test_top_once_prints_the_workers_figures(kafka: Kafka, tmp_path: Path) -> None:
    others = ("H2002", "S4004", "X9009", "H6348")
    lines = simulate(tmp_path, "typhoon", "typhoon", "1", *others)
    lines += simulate(tmp_path, "outage", "outage", "2", STRUCK)
    # One stream in event-time order, as the demo's feed sends it.
    lines.sort(key=lambda raw: (json.loads(raw)["ts"], json.loads(raw)["event_id"]))
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(lines) + "\n")

    worker = WorkerProcess(kafka, app_id="it-top", events_topic="it-top.events",
                           dlq_topic="it-top.dlq", data_dir=tmp_path / "worker",
                           contracts=CONTRACTS, extra=["--outages-topic", "it-top.outages"]
                           ).start()  # fmt: skip
    try:
        worker.wait_ready(partitions=4)
        run_monitor("publish", "--input", str(feed), "--bootstrap-servers", kafka.bootstrap,
                    "--events-topic", "it-top.events", "--partitions", "4")  # fmt: skip
        wait_for(lambda: scrape(worker.metrics_url)["callcenter_events_accepted_total"][()]
                 == len(lines), 120, "the worker to accept every event")  # fmt: skip
        samples = scrape(worker.metrics_url)
        result = subprocess.run([*MONITOR, "top", "--once", "--url", worker.metrics_url],
                                cwd=ROOT, capture_output=True, text=True, timeout=60,
                                check=False)  # fmt: skip
        after = scrape(worker.metrics_url)
        assert all(samples[name] == after[name] for name in SHOWN)  # nothing moved meanwhile
    finally:
        worker.stop()

    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout  # a pipe is not a terminal
    rows = [line.split() for line in result.stdout.splitlines()
            if line[:5] in (STRUCK, *others)]  # fmt: skip
    series = [dict(key) for key in sorted(samples["callcenter_outage_open"])]
    expected_series = {(s["contract"], LINES[s["line"]]) for s in series}
    assert {(row[0], row[1]) for row in rows} == expected_series
    assert len(rows) == len(series) == 15  # 5 contracts x 3 lines, each printed once
    by_row = {(row[0], row[1]): row for row in rows}
    outages = 0
    for s in series:
        contract, line = s["contract"], s["line"]
        row = by_row[(contract, LINES[line])]
        waiting = value(samples, "callcenter_queue_calls_waiting", contract=contract, line=line)
        oldest = value(samples, "callcenter_queue_oldest_wait_seconds", contract=contract,
                       line=line)  # fmt: skip
        assert waiting is not None and oldest is not None
        ages = {dict(k)["cause"]: v for k, v in samples["callcenter_outage_age_seconds"].items()
                if dict(k)["contract"] == contract and dict(k)["line"] == line}  # fmt: skip
        is_open = value(samples, "callcenter_outage_open", contract=contract, line=line) == 1
        outages += is_open
        assert row[2:8] == [
            pair(samples, "callcenter_avg_hold_seconds", contract, line, 1, ".0f"),
            pair(samples, "callcenter_answered_within_30s_ratio", contract, line, 100, ".0f"),
            pair(samples, "callcenter_disconnect_rate", contract, line, 100, ".1f"),
            str(int(waiting)),
            duration(oldest) if waiting else "–",
            duration(next(iter(ages.values()))) if is_open else "–",
        ], (contract, line)
    # The struck contract's outage is open (nobody answered since 08:00), and open outages
    # come first.
    assert outages >= 1
    assert all(row[0] == STRUCK and row[7] != "–" for row in rows[:outages])
    assert all(row[7] == "–" for row in rows[outages:])
