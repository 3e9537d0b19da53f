"""`monitor top`: rows from the exposition text, worst first, alerts joined by contract and
line, an 80-column rendering, and the plain one-shot output when stdout is not a terminal."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from monitor import top
from monitor.top import Alert, Figures, Row, build_snapshot, parse_alerts, render, run_top

ROOT = Path(__file__).resolve().parents[1]


def gauge(name: str, samples: list[tuple[dict[str, str], float]]) -> str:
    lines = [f"# HELP {name} test", f"# TYPE {name} gauge"]
    for labels, value in samples:
        body = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{name}{{{body}}} {value!r}")
    return "\n".join(lines) + "\n"


def figures(contract: str, line: str, window: str, hold: float | None, within: float | None,
            disconnect: float | None) -> dict[str, list[tuple[dict[str, str], float]]]:  # fmt: skip
    labels = {"contract": contract, "line": line, "window": window}
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for name, value in (("callcenter_avg_hold_seconds", hold),
                        ("callcenter_answered_within_30s_ratio", within),
                        ("callcenter_disconnect_rate", disconnect)):  # fmt: skip
        if value is not None:  # the worker leaves a figure out when its denominator is 0
            out.setdefault(name, []).append((labels, value))
    return out


def exposition() -> str:
    """What a worker exports for three contracts: a struck line (outage open 2 h, nobody
    answered), a typhoon line (all three standards breached), a healthy line."""
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for contract, line, window, hold, within, disconnect in (
        ("H1001", "member_services", "1h", None, 0.0, 0.5),
        ("H1001", "member_services", "today", None, 0.0, 0.4),
        ("H2002", "member_services", "1h", 212.4, 0.11, 0.082),
        ("H2002", "member_services", "today", 131.0, 0.25, 0.063),
        ("H2002", "member_services", "15m", 999.0, 0.0, 0.9),  # not a window top shows
        ("H6348", "pharmacy_help_desk", "1h", 18.0, 0.93, 0.0),
        ("H6348", "pharmacy_help_desk", "today", 22.5, 0.9, 0.01),
    ):
        for name, samples in figures(contract, line, window, hold, within, disconnect).items():
            families.setdefault(name, []).extend(samples)
    series = [("H1001", "member_services"), ("H2002", "member_services"),
              ("H6348", "pharmacy_help_desk")]  # fmt: skip
    waiting = {"H1001": 7.0, "H2002": 12.0, "H6348": 0.0}
    oldest = {"H1001": 245.0, "H2002": 1683.2, "H6348": 0.0}
    text = "".join(gauge(name, samples) for name, samples in families.items())
    text += gauge("callcenter_queue_calls_waiting",
                  [({"contract": c, "line": ln}, waiting[c]) for c, ln in series])  # fmt: skip
    text += gauge("callcenter_queue_oldest_wait_seconds",
                  [({"contract": c, "line": ln}, oldest[c]) for c, ln in series])  # fmt: skip
    is_open = {"H1001": 1.0, "H2002": 0.0, "H6348": 0.0}
    text += gauge("callcenter_outage_open",
                  [({"contract": c, "line": ln}, is_open[c]) for c, ln in series])  # fmt: skip
    text += gauge("callcenter_outage_age_seconds",
                  [({"cause": "no_answers", "contract": "H1001", "line": "member_services"},
                    7384.0)])  # fmt: skip
    text += gauge(
        "callcenter_watermark_timestamp_seconds",
        [({"partition": "0"}, 1767625200.0), ({"partition": "1"}, 1767625260.0)],
    )
    text += "# HELP callcenter_events_accepted_total x\n# TYPE callcenter_events_accepted_total "
    text += "counter\ncallcenter_events_accepted_total 4242.0\n"
    return text


ALERTS_JSON = [
    {"labels": {"alertname": "CallCenterOutageOpened", "contract": "H1001",
                "line": "member_services", "severity": "page", "cause": "no_answers"},
     "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
    {"labels": {"alertname": "CallCenterHoldTimeAboveLimit", "contract": "H2002",
                "line": "member_services", "severity": "ticket"},
     "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
    {"labels": {"alertname": "CallCenterAnswerWithin30sBudgetBurn", "contract": "H2002",
                "line": "member_services", "severity": "page"},
     "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
    {"labels": {"alertname": "Watchdog", "severity": "ticket"},
     "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
    {"labels": {"alertname": "CallCenterOutageOpened", "contract": "X9009",
                "line": "member_services", "severity": "page"},
     "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
]  # fmt: skip


def test_rows_carry_the_exported_figures() -> None:
    snapshot = build_snapshot(exposition())
    rows = {(r.contract, r.line): r for r in snapshot.rows}
    assert set(rows) == {("H1001", "member_services"), ("H2002", "member_services"),
                         ("H6348", "pharmacy_help_desk")}  # fmt: skip
    typhoon = rows[("H2002", "member_services")]
    assert typhoon.hour == Figures(212.4, 0.11, 0.082)
    assert typhoon.today == Figures(131.0, 0.25, 0.063)
    assert (typhoon.waiting, typhoon.oldest_wait_s) == (12, 1683.2)
    assert not typhoon.outage_open and typhoon.outage_age_s is None
    struck = rows[("H1001", "member_services")]
    assert struck.hour == Figures(None, 0.0, 0.5)  # no answered call: no hold figure
    assert (struck.outage_open, struck.outage_age_s, struck.outage_cause) == (
        True, 7384.0, "no_answers")  # fmt: skip
    assert snapshot.watermark_s == 1767625260.0  # the newest partition's


def test_breaches_and_budget_follow_the_cms_limits() -> None:
    assert Figures(120.0, 0.80, 0.05).breached() == frozenset()  # at a limit is compliant
    assert Figures(120.1, 0.79, 0.051).breached() == {"hold", "answer", "disconnect"}
    assert Figures().breached() == frozenset() and Figures().budget_used() == 0.0
    # hold 180 / 120 = 1.5; late answers 0.5 / 0.2 = 2.5; drops 0.02 / 0.05 = 0.4
    assert Figures(180.0, 0.5, 0.02).budget_used() == pytest.approx(2.5)


def test_sorted_worst_first() -> None:
    rows = [
        Row("H6348", "pharmacy_help_desk", Figures(18.0, 0.93, 0.0), Figures(22.0, 0.9, 0.01)),
        # two standards breached, the worse budget (late answers 0.9 / 0.2 = 4.5)
        Row("H2002", "member_services", Figures(100.0, 0.1, 0.07), Figures(100.0, 0.1, 0.07)),
        # two standards breached, a smaller budget (hold 200 / 120)
        Row("H7007", "member_services", Figures(200.0, 0.7, 0.01), Figures(90.0, 0.85, 0.01)),
        Row("R3003", "member_services", Figures(300.0, 0.0, 0.9), Figures(300.0, 0.0, 0.9)),
        Row("H1001", "pharmacy_help_desk", outage_open=True, outage_age_s=600.0),
        Row("H1001", "member_services", outage_open=True, outage_age_s=7200.0),
    ]
    ordered = [(r.contract, r.line) for r in sorted(rows, key=Row.sort_key)]
    assert ordered == [
        ("H1001", "member_services"),  # open outages first, the oldest first
        ("H1001", "pharmacy_help_desk"),
        ("R3003", "member_services"),  # three standards breached
        ("H2002", "member_services"),
        ("H7007", "member_services"),
        ("H6348", "pharmacy_help_desk"),  # compliant
    ]
    snapshot = build_snapshot(exposition())
    assert [r.contract for r in snapshot.rows] == ["H1001", "H2002", "H6348"]


def test_alerts_are_joined_by_contract_and_line() -> None:
    alerts = parse_alerts(ALERTS_JSON)
    assert alerts[0] == Alert("CallCenterOutageOpened", "page", "H1001", "member_services")
    snapshot = build_snapshot(exposition(), alerts)
    rows = {r.contract: r for r in snapshot.rows}
    assert rows["H1001"].alerts == ("OutageOpened",)
    # Pages before tickets; the common prefix is dropped for the narrow column.
    assert rows["H2002"].alerts == ("AnswerWithin30sBudgetBurn", "HoldTimeAboveLimit")
    assert rows["H6348"].alerts == ()
    # No contract: under the table; a line this worker does not export: there, with its place.
    assert snapshot.other_alerts == ("OutageOpened (X9009/member_services)", "Watchdog")


def test_an_alert_on_a_whole_contract_goes_to_each_of_its_lines() -> None:
    alerts = [Alert("CallCenterSomething", "ticket", "H1001", None)]
    snapshot = build_snapshot(exposition(), alerts)
    assert {r.contract: r.alerts for r in snapshot.rows} == {
        "H1001": ("Something",), "H2002": (), "H6348": ()}  # fmt: skip
    assert snapshot.other_alerts == ()


def rendered(snapshot: top.Snapshot, terminal: bool) -> str:
    console = Console(width=80, record=True, force_terminal=terminal, color_system="standard",
                      file=io.StringIO())  # fmt: skip
    console.print(render(snapshot, "http://127.0.0.1:6066/metrics"))
    return console.export_text(styles=terminal)


def test_render_fits_80_columns_with_every_figure_whole() -> None:
    snapshot = build_snapshot(exposition(), parse_alerts(ALERTS_JSON))
    text = rendered(snapshot, terminal=False)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    table = {line.split()[0]: line.split() for line in lines if line[:5] in ("H1001", "H2002",
                                                                             "H6348")}  # fmt: skip
    # contract, line, hold 1h/today, within 30 s %, disconnects %, waiting, oldest, outage, …
    assert table["H2002"][:8] == ["H2002", "member", "212/131", "11/25", "8.2/6.3", "12",
                                  "28:03", "–"]  # fmt: skip
    assert table["H1001"][:8] == ["H1001", "member", "–/–", "0/0", "50.0/40.0", "7", "4:05",
                                  "2h03"]  # fmt: skip
    assert table["H1001"][8] == "OutageOpened"
    assert table["H6348"][:8] == ["H6348", "pharmacy", "18/22", "93/90", "0.0/1.0", "0", "–",
                                  "–"]  # fmt: skip
    assert "other alerts: OutageOpened (X9009/member_services), Watchdog" in " ".join(lines)
    assert "event time 2026-01-05 15:01 UTC" in lines[0]
    assert "\x1b[" not in text


def test_colours_only_on_a_terminal() -> None:
    snapshot = build_snapshot(exposition())
    coloured = rendered(snapshot, terminal=True)
    assert "\x1b[1;31m212\x1b[0m" in coloured  # a breached figure in bold red
    assert "\x1b[32m18\x1b[0m" in coloured  # a compliant one in green
    assert "\x1b[" not in rendered(snapshot, terminal=False)


def test_live_mode_keeps_retrying_an_unreachable_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt  # Ctrl-C: leaves the view with status 0

    monkeypatch.setattr(top.time, "sleep", sleep)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    status = run_top("http://127.0.0.1:9/metrics", None, 1.5, once=False, console=console)
    assert status == 0
    assert sleeps == [1.5, 1.5, 1.5]
    assert "cannot reach http://127.0.0.1:9/metrics" in out.getvalue()
    assert "retrying every 1.5 s" in out.getvalue()


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    """A fake worker (/metrics) and a fake Alertmanager (/api/v2/alerts)."""
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            if self.path == "/metrics":
                body = exposition().encode()
            elif self.path.startswith("/api/v2/alerts?"):
                assert self.path == top.ALERTS_PATH
                body = json.dumps(ALERTS_JSON).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield f"{base}/metrics", base
    finally:
        server.shutdown()
    assert requested  # the command did read the servers


def monitor_top(*args: str) -> subprocess.CompletedProcess[str]:
    # stdout is a pipe here: not a terminal.
    return subprocess.run([sys.executable, "-m", "monitor", "top", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_once_prints_one_plain_table(servers: tuple[str, str]) -> None:
    metrics, alertmanager = servers
    result = monitor_top("--url", metrics, "--alertmanager", alertmanager, "--once")
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line[:1] in ("H", "R")]
    assert [row[0] for row in rows] == ["H1001", "H2002", "H6348"]
    assert rows[1][:5] == ["H2002", "member", "212/131", "11/25", "8.2/6.3"]
    assert rows[0][-1] == "OutageOpened"


def test_not_a_terminal_is_one_table_even_without_once(servers: tuple[str, str]) -> None:
    metrics, _ = servers
    result = monitor_top("--url", metrics)  # would loop forever on a terminal
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("H2002") == 1


def test_once_unreachable_is_one_line_and_status_1() -> None:
    result = monitor_top("--url", "http://127.0.0.1:9/metrics", "--once")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "monitor top: cannot reach http://127.0.0.1:9/metrics: [Errno 111] Connection refused"
    ]


def test_once_with_alertmanager_unreachable_shows_figures_and_fails(
    servers: tuple[str, str],
) -> None:
    metrics, _ = servers
    result = monitor_top("--url", metrics, "--alertmanager", "http://127.0.0.1:9", "--once")
    assert result.returncode == 1
    assert "H2002" in result.stdout
    words = " ".join(result.stdout.split())  # the line is wrapped at 80 columns
    assert "alerts unavailable: cannot reach http://127.0.0.1:9: [Errno 111] Connection" in words


def test_interval_must_be_positive() -> None:
    result = monitor_top("--interval", "0", "--once")
    assert result.returncode == 2
    assert "--interval must be positive" in result.stderr
