"""Benchmark ``monitor report`` on a generated file of >= 1 000 000 events.

Runs the real command in a child process pinned to one core, measures wall time and peak RSS,
and writes the figures (with the machine and the date) into a marked section of
docs/performance.md, leaving the other benchmarks' sections alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "report"


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def generate(path: Path, events: int) -> int:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        subprocess.run(
            [
                sys.executable, "-m", "monitor", "--log-level", "WARNING", "simulate",
                "--contract-count", "80", "--calls-per-hour", "170", "--hours", "48",
                "--events", str(events), "--duplicate-rate", "0.01", "--reorder-rate", "0.01",
                "--malformed-rate", "0.001", "--seed", "7", "--output", str(tmp),
            ],
            check=True,
        )  # fmt: skip
        tmp.rename(path)
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def run_once(path: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one ``monitor report`` run on one core."""
    cmd = [sys.executable, "-m", "monitor", "--log-level", "WARNING", "report",
           "--input", str(path), "--output", os.devnull]  # fmt: skip
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    start = time.perf_counter()
    child = subprocess.Popen(cmd)
    # wait4 reports this child's own peak RSS (RUSAGE_CHILDREN would mix in the generator).
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"monitor report failed with exit code {child.returncode}")
    return elapsed, usage.ru_maxrss


def write_section(doc: Path, body: str, section: str = SECTION) -> None:
    """Replace (or append) one benchmark's marked section of the performance document."""
    begin, end = f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->"
    text = doc.read_text() if doc.exists() else "# Performance\n\nWritten by `make bench`.\n"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args()

    data = args.work_dir / f"report-{args.events}.jsonl"
    lines = generate(data, args.events)
    times, peaks = [], []
    for _ in range(args.runs):
        elapsed, peak_kib = run_once(data)
        times.append(elapsed)
        peaks.append(peak_kib)
    best, median = min(times), statistics.median(times)
    rate_best, rate_median = lines / best, lines / median
    target = 300_000
    verdict = "met" if rate_median >= target else "NOT met"
    body = f"""## `monitor report` replay (issue 2)

- Date: {dt.date.today().isoformat()}; machine: {machine_description()}
- Input: {lines:,} JSONL lines ({data.stat().st_size / 2**20:.0f} MiB) from `monitor simulate`
  (80 contracts, 48 h, 1 % duplicates, 1 % reordered, 0.1 % malformed); one process pinned to
  one core with `taskset -c 0`; {args.runs} runs; time is the whole command, start-up included,
  outage detection (issue 4) and the JSON document included.

| figure | value |
|---|---|
| events/s (median of {args.runs}) | {rate_median:,.0f} |
| events/s (best) | {rate_best:,.0f} |
| wall time (median) | {median:.2f} s |
| peak RSS | {max(peaks) / 1024:.0f} MiB |

Target ≥ {target:,} events/s on one core: **{verdict}**.
"""
    write_section(args.output, body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
