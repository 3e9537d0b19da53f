"""The Amazon Connect adapters: contact trace records and EventBridge contact events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from monitor.adapters.connect import iter_json_documents

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures")
QUEUES = FIXTURES / "connect_queues.csv"
MONITOR = [sys.executable, "-m", "monitor", "--log-level", "ERROR"]


def ingest(kind: str, *inputs: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    args = [arg for path in inputs for arg in ("--input", str(path))]
    done = subprocess.run([*MONITOR, "ingest", kind, "--queues", str(QUEUES), *args],
                          capture_output=True, check=True, cwd=ROOT)  # fmt: skip
    events = [json.loads(line) for line in done.stdout.splitlines()]
    return events, json.loads(done.stderr.decode().strip().splitlines()[-1])


def by_call(events: list[dict[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for event in events:
        out.setdefault(event["call_id"], []).append((event["type"], event["ts"]))
    return out


T = 1767618000.0  # 2026-01-05T13:00:00Z


def test_ctr_mapping() -> None:
    events, summary = ingest("connect-ctr", FIXTURES / "connect_ctr.json")
    assert by_call(events) == {
        # The newest delivery wins: the second copy has the disconnect.
        "connect-c-1": [("call_received", T), ("queued", T + 30), ("answered", T + 50),
                        ("ended", T + 360)],
        # No agent, the caller hung up while queued: abandoned.
        "connect-c-2": [("call_received", T + 600), ("queued", T + 610), ("abandoned", T + 700)],
        # No agent, TELECOM_PROBLEM: dropped.
        "connect-c-3": [("call_received", T + 1200), ("queued", T + 1210),
                        ("disconnected", T + 1260)],
        # Two contacts linked by InitialContactId are one call; the first leg has no end.
        "connect-c-4a": [("call_received", T + 1800), ("queued", T + 1805), ("answered", T + 1815),
                         ("call_received", T + 1980), ("queued", T + 1981),
                         ("answered", T + 2041), ("ended", T + 2400)],
        # Hung up in the IVR, never asked for a person: an end, not an abandon or a drop.
        "connect-c-5": [("call_received", T + 3000), ("ended", T + 3040)],
    }  # fmt: skip
    assert {e["contract_id"] for e in events if e["call_id"] == "connect-c-5"} == {"S4004"}
    assert summary["ignored"] == {"channel_CHAT": 1, "older_delivery": 1}
    assert "+1312" not in json.dumps(events)  # caller numbers never leave the adapter


def test_ctr_redelivery_and_formats_give_the_same_result(tmp_path: Path) -> None:
    once, _ = ingest("connect-ctr", FIXTURES / "connect_ctr.json")
    records = list(iter_json_documents((FIXTURES / "connect_ctr.json").read_bytes()))
    array = tmp_path / "array.json"
    array.write_text(json.dumps(records[::-1]))  # a JSON array, newest first
    again, summary = ingest("connect-ctr", array, FIXTURES / "connect_ctr.json")
    assert sorted(again, key=lambda e: e["event_id"]) == sorted(once, key=lambda e: e["event_id"])
    assert summary["ignored"]["older_delivery"] == 8


def test_eventbridge_events_out_of_order() -> None:
    events, summary = ingest("connect-events", FIXTURES / "connect_events.jsonl")
    assert by_call(events) == {
        "connect-e-1": [("call_received", T), ("queued", T + 20), ("answered", T + 45),
                        ("ended", T + 300)],
        "connect-e-2": [("call_received", T + 600), ("queued", T + 615), ("abandoned", T + 735)],
    }  # fmt: skip
    assert {e["contract_id"] for e in events} == {"H2002"}  # queue ARN mapping
    assert summary["ignored"] == {"COMPLETED": 1}


def test_garbage_in_a_firehose_file_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "damaged.json"
    good = (FIXTURES / "connect_ctr.json").read_text()
    path.write_text('{"broken": \n' + good + "\n[1, 2]\n")
    events, summary = ingest("connect-ctr", path)
    assert len(events) == 19
    assert summary["bad_lines"] == {"invalid_json": 1, "not_a_contact_record": 2}
