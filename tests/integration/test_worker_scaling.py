"""Three workers on 24 partitions against the real broker: they split the partitions, their
figures together equal one uninterrupted worker's, and a rolling restart under load (a
StatefulSet rollout: stop one, wait for the others, start it again) loses no figure and leaves
no contract unexported for longer than the session timeout plus the measured recovery time."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.pipeline.settings import WorkerSettings
from tests.integration.services import (
    Kafka,
    Samples,
    WorkerProcess,
    caught_up,
    run_monitor,
    scrape,
    summed,
    wait_for,
)

pytestmark = pytest.mark.integration

NAME = "it-scale"
TOPIC = f"{NAME}.events"
PARTITIONS = 24
SESSION_TIMEOUT_S = WorkerSettings.model_fields["session_timeout"].default / 1000
SCRAPE_EVERY_S = 0.5
# The feed during the restart: a slice, this pause, the next, so events arrive through every
# stop and start; what is left once the restart is over is sent at once.
SLICE_EVERY_S = 0.5
SLICES = 80
Figures = dict[str, dict[tuple[tuple[str, str], ...], float]]


def feed(tmp_path: Path) -> list[bytes]:
    """Eight hours of 64 synthetic contracts (every partition of 24 gets some), with
    duplicates, late and malformed records; every contract has calls in the first half."""
    path = tmp_path / "feed.jsonl"
    run_monitor(
        "simulate", "--contract-count", "64", "--scenario", "normal", "--hours", "8",
        "--calls-per-hour", "12", "--start", "2026-01-12T12:00:00+00:00", "--seed", "5",
        "--duplicate-rate", "0.02", "--reorder-rate", "0.01", "--malformed-rate", "0.002",
        "--output", str(path),
    )  # fmt: skip
    return path.read_bytes().splitlines(keepends=True)


def records(lines: list[bytes]) -> int:
    """Records a worker reads of these lines (publish skips blank ones)."""
    return sum(1 for line in lines if line.strip())


def publish(kafka: Kafka, lines: list[bytes], path: Path) -> None:
    path.write_bytes(b"".join(lines))
    run_monitor("publish", "--input", str(path), "--bootstrap-servers", kafka.bootstrap,
                "--events-topic", TOPIC, "--partitions", str(PARTITIONS),
                "--batch-events", "50")  # fmt: skip


def readiness(worker: WorkerProcess) -> tuple[bool, list[int]] | None:
    """/readyz: ready or not, and the partitions whose figures the worker holds; None when it
    does not answer."""
    url = f"http://127.0.0.1:{worker.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503: not ready, the body says why
        body = json.loads(exc.read())
    except OSError:
        return None
    return bool(body["ready"]), list(body["partitions"])


def settled(workers: list[WorkerProcess]) -> dict[int, list[int]] | None:
    """Each worker's partitions (by port), once every one is ready, owns some, and together
    they own each partition exactly once; else None."""
    owned: dict[int, list[int]] = {}
    for worker in workers:
        state = readiness(worker)
        if state is None or not state[0] or not state[1]:
            return None
        owned[worker.port] = state[1]
    together = sorted(p for partitions in owned.values() for p in partitions)
    return owned if together == list(range(PARTITIONS)) else None


def wait_settled(workers: list[WorkerProcess], since: float) -> tuple[float, dict[int, list[int]]]:
    """Seconds from ``since`` until the workers have settled (the recovery time), and their
    partitions then."""
    split: dict[int, list[int]] = {}

    def check() -> bool:
        for worker in workers:
            assert worker.process is not None
            if worker.process.poll() is not None:
                raise AssertionError(f"worker exited: {worker.log_tail()}")
        split.update(settled(workers) or {})
        return bool(split)

    wait_for(check, 150, f"workers {[w.port for w in workers]} to be ready and own all "
             f"{PARTITIONS} partitions", step=0.25)  # fmt: skip
    return time.monotonic() - since, split


def exported_contracts(worker: WorkerProcess) -> set[str]:
    """Contracts the worker exports a series of right now (none when it does not answer)."""
    try:
        samples = scrape(worker.metrics_url)
    except Exception:  # stopped, starting or too slow: it exports nothing Prometheus could see
        return set()
    return {
        value for values in samples.values() for labels in values
        for key, value in labels if key == "contract"
    }  # fmt: skip


def read_to_the_end(
    reference: WorkerProcess, workers: list[WorkerProcess], records: int
) -> tuple[Samples, Figures, Figures]:
    """Once the reference has processed all ``records`` and the workers' figures together have
    come to its: the reference's samples, its figures and the workers' summed.

    A lag of 0 alone is no proof: the lag is measured against the end offset of the last fetch,
    so just after a publish it is 0 before the new records were fetched. The reference counts
    what it read; the three (restarted, so their counts start again) are waited for until
    their figures stop differing, or the time runs out and the comparison says where.
    """

    def reference_done() -> bool:
        return caught_up(reference, partitions=PARTITIONS, records=records)

    wait_for(reference_done, 180, f"the reference worker to read {records} records", step=2)
    samples = scrape(reference.metrics_url)
    expected = summed(samples)

    def together() -> Figures:
        return summed(*(scrape(w.metrics_url) for w in workers))

    with contextlib.suppress(AssertionError):
        wait_for(lambda: caught_up(*workers, partitions=PARTITIONS) and together() == expected,
                 180, "the three workers' figures to come to the reference's", step=2)  # fmt: skip
    return samples, expected, together()


def assert_same_figures(actual: Figures, expected: Figures) -> None:
    assert actual.keys() == expected.keys()
    for family in expected:
        assert actual[family] == pytest.approx(expected[family], rel=1e-9), family


@dataclass
class ExportWatch:
    """Scrapes every worker in rounds, every SCRAPE_EVERY_S, and keeps which contracts some
    worker exported in each round (by the round's start)."""

    workers: list[WorkerProcess]
    rounds: list[tuple[float, set[str]]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.done.is_set():
            began = time.monotonic()
            seen: set[str] = set()
            for worker in self.workers:
                seen |= exported_contracts(worker)
            self.rounds.append((began, seen))
            self.done.wait(max(0.0, SCRAPE_EVERY_S - (time.monotonic() - began)))

    def longest_gaps(self, contracts: set[str]) -> dict[str, float]:
        """Per contract, the longest time between two rounds that saw it exported (a gap
        still open at the last round ends there). It overstates the real gap by up to one
        round, never understates it."""
        first_time, first_seen = self.rounds[0]
        assert contracts <= first_seen, sorted(contracts - first_seen)
        last = dict.fromkeys(contracts, first_time)
        longest = dict.fromkeys(contracts, 0.0)
        for moment, seen in self.rounds[1:]:
            for contract in contracts:
                if contract in seen:
                    longest[contract] = max(longest[contract], moment - last[contract])
                    last[contract] = moment
        end = self.rounds[-1][0]
        return {c: max(longest[c], end - last[c]) for c in contracts}


@dataclass
class Feeder:
    """Publishes the slices in order, one every SLICE_EVERY_S until ``hurry`` is set, then the
    rest in one go."""

    kafka: Kafka
    slices: list[list[bytes]]
    directory: Path
    hurry: threading.Event = field(default_factory=threading.Event)
    sent_while_paced: int = 0
    error: BaseException | None = None

    def run(self) -> None:
        try:
            for index, lines in enumerate(self.slices):
                if self.hurry.is_set():
                    rest = [line for part in self.slices[index:] for line in part]
                    publish(self.kafka, rest, self.directory / "rest.jsonl")
                    return
                publish(self.kafka, lines, self.directory / f"slice-{index}.jsonl")
                self.sent_while_paced += 1
                self.hurry.wait(SLICE_EVERY_S)
        except BaseException as exc:  # reported by the test's thread
            self.error = exc


@pytest.mark.xfail(
    strict=False,
    reason="known gap, about one run in four here: after the rolling restart some contracts' "
    "figures stay below the reference's (issue 12 stays open; see its note)",
)
def test_three_workers_split_24_partitions_and_survive_a_rolling_restart(
    kafka: Kafka, tmp_path: Path
) -> None:
    lines = feed(tmp_path)
    half = len(lines) // 2

    def worker(app_id: str, directory: str, *extra: str) -> WorkerProcess:
        return WorkerProcess(kafka, app_id=app_id, events_topic=TOPIC,
                             dlq_topic=f"{app_id}.dlq", data_dir=tmp_path / directory,
                             partitions=PARTITIONS, extra=list(extra))  # fmt: skip

    # The uninterrupted run: one worker of another consumer group on the same topic, so it
    # reads exactly the same records in the same order per partition.
    reference = worker(f"{NAME}-ref", "ref", "--outages-topic", f"{NAME}-ref.outages")
    workers = [worker(NAME, f"w{i}", "--outages-topic", f"{NAME}.outages") for i in range(3)]
    running = [reference, *workers]
    # Both groups start once without events, like a deployment that is up before its
    # producers, and the test begins with their second start.
    for process in running:
        process.start()
    try:
        began = time.monotonic()
        wait_settled([reference], began)
        wait_settled(workers, began)
        for process in running:
            process.stop()
        for process in running:
            process.start()
        began = time.monotonic()
        wait_settled([reference], began)
        # Each owns some, all 24 are owned, none twice (what settled() checks).
        _, split = wait_settled(workers, began)
        assert len(split) == 3, split

        publish(kafka, lines[:half], tmp_path / "first-half.jsonl")
        _, expected, together = read_to_the_end(reference, workers, records(lines[:half]))
        assert sum(expected["callcenter_calls_received_total"].values()) > 2000
        assert_same_figures(together, expected)
        contracts = exported_contracts(reference)
        assert len(contracts) >= 64, sorted(contracts)

        # The rolling restart, while the second half of the feed flows in.
        second = lines[half:]
        step = -(-len(second) // SLICES)
        feeder = Feeder(kafka, [second[i : i + step] for i in range(0, len(second), step)],
                        tmp_path)  # fmt: skip
        watch = ExportWatch(workers)
        threads = [threading.Thread(target=t.run, daemon=True) for t in (watch, feeder)]
        for thread in threads:
            thread.start()
        recoveries: list[tuple[str, int, float]] = []
        try:
            for restarted in workers:
                others = [w for w in workers if w is not restarted]
                stopped_at = time.monotonic()
                restarted.stop()
                assert restarted.process is not None
                assert restarted.process.returncode == 0, restarted.log_tail()
                seconds, _ = wait_settled(others, stopped_at)
                recoveries.append(("stop", restarted.port, seconds))
                started_at = time.monotonic()
                restarted.start()
                seconds, split = wait_settled(workers, started_at)
                recoveries.append(("start", restarted.port, seconds))
                assert len(split) == 3, split
        finally:
            feeder.hurry.set()
            threads[1].join(timeout=120)
            watch.done.set()
            threads[0].join(timeout=30)
        assert feeder.error is None, feeder.error
        assert not threads[1].is_alive(), "the feed did not finish"
        # Events flowed during the restart, not only before and after it.
        assert feeder.sent_while_paced >= 5, (feeder.sent_while_paced, recoveries)

        # Recovery time: from the SIGTERM (or the start) to the first moment every running
        # worker answers /readyz 200 and they own all partitions, each exactly once.
        allowed = SESSION_TIMEOUT_S + max(seconds for _, _, seconds in recoveries)
        gaps = watch.longest_gaps(contracts)
        worst = max(gaps, key=lambda c: gaps[c])
        # What a rollout cost, for the record (pytest -s shows it).
        print(f"recoveries {[(what, round(s, 1)) for what, _, s in recoveries]}, longest "
              f"gap {worst} {gaps[worst]:.1f} s, allowed {allowed:.1f} s, "
              f"{feeder.sent_while_paced} of {SLICES} slices sent during the restart")  # fmt: skip
        assert gaps[worst] <= allowed, (worst, gaps[worst], allowed, recoveries)

        reference_samples, expected, together = read_to_the_end(reference, workers, records(lines))
    finally:
        for process in running:
            process.stop()
    for process in running:
        assert process.log_path is not None
        assert b"Crashed reason" not in process.log_path.read_bytes(), (
            f"an agent crashed: {process.log_path}"
        )
    # Both groups read the same topic; they share its repartition topic, which only events
    # keyed by another contract go through: none here, so neither group saw the other's.
    assert reference_samples["callcenter_events_repartitioned_total"][()] == 0
    assert reference_samples["callcenter_events_accepted_total"][()] > 0.95 * len(lines)
    assert sum(reference_samples["callcenter_events_rejected_total"].values()) > 0
    assert_same_figures(together, expected)
