"""CLI tests for ``monitor report`` (issue 2, sections 2, 4, 5 and 6).

Most tests call :func:`monitor.cli.main` in-process with an argv list and capture the binary
stdout/stderr; a few run the installed ``monitor`` console script in a subprocess.

Behaviour of the code documented here (the spec leaves it open):

* ``--contracts`` omitted: an empty registry, so every contract gets ``America/New_York`` and
  ``parent_org`` null (no implicit ``deploy/contracts.csv``).
* CSV cells: ``None`` is the empty string, booleans are ``true``/``false``, floats are
  ``str(float)`` (repr-exact, so they parse back to the JSON value), line ending ``\\n``.
* ``line_number`` in the rejects file is the physical line number in its input (blank lines
  count for numbering, but are never rejected or counted as events).
* Usage-type errors (missing input, bad registry, unwritable output) exit 2 with one line
  ``monitor report: error: ...`` on stderr.
* No valid event at all (an empty file included) exits 3 (issue 11, section 5), the document
  still written; tests/cli/test_exit_statuses.py has the rest of the exit statuses.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from tests.spec import ROW_FIELDS

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "deploy" / "contracts.csv"
MONITOR = Path(sys.executable).parent / "monitor"

MAX_LINE = 64 * 1024

ROW_KEYS = list(ROW_FIELDS)
# What a report without any outage adds to the contract's document (issue 4).
NO_OUTAGES: dict[str, list[object]] = {"outages": [], "outage_days": []}
INT_KEYS = {
    "calls_received",
    "calls_queued",
    "calls_answered",
    "answered_within_30s",
    "calls_disconnected",
    "tty_calls",
    "tty_connected_within_7m",
    "interpreter_calls",
    "interpreter_connected_within_8m",
}
FLOAT_OR_NULL_KEYS = {"answered_within_30s_ratio", "avg_hold_seconds", "disconnect_rate"}
BOOL_OR_NULL_KEYS = {"compliant_hold", "compliant_answer", "compliant_disconnect"}
REJECT_KEYS = {"input", "line_number", "reason", "field", "detail"}


# --------------------------------------------------------------------------- helpers


def ev(
    event_id: str,
    call_id: str | None,
    type_: str,
    ts: Any,
    contract: str = "H1001",
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": event_id, "contract_id": contract, "type": type_}
    if call_id is not None:
        event["call_id"] = call_id
    event["ts"] = ts
    event.update(extra)
    return event


def encode(event: dict[str, Any] | bytes | str) -> bytes:
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode("utf-8")
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


def jsonl(
    lines: Sequence[dict[str, Any] | bytes | str],
    *,
    newline: bytes = b"\n",
    final_newline: bool = True,
) -> bytes:
    body = newline.join(encode(item) for item in lines)
    return body + newline if final_newline and lines else body


def run(argv: Sequence[str], capsysbinary: pytest.CaptureFixture[bytes]) -> tuple[int, bytes, str]:
    """Run ``monitor`` in-process; return (exit status, stdout bytes, stderr text)."""
    capsysbinary.readouterr()
    status = main(list(argv))
    captured = capsysbinary.readouterr()
    return status, captured.out, captured.err.decode("utf-8", "replace")


def report_json(
    capsysbinary: pytest.CaptureFixture[bytes], *args: str, expect: int = 0
) -> tuple[dict[str, Any], str]:
    status, out, err = run(["report", *args], capsysbinary)
    assert status == expect, err
    document = json.loads(out)  # the whole of stdout is exactly one JSON document
    assert_document_shape(document)
    return document, err


def assert_document_shape(document: Any) -> None:
    assert isinstance(document, dict)
    assert list(document) == [
        "rows",
        "rejected_events",
        "duplicate_events",
        "outages",
        "outage_days",
    ]
    assert type(document["rejected_events"]) is int
    assert type(document["duplicate_events"]) is int
    assert isinstance(document["rows"], list)
    keys = [(r["contract_id"], r["line"], r["date"]) for r in document["rows"]]
    assert keys == sorted(keys), "rows must be sorted by contract_id, line, date"
    assert len(set(keys)) == len(keys), "one row per (contract, line, date)"
    for row in document["rows"]:
        assert list(row) == ROW_KEYS
        for name in ("contract_id", "line", "date"):
            assert type(row[name]) is str
        assert row["parent_org"] is None or type(row["parent_org"]) is str
        for name in INT_KEYS:
            assert type(row[name]) is int, name
        for name in FLOAT_OR_NULL_KEYS:
            assert row[name] is None or type(row[name]) is float, name
        for name in BOOL_OR_NULL_KEYS:
            assert row[name] is None or type(row[name]) is bool, name


def row(
    contract_id: str,
    line: str,
    date: str,
    parent_org: str | None,
    counts: tuple[int, int, int, int],
    ratio: float | None,
    avg_hold: float | None,
    disconnected: int,
    rate: float | None,
    tty: tuple[int, int] = (0, 0),
    interpreter: tuple[int, int] = (0, 0),
    flags: tuple[bool | None, bool | None, bool | None] = (None, None, None),
) -> dict[str, Any]:
    received, queued, answered, within = counts
    return {
        "contract_id": contract_id,
        "line": line,
        "date": date,
        "parent_org": parent_org,
        "calls_received": received,
        "calls_queued": queued,
        "calls_answered": answered,
        "answered_within_30s": within,
        "answered_within_30s_ratio": ratio,
        "avg_hold_seconds": avg_hold,
        "calls_disconnected": disconnected,
        "disconnect_rate": rate,
        "tty_calls": tty[0],
        "tty_connected_within_7m": tty[1],
        "interpreter_calls": interpreter[0],
        "interpreter_connected_within_8m": interpreter[1],
        "compliant_hold": flags[0],
        "compliant_answer": flags[1],
        "compliant_disconnect": flags[2],
    }


def received(event_id: str, call_id: str, contract: str = "H1001", **extra: Any) -> dict[str, Any]:
    return ev(event_id, call_id, "call_received", "2026-01-05T15:00:00Z", contract, **extra)


def simple_row(contract_id: str = "H1001", calls: int = 1, **overrides: Any) -> dict[str, Any]:
    """The row of ``calls`` calls that only have a call_received (no contracts file)."""
    base = row(
        contract_id,
        "member_services",
        "2026-01-05",
        None,
        (calls, 0, 0, 0),
        None,
        None,
        0,
        0.0,
        flags=(None, None, True),
    )
    base.update(overrides)
    return base


# --------------------------------------------------------------------------- the scenario

# Events in scrambled order (the report must not depend on arrival order or input sorting).
SCENARIO_EVENTS: list[dict[str, Any]] = [
    # H9999 is not in the registry: New York time, parent_org null. Queued then abandoned.
    ev("x1", "z1", "call_received", "2026-01-05T12:00:00Z", "H9999"),
    ev("x2", "z1", "queued", "2026-01-05T12:00:20Z", "H9999"),
    ev("x3", "z1", "abandoned", "2026-01-05T12:00:40Z", "H9999"),
    # H6348 (America/Los_Angeles): 06:30Z on the 6th is 22:30 on the 5th locally. Hold 180 s.
    ev("w3", "y1", "answered", "2026-01-06T06:33:10Z", "H6348"),
    ev("w1", "y1", "call_received", "2026-01-06T06:30:00Z", "H6348"),
    ev("w2", "y1", "queued", "2026-01-06T06:30:10Z", "H6348"),
    # H1001 call D on 2026-01-06: hold exactly 30 s, TTY in 4 min, interpreter in 10 min.
    ev("d1", "cD", "call_received", "2026-01-06T15:00:00Z"),
    ev("d2", "cD", "queued", "2026-01-06T15:00:10Z"),
    ev("d3", "cD", "answered", "2026-01-06T15:00:40Z"),
    ev("d4", "cD", "tty_requested", "2026-01-06T15:01:00Z"),
    ev("d5", "cD", "tty_connected", "2026-01-06T15:05:00Z"),
    ev("d6", "cD", "interpreter_requested", "2026-01-06T15:02:00Z"),
    ev("d7", "cD", "interpreter_connected", "2026-01-06T15:12:00Z"),
    # H1001 call C on the pharmacy help desk: self-served in the IVR, never queued.
    ev("c1", "cC", "call_received", "2026-01-05T17:00:00Z", line="pharmacy_help_desk"),
    ev("c2", "cC", "ended", "2026-01-05T17:01:00Z", line="pharmacy_help_desk"),
    # H1001 call B: hold 50 s, then dropped. Epoch-seconds timestamps.
    ev("b4", "cB", "disconnected", 1767628980),  # 16:03:00Z
    ev("b1", "cB", "call_received", 1767628800),  # 16:00:00Z
    ev("b2", "cB", "queued", 1767628820),  # 16:00:20Z
    ev("b3", "cB", "answered", 1767628870),  # 16:01:10Z
    # H1001 call A: hold 20 s; an explicit null line means member_services; offsets allowed.
    ev("a1", "cA", "call_received", "2026-01-05T10:00:00-05:00", line=None),
    ev("a2", "cA", "queued", "2026-01-05T15:00:30Z", extra_field={"ignored": True}),
    ev("a3", "cA", "answered", "2026-01-05T15:00:50Z"),
    ev("a4", "cA", "ended", "2026-01-05T15:05:00Z"),
    # A status event: accepted, no effect on the call figures.
    ev("s1", None, "service_down", "2026-01-05T18:00:00Z", reason="maintenance"),
]

# The service_down above opens a declared outage (H1001 is in America/New_York). The replay's
# clock ends at the last event (Jan 6 15:12Z) less the 2-minute grace: 15:10Z.
SCENARIO_OUTAGES = {
    "outages": [
        {
            "contract_id": "H1001",
            "line": "member_services",
            "start": "2026-01-05T18:00:00Z",
            "end": None,
            "open": True,
            "cause": "declared",
            "causes": ["declared"],
            "reason": "maintenance",
            "duration_seconds": 21 * 3600.0 + 600.0,
            "restore_deadline": "2026-01-08T18:00:00Z",
            "breached_72h": False,
        }
    ],
    # Required hours in January: 8:00-20:00 local every day, 13:00-01:00Z.
    "outage_days": [
        {"contract_id": "H1001", "line": "member_services", "date": "2026-01-05",
         "outage_minutes_in_required_hours": 7 * 60},
        {"contract_id": "H1001", "line": "member_services", "date": "2026-01-06",
         "outage_minutes_in_required_hours": 2 * 60 + 10},
    ],
}  # fmt: skip

EXPECTED_ROWS_WITH_REGISTRY = [
    row(
        "H1001",
        "member_services",
        "2026-01-05",
        "Example Health Partners",
        (2, 2, 2, 1),
        0.5,
        35.0,
        1,
        0.5,
        flags=(True, False, False),
    ),
    row(
        "H1001",
        "member_services",
        "2026-01-06",
        "Example Health Partners",
        (1, 1, 1, 1),
        1.0,
        30.0,
        0,
        0.0,
        tty=(1, 1),
        interpreter=(1, 0),
        flags=(True, True, True),
    ),
    row(
        "H1001",
        "pharmacy_help_desk",
        "2026-01-05",
        "Example Health Partners",
        (1, 0, 0, 0),
        None,
        None,
        0,
        0.0,
        flags=(None, None, True),
    ),
    row(
        "H6348",
        "member_services",
        "2026-01-05",
        "Centene Corporation",
        (1, 1, 1, 0),
        0.0,
        180.0,
        0,
        0.0,
        flags=(False, False, True),
    ),
    row(
        "H9999",
        "member_services",
        "2026-01-05",
        None,
        (1, 1, 0, 0),
        0.0,
        None,
        0,
        0.0,
        flags=(None, False, True),
    ),
]


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(SCENARIO_EVENTS))
    return path


# --------------------------------------------------------------------------- JSON output


def test_json_document_rows_sorted_with_every_figure(
    scenario_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    document, _ = report_json(
        capsysbinary, "--input", str(scenario_file), "--contracts", str(CONTRACTS)
    )
    assert document == {
        "rows": EXPECTED_ROWS_WITH_REGISTRY,
        "rejected_events": 0,
        "duplicate_events": 0,
        **SCENARIO_OUTAGES,
    }


def test_json_is_the_default_format_and_explicit_json_is_identical(
    scenario_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    args = ["report", "--input", str(scenario_file), "--contracts", str(CONTRACTS)]
    status_default, out_default, _ = run(args, capsysbinary)
    status_json, out_json, _ = run([*args, "--format", "json"], capsysbinary)
    assert status_default == status_json == 0
    assert out_default == out_json


def test_contracts_omitted_uses_new_york_and_null_parent_org(
    scenario_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    document, _ = report_json(capsysbinary, "--input", str(scenario_file))
    expected = []
    for original in EXPECTED_ROWS_WITH_REGISTRY:
        item = {**original, "parent_org": None}
        if item["contract_id"] == "H6348":
            # 2026-01-06T06:30Z is 01:30 on the 6th in New York (22:30 on the 5th in LA).
            item["date"] = "2026-01-06"
        expected.append(item)
    # H1001 is in New York either way: the same outage.
    assert document == {
        "rows": expected, "rejected_events": 0, "duplicate_events": 0, **SCENARIO_OUTAGES
    }  # fmt: skip


def test_empty_input_gives_an_empty_document(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    # Nothing valid: exit status 3, but the (empty) document is still written.
    document, err = report_json(capsysbinary, "--input", str(empty), expect=3)
    assert document == {"rows": [], "rejected_events": 0, "duplicate_events": 0, **NO_OUTAGES}
    assert "monitor report: no valid event in 1 input" in err


def test_arrival_order_of_lines_does_not_matter(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    forward = tmp_path / "forward.jsonl"
    backward = tmp_path / "backward.jsonl"
    forward.write_bytes(jsonl(SCENARIO_EVENTS))
    backward.write_bytes(jsonl(list(reversed(SCENARIO_EVENTS))))
    one, _ = report_json(capsysbinary, "--input", str(forward), "--contracts", str(CONTRACTS))
    two, _ = report_json(capsysbinary, "--input", str(backward), "--contracts", str(CONTRACTS))
    assert one == two
    assert one["rows"] == EXPECTED_ROWS_WITH_REGISTRY


# --------------------------------------------------------------------------- CSV output


def test_csv_has_the_json_columns_in_order_and_one_row_per_key(
    scenario_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    base = ["report", "--input", str(scenario_file), "--contracts", str(CONTRACTS)]
    status, out, err = run([*base, "--format", "csv"], capsysbinary)
    assert status == 0, err
    text = out.decode("utf-8")
    assert "\r" not in text
    assert text.endswith("\n")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ROW_KEYS
    body = table[1:]
    assert len(body) == len(EXPECTED_ROWS_WITH_REGISTRY)

    _, json_out, _ = run(base, capsysbinary)
    json_rows = json.loads(json_out)["rows"]
    for cells, record in zip(body, json_rows, strict=True):
        assert len(cells) == len(ROW_KEYS)
        for name, cell in zip(ROW_KEYS, cells, strict=True):
            value = record[name]
            if value is None:
                assert cell == "", name
            elif isinstance(value, bool):
                assert cell == ("true" if value else "false"), name
            elif isinstance(value, int):
                assert cell == str(value), name
            elif isinstance(value, float):
                assert float(cell) == value, name
            else:
                assert cell == value, name


def test_csv_exact_text_of_a_small_report(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(
        jsonl(
            [
                ev("a1", "c1", "call_received", "2026-01-05T15:00:00Z"),
                ev("a2", "c1", "queued", "2026-01-05T15:00:30Z"),
                ev("a3", "c1", "answered", "2026-01-05T15:00:50Z"),
                ev("b1", "c2", "call_received", "2026-01-05T15:00:00Z", "H9999"),
            ]
        )
    )
    status, out, err = run(
        ["report", "--input", str(path), "--contracts", str(CONTRACTS), "--format", "csv"],
        capsysbinary,
    )
    assert status == 0, err
    assert out.decode("utf-8") == (
        ",".join(ROW_KEYS) + "\n"
        "H1001,member_services,2026-01-05,Example Health Partners,"
        "1,1,1,1,1.0,20.0,0,0.0,0,0,0,0,true,true,true\n"
        "H9999,member_services,2026-01-05,,1,0,0,0,,,0,0.0,0,0,0,0,,,true\n"
    )


def test_csv_of_empty_input_is_the_header_alone(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n\n")
    status, out, _ = run(["report", "--input", str(empty), "--format", "csv"], capsysbinary)
    assert status == 3  # nothing valid; the header is still written
    assert out.decode("utf-8") == ",".join(ROW_KEYS) + "\n"


# --------------------------------------------------------------------------- --output


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_output_file_receives_the_report_and_stdout_stays_empty(
    fmt: str, scenario_file: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    base = ["report", "--input", str(scenario_file), "--format", fmt]
    status, to_stdout, _ = run(base, capsysbinary)
    assert status == 0
    target = tmp_path / f"report.{fmt}"
    status, out, _ = run([*base, "--output", str(target)], capsysbinary)
    assert status == 0
    assert out == b""
    assert target.read_bytes() == to_stdout


def test_output_dash_is_stdout(
    scenario_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    base = ["report", "--input", str(scenario_file)]
    _, plain, _ = run(base, capsysbinary)
    status, dashed, _ = run([*base, "--output", "-"], capsysbinary)
    assert status == 0
    assert dashed == plain


def test_unwritable_output_is_a_clear_error(
    scenario_file: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    target = tmp_path / "no-such-dir" / "report.json"
    status, out, err = run(
        ["report", "--input", str(scenario_file), "--output", str(target)], capsysbinary
    )
    assert status == 2
    assert out == b""
    assert f"monitor report: error: cannot write {target}" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- rejections


def test_rejects_file_lists_each_rejected_line_with_its_reason(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    too_large = encode(received("big", "cbig", pad="x" * (MAX_LINE + 10)))
    bad_utf8 = b'{"event_id":"u1","call_id":"cu","contract_id":"H1001",' + b'"type":"\xff\xfe"}'
    lines: list[dict[str, Any] | bytes | str] = [
        received("ok1", "c1"),  # 1
        b"",  # 2 blank: skipped, not counted
        b"   \t ",  # 3 white space only: skipped, not counted
        b"not json",  # 4
        b"[1, 2]",  # 5
        ev("", "c9", "queued", 1767628800) | {"event_id": None},  # 6 event_id null = missing
        received("e7", "c7", contract="ZZ999"),  # 7
        bad_utf8,  # 8
        too_large,  # 9
        b"\r",  # 10 blank (CR only)
        received("ok2", "c2"),  # 11
        ev("e12", "c12", "queued", "2026-01-05T10:00:00"),  # 12 no offset
        ev("e13", "c13", "queued", True),  # 13 a boolean is not a number
    ]
    events = tmp_path / "events.jsonl"
    events.write_bytes(jsonl(lines))
    rejects = tmp_path / "rejects.jsonl"
    document, _ = report_json(capsysbinary, "--input", str(events), "--rejects", str(rejects))
    assert document == {
        "rows": [simple_row(calls=2)],
        "rejected_events": 8,
        "duplicate_events": 0,
        **NO_OUTAGES,
    }

    records = [json.loads(item) for item in rejects.read_bytes().splitlines()]
    assert rejects.read_bytes().endswith(b"\n")
    summary = [(r["line_number"], r["reason"], r["field"]) for r in records]
    assert summary == [
        (4, "invalid_json", None),
        (5, "not_object", None),
        (6, "missing_field", "event_id"),
        (7, "invalid_field", "contract_id"),
        (8, "invalid_utf8", None),
        (9, "too_large", None),
        (12, "invalid_field", "ts"),
        (13, "invalid_field", "ts"),
    ]
    for record in records:
        assert record["input"] == str(events)
        assert type(record["detail"]) is str and record["detail"]
        if record["reason"] == "invalid_utf8":
            assert set(record) == REJECT_KEYS | {"raw_base64"}
            assert base64.b64decode(record["raw_base64"]) == bad_utf8
        else:
            assert set(record) == REJECT_KEYS | {"raw"}
    by_line = {r["line_number"]: r for r in records}
    assert by_line[4]["raw"] == "not json"
    assert by_line[5]["raw"] == "[1, 2]"
    assert by_line[7]["raw"] == encode(lines[6]).decode()
    assert by_line[9]["raw"] == too_large.decode()
    assert str(len(too_large)) in by_line[9]["detail"]


def test_rejected_events_do_not_make_the_exit_status_non_zero(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_bytes(jsonl([received("ok", "c1")]) + b"garbage\n[]\n42\n\xff\n")
    status, out, err = run(["report", "--input", str(path)], capsysbinary)
    assert status == 0, err  # without --max-reject-ratio one valid event is enough
    assert json.loads(out) == {
        "rows": [simple_row()],
        "rejected_events": 4,
        "duplicate_events": 0,
        **NO_OUTAGES,
    }
    assert "Traceback" not in err


def test_line_over_64_kib_is_too_large_and_the_rest_is_processed(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    def padded(event_id: str, call_id: str, size: int) -> bytes:
        prefix = encode(received(event_id, call_id))[:-1] + b',"pad":"'
        suffix = b'"}'
        line = prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix
        assert len(line) == size
        return line

    exactly = padded("at-limit", "c1", MAX_LINE)  # 64 KiB: still accepted
    over = padded("over", "c2", MAX_LINE + 1)  # one byte more: too_large
    path = tmp_path / "big.jsonl"
    # CRLF: the \r is a terminator, not part of the 64 KiB.
    path.write_bytes(exactly + b"\r\n" + over + b"\r\n" + encode(received("after", "c3")) + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    document, _ = report_json(capsysbinary, "--input", str(path), "--rejects", str(rejects))
    assert document == {
        "rows": [simple_row(calls=2)],
        "rejected_events": 1,
        "duplicate_events": 0,
        **NO_OUTAGES,
    }
    (record,) = [json.loads(x) for x in rejects.read_bytes().splitlines()]
    assert record["reason"] == "too_large"
    assert record["line_number"] == 2
    assert record["raw"] == over.decode()


def test_huge_line_is_rejected_and_its_raw_start_kept(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    huge = b'{"event_id":"h","pad":"' + b"y" * (5 * 1024 * 1024) + b'"}'
    path = tmp_path / "huge.jsonl"
    path.write_bytes(
        encode(received("a", "c1")) + b"\n" + huge + b"\n" + encode(received("b", "c2"))
    )
    rejects = tmp_path / "rejects.jsonl"
    document, _ = report_json(capsysbinary, "--input", str(path), "--rejects", str(rejects))
    assert document == {
        "rows": [simple_row(calls=2)],
        "rejected_events": 1,
        "duplicate_events": 0,
        **NO_OUTAGES,
    }
    (record,) = [json.loads(x) for x in rejects.read_bytes().splitlines()]
    assert record["reason"] == "too_large"
    assert record["line_number"] == 2
    assert str(len(huge)) in record["detail"]
    assert huge.decode().startswith(record["raw"])
    # Documented behaviour: past 4 MiB the rest of the raw line is dropped and its size noted.
    assert record["raw_truncated_from_bytes"] == len(huge)


def test_invalid_utf8_inside_an_ignored_field_is_still_rejected(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # A valid event of the same contract comes first: the verdict must not depend on it.
    latin1 = encode(received("u1", "c1"))[:-1] + b',"note":"caf\xe9"}'
    garbage = encode(received("u2", "c2"))[:-1] + b',"note":"\xff"}'
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(jsonl([received("u0", "c0"), latin1, garbage]))
    rejects = tmp_path / "rejects.jsonl"
    document, _ = report_json(capsysbinary, "--input", str(path), "--rejects", str(rejects))
    assert document == {
        "rows": [simple_row()],
        "rejected_events": 2,
        "duplicate_events": 0,
        **NO_OUTAGES,
    }
    records = [json.loads(x) for x in rejects.read_bytes().splitlines()]
    assert [(r["line_number"], r["reason"]) for r in records] == [
        (2, "invalid_utf8"),
        (3, "invalid_utf8"),
    ]
    assert [base64.b64decode(r["raw_base64"]) for r in records] == [latin1, garbage]
    assert all("raw" not in r for r in records)


def test_blank_lines_are_neither_counted_nor_rejected(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "blanks.jsonl"
    path.write_bytes(b"\n\r\n   \n\t\r\n" + encode(received("a", "c1")) + b"\n\n\n")
    rejects = tmp_path / "rejects.jsonl"
    document, _ = report_json(capsysbinary, "--input", str(path), "--rejects", str(rejects))
    assert document == {
        "rows": [simple_row()],
        "rejected_events": 0,
        "duplicate_events": 0,
        **NO_OUTAGES,
    }
    assert rejects.read_bytes() == b""


# --------------------------------------------------------------------------- line endings


def test_crlf_and_missing_final_newline(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    lf = tmp_path / "lf.jsonl"
    crlf = tmp_path / "crlf.jsonl"
    lf.write_bytes(jsonl(SCENARIO_EVENTS))
    crlf.write_bytes(jsonl(SCENARIO_EVENTS, newline=b"\r\n", final_newline=False))
    assert not crlf.read_bytes().endswith(b"\n")
    rejects = tmp_path / "rejects.jsonl"
    one, _ = report_json(capsysbinary, "--input", str(lf), "--contracts", str(CONTRACTS))
    two, _ = report_json(
        capsysbinary,
        "--input",
        str(crlf),
        "--contracts",
        str(CONTRACTS),
        "--rejects",
        str(rejects),
    )
    assert two == one
    assert two["rows"] == EXPECTED_ROWS_WITH_REGISTRY
    assert rejects.read_bytes() == b""


def test_final_line_without_newline_is_read(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "tail.jsonl"
    path.write_bytes(encode(received("a", "c1")) + b"\n" + encode(received("b", "c2")))
    document, _ = report_json(capsysbinary, "--input", str(path))
    assert document["rows"] == [simple_row(calls=2)]


# --------------------------------------------------------------------------- several inputs


def test_duplicate_event_id_across_files_first_file_wins(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    first = tmp_path / "first.jsonl"
    second = tmp_path / "second.jsonl"
    first.write_bytes(jsonl([received("same", "c1", "H1001")]))
    second.write_bytes(jsonl([received("same", "c2", "H2002"), received("other", "c3", "H2002")]))

    forward, _ = report_json(capsysbinary, "--input", str(first), "--input", str(second))
    assert forward == {
        "rows": [simple_row("H1001"), simple_row("H2002")],
        "rejected_events": 0,
        "duplicate_events": 1,
        **NO_OUTAGES,
    }
    backward, _ = report_json(capsysbinary, "--input", str(second), "--input", str(first))
    assert backward == {
        "rows": [simple_row("H2002", calls=2)],
        "rejected_events": 0,
        "duplicate_events": 1,
        **NO_OUTAGES,
    }


def test_a_rejected_event_does_not_claim_its_event_id(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    first = tmp_path / "first.jsonl"
    second = tmp_path / "second.jsonl"
    first.write_bytes(jsonl([ev("same", "c1", "call_received", "2026-01-05T15:00:00")]))
    second.write_bytes(jsonl([received("same", "c1")]))
    document, _ = report_json(capsysbinary, "--input", str(first), "--input", str(second))
    assert document == {
        "rows": [simple_row()],
        "rejected_events": 1,
        "duplicate_events": 0,
        **NO_OUTAGES,
    }


def test_rejects_name_the_input_and_line_of_each_file(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    first = tmp_path / "first.jsonl"
    second = tmp_path / "second.jsonl.gz"
    first.write_bytes(b"oops\n")
    second.write_bytes(gzip.compress(jsonl([received("a", "c1"), "{"])))
    rejects = tmp_path / "rejects.jsonl"
    document, _ = report_json(
        capsysbinary,
        "--input",
        str(first),
        "--input",
        str(second),
        "--rejects",
        str(rejects),
    )
    assert document["rejected_events"] == 2
    records = [json.loads(x) for x in rejects.read_bytes().splitlines()]
    assert [(r["input"], r["line_number"], r["reason"], r["raw"]) for r in records] == [
        (str(first), 1, "invalid_json", "oops"),
        (str(second), 2, "invalid_json", "{"),
    ]


# --------------------------------------------------------------------------- stdin and gzip


def test_dash_reads_stdin_in_its_place_among_the_inputs(
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = tmp_path / "before.jsonl"
    after = tmp_path / "after.jsonl"
    before.write_bytes(jsonl([received("dup1", "c1", "H1001")]))
    after.write_bytes(jsonl([received("dup2", "c3", "H2002")]))
    stdin_data = jsonl(
        [received("dup1", "c9", "H5005"), received("dup2", "c2", "H1001")], newline=b"\r\n"
    )
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin_data)))
    document, _ = report_json(
        capsysbinary, "--input", str(before), "--input", "-", "--input", str(after)
    )
    # dup1: the file before stdin wins; dup2: stdin wins over the file after it.
    assert document == {
        "rows": [simple_row("H1001", calls=2)],
        "rejected_events": 0,
        "duplicate_events": 2,
        **NO_OUTAGES,
    }


def test_gz_input_is_read_transparently(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    plain = tmp_path / "events.jsonl"
    packed = tmp_path / "events.jsonl.gz"
    data = jsonl(SCENARIO_EVENTS, newline=b"\r\n", final_newline=False)
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    one, _ = report_json(capsysbinary, "--input", str(plain), "--contracts", str(CONTRACTS))
    two, _ = report_json(capsysbinary, "--input", str(packed), "--contracts", str(CONTRACTS))
    assert two == one
    assert two["rows"] == EXPECTED_ROWS_WITH_REGISTRY


def test_corrupt_gz_input_is_a_clear_error_without_traceback(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    packed = gzip.compress(jsonl(SCENARIO_EVENTS))
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(packed[: len(packed) // 2])
    not_gzip = tmp_path / "plain.jsonl.gz"
    not_gzip.write_bytes(jsonl(SCENARIO_EVENTS))
    for path in (not_gzip, truncated):
        try:
            status, out, err = run(["report", "--input", str(path)], capsysbinary)
        except Exception as exc:  # the CLI must not let it escape
            message = f"{path.name}: uncaught {type(exc).__name__}: {exc}"
            pytest.fail(message, pytrace=False)
        assert status != 0, path.name
        assert out == b"", path.name
        assert "monitor report: error:" in err, path.name
        assert "Traceback" not in err


# --------------------------------------------------------------------------- usage errors


def test_missing_input_file_exits_2_with_a_clear_message(
    scenario_file: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    missing = tmp_path / "nope.jsonl"
    output = tmp_path / "out.json"
    status, out, err = run(
        ["report", "--input", str(scenario_file), "--input", str(missing), "--output", str(output)],
        capsysbinary,
    )
    assert status == 2
    assert out == b""
    assert err.strip() == f"monitor report: error: --input {missing}: no such file"
    assert not output.exists()


def test_directory_as_input_is_an_error(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, out, err = run(["report", "--input", str(tmp_path)], capsysbinary)
    assert status == 2
    assert out == b""
    assert err.strip() == f"monitor report: error: --input {tmp_path}: is a directory, not a file"
    assert "Traceback" not in err


def test_input_is_required(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report"])
    assert exited.value.code == 2
    assert b"--input" in capsysbinary.readouterr().err


BAD_REGISTRIES = [
    pytest.param(
        "contract_id,parent_org,timezone\nH1001,Org,America/New_York\nH2002,Org,Mars/Olympus\n",
        ":3: unknown IANA time zone 'Mars/Olympus' for H2002",
        id="bad-zone",
    ),
    pytest.param(
        "contract_id,parent_org,timezone\nH1001,Org,America/New_York\nH1001,Org,UTC\n",
        ":3: contract H1001 already listed on line 2",
        id="duplicate",
    ),
    pytest.param(
        "contract_id,parent_org,timezone\n\nQ1,Org,UTC\n",
        ":3: contract_id 'Q1' does not match",
        id="bad-id",
    ),
    pytest.param(
        "contract_id,parent_org,timezone\nH1001,Org\n",
        ":2: expected 3 columns, found 2",
        id="columns",
    ),
    pytest.param(
        "contract_id,timezone\nH1001,UTC\n",
        ":1: header lacks column(s) parent_org",
        id="header",
    ),
    pytest.param(
        "contract_id,parent_org,timezone\nH1001,Org,\n",
        ":2: timezone is empty for H1001",
        id="empty-zone",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_REGISTRIES)
def test_invalid_registry_exits_2_naming_file_and_line(
    content: str,
    message: str,
    scenario_file: Path,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    registry = tmp_path / "contracts.csv"
    registry.write_text(content, encoding="utf-8")
    status, out, err = run(
        ["report", "--input", str(scenario_file), "--contracts", str(registry)], capsysbinary
    )
    assert status == 2
    assert out == b""
    assert err.startswith(f"monitor report: error: {registry}{message}"), err
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8"])
def test_unreadable_registry_exits_2(
    kind: str, scenario_file: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    registry = tmp_path / "contracts.csv"
    if kind == "directory":
        registry.mkdir()
    elif kind == "not-utf8":
        registry.write_bytes(b"contract_id,parent_org,timezone\nH1001,Caf\xe9,UTC\n")
    status, out, err = run(
        ["report", "--input", str(scenario_file), "--contracts", str(registry)], capsysbinary
    )
    assert status == 2
    assert out == b""
    assert err.startswith(f"monitor report: error: {registry}: "), err
    assert "Traceback" not in err


def test_registry_with_bom_and_extra_columns_is_accepted(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    registry = tmp_path / "contracts.csv"
    registry.write_bytes(
        "\ufeffname,timezone,contract_id,parent_org\r\nPlan,Pacific/Honolulu,H1001,Aloha\r\n".encode()
    )
    events = tmp_path / "e.jsonl"
    # 09:30Z on the 6th is 23:30 on the 5th in Honolulu.
    events.write_bytes(jsonl([ev("a", "c1", "call_received", "2026-01-06T09:30:00Z")]))
    document, _ = report_json(capsysbinary, "--input", str(events), "--contracts", str(registry))
    assert document["rows"] == [simple_row(parent_org="Aloha")]


# --------------------------------------------------------------------------- the console script


@pytest.fixture(scope="module")
def console_script() -> Path:
    if not MONITOR.exists():
        found = shutil.which("monitor")
        if found is None:
            pytest.skip("console script 'monitor' is not installed")
        return Path(found)
    return MONITOR


def test_console_script_report_from_stdin(
    console_script: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    data = jsonl(SCENARIO_EVENTS) + b"not json\n"
    rejects = tmp_path / "rejects.jsonl"
    done = subprocess.run(
        [
            str(console_script),
            "report",
            "--input",
            "-",
            "--contracts",
            str(CONTRACTS),
            "--rejects",
            str(rejects),
        ],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    document = json.loads(done.stdout)
    assert_document_shape(document)
    assert document == {
        "rows": EXPECTED_ROWS_WITH_REGISTRY,
        "rejected_events": 1,
        "duplicate_events": 0,
        **SCENARIO_OUTAGES,
    }
    (record,) = [json.loads(x) for x in rejects.read_bytes().splitlines()]
    assert record == {
        "input": "-",
        "line_number": len(SCENARIO_EVENTS) + 1,
        "reason": "invalid_json",
        "field": None,
        "detail": record["detail"],
        "raw": "not json",
    }
    assert b"Traceback" not in done.stderr


def test_console_script_missing_input(console_script: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    done = subprocess.run(
        [str(console_script), "report", "--input", str(missing)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode().strip() == f"monitor report: error: --input {missing}: no such file"


# --------------------------------------------------------------------------- simulate -> report


SIMULATE = ["--contracts", str(CONTRACTS), "--hours", "3", "--calls-per-hour", "40"]


def test_simulated_file_reports_with_zero_rejects_and_is_repeatable(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    first = tmp_path / "sim1.jsonl"
    second = tmp_path / "sim2.jsonl"
    other = tmp_path / "sim3.jsonl"
    for path, seed in ((first, "7"), (second, "7"), (other, "8")):
        status, out, err = run(
            ["simulate", "--sink", "file", "--seed", seed, *SIMULATE, "--output", str(path)],
            capsysbinary,
        )
        assert status == 0, err
        assert out == b""
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()

    lines = first.read_bytes().splitlines()
    assert lines
    calls = {(e["contract_id"], e["call_id"]) for e in map(json.loads, lines)}

    rejects = tmp_path / "rejects.jsonl"
    document, _ = report_json(
        capsysbinary,
        "--input",
        str(first),
        "--contracts",
        str(CONTRACTS),
        "--rejects",
        str(rejects),
    )
    assert document["rejected_events"] == 0
    assert document["duplicate_events"] == 0
    assert rejects.read_bytes() == b""
    assert document["rows"]
    assert sum(r["calls_received"] for r in document["rows"]) == len(calls)
    registry_orgs = {
        line.split(",")[0]: line.split(",")[1]
        for line in CONTRACTS.read_text().splitlines()[1:]
        if line
    }
    for item in document["rows"]:
        assert item["parent_org"] == registry_orgs[item["contract_id"]]


def test_simulated_damage_is_rejected_and_deduplicated_not_fatal(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "damaged.jsonl"
    status, _, err = run(
        [
            "simulate",
            "--seed",
            "3",
            *SIMULATE,
            "--duplicate-rate",
            "0.1",
            "--malformed-rate",
            "0.05",
            "--reorder-rate",
            "0.1",
            "--output",
            str(path),
        ],
        capsysbinary,
    )
    assert status == 0, err
    document, _ = report_json(capsysbinary, "--input", str(path), "--contracts", str(CONTRACTS))
    assert document["rejected_events"] > 0
    assert document["duplicate_events"] > 0
    assert document["rows"]


def test_simulate_to_stdout_via_console_script_is_repeatable(console_script: Path) -> None:
    argv = [str(console_script), "simulate", "--seed", "11", *SIMULATE, "--events", "500"]
    one = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    two = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert one.returncode == two.returncode == 0, one.stderr.decode()
    assert one.stdout == two.stdout
    assert len(one.stdout.splitlines()) == 500
    report = subprocess.run(
        [str(console_script), "report", "--input", "-", "--contracts", str(CONTRACTS)],
        input=one.stdout,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert report.returncode == 0, report.stderr.decode()
    document = json.loads(report.stdout)
    assert_document_shape(document)
    assert document["rejected_events"] == 0
    assert document["duplicate_events"] == 0


# --------------------------------------------------------------------------- outages (issue 4)


def test_hours_file_and_outage_rules_change_the_outages(
    scenario_file: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """A 24x7 line counts every minute of the outage; a later deadline moves the breach."""
    hours = tmp_path / "hours.csv"
    hours.write_text("contract_id,line,hours\nH1001,member_services,24x7\n")
    document, _ = report_json(
        capsysbinary, "--input", str(scenario_file), "--contracts", str(CONTRACTS),
        "--hours", str(hours), "--outage-rules", "deadline_hours=96,escalation_hours=12/24",
    )  # fmt: skip
    (outage,) = document["outages"]
    assert outage["restore_deadline"] == "2026-01-09T18:00:00Z"
    # Open from Jan 5 18:00Z to 15:10Z on the 6th, every minute required: 6 h on the 5th in
    # New York (13:00-24:00 local is 18:00-05:00Z) and the rest on the 6th.
    assert document["outage_days"] == [
        {"contract_id": "H1001", "line": "member_services", "date": "2026-01-05",
         "outage_minutes_in_required_hours": 11 * 60},
        {"contract_id": "H1001", "line": "member_services", "date": "2026-01-06",
         "outage_minutes_in_required_hours": 10 * 60 + 10},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outage-rules", "bogus=1"], "outage rule 'bogus=1': expected name=value"),
        (["--outage-rules", "drop_ratio=lots"], "outage rule drop_ratio: invalid value 'lots'"),
        (["--outage-rules", "escalation_hours=80"], "escalations must come before"),
        (["--hours", "/nonexistent/hours.csv"], "operating-hours file not found"),
    ],
)
def test_bad_outage_settings_are_usage_errors(
    scenario_file: Path, capsysbinary: pytest.CaptureFixture[bytes], args: list[str], message: str
) -> None:
    status, out, err = run(["report", "--input", str(scenario_file), *args], capsysbinary)
    assert status == 2
    assert out == b""
    assert message in err
