"""Exit statuses cron and CI can trust (issue 11, section 5).

``monitor report`` and ``monitor ingest ...`` exit 3 when nothing valid was read or when more
than ``--max-reject-ratio`` of the lines were rejected, saying why in one line on stderr (the
output is written anyway); an input that cannot be read is a precise usage error (2); a bad
flag prints the usage of the subcommand it was given to (2). The statuses are declared once in
``monitor.exit_codes`` and listed in the README's table.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from monitor import cli, exit_codes
from monitor.cli import main

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "adapters" / "fixtures"
QUEUES = FIXTURES / "queues.csv"

VALID = (
    b'{"event_id":"e-1","call_id":"c-1","contract_id":"H1001","type":"call_received",'
    b'"ts":"2026-01-05T15:00:00Z"}\n'
)


def run(argv: Sequence[str], capsysbinary: pytest.CaptureFixture[bytes]) -> tuple[int, bytes, str]:
    """Run ``monitor`` in-process; an argparse exit counts as its status."""
    capsysbinary.readouterr()
    try:
        status = main(list(argv))
    except SystemExit as exited:
        status = exited.code if isinstance(exited.code, int) else 1
    captured = capsysbinary.readouterr()
    return status, captured.out, captured.err.decode("utf-8", "replace")


def plain_lines(err: str) -> list[str]:
    """stderr without the structured log records (JSON: stderr is not a terminal here)."""
    return [line for line in err.splitlines() if line and not line.startswith("{")]


@pytest.fixture
def random_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "random.bin"
    path.write_bytes(random.Random(11).randbytes(20_000))
    return path


# --------------------------------------------------------------------------- monitor report


def test_random_bytes_exit_3_with_the_reason_and_the_document_still_written(
    random_bytes: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, out, err = run(["report", "--input", str(random_bytes)], capsysbinary)
    assert status == exit_codes.EXIT_NO_VALID_DATA == 3
    document = json.loads(out)
    assert document["rows"] == [] and document["rejected_events"] > 0
    (line,) = plain_lines(err)
    assert line.startswith("monitor report: no valid event in 1 input (")
    assert f"{document['rejected_events']} lines rejected: " in line
    # The structured record says the same, at warning level.
    (record,) = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert record["event"] == "report_done" and record["level"] == "warning"
    assert record["exit_status"] == 3 and record["problem"] == line.removeprefix("monitor report: ")


def test_the_summary_counts_lines_and_reasons_over_every_input(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"not json\n" * 1_000 + b"[1]\n")
    second.write_bytes(b"\n" + b"{broken\n" * 530 + b"42\n")
    status, _, err = run(["report", "--input", str(first), "--input", str(second)], capsysbinary)
    assert status == 3
    assert plain_lines(err) == [
        "monitor report: no valid event in 2 inputs "
        "(1 532 lines rejected: invalid_json 1 530, not_object 2)"
    ]


@pytest.mark.parametrize("content", [b"", b"\n \n\r\n"], ids=["empty", "blank-lines"])
def test_an_empty_input_exits_3(
    content: bytes, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    status, out, err = run(["report", "--input", str(path)], capsysbinary)
    assert status == 3
    assert json.loads(out)["rows"] == []
    assert plain_lines(err) == [
        "monitor report: no valid event in 1 input (no line to read: empty or blank)"
    ]


@pytest.fixture
def one_in_ten(tmp_path: Path) -> Path:
    path = tmp_path / "mostly-bad.jsonl"
    path.write_bytes(VALID + b"garbage\n" * 9)
    return path


def test_reject_ratio_over_the_limit_exits_3(
    one_in_ten: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    output = one_in_ten.with_name("report.json")
    status, _, err = run(["report", "--input", str(one_in_ten), "--max-reject-ratio", "0.5",
                          "--output", str(output)], capsysbinary)  # fmt: skip
    assert status == 3
    assert plain_lines(err) == [
        "monitor report: rejected 90.0 % of lines, over --max-reject-ratio 0.5 "
        "(9 of 10 lines: invalid_json 9)"
    ]
    # Nothing is lost: the figures of the one valid event are written all the same.
    assert len(json.loads(output.read_bytes())["rows"]) == 1


def test_without_a_ratio_one_valid_event_is_enough(
    one_in_ten: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, out, err = run(["report", "--input", str(one_in_ten)], capsysbinary)
    assert status == 0, err
    assert json.loads(out)["rejected_events"] == 9
    assert plain_lines(err) == []


@pytest.mark.parametrize(("ratio", "expected"), [("0.9", 0), ("1", 0), ("0.89", 3), ("0", 3)])
def test_the_ratio_is_a_strict_upper_bound(
    ratio: str, expected: int, one_in_ten: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, _, err = run(["report", "--input", str(one_in_ten), "--max-reject-ratio", ratio],
                         capsysbinary)  # fmt: skip
    assert status == expected, err


def test_a_clean_file_with_ratio_zero_exits_0(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "clean.jsonl"
    path.write_bytes(VALID + VALID)  # a duplicate is a valid line, not a rejection
    status, _, err = run(["report", "--input", str(path), "--max-reject-ratio", "0"], capsysbinary)
    assert status == 0, err


@pytest.mark.parametrize("value", ["1.5", "-0.1", "lots", "nan"])
def test_a_bad_ratio_is_a_usage_error(
    value: str, one_in_ten: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, out, err = run(["report", "--input", str(one_in_ten), "--max-reject-ratio", value],
                           capsysbinary)  # fmt: skip
    assert status == 2
    assert out == b""
    assert "usage: monitor report" in err
    assert "monitor report: error: argument --max-reject-ratio:" in err


# --------------------------------------------------------------------------- unusable inputs


def test_a_directory_as_input(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    status, out, err = run(["report", "--input", f"{tmp_path}/"], capsysbinary)
    assert status == 2
    assert out == b""
    assert err.strip() == f"monitor report: error: --input {tmp_path}/: is a directory, not a file"


def test_a_missing_input(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    missing = tmp_path / "nope.jsonl"
    status, _, err = run(["report", "--input", str(missing)], capsysbinary)
    assert status == 2
    assert err.strip() == f"monitor report: error: --input {missing}: no such file"


def test_an_unreadable_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    locked = tmp_path / "locked.jsonl"
    locked.write_bytes(VALID)
    locked.chmod(0)
    if os.geteuid() == 0:
        # root reads any file: make the open fail the way it fails for anyone else.
        real_open = os.open

        def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if str(path) == str(locked):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    status, out, err = run(["report", "--input", str(locked)], capsysbinary)
    assert status == 2
    assert out == b""
    assert err.strip() == f"monitor report: error: --input {locked}: permission denied"


def test_a_named_pipe_is_a_readable_input(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # Process substitution (--input <(zcat ...)) hands over a pipe, not a regular file.
    read_end, write_end = os.pipe()
    os.write(write_end, VALID)
    os.close(write_end)
    try:
        status, out, err = run(["report", "--input", f"/dev/fd/{read_end}"], capsysbinary)
    finally:
        os.close(read_end)
    assert status == 0, err
    assert len(json.loads(out)["rows"]) == 1


# --------------------------------------------------------------------------- bad flags


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["report", "--bogus"], "usage: monitor report "),
        (["report", "--input", "x.jsonl", "--bogus"], "usage: monitor report "),
        (["ingest", "asterisk", "--bogus"], "usage: monitor ingest asterisk "),
        (["ingest", "asterisk", "--input", "q", "--queues", "q.csv", "--bogus"],
         "usage: monitor ingest asterisk "),
        (["ingest", "connect-ctr", "--input", "x.json", "--bogus"],
         "usage: monitor ingest connect-ctr "),
        (["ingest", "--bogus"], "usage: monitor ingest "),
        (["--bogus", "report", "--input", "x.jsonl"], "usage: monitor [-h]"),
    ],
)  # fmt: skip
def test_a_bad_flag_prints_the_usage_of_its_subcommand(
    argv: list[str], usage: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, out, err = run(argv, capsysbinary)
    assert status == 2
    assert out == b""
    assert err.startswith(usage), err
    if "--input" in argv:  # otherwise argparse first reports the missing --input
        assert "error: unrecognized arguments: --bogus" in err


def test_an_unknown_flag_is_named_with_the_subcommand(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    _, _, err = run(["report", "--input", "x.jsonl", "--inptu", "y"], capsysbinary)
    assert err.splitlines()[-1] == "monitor report: error: unrecognized arguments: --inptu y"


# --------------------------------------------------------------------------- monitor ingest


def ingest(kind: str, capsysbinary: pytest.CaptureFixture[bytes],
           *args: str) -> tuple[int, bytes, list[str], dict[str, Any]]:  # fmt: skip
    queues = ["--queues", str(QUEUES if kind == "asterisk" else FIXTURES / "connect_queues.csv")]
    status, out, err = run(["--log-level", "ERROR", "ingest", kind, *queues, *args], capsysbinary)
    lines = err.splitlines()
    # The JSON summary stays the last line whatever the status (docs/adapters.md).
    return status, out, lines[:-1], json.loads(lines[-1])


@pytest.mark.parametrize("kind", ["asterisk", "connect-ctr", "connect-events"])
def test_ingest_of_garbage_exits_3(
    kind: str, random_bytes: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, out, before, summary = ingest(kind, capsysbinary, "--input", str(random_bytes))
    assert status == 3
    assert out == b""
    assert summary["sent"] == 0 and summary["bad_lines"]
    (line,) = before
    assert line.startswith(f"monitor ingest {kind}: no event produced from 1 input (")
    rejected = sum(n for reason, n in summary["bad_lines"].items() if reason != "blank")
    assert f"({rejected} lines rejected: " in line


def test_ingest_of_an_empty_file_exits_3(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    empty = tmp_path / "queue_log"
    empty.write_bytes(b"")
    status, _, before, _ = ingest("asterisk", capsysbinary, "--input", str(empty))
    assert status == 3
    assert before == [
        "monitor ingest asterisk: no event produced from 1 input (no line to read: empty or blank)"
    ]


def test_ingest_ratio_counts_damaged_lines_not_blank_or_ignored_ones(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    # The fixture: 20 lines, one blank, two damaged (nul_bytes, truncated_last_line); ignored
    # and unknown events and unmapped queues are not rejections.
    log = str(FIXTURES / "queue_log")
    status, _, before, summary = ingest("asterisk", capsysbinary, "--input", log)
    assert (status, before, summary["sent"]) == (0, [], 14)
    status, _, before, _ = ingest("asterisk", capsysbinary, "--input", log,
                                  "--max-reject-ratio", "0.1")  # fmt: skip
    assert status == 3
    assert before == [
        "monitor ingest asterisk: rejected 10.5 % of lines, over --max-reject-ratio 0.1 "
        "(2 of 19 lines: nul_bytes 1, truncated_last_line 1)"
    ]
    status, _, _, _ = ingest("asterisk", capsysbinary, "--input", log, "--max-reject-ratio", "0.2")
    assert status == 0


def test_ingest_of_a_directory_names_the_subcommand(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, out, err = run(["ingest", "asterisk", "--queues", str(QUEUES), "--input",
                            str(tmp_path)], capsysbinary)  # fmt: skip
    assert status == 2
    assert out == b""
    assert err.strip() == (
        f"monitor ingest asterisk: error: --input {tmp_path}: is a directory, not a file"
    )


# --------------------------------------------------------------------------- the rest


def test_ctrl_c_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_report", interrupted)
    path = tmp_path / "e.jsonl"
    path.write_bytes(VALID)
    status, _, _ = run(["report", "--input", str(path)], capsysbinary)
    assert status == exit_codes.EXIT_INTERRUPTED == 130


def test_the_process_exit_status_is_the_one_main_returns(random_bytes: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--log-level", "ERROR", "report", "--input",
         str(random_bytes)],
        capture_output=True, timeout=60, check=False, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stderr.decode().startswith("monitor report: no valid event in 1 input (")
    assert b"Traceback" not in done.stderr


def test_the_readme_table_lists_exactly_the_declared_statuses() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    listed = {int(code) for code in re.findall(r"^\| `?(\d+)`? \|", section, re.MULTILINE)}
    declared = {value for name, value in vars(exit_codes).items() if name.startswith("EXIT_")}
    assert listed == declared == {0, 1, 2, 3, 130}
