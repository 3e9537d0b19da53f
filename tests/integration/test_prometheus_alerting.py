"""Boards and alerts against the real thing: Kafka -> worker -> Prometheus (Debian package)
-> Alertmanager -> a local webhook receiver.

One feed for both tests: a typhoon (nobody answers) on one contract's member-services line and
a healthy contract beside it, through a real broker into a real worker. Prometheus scrapes the
worker every second with the repository's rules; Alertmanager runs the repository's routing
with short waits and its receivers pointed at a local webhook.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.services import (
    Kafka,
    WorkerProcess,
    free_port,
    run_monitor,
    spawn,
    stop_process,
    wait_for,
)
from tests.integration.test_worker_outages import HEALTHY, STRUCK, typhoon_events, write

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "deploy" / "contracts.csv"
RULES = ROOT / "deploy" / "prometheus" / "rules"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
BOARDS = ROOT / "grafana" / "dashboards"
HOURS = 5  # of the typhoon fed: the outage is open, under 24 h old
BUSY = "X9009"


@dataclass
class Receiver:
    """A webhook receiver: Alertmanager posts notifications here."""

    port: int = field(default_factory=free_port)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def start(self) -> ThreadingHTTPServer:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def alerts(self, path: str) -> list[dict[str, Any]]:
        return [alert for p, body in list(self.received) if p == path for alert in body["alerts"]]


@dataclass
class Stack:
    worker: WorkerProcess
    prometheus_url: str
    receiver: Receiver

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            document = json.loads(response.read())
        assert document["status"] == "success", (expr, document)
        result: list[dict[str, Any]] = document["data"]["result"]
        return result

    def label_values(self, selector: str, label: str) -> list[str]:
        url = f"{self.prometheus_url}/api/v1/series?" + urllib.parse.urlencode(
            {"match[]": selector}
        )
        with urllib.request.urlopen(url, timeout=10) as response:
            document = json.loads(response.read())
        assert document["status"] == "success", (selector, document)
        return sorted({s[label] for s in document["data"] if label in s})


@pytest.fixture(scope="module")
def stack(kafka: Kafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for binary in ("prometheus", "prometheus-alertmanager"):
        assert shutil.which(binary), f"{binary} missing: run `make tools`"
    work = tmp_path_factory.mktemp("alerting")
    # The typhoon on the struck contract; every other contract of the registry gets the
    # simulator's normal day (with TTY and interpreter calls) over the same hours.
    cut = f"2026-01-05T{13 + HOURS:02d}:00"
    events = [e for e in typhoon_events() if e["ts"][:16] < cut and e["contract_id"] == STRUCK]
    simulated = work / "normal.jsonl"
    run_monitor("simulate", "--contracts", str(CONTRACTS), "--scenario", "normal", "--hours",
                str(HOURS), "--calls-per-hour", "600", "--start", "2026-01-05T13:00:00+00:00",
                "--seed", "7", "--output", str(simulated))  # fmt: skip
    for raw in simulated.read_text().splitlines():
        event = json.loads(raw)
        # Cut at the same instant for everyone, so every contract is busy up to the watermark.
        if event.get("contract_id") != STRUCK and event["ts"][:16] < cut:
            events.append(event)
    feed = write(work / "feed.jsonl", events)
    topic = "it-alerting.events"
    worker = WorkerProcess(kafka, app_id="it-alerting", events_topic=topic,
                           dlq_topic="it-alerting.dlq", data_dir=work / "worker",
                           contracts=CONTRACTS,
                           extra=["--outages-topic", "it-alerting.outages"]).start()  # fmt: skip
    receiver = Receiver()
    server = receiver.start()
    am_port, prom_port = free_port(), free_port()

    # The repository's routing, with test waits and the receivers on the local webhook.
    am_config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    am_config["route"].update(group_wait="1s", group_interval="2s")
    for route in am_config["route"]["routes"]:
        route.update(group_wait="1s", group_interval="2s")
    hook = {"pager": "/page", "ticket": "/ticket", "deadmansswitch": "/watchdog"}
    for item in am_config["receivers"]:
        item.pop("pagerduty_configs", None)
        item.pop("slack_configs", None)
        item.pop("email_configs", None)
        item["webhook_configs"] = [{"url": f"http://127.0.0.1:{receiver.port}{hook[item['name']]}",
                                    "send_resolved": False}]  # fmt: skip
    am_config["global"] = {"resolve_timeout": "5m"}
    (work / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
    alertmanager = spawn(["prometheus-alertmanager", f"--config.file={work / 'alertmanager.yml'}",
                          f"--storage.path={work / 'am-data'}",
                          f"--web.listen-address=127.0.0.1:{am_port}",
                          "--cluster.listen-address=", "--log.level=warn"],
                         work / "alertmanager.log")  # fmt: skip

    def am_ready() -> bool:
        # Prometheus resends firing alerts only once a minute: start it on a ready Alertmanager.
        with urllib.request.urlopen(f"http://127.0.0.1:{am_port}/-/ready", timeout=2) as answer:
            return bool(answer.status == 200)

    wait_for(am_ready, 30, "Alertmanager to be ready")
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "recording.yml"), str(RULES / "alerts.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
        },
        "scrape_configs": [{"job_name": "callcenter-monitor", "scrape_interval": "1s",
                            "scrape_timeout": "1s",
                            "static_configs": [{"targets": [f"127.0.0.1:{worker.port}"]}]}],
    }  # fmt: skip
    (work / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
    prometheus = spawn(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                        f"--storage.tsdb.path={work / 'prom-data'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                       work / "prometheus.log")  # fmt: skip
    result = Stack(worker, f"http://127.0.0.1:{prom_port}", receiver)
    try:
        worker.wait_ready(partitions=4)
        run_monitor("publish", "--input", str(feed), "--bootstrap-servers", kafka.bootstrap,
                    "--events-topic", topic, "--partitions", "4")  # fmt: skip
        wait_for(lambda: bool(result.query(
            f'callcenter_outage_open{{contract="{STRUCK}"}} == 1')), 120,
            "Prometheus to see the typhoon outage")  # fmt: skip
        wait_for(lambda: bool(result.query(
            "sum(callcenter_consumer_lag) == 0 and sum(callcenter_events_accepted_total) > 50000")),
            180, "the worker to consume the whole feed")  # fmt: skip
        time.sleep(5)  # a few more scrapes, so rate() has two samples of everything
        yield result
    finally:
        stop_process(prometheus)
        stop_process(alertmanager)
        worker.stop()
        server.shutdown()


def board_queries() -> list[tuple[str, str, str]]:
    """(board, panel title, expression) of every panel target, and the variable queries."""
    out = []
    for path in sorted(BOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((path.stem, panel["title"], target["expr"]))
    return out


def test_every_panel_and_variable_query_returns_data(stack: Stack) -> None:
    drill = json.loads((BOARDS / "contract-drilldown.json").read_text())
    variables = {v["name"]: v["query"] for v in drill["templating"]["list"] if v["type"] == "query"}
    # label_values(selector, label) is Grafana's; Prometheus answers it through /series.
    contracts = stack.label_values("callcenter_contract_info", "contract")
    assert STRUCK in contracts and HEALTHY in contracts
    assert variables["contract"] == "label_values(callcenter_contract_info, contract)"
    line_selector = variables["line"].removeprefix("label_values(").rsplit(",", 1)[0]
    lines = stack.label_values(line_selector.replace("$contract", STRUCK), "line")
    assert "member_services" in lines
    checked = 0
    # The drill-down is checked on a busy contract of the simulated day (New York, its morning:
    # calls in every window, TTY and interpreter calls); the struck line has no answered call,
    # so no hold figure, and no TTY call.
    for board, title, expr in board_queries():
        concrete = expr.replace("$contract", BUSY).replace("$line", "member_services")
        result = stack.query(concrete)
        assert result, f"{board} / {title}: no data for {concrete}"
        checked += 1
    assert checked >= 25


def test_typhoon_pages_the_struck_line_and_nobody_for_the_healthy_one(stack: Stack) -> None:
    def paged() -> bool:
        return any(a["labels"]["alertname"] == "CallCenterOutageOpened"
                   for a in stack.receiver.alerts("/page"))  # fmt: skip

    wait_for(paged, 90, "the outage page at the webhook")
    time.sleep(3)  # anything else that would come with it
    pages = stack.receiver.alerts("/page")
    outage = [a for a in pages if a["labels"]["alertname"] == "CallCenterOutageOpened"]
    assert {(a["labels"]["contract"], a["labels"]["line"], a["labels"]["cause"],
             a["labels"]["severity"]) for a in outage} == {
        (STRUCK, "member_services", "no_answers", "page")}  # fmt: skip
    assert outage[0]["annotations"]["runbook_url"].endswith("/CallCenterOutageOpened.md")
    assert outage[0]["annotations"]["summary"].startswith(f"{STRUCK} member_services: outage")
    assert all(a["labels"].get("contract") != HEALTHY for a in pages)
    assert all(a["labels"].get("contract") != HEALTHY for a in stack.receiver.alerts("/ticket"))
    # The dead man's switch gets the Watchdog, on its own route.
    wait_for(lambda: bool(stack.receiver.alerts("/watchdog")), 90, "the Watchdog")
    assert {a["labels"]["alertname"] for a in stack.receiver.alerts("/watchdog")} == {"Watchdog"}
