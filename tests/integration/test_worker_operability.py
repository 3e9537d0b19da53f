"""What on-call staff rely on, against a real broker that the tests stop and start: readiness,
the broker's loss and return in the logs, clean shutdown with and without a broker, and a clear
exit when no broker can be reached at start."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.services import MONITOR, ROOT, Kafka, WorkerProcess, free_port, wait_for
from tests.integration.test_worker_recovery import (
    CONTRACTS,
    caught_up,
    day_file,
    publish,
    run_uninterrupted,
    scrape,
    summed,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READY_BROKER_TIMEOUT_S = 5
SHUTDOWN_LIMIT_S = 10.0


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def readyz(worker: WorkerProcess) -> tuple[int, dict[str, Any]]:
    return get(f"http://127.0.0.1:{worker.port}/readyz")


def log_records(worker: WorkerProcess) -> list[dict[str, Any]]:
    assert worker.log_path is not None
    return [json.loads(line) for line in worker.log_path.read_text().splitlines() if line]


def events_named(worker: WorkerProcess, name: str) -> list[dict[str, Any]]:
    return [r for r in log_records(worker) if r.get("event") == name]


def stop_timed(worker: WorkerProcess) -> tuple[float, int]:
    """SIGTERM the worker; how long it took to exit and its exit status."""
    assert worker.process is not None
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    status = worker.process.wait(timeout=60)
    return time.monotonic() - started, status


@pytest.fixture
def own_kafka(tmp_path: Path) -> Any:
    """A broker of this test's own, which it may stop and start."""
    broker = Kafka(port=free_port(), data_dir=tmp_path / "own-kafka")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def test_broker_lost_and_restored_under_a_running_worker(
    own_kafka: Kafka, kafka: Kafka, tmp_path: Path
) -> None:
    events, records = day_file(tmp_path, seed=41)
    lines = events.read_bytes().splitlines(keepends=True)
    first_half, second_half = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first_half.write_bytes(b"".join(lines[: len(lines) // 2]))
    second_half.write_bytes(b"".join(lines[len(lines) // 2 :]))
    expected = run_uninterrupted(kafka, tmp_path, "it-brokerloss", events, records)

    readiness_limit = ["--ready-broker-timeout", f"{READY_BROKER_TIMEOUT_S}s"]
    worker = WorkerProcess(own_kafka, app_id="it-loss", events_topic="it-loss.events",
                           dlq_topic="it-loss.dlq", data_dir=tmp_path / "w", contracts=CONTRACTS,
                           extra=readiness_limit)  # fmt: skip
    worker.start()
    try:
        worker.wait_ready(partitions=4)
        wait_for(lambda: readyz(worker)[0] == 200, 30, "/readyz to answer 200")
        _, body = readyz(worker)
        assert body["ready"] is True and body["reasons"] == []
        assert body["broker"]["reachable"] is True and body["partitions"] == [0, 1, 2, 3]
        publish(own_kafka, "it-loss.events", first_half)
        wait_for(lambda: caught_up(worker), 120, "the first half to be processed", step=1)
        lines_before = len(log_records(worker))

        own_kafka.stop()
        stopped = time.monotonic()
        wait_for(lambda: readyz(worker)[0] == 503, 30, "/readyz to answer 503", step=0.25)
        took = time.monotonic() - stopped
        # The limit counts from the last good probe, which came before the broker stopped.
        assert took <= READY_BROKER_TIMEOUT_S + 1.5, took
        _, body = readyz(worker)
        assert body["ready"] is False and body["broker"]["reachable"] is False
        assert "broker unreachable" in body["reasons"][0]
        assert "ConnectionRefusedError" in body["broker"]["last_error"]
        liveness, alive = get(f"http://127.0.0.1:{worker.port}/healthz")
        assert liveness == 200 and alive["status"] == "alive"
        metrics = scrape(worker.metrics_url)
        assert metrics["callcenter_broker_reachable"][()] == 0
        assert metrics["callcenter_broker_losses_total"][()] == 1
        time.sleep(65)  # past one summary interval
        outage_lines = log_records(worker)[lines_before:]

        own_kafka.start()
        restarted = time.monotonic()
        wait_for(lambda: readyz(worker)[0] == 200, 90, "/readyz to answer 200 again", step=0.5)
        assert time.monotonic() - restarted < 60
        assert scrape(worker.metrics_url)["callcenter_broker_reachable"][()] == 1
        publish(own_kafka, "it-loss.events", second_half)
        # The consumer's end offsets are stale until it fetches again: wait for the calls, not
        # for zero lag alone.
        received = "callcenter_calls_received_total"
        wait_for(lambda: summed(scrape(worker.metrics_url))[received] == expected[received],
                 180, "the second half to be processed", step=1)  # fmt: skip
        wait_for(lambda: caught_up(worker), 60, "the figures to settle", step=1)
        actual = summed(scrape(worker.metrics_url))
        duration, exit_status = stop_timed(worker)
    finally:
        worker.stop()

    # One line when lost, one summary a minute, one when back: not the clients' retry storm.
    names = [r.get("event") for r in outage_lines]
    assert names.count("broker_lost") == 1, names
    assert names.count("broker_still_lost") == 1, names
    assert len(outage_lines) <= 6, outage_lines
    summary = next(r for r in outage_lines if r.get("event") == "broker_still_lost")
    assert summary["attempts"] >= 20 and "ConnectionRefusedError" in summary["last_error"]
    assert summary["level"] == "warning"
    restored = events_named(worker, "broker_restored")
    assert len(restored) == 1 and restored[0]["level"] == "info"
    assert restored[0]["down_for_s"] >= 65

    assert actual.keys() == expected.keys()
    for family in expected:
        assert actual[family] == pytest.approx(expected[family], rel=1e-9), family
    assert exit_status == 0 and duration < SHUTDOWN_LIMIT_S, (exit_status, duration)
    assert events_named(worker, "shutdown_started")[0]["signal"] == "SIGTERM"
    assert events_named(worker, "worker_stopped")
    assert not events_named(worker, "shutdown_deadline")  # the broker was there: an orderly stop


def test_shutdown_without_a_broker_exits_within_10_s(own_kafka: Kafka, tmp_path: Path) -> None:
    worker = WorkerProcess(own_kafka, app_id="it-downexit", events_topic="it-downexit.events",
                           dlq_topic="it-downexit.dlq", data_dir=tmp_path / "w")  # fmt: skip
    worker.start()
    try:
        worker.wait_ready(partitions=4)
        own_kafka.stop()
        time.sleep(2)
        duration, exit_status = stop_timed(worker)
    finally:
        worker.stop()
    assert exit_status == 0 and duration < SHUTDOWN_LIMIT_S, (exit_status, duration)
    assert events_named(worker, "shutdown_started")
    # Either Faust's stop finished without the broker, or the deadline cut it short.
    assert events_named(worker, "worker_stopped") or events_named(worker, "shutdown_deadline")


def test_shutdown_without_a_broker_is_bounded_and_loses_nothing(
    own_kafka: Kafka, kafka: Kafka, tmp_path: Path
) -> None:
    events, records = day_file(tmp_path, seed=43)
    expected = run_uninterrupted(kafka, tmp_path, "it-downstop", events, records)
    common: dict[str, Any] = {"app_id": "it-downstop", "events_topic": "it-downstop.events",
                              "dlq_topic": "it-downstop.dlq", "data_dir": tmp_path / "w",
                              "contracts": CONTRACTS}  # fmt: skip
    publish(own_kafka, "it-downstop.events", events, batch_events=20)
    worker = WorkerProcess(own_kafka, extra=["--batch-messages", "20"], **common).start()
    try:
        worker.wait_ready(partitions=4)
        wait_for(lambda: scrape(worker.metrics_url)["callcenter_events_accepted_total"][()] > 0,
                 60, "the worker to start processing", step=0.2)  # fmt: skip
        own_kafka.stop()
        duration, exit_status = stop_timed(worker)
    finally:
        worker.stop()
    assert exit_status == 0 and duration < SHUTDOWN_LIMIT_S, (exit_status, duration)
    assert events_named(worker, "shutdown_started")

    own_kafka.start()
    again = WorkerProcess(own_kafka, **common).start()
    try:
        again.wait_ready(partitions=4, timeout=120)
        wait_for(lambda: caught_up(again), 180, "the restarted worker to catch up", step=2)
        actual = summed(scrape(again.metrics_url))
        duration, exit_status = stop_timed(again)
    finally:
        again.stop()
    assert actual.keys() == expected.keys()
    for family in expected:
        assert actual[family] == pytest.approx(expected[family], rel=1e-9), family
    assert exit_status == 0 and duration < SHUTDOWN_LIMIT_S, (exit_status, duration)


def test_unreachable_broker_at_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = subprocess.run(
        [*MONITOR, "--log-format", "json", "worker", "--bootstrap-servers", f"127.0.0.1:{port}",
         "--connect-timeout", "3s", "--data-dir", str(tmp_path / "w"),
         "--web-port", str(free_port())],
        cwd=ROOT, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    took = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert 3 <= took < 20, took
    assert "Traceback" not in stderr
    plain = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert len(plain) == 1, plain
    assert plain[0].startswith(f"monitor worker: error: cannot reach Kafka: 127.0.0.1:{port}: ")
    assert "ConnectionRefusedError" in plain[0] and "attempts in 3 s)" in plain[0]
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [r["event"] for r in records] == ["broker_unreachable", "broker_unreachable_at_start"]
    assert [r["level"] for r in records] == ["warning", "error"]
