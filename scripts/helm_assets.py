"""Copy the alert rules and Grafana boards into the Helm chart, which cannot read outside itself.

Usage: python scripts/helm_assets.py [--check]

deploy/prometheus/rules/*.yml and grafana/dashboards/*.json stay the one source; the chart's
files/rules and files/dashboards are byte-for-byte copies (tests/deploy/test_helm_chart.py
checks them). --check changes nothing and exits 1 when a copy is missing, stale or extra.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "callcenter-monitor"
#: chart directory -> (source directory, file pattern)
ASSETS: dict[str, tuple[Path, str]] = {
    "files/rules": (ROOT / "deploy" / "prometheus" / "rules", "*.yml"),
    "files/dashboards": (ROOT / "grafana" / "dashboards", "*.json"),
}


def expected() -> dict[Path, bytes]:
    """Every file the chart's asset directories must hold, with its content."""
    files: dict[Path, bytes] = {}
    for target, (source, pattern) in ASSETS.items():
        for path in sorted(source.glob(pattern)):
            files[CHART / target / path.name] = path.read_bytes()
    return files


def differences() -> list[str]:
    """What is missing, stale or extra in the chart, relative to the sources."""
    want = expected()
    have = {p for target in ASSETS for p in (CHART / target).glob("*") if p.is_file()}
    problems = [f"extra: {p.relative_to(ROOT)}" for p in sorted(have - set(want))]
    for path, content in want.items():
        if path not in have:
            problems.append(f"missing: {path.relative_to(ROOT)}")
        elif path.read_bytes() != content:
            problems.append(f"stale: {path.relative_to(ROOT)}")
    return problems


def write() -> None:
    want = expected()
    for target in ASSETS:
        (CHART / target).mkdir(parents=True, exist_ok=True)
        for path in (CHART / target).glob("*"):
            if path.is_file() and path not in want:
                path.unlink()
    for path, content in want.items():
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report differences")
    args = parser.parse_args()
    if args.check:
        problems = differences()
        for line in problems:
            print(f"helm_assets: {line} (run python scripts/helm_assets.py)", file=sys.stderr)
        return 1 if problems else 0
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
