#!/usr/bin/env bash
# `make run` (interim, until the streaming worker lands): simulate a typhoon day for the sample
# contracts and replay it into the daily CMS report.
set -euo pipefail
cd "$(dirname "$0")/.."
out=var/run
mkdir -p "$out"
.venv/bin/monitor simulate --contracts deploy/contracts.csv --scenario typhoon --hours 24 \
  --start 2026-01-05T05:00:00+00:00 --duplicate-rate 0.01 --malformed-rate 0.002 \
  --output "$out/events.jsonl"
.venv/bin/monitor report --input "$out/events.jsonl" --contracts deploy/contracts.csv \
  --format csv --output "$out/report.csv" --rejects "$out/rejects.jsonl"
column -s, -t < "$out/report.csv" | cut -c1-200
echo "events: $out/events.jsonl  report: $out/report.csv  rejects: $out/rejects.jsonl"
