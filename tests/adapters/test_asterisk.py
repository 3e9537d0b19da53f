"""The Asterisk queue_log adapter: mapping, ids, damage, CSV exports, follow mode."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.adapters.asterisk import AsteriskConverter, IngestStats, parse_actions
from monitor.adapters.follow import Follower
from monitor.adapters.ingest import follow, pipe_items
from monitor.adapters.queue_map import QueueMapError, load_queue_map

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures")
QUEUES = FIXTURES / "queues.csv"
MONITOR = [sys.executable, "-m", "monitor", "--log-level", "ERROR"]


def ingest(*args: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    done = subprocess.run([*MONITOR, "ingest", "asterisk", "--queues", str(QUEUES), *args],
                          capture_output=True, check=True, cwd=ROOT)  # fmt: skip
    events = [json.loads(line) for line in done.stdout.splitlines()]
    summary = json.loads(done.stderr.decode().strip().splitlines()[-1])
    return events, summary


def test_fixture_events_and_counts() -> None:
    events, summary = ingest("--input", str(FIXTURES / "queue_log"))
    calls: dict[str, list[tuple[str, int]]] = {}
    for event in events:
        assert event["event_id"].startswith("ast-")
        calls.setdefault(event["call_id"], []).append((event["type"], event["ts"]))
    assert calls == {
        # DID at :01 is the call's first line: received then; queued at :02, answered at :22.
        "ast-1767618001.1": [("call_received", 1767618001), ("queued", 1767618002),
                             ("answered", 1767618022), ("ended", 1767618400)],
        "ast-1767618100.2": [("call_received", 1767618100), ("queued", 1767618100),
                             ("abandoned", 1767618190)],
        # EXITEMPTY: no agent at all, the caller was thrown out: dropped by default.
        "ast-1767618200.3": [("call_received", 1767618200), ("queued", 1767618200),
                             ("disconnected", 1767618260)],
        # A blind transfer hands the call on: an end, not a drop.
        "ast-1767618320.5": [("call_received", 1767618320), ("queued", 1767618320),
                             ("answered", 1767618350), ("ended", 1767618380)],
    }  # fmt: skip
    lines = {(e["contract_id"], e["line"]) for e in events}
    assert lines == {("H1001", "member_services"), ("H1001", "pharmacy_help_desk"),
                     ("S4004", "member_services")}  # fmt: skip
    assert summary == {
        "sent": 14,
        "lines": 20,
        "events": {"abandoned": 1, "answered": 2, "call_received": 4, "disconnected": 1,
                   "ended": 2, "queued": 4},
        "ignored": {"PAUSE": 1, "QUEUESTART": 1, "RINGNOANSWER": 1},
        "bad_lines": {"blank": 1, "nul_bytes": 1, "truncated_last_line": 1},
        "unknown_events": {"SOMETHINGNEW": 1},
        "unmapped_queues": {"unknown-queue": 2},
    }  # fmt: skip


def test_no_caller_number_leaves_the_adapter() -> None:
    events, _ = ingest("--input", str(FIXTURES / "queue_log"))
    text = json.dumps(events)
    for number in ("3125550101", "3125550102", "8005551212"):
        assert number not in text


def test_csv_export_of_the_same_data_gives_the_same_events() -> None:
    raw, _ = ingest("--input", str(FIXTURES / "queue_log"))
    exported, summary = ingest("--input", str(FIXTURES / "queue_log.csv"), "--timezone", "UTC")
    assert exported == raw
    assert summary["bad_lines"] == {}


def test_naive_csv_times_need_a_zone() -> None:
    done = subprocess.run([*MONITOR, "ingest", "asterisk", "--queues", str(QUEUES), "--input",
                           str(FIXTURES / "queue_log.csv")], capture_output=True, cwd=ROOT,
                          check=False)  # fmt: skip
    assert done.returncode == 3  # no event came out (issue 11: exit statuses)
    summary = json.loads(done.stderr.decode().strip().splitlines()[-1])
    assert summary["sent"] == 0 and summary["bad_lines"] == {"bad_time": 17}


def test_ingesting_twice_changes_no_figure(tmp_path: Path) -> None:
    once = tmp_path / "once.jsonl"
    subprocess.run([*MONITOR, "ingest", "asterisk", "--queues", str(QUEUES), "--input",
                    str(FIXTURES / "queue_log"), "--output", str(once)], check=True,
                   capture_output=True, cwd=ROOT)  # fmt: skip

    def report(*inputs: Path) -> dict[str, Any]:
        args = [arg for path in inputs for arg in ("--input", str(path))]
        done = subprocess.run([*MONITOR, "report", *args], check=True, capture_output=True,
                              cwd=ROOT)  # fmt: skip
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    single, double = report(once), report(once, once)
    assert double["rows"] == single["rows"]
    assert double["duplicate_events"] == 14
    rows = {(r["contract_id"], r["line"]): r for r in single["rows"]}
    member = rows[("H1001", "member_services")]
    assert (member["calls_received"], member["calls_answered"]) == (2, 2)
    assert member["avg_hold_seconds"] == 25.0  # (20 s + 30 s) / 2
    assert rows[("S4004", "member_services")]["calls_disconnected"] == 1


def test_end_mapping_is_configurable() -> None:
    events, _ = ingest("--input", str(FIXTURES / "queue_log"), "--map", "EXITEMPTY=ended",
                       "--map", "BLINDTRANSFER=disconnected")  # fmt: skip
    kinds = {(e["call_id"], e["type"]) for e in events}
    assert ("ast-1767618200.3", "ended") in kinds
    assert ("ast-1767618320.5", "disconnected") in kinds
    with pytest.raises(ValueError, match="EVENT=type"):
        parse_actions(["EXITEMPTY=vanished"])


def test_queue_map_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "queues.csv"
    bad.write_text("queue,contract_id,line\nq1,H1001,member_services\nq1,H1002,\n")
    with pytest.raises(QueueMapError, match=r"queues.csv:3: queue 'q1' is mapped twice"):
        load_queue_map(bad)
    bad.write_text("queue,contract_id,line\nq1,ACME,\n")
    with pytest.raises(QueueMapError, match=r":2: contract_id 'ACME'"):
        load_queue_map(bad)


LINES = [
    b"1767618002|1.1|medicare-members|NONE|ENTERQUEUE||3125550101|1\n",
    b"1767618022|1.1|medicare-members|SIP/a|CONNECT|20|1.9|2\n",
    b"1767618400|1.1|medicare-members|SIP/a|COMPLETECALLER|20|378|1\n",
    b"1767618500|2.2|medicare-members|NONE|ENTERQUEUE||3125550102|1\n",
    b"1767618560|2.2|medicare-members|NONE|ABANDON|1|1|60\n",
]


def test_follower_reads_across_rotation_and_resumes(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    position = tmp_path / "position.json"
    log.write_bytes(LINES[0] + LINES[1][:10])  # the second line is still being written
    follower = Follower(log, position)
    assert follower.poll() == [LINES[0]]
    with log.open("ab") as handle:
        handle.write(LINES[1][10:])
    assert follower.poll() == [LINES[1]]
    follower.commit()
    # logrotate: rename, then the PBX writes to a new file; the old one got one more line.
    with log.open("ab") as handle:
        handle.write(LINES[2])
    os.rename(log, tmp_path / "queue_log.1")
    log.write_bytes(LINES[3])
    assert follower.poll() == [LINES[2], LINES[3]]
    follower.commit()
    follower.close()
    # A restart resumes after the last committed line, in the new file.
    with log.open("ab") as handle:
        handle.write(LINES[4])
    resumed = Follower(log, position)
    assert resumed.poll() == [LINES[4]]
    resumed.close()


def test_follow_mode_converts_and_saves_its_position(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    out = tmp_path / "events.jsonl"
    position = tmp_path / "position.json"
    log.write_bytes(b"".join(LINES[:3]))
    converter = AsteriskConverter(load_queue_map(QUEUES))

    def run() -> int:
        with out.open("ab") as sink:
            return asyncio.run(follow(log, converter, position_file=position, poll_seconds=0.01,
                                      out=sink, kafka=None, max_polls=1))  # fmt: skip

    assert run() == 4  # received, queued, answered, ended
    assert run() == 0  # nothing new: nothing re-sent
    with log.open("ab") as handle:
        handle.write(LINES[3] + LINES[4])
    assert run() == 3
    types = [json.loads(line)["type"] for line in out.read_bytes().splitlines()]
    assert types == ["call_received", "queued", "answered", "ended",
                     "call_received", "queued", "abandoned"]  # fmt: skip


def test_damaged_lines_are_counted_not_fatal() -> None:
    stats = IngestStats()
    converter = AsteriskConverter(load_queue_map(QUEUES), stats=stats)
    damaged = [
        b"\n",
        b"garbage\n",
        b"\xff\xfe|x|y|z|w\n",
        b"abc|1.1|medicare-members|NONE|ENTERQUEUE\n",
        b"1767618002|1.1|medicare-members|NONE|ENTER\x00QUEUE|\n",
        b"1767618002|1.1|medi",
    ]
    events = [e for item in pipe_items(damaged, stats) for e in converter.convert(item)]
    assert events == []
    assert dict(stats.bad) == {"blank": 1, "too_few_fields": 1, "invalid_utf8": 1,
                               "bad_time": 1, "nul_bytes": 1, "truncated_last_line": 1}  # fmt: skip
