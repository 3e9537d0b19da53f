"""Dead-letter tools on constructed records: reading, counting, sampling, export bytes, --since."""

from __future__ import annotations

import base64
import io
import socket
from pathlib import Path

import orjson
import pytest

from monitor.cli import main
from monitor.engine.timestamps import parse_rfc3339_ms
from monitor.pipeline import dlq
from monitor.pipeline.dlq_tools import (
    SKIP_BLANK,
    SKIP_NO_RAW,
    SKIP_NOT_ONE_LINE,
    UNREADABLE,
    DeadLetter,
    Exporter,
    Source,
    Summary,
    atomic_output,
    check_reasons,
    export_line,
    parse_dead_letter,
    parse_since,
    printable,
    render_json,
    text_summary,
)

T0 = parse_rfc3339_ms("2026-12-01T10:00:00Z")


def letter(
    raw: bytes,
    reason: str = "invalid_field",
    *,
    at: int = 0,
    partition: int = 0,
    offset: int = 0,
    source_partition: int = 3,
    field: str | None = "ts",
    index: int | None = None,
) -> DeadLetter:
    """A dead letter as the worker writes it, read back as the tools read it."""
    value = dlq.dead_letter(raw, reason, f"detail of {reason}", topic="callcenter.events",
                            partition=source_partition, offset=100 + offset, field=field,
                            index=index)  # fmt: skip
    return parse_dead_letter(value, timestamp_ms=T0 + at, partition=partition, offset=offset)


# -- reading dead-letter records --------------------------------------------------------------


def test_a_worker_dead_letter_reads_back_with_its_exact_bytes_and_source() -> None:
    raw = b'{"event_id":"e1","contract_id":"H1234","type":"queued","ts":"2026-01-05T14:00:00"}'
    got = letter(raw, index=17, offset=5, partition=2)
    assert got.reason == "invalid_field"
    assert got.detail == "detail of invalid_field"
    assert got.field == "ts"
    assert got.source == Source("callcenter.events", 3, 105, 17)
    assert got.raw == raw
    assert (got.timestamp_ms, got.partition, got.offset) == (T0, 2, 5)


def test_utf8_text_beyond_ascii_comes_back_as_the_same_bytes() -> None:
    raw = '{"event_id":"é-☎-😀","ts":"x"}'.encode()
    assert letter(raw).raw == raw


def test_bytes_that_are_not_utf8_travel_as_base64_and_come_back_exactly() -> None:
    raw = b"\xff\xfe\x00{garbage}\x80\r"
    value = dlq.dead_letter(raw, "invalid_utf8", "bad byte", topic="t", partition=0, offset=1)
    record = orjson.loads(value)
    assert "raw" not in record and base64.b64decode(record["raw_base64"]) == raw
    got = parse_dead_letter(value, timestamp_ms=T0, partition=0, offset=0)
    assert got.raw == raw and got.reason == "invalid_utf8" and got.field is None


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (None, "record has no value"),
        (b"\x00not json", "not JSON"),
        (b'["reason"]', "not a dead-letter record (no reason)"),
        (b'{"reason": 7}', "not a dead-letter record (no reason)"),
        (b'{"reason": "invalid_json", "raw_base64": "***"}', "raw_base64 is not base64"),
    ],
)
def test_records_that_are_not_dead_letters_count_as_unreadable(
    value: bytes | None, detail: str
) -> None:
    got = parse_dead_letter(value, timestamp_ms=T0, partition=1, offset=9)
    assert (got.reason, got.detail, got.raw, got.source.topic) == (UNREADABLE, detail, None, None)


def test_a_dead_letter_without_source_or_raw_is_still_counted() -> None:
    got = parse_dead_letter(b'{"reason": "too_late"}', timestamp_ms=T0, partition=0, offset=0)
    assert (got.reason, got.detail, got.field, got.raw) == ("too_late", "", None, None)
    assert got.source == Source(None, None, None, None)
    assert got.source.label() == "?/?"


# -- --since ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6h", T0 - 6 * 3_600_000),
        ("30m", T0 - 1_800_000),
        ("1d", T0 - 86_400_000),
        ("90", T0 - 90_000),  # a bare number is seconds, as everywhere else
        ("2026-11-30T08:15:00Z", parse_rfc3339_ms("2026-11-30T08:15:00Z")),
        ("2026-11-30T08:15:00-05:00", parse_rfc3339_ms("2026-11-30T13:15:00Z")),
        ("2026-11-30", parse_rfc3339_ms("2026-11-30T00:00:00Z")),
        (" 2h ", T0 - 7_200_000),
    ],
)
def test_since_is_a_duration_back_from_now_or_a_time(text: str, expected: int) -> None:
    assert parse_since(text, now_ms=T0) == expected


def test_since_never_goes_before_the_epoch() -> None:
    assert parse_since("100000d", now_ms=T0) == 0


@pytest.mark.parametrize("text", ["yesterday", "2026-11-30T08:15:00", "6 hours", "2026-13-01"])
def test_a_bad_since_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"--since .*neither a duration .* nor an RFC 3339"):
        parse_since(text, now_ms=T0)


# -- counting and samples ---------------------------------------------------------------------


def summary_of(letters: list[DeadLetter], samples: int = 2) -> Summary:
    summary = Summary("callcenter.dlq", samples_per_reason=samples)
    for item in letters:
        summary.add(item)
    return summary


def test_counts_by_reason_and_source_span_and_newest_samples() -> None:
    letters = [
        letter(b"a1", "invalid_json", at=5_000, partition=0, offset=0, source_partition=1),
        letter(b"a2", "invalid_json", at=1_000, partition=0, offset=1, source_partition=1),
        letter(b"a3", "invalid_json", at=9_000, partition=0, offset=2, source_partition=2),
        letter(b"b1", "too_late", at=7_000, partition=1, offset=0, source_partition=2),
        letter(b"c1", "invalid_json", at=9_000, partition=0, offset=3, source_partition=2),
    ]
    summary = summary_of([*letters, parse_dead_letter(None, timestamp_ms=T0 + 500,
                                                      partition=2, offset=0)])  # fmt: skip
    assert summary.total == 6
    assert summary.reasons() == [("invalid_json", 4), ("too_late", 1), (UNREADABLE, 1)]
    assert summary.sources() == [("callcenter.events", 1, 2), ("callcenter.events", 2, 3),
                                 (None, None, 1)]  # fmt: skip
    assert (summary.oldest_ms, summary.newest_ms) == (T0 + 500, T0 + 9_000)
    # The two newest of a reason, oldest of them first; equal times break by partition, offset.
    assert [s.raw for s in summary.samples("invalid_json")] == [b"a3", b"c1"]
    assert [s.raw for s in summary.samples("too_late")] == [b"b1"]
    assert summary.samples("missing_field") == []


def test_json_output_has_the_documented_shape() -> None:
    summary = summary_of([
        letter(b'{"x": [1]}', "missing_field", at=0, offset=0, field="call_id", index=4),
        letter(b"\xff\x1b[31m", "invalid_utf8", at=60_000, partition=1, offset=7, field=None),
    ], samples=3)  # fmt: skip
    summary.since_ms = T0 - 3_600_000
    assert orjson.loads(render_json(summary)) == {
        "topic": "callcenter.dlq",
        "since": "2026-12-01T09:00:00.000Z",
        "total": 2,
        "oldest": "2026-12-01T10:00:00.000Z",
        "newest": "2026-12-01T10:01:00.000Z",
        "by_reason": {"invalid_utf8": 1, "missing_field": 1},
        "by_source": [{"topic": "callcenter.events", "partition": 3, "count": 2}],
        "samples": {
            "invalid_utf8": [{
                "timestamp": "2026-12-01T10:01:00.000Z", "reason": "invalid_utf8",
                "detail": "detail of invalid_utf8", "field": None,
                "source": {"topic": "callcenter.events", "partition": 3, "offset": 107,
                           "index": None},
                "raw": "\\xff\\x1b[31m", "raw_bytes": 6, "dlq_partition": 1, "dlq_offset": 7,
            }],
            "missing_field": [{
                "timestamp": "2026-12-01T10:00:00.000Z", "reason": "missing_field",
                "detail": "detail of missing_field", "field": "call_id",
                "source": {"topic": "callcenter.events", "partition": 3, "offset": 100,
                           "index": 4},
                "raw": '{"x": [1]}', "raw_bytes": 10, "dlq_partition": 0, "dlq_offset": 0,
            }],
        },
        "offsets": [],
    }  # fmt: skip


def test_zero_samples_keeps_the_counts_only() -> None:
    summary = summary_of([letter(b"x"), letter(b"y", offset=1)], samples=0)
    assert summary.total == 2 and summary.samples("invalid_field") == []
    assert orjson.loads(render_json(summary))["samples"] == {"invalid_field": []}


def test_printable_escapes_control_characters_and_cuts_long_records() -> None:
    assert printable(b"\x1b[2J\x07ok\ttab\nnl") == "\\x1b[2J\\x07ok\\ttab\\nnl"
    assert printable(b"\xc3(") == "\\xc3("
    assert printable("é ☎".encode()) == "é ☎"
    assert printable(b"a" * 10, limit=4) == "aaaa…"


def test_text_output_is_a_table_and_prints_records_literally() -> None:
    summary = summary_of([
        letter(b'{"note": "[bold red]x[/]"}', "invalid_json", at=0, source_partition=5),
        letter(b"\x1b]0;pwned\x07", "invalid_utf8", at=1_000, offset=1, source_partition=5),
        letter(b"42", "not_object", at=2_000, offset=2, source_partition=6),
    ], samples=1)  # fmt: skip
    text = text_summary(summary, width=160)
    lines = text.splitlines()
    assert lines[0] == "3 dead letters in callcenter.dlq"
    assert lines[1] == "oldest 2026-12-01T10:00:00.000Z, newest 2026-12-01T10:00:02.000Z"
    assert any("invalid_json" in line and "33.3 %" in line for line in lines)
    assert "│ callcenter.events │         5 │     2 │" in lines
    assert "[bold red]x[/]" in text  # rich markup in a record is not interpreted
    assert "\x1b" not in text and "\x07" not in text  # nor are terminal escapes sent
    assert "\\x1b]0;pwned\\x07" in text
    assert "callcenter.events/5@100" in text
    # A table of samples per reason, most frequent first.
    titles = [line.strip() for line in lines if ": newest " in line]
    assert titles == [f"{r}: newest 1 of 1" for r in ("invalid_json", "invalid_utf8", "not_object")]
    narrow = text_summary(summary, width=80)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "callcenter.events/5@1" in narrow  # folded, not cut


def test_an_empty_range_says_so() -> None:
    assert text_summary(Summary("callcenter.dlq")) == "no dead letters\n"
    assert text_summary(Summary("callcenter.dlq", since_ms=T0)) == (
        "no dead letters since 2026-12-01T10:00:00.000Z\n"
    )
    assert orjson.loads(render_json(Summary("callcenter.dlq")))["total"] == 0


# -- export -----------------------------------------------------------------------------------


def test_plain_export_is_exactly_the_refused_bytes() -> None:
    raws = [b'{"event_id": ', b"\xff\xfe\x00binary", b"42", '{"é": "☎"}'.encode(), b"a\rb"]
    out = io.BytesIO()
    exporter = Exporter(out)
    for n, raw in enumerate(raws):
        exporter.add(letter(raw, offset=n))
    assert out.getvalue() == b"".join(raw + b"\n" for raw in raws)
    assert exporter.result.as_json() == {"read": 5, "selected": 5, "written": 5, "skipped": {}}


def test_records_that_would_not_read_back_as_one_line_are_left_out_and_counted() -> None:
    out = io.BytesIO()
    exporter = Exporter(out)
    for n, raw in enumerate([b'{"a":\n1}', b'{"a":1}\r', b"", b" \t", b'{"ok":1}']):
        exporter.add(letter(raw, offset=n))
    exporter.add(parse_dead_letter(b"junk", timestamp_ms=T0, partition=0, offset=9))
    assert out.getvalue() == b'{"ok":1}\n'
    assert exporter.result.written == 1
    assert exporter.result.skipped == {SKIP_NOT_ONE_LINE: 2, SKIP_BLANK: 2, SKIP_NO_RAW: 1}


def test_export_by_reason() -> None:
    out = io.BytesIO()
    exporter = Exporter(out, reasons=["too_late", "missing_field"])
    for n, reason in enumerate(["too_late", "invalid_json", "missing_field", "too_late"]):
        exporter.add(letter(f"r{n}".encode(), reason, offset=n))
    assert out.getvalue() == b"r0\nr2\nr3\n"
    assert exporter.result.as_json() == {"read": 4, "selected": 3, "written": 3, "skipped": {}}


def test_with_reasons_writes_the_whole_dead_letter_record_on_one_line() -> None:
    item = letter(b'{"a":\n1}', "invalid_json")
    line, why = export_line(item, with_reasons=True)
    assert why is None and line == item.value
    record = orjson.loads(line or b"")
    assert record["reason"] == "invalid_json" and record["raw"] == '{"a":\n1}'
    pretty = orjson.dumps(orjson.loads(item.value), option=orjson.OPT_INDENT_2)
    reread = parse_dead_letter(pretty, timestamp_ms=T0, partition=0, offset=0)
    line, _ = export_line(reread, with_reasons=True)
    assert line is not None and b"\n" not in line and orjson.loads(line) == record
    unreadable = parse_dead_letter(b"junk", timestamp_ms=T0, partition=0, offset=0)
    assert export_line(unreadable, with_reasons=True) == (None, SKIP_NO_RAW)


def test_unknown_reasons_are_refused_with_the_known_ones() -> None:
    check_reasons(["too_late", "invalid_utf8", UNREADABLE])
    with pytest.raises(ValueError, match=r"unknown --reason late \(one of invalid_utf8, "):
        check_reasons(["late", "too_late"])


def test_atomic_output_replaces_the_file_only_when_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "dead.jsonl"
    target.write_bytes(b"old\n")
    with pytest.raises(RuntimeError), atomic_output(str(target)) as out:
        out.write(b"half")
        raise RuntimeError("broker gone")
    assert target.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dead.jsonl"]
    with atomic_output(str(target)) as out:
        out.write(b"new\n")
    assert target.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dead.jsonl"]


# -- the command line, without a broker -------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inspect", "--since", "yesterday"], "monitor dlq inspect: error: --since 'yesterday'"),
        (["inspect", "--samples", "-1"], "monitor dlq inspect: error: --samples must be 0 or"),
        (["inspect", "--timeout", "0s"], "monitor dlq inspect: error: --timeout must be positive"),
        (["export", "--output", "x.jsonl", "--reason", "late"],
         "monitor dlq export: error: unknown --reason late"),
        (["export", "--output", "/nonexistent/dir/x.jsonl"],
         "monitor dlq export: error: cannot write /nonexistent/dir/x.jsonl"),
        (["replay", "--input", "/nonexistent.jsonl"],
         "monitor dlq replay: error: --input /nonexistent.jsonl: no such file"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", *argv, "--bootstrap-servers", f"127.0.0.1:{closed_port()}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message)


@pytest.mark.parametrize("action", [["inspect"], ["export", "--output", "-"]])
def test_an_unreachable_broker_exits_1_with_one_line(
    action: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    assert main(["dlq", *action, "--bootstrap-servers", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"monitor dlq {action[0]}: error: cannot reach Kafka: "
                              f"127.0.0.1:{port}: ")  # fmt: skip


def test_replay_to_an_unreachable_broker_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_bytes(b'{"event_id":"e1"}\n')
    port = closed_port()
    argv = ["dlq", "replay", "--input", str(fixed), "--bootstrap-servers", f"127.0.0.1:{port}"]
    assert main(argv) == 1
    assert "monitor dlq replay: error: cannot reach Kafka" in capsys.readouterr().err
