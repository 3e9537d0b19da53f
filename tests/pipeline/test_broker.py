"""The broker watch, the noise filter and the probe: what an operator reads while Kafka is away."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from structlog.testing import capture_logs

from monitor.pipeline.broker import (
    SUMMARY_EVERY_S,
    BrokerUnreachableError,
    BrokerWatch,
    ConnectionNoiseFilter,
    probe,
    wait_until_reachable,
)
from monitor.pipeline.settings import KafkaSecurity
from tests.integration.services import free_port

REFUSED = "127.0.0.1:9: ConnectionRefusedError: [Errno 111] Connection refused"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_loss_is_one_warning_a_summary_a_minute_and_one_line_when_back() -> None:
    clock = Clock()
    watch = BrokerWatch(clock=clock)
    with capture_logs() as logs:
        watch.record(None)  # a good probe at t = 1000
        for _ in range(200):  # 100 s of failures, a probe every 0.5 s
            clock.now += 0.5
            watch.record(REFUSED)
            watch.client_error("Unable connect to node with id 1: [Errno 111] Connection refused")
        clock.now += 0.5
        watch.record(None)
    assert [(r["event"], r["log_level"]) for r in logs] == [
        ("broker_lost", "warning"),
        ("broker_still_lost", "warning"),
        ("broker_restored", "info"),
    ]
    lost, summary, restored = logs
    assert lost["error"] == REFUSED
    assert summary["attempts"] == 1 + int(SUMMARY_EVERY_S / 0.5)
    assert summary["last_error"] == REFUSED and summary["down_for_s"] == SUMMARY_EVERY_S
    assert restored["down_for_s"] == 100.0 and restored["attempts"] == 200
    assert restored["client_errors"] == 200
    assert watch.reachable and watch.losses == 1 and watch.unreachable_for() == 0.0


def test_unreachable_time_counts_from_the_last_good_probe() -> None:
    clock = Clock()
    watch = BrokerWatch(clock=clock)
    watch.record(None)
    clock.now += 1.9  # the broker went away just after that probe; the next one fails
    with capture_logs():
        watch.record(REFUSED)
    clock.now += 3.0
    assert watch.unreachable_for() == pytest.approx(4.9)
    assert not watch.reachable


def test_client_errors_while_reachable_are_summarised_once_a_minute() -> None:
    clock = Clock()
    watch = BrokerWatch(clock=clock)
    with capture_logs() as logs:
        for _ in range(130):
            clock.now += 1.0
            watch.client_error("Failed fetch messages from 2: NodeNotReadyError")
            watch.record(None)
    assert [r["event"] for r in logs] == ["broker_client_errors"] * 2
    assert logs[0]["count"] == 60 and logs[0]["last_error"].startswith("Failed fetch")


def record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_the_filter_drops_the_clients_connection_records_and_counts_them() -> None:
    watch = BrokerWatch()
    noise = ConnectionNoiseFilter(watch)

    dropped = [
        record("aiokafka.conn", logging.ERROR, "Unable connect to node with id 1: refused"),
        record("aiokafka.client", logging.ERROR, "Unable to update metadata from [1]"),
        record(
            "aiokafka.consumer.fetcher",
            logging.ERROR,
            "Failed fetch messages from 1: NodeNotReadyError: not ready",
        ),
        record(
            "aiokafka.consumer.group_coordinator",
            logging.ERROR,
            "Group Coordinator Request failed: NodeNotReadyError",
        ),
        record(
            "aiokafka.consumer.group_coordinator",
            logging.WARNING,
            "Marking the coordinator dead (node 1)for group g.",
        ),
        record("faust.transport.producer", logging.WARNING, "producer buffer full size 128"),
    ]
    kept = [
        record("aiokafka.consumer.group_coordinator", logging.INFO, "(Re-)joining group g"),
        record("faust.worker", logging.ERROR, "Agent crashed: ValueError"),
        record("monitor.worker", logging.WARNING, "Unable connect to node (our own record)"),
        record("aiokafka.consumer.fetcher", logging.ERROR, "Unexpected error in fetcher"),
    ]

    assert [noise.filter(r) for r in dropped] == [False] * len(dropped)
    assert [noise.filter(r) for r in kept] == [True] * len(kept)
    assert noise.suppressed == len(dropped) and watch.client_errors == len(dropped)


def test_probe_names_the_reason_for_each_kind_of_failure() -> None:
    port = free_port()
    with pytest.raises(BrokerUnreachableError, match=f"127.0.0.1:{port}: ConnectionRefusedError"):
        asyncio.run(probe(f"127.0.0.1:{port}", KafkaSecurity(), timeout_s=2))


def test_waiting_for_a_broker_gives_up_after_the_timeout() -> None:
    port = free_port()
    started = time.monotonic()
    gave_up = r"gave up after \d+ attempts in 2 s"
    with capture_logs() as logs, pytest.raises(BrokerUnreachableError, match=gave_up):
        asyncio.run(wait_until_reachable(f"127.0.0.1:{port}", KafkaSecurity(), 2.0))
    assert 2.0 <= time.monotonic() - started < 6.0
    assert [r["event"] for r in logs] == ["broker_unreachable"]
