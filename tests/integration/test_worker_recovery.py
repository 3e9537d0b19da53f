"""Crash recovery and rebalancing against the real broker: kill -9, two workers, one leaving."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.services import (
    Kafka,
    WorkerProcess,
    caught_up,
    run_monitor,
    scrape,
    summed,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "deploy" / "contracts.csv"


def day_file(tmp_path: Path, seed: int) -> tuple[Path, int]:
    events = tmp_path / "events.jsonl"
    run_monitor(
        "simulate", "--contracts", str(CONTRACTS), "--scenario", "surge", "--hours", "30",
        "--calls-per-hour", "60", "--start", "2026-01-12T04:00:00+00:00", "--seed", str(seed),
        "--duplicate-rate", "0.02", "--reorder-rate", "0.01", "--malformed-rate", "0.002",
        "--output", str(events),
    )  # fmt: skip
    return events, sum(1 for line in events.read_bytes().splitlines() if line.strip())


def publish(kafka: Kafka, topic: str, events: Path, batch_events: int = 200) -> None:
    run_monitor("publish", "--input", str(events), "--bootstrap-servers", kafka.bootstrap,
                "--events-topic", topic, "--partitions", "4",
                "--batch-events", str(batch_events))  # fmt: skip


def run_uninterrupted(
    kafka: Kafka, tmp_path: Path, name: str, events: Path, records: int | None = None
) -> dict[str, dict]:
    worker = WorkerProcess(kafka, app_id=f"{name}-ref", events_topic=f"{name}-ref.events",
                           dlq_topic=f"{name}-ref.dlq", data_dir=tmp_path / "ref",
                           contracts=CONTRACTS)  # fmt: skip
    worker.start()
    try:
        worker.wait_ready(partitions=4)
        publish(kafka, f"{name}-ref.events", events)
        wait_for(lambda: caught_up(worker, records=records), 180,
                 "the reference worker to catch up", step=2)  # fmt: skip
        return summed(scrape(worker.metrics_url))
    finally:
        worker.stop()


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_kill_9_mid_stream_then_restart_equals_uninterrupted(
    kafka: Kafka, tmp_path: Path, store: str
) -> None:
    """With ``memory://`` the restart rebuilds the table from the changelog; with
    ``rocksdb://`` it reopens its local databases and reads only the changelog's tail."""
    name = "it-crash-" + store.split(":", maxsplit=1)[0]
    events, records = day_file(tmp_path, seed=21)
    expected = run_uninterrupted(kafka, tmp_path, name, events, records)
    assert sum(expected["callcenter_calls_received_total"].values()) > 1000

    topic = f"{name}.events"
    publish(kafka, topic, events, batch_events=20)  # many small messages: a long stream
    worker = WorkerProcess(kafka, app_id=name, events_topic=topic, dlq_topic=f"{name}.dlq",
                           data_dir=tmp_path / "crash", contracts=CONTRACTS,
                           extra=["--batch-messages", "20", "--store", store])  # fmt: skip
    worker.start()
    try:
        worker.wait_ready(partitions=4)
        wait_for(
            lambda: (
                scrape(worker.metrics_url)["callcenter_events_accepted_total"][()] > records / 3
            ),
            120,
            "a third of the stream to be processed",
            step=0.2,
        )
        worker.kill()  # SIGKILL: no flush, no commit, no goodbye
        restarted = WorkerProcess(kafka, app_id=name, events_topic=topic,
                                  dlq_topic=f"{name}.dlq", data_dir=tmp_path / "crash",
                                  contracts=CONTRACTS,
                                  extra=["--store", store]).start()  # fmt: skip
        try:
            restarted.wait_ready(partitions=4, timeout=120)
            wait_for(lambda: caught_up(restarted), 180, "the restarted worker to catch up", step=2)
            actual = summed(scrape(restarted.metrics_url))
        finally:
            restarted.stop()
    finally:
        worker.stop()
    # RocksDB keeps one database (with its CURRENT file) per partition under the data dir.
    databases = {path.parent.name for path in (tmp_path / "crash").rglob("CURRENT")}
    assert len(databases) == (4 if store == "rocksdb://" else 0), databases
    assert actual.keys() == expected.keys()
    for family in expected:
        assert actual[family] == pytest.approx(expected[family], rel=1e-9), family


def test_two_workers_split_partitions_and_one_takes_over(kafka: Kafka, tmp_path: Path) -> None:
    events, records = day_file(tmp_path, seed=33)
    expected = run_uninterrupted(kafka, tmp_path, "it-pair", events, records)

    topic = "it-pair.events"
    common = {"events_topic": topic, "dlq_topic": "it-pair.dlq", "contracts": CONTRACTS}
    first = WorkerProcess(kafka, app_id="it-pair", data_dir=tmp_path / "w1", **common).start()
    second = WorkerProcess(kafka, app_id="it-pair", data_dir=tmp_path / "w2", **common).start()
    try:
        first.wait_ready()
        second.wait_ready()

        def split() -> bool:
            owned = [
                scrape(w.metrics_url)["callcenter_partitions_owned"][()] for w in (first, second)
            ]
            return sorted(owned) == [2, 2] or (sum(owned) == 4 and min(owned) >= 1)

        wait_for(split, 120, "the two workers to split the partitions")
        publish(kafka, topic, events)
        wait_for(lambda: caught_up(first, second, records=records), 180,
                 "both workers to catch up", step=2)  # fmt: skip
        together = summed(scrape(first.metrics_url), scrape(second.metrics_url))
        assert together.keys() == expected.keys()
        for name in expected:
            assert together[name] == pytest.approx(expected[name], rel=1e-9), name

        second.stop()  # leaves the group cleanly: the first must take over everything
        wait_for(
            lambda: caught_up(first), 180, "the remaining worker to own all partitions", step=2
        )
        alone = summed(scrape(first.metrics_url))
        for name in expected:
            assert alone[name] == pytest.approx(expected[name], rel=1e-9), name
    finally:
        first.stop()
        second.stop()
