"""Benchmark baseline (a): an idiomatic faust-streaming agent that updates a table per event.

Run by scripts/bench_stream.py as ``python scripts/bench_faust_idiomatic.py worker -l warn`` with
BENCH_BROKER, BENCH_TOPIC, BENCH_EVENTS and BENCH_APP_ID in the environment. Prints one line
``RESULT <events> <seconds>`` (first to last event) and exits.
"""

from __future__ import annotations

import os
import time

import faust
import orjson

BROKER = os.environ.get("BENCH_BROKER", "127.0.0.1:9092")
TOPIC = os.environ.get("BENCH_TOPIC", "bench.single")
EVENTS = int(os.environ.get("BENCH_EVENTS", "100000"))

app = faust.App(
    os.environ.get("BENCH_APP_ID", "bench-idiomatic"),
    broker=f"kafka://{BROKER}",
    store="memory://",
    value_serializer="raw",
    web_enabled=False,
    topic_partitions=8,
)
topic = app.topic(TOPIC, value_serializer="raw", key_serializer="raw")
calls_per_contract = app.Table("calls-per-contract", default=int, partitions=8)
state = {"seen": 0, "first": 0.0}


@app.agent(topic)
async def count(stream: faust.StreamT[bytes]) -> None:
    async for value in stream:
        try:
            contract = orjson.loads(value)["contract_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            contract = "invalid"
        calls_per_contract[contract] += 1  # one table write per event
        if state["seen"] == 0:
            state["first"] = time.perf_counter()
        state["seen"] += 1
        if state["seen"] >= EVENTS:
            elapsed = time.perf_counter() - state["first"]
            print(f"RESULT {state['seen']} {elapsed:.3f}", flush=True)
            os._exit(0)


if __name__ == "__main__":
    app.main()
