"""``monitor top``: one worker's figures and the firing alerts, as a table redrawn in place.

Three steps, each testable on its own: the exposition text of ``/metrics`` (and Alertmanager's
alerts) become plain :class:`Row` data (:func:`build_snapshot`), rows are sorted worst first
(:meth:`Row.sort_key`), and :func:`render` turns a snapshot into a rich table that fits an
80-column terminal. :func:`run_top` fetches, renders and repeats.

Worst first means: a line with an open outage (the 72-hour clock is running; the older the
outage, the higher), then the number of CMS standards breached in the last hour or today
(average hold over 120 s, under 80 % answered within 30 s, disconnects over 5 %), then the
largest share of a standard's budget used (hold ÷ 120 s, late answers ÷ 20 %, disconnects ÷
5 %, the burn-rate scale of docs/alerting.md: 1 is at the limit), then contract and line.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

# The CMS limits (42 CFR 422.111(h)(1), 423.128(d)(1)); docs/metrics.md.
HOLD_LIMIT_S = 120.0
ANSWER_TARGET = 0.80
DISCONNECT_LIMIT = 0.05
WINDOWS = ("1h", "today")
# The three lines CMS names, shortened so the table fits 80 columns; other lines are shown as
# they are (cut to 9 characters).
LINE_NAMES = {
    "member_services": "member",
    "pharmacy_help_desk": "pharmacy",
    "prospective_enrollee": "prospect",
}
ALERTS_PATH = "/api/v2/alerts?active=true&silenced=false&inhibited=false"
SEVERITY_ORDER = {"page": 0, "ticket": 1}
TIMEOUT_S = 5.0
DASH = "–"

Series = tuple[str, str]  # (contract, line)


class TopError(Exception):
    """A source could not be read: the one line shown instead of (or under) the table."""


@dataclass(frozen=True, slots=True)
class Figures:
    """One window's three standards; None when the window has no denominator."""

    avg_hold_s: float | None = None
    within_30s: float | None = None
    disconnect: float | None = None

    @property
    def hold_breached(self) -> bool:
        return self.avg_hold_s is not None and self.avg_hold_s > HOLD_LIMIT_S

    @property
    def answer_breached(self) -> bool:
        return self.within_30s is not None and self.within_30s < ANSWER_TARGET

    @property
    def disconnect_breached(self) -> bool:
        return self.disconnect is not None and self.disconnect > DISCONNECT_LIMIT

    def breached(self) -> frozenset[str]:
        """The standards outside their limit (a value exactly at a limit is compliant)."""
        names = (("hold", self.hold_breached), ("answer", self.answer_breached),
                 ("disconnect", self.disconnect_breached))  # fmt: skip
        return frozenset(name for name, bad in names if bad)

    def budget_used(self) -> float:
        """The largest share of a standard's budget used; 0 with no figure."""
        shares = [0.0]
        if self.avg_hold_s is not None:
            shares.append(self.avg_hold_s / HOLD_LIMIT_S)
        if self.within_30s is not None:
            shares.append((1.0 - self.within_30s) / (1.0 - ANSWER_TARGET))
        if self.disconnect is not None:
            shares.append(self.disconnect / DISCONNECT_LIMIT)
        return max(shares)


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    severity: str
    contract: str | None
    line: str | None

    @property
    def order(self) -> tuple[int, str]:
        return SEVERITY_ORDER.get(self.severity, len(SEVERITY_ORDER)), self.name


@dataclass(frozen=True, slots=True)
class Row:
    contract: str
    line: str
    hour: Figures = field(default_factory=Figures)
    today: Figures = field(default_factory=Figures)
    waiting: int = 0
    oldest_wait_s: float = 0.0
    outage_open: bool = False
    outage_age_s: float | None = None
    outage_cause: str | None = None
    alerts: tuple[str, ...] = ()  # names, most severe first

    def breached(self) -> frozenset[str]:
        """Standards breached in the last hour or today."""
        return self.hour.breached() | self.today.breached()

    def sort_key(self) -> tuple[int, float, int, float, str, str]:
        """Ascending order is worst first (see the module's docstring)."""
        return (
            0 if self.outage_open else 1,
            -(self.outage_age_s or 0.0),
            -len(self.breached()),
            -max(self.hour.budget_used(), self.today.budget_used()),
            self.contract,
            self.line,
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    rows: tuple[Row, ...]
    watermark_s: float | None = None  # newest event time the worker has seen
    other_alerts: tuple[str, ...] = ()  # firing alerts that belong to no row
    alerts_error: str | None = None  # Alertmanager given but unreadable


# -- parsing ---------------------------------------------------------------------------------


def parse_alerts(document: Any) -> list[Alert]:
    """Alertmanager API v2 ``GET /api/v2/alerts``: a list of alerts with ``labels``."""
    if not isinstance(document, list):
        raise TopError("Alertmanager answered something other than a list of alerts")
    alerts = []
    for item in document:
        labels = item.get("labels", {}) if isinstance(item, dict) else {}
        if "alertname" not in labels:
            continue
        alerts.append(Alert(labels["alertname"], labels.get("severity", ""),
                            labels.get("contract"), labels.get("line")))  # fmt: skip
    return alerts


def _short(alert_name: str) -> str:
    """Alert names without the common prefix: the column is narrow."""
    return alert_name.removeprefix("CallCenter")


def build_snapshot(exposition: str, alerts: Iterable[Alert] = (),
                   alerts_error: str | None = None) -> Snapshot:  # fmt: skip
    """Rows from a worker's exposition text, joined with the alerts by contract and line."""
    figures: dict[Series, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    gauges: dict[Series, dict[str, float]] = defaultdict(dict)
    causes: dict[Series, str] = {}
    watermarks: list[float] = []
    seen: set[Series] = set()
    names = {"callcenter_avg_hold_seconds": "hold",
             "callcenter_answered_within_30s_ratio": "within",
             "callcenter_disconnect_rate": "disconnect"}  # fmt: skip
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "callcenter_watermark_timestamp_seconds":
                watermarks.append(sample.value)
                continue
            if "contract" not in labels or "line" not in labels:
                continue
            series = (labels["contract"], labels["line"])
            if sample.name in names:
                if labels.get("window") in WINDOWS:
                    figures[series][labels["window"]][names[sample.name]] = sample.value
                    seen.add(series)
            elif sample.name in ("callcenter_queue_calls_waiting",
                                 "callcenter_queue_oldest_wait_seconds",
                                 "callcenter_outage_open"):  # fmt: skip
                gauges[series][sample.name] = sample.value
                seen.add(series)
            elif sample.name == "callcenter_outage_age_seconds":
                gauges[series][sample.name] = sample.value
                causes[series] = labels.get("cause", "")

    by_series: dict[Series, list[Alert]] = defaultdict(list)
    by_contract: dict[str, list[Alert]] = defaultdict(list)
    loose: list[Alert] = []
    for alert in alerts:
        if alert.contract is not None and alert.line is not None:
            by_series[(alert.contract, alert.line)].append(alert)
        elif alert.contract is not None:
            by_contract[alert.contract].append(alert)
        else:
            loose.append(alert)
    rows = []
    for series in seen:
        window = figures[series]
        values = gauges[series]
        mine = sorted([*by_series.pop(series, []), *by_contract.get(series[0], [])],
                      key=lambda a: a.order)  # fmt: skip
        rows.append(Row(
            contract=series[0], line=series[1],
            hour=_figures(window.get("1h", {})), today=_figures(window.get("today", {})),
            waiting=int(values.get("callcenter_queue_calls_waiting", 0)),
            oldest_wait_s=values.get("callcenter_queue_oldest_wait_seconds", 0.0),
            outage_open=values.get("callcenter_outage_open", 0.0) >= 1,
            outage_age_s=values.get("callcenter_outage_age_seconds"),
            outage_cause=causes.get(series),
            alerts=tuple(dict.fromkeys(_short(a.name) for a in mine)),
        ))  # fmt: skip
    known_contracts = {contract for contract, _ in seen}
    for contract in known_contracts:
        by_contract.pop(contract, None)
    # Alerts of a contract or line this worker does not export (another worker's, or one
    # whose series is gone) are still shown, under the table, with where they belong.
    for (contract, line), items in by_series.items():
        loose.extend(Alert(f"{a.name} ({contract}/{line})", a.severity, None, None)
                     for a in items)  # fmt: skip
    for contract, items in by_contract.items():
        loose.extend(Alert(f"{a.name} ({contract})", a.severity, None, None) for a in items)
    return Snapshot(
        rows=tuple(sorted(rows, key=Row.sort_key)),
        watermark_s=max(watermarks) if watermarks else None,
        other_alerts=tuple(dict.fromkeys(_short(a.name) for a in sorted(loose,
                                                                       key=lambda a: a.order))),
        alerts_error=alerts_error,
    )  # fmt: skip


def _figures(values: Mapping[str, float]) -> Figures:
    return Figures(values.get("hold"), values.get("within"), values.get("disconnect"))


# -- fetching --------------------------------------------------------------------------------


def _get(url: str, shown: str | None = None) -> bytes:
    """The body of ``url``; errors name ``shown`` (the address the user gave) instead."""
    shown = shown or url
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        raise TopError(f"cannot read {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise TopError(f"cannot reach {shown}: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise TopError(f"cannot reach {shown}: {exc}") from None


def fetch_snapshot(url: str, alertmanager: str | None) -> Snapshot:
    """Read the worker (TopError when it cannot be read) and Alertmanager (its error is kept
    in the snapshot: the figures are worth showing without the alerts)."""
    text = _get(url).decode("utf-8", errors="replace")
    alerts: list[Alert] = []
    error = None
    if alertmanager:
        try:
            alerts_url = alertmanager.rstrip("/") + ALERTS_PATH
            alerts = parse_alerts(json.loads(_get(alerts_url, alertmanager)))
        except (TopError, ValueError) as exc:
            error = str(exc)
    try:
        return build_snapshot(text, alerts, error)
    except ValueError as exc:  # the parser's error for text that is not an exposition
        raise TopError(f"{url} is not a Prometheus exposition: {exc}") from None


# -- rendering -------------------------------------------------------------------------------

BAD, GOOD, DIM = "bold red", "green", "dim"


def _duration(seconds: float) -> str:
    """4:05 under an hour, 2h05 above (outages run to 72 h and more)."""
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}:{whole % 60:02d}"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}"


def _pair(hour: float | None, today: float | None, bad_hour: bool, bad_today: bool,
          fmt: str) -> Text:  # fmt: skip
    def one(value: float | None, bad: bool) -> tuple[str, str]:
        if value is None:
            return DASH, DIM
        return format(value, fmt), BAD if bad else GOOD

    return Text.assemble(one(hour, bad_hour), "/", one(today, bad_today))


def _line_name(line: str) -> str:
    return LINE_NAMES.get(line, line if len(line) <= 9 else line[:8] + "…")


def render_table(snapshot: Snapshot) -> Table:
    table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, header_style="bold",
                  show_edge=False)  # fmt: skip
    table.add_column("contract", no_wrap=True)
    table.add_column("line", no_wrap=True)
    table.add_column("hold s", justify="right", no_wrap=True)
    table.add_column("≤30s %", justify="right", no_wrap=True)
    table.add_column("disc %", justify="right", no_wrap=True)
    table.add_column("wait", justify="right", no_wrap=True)
    table.add_column("oldest", justify="right", no_wrap=True)
    table.add_column("outage", justify="right", no_wrap=True)
    # The one column rich may narrow when the table is too wide (the others keep their whole
    # figures): wrappable as a column, while its text itself is cut, not wrapped.
    table.add_column("alerts")
    for row in snapshot.rows:
        h, t = row.hour, row.today
        within = [None if f.within_30s is None else 100 * f.within_30s for f in (h, t)]
        disconnect = [None if f.disconnect is None else 100 * f.disconnect for f in (h, t)]
        if row.outage_open:
            outage = Text(_duration(row.outage_age_s) if row.outage_age_s is not None else "open",
                          style=BAD)  # fmt: skip
        else:
            outage = Text(DASH, style=DIM)
        oldest = Text(_duration(row.oldest_wait_s) if row.waiting else DASH,
                      style=BAD if row.oldest_wait_s > HOLD_LIMIT_S else "")  # fmt: skip
        # How many first: the names may be cut to fit.
        names = ", ".join(row.alerts)
        if len(row.alerts) > 1:
            names = f"{len(row.alerts)} {names}"
        alerts = Text(names or DASH, style=BAD if row.alerts else DIM, no_wrap=True,
                      overflow="ellipsis")  # fmt: skip
        table.add_row(
            row.contract,
            _line_name(row.line),
            _pair(h.avg_hold_s, t.avg_hold_s, h.hold_breached, t.hold_breached, ".0f"),
            _pair(within[0], within[1], h.answer_breached, t.answer_breached, ".0f"),
            _pair(disconnect[0], disconnect[1], h.disconnect_breached, t.disconnect_breached,
                  ".1f"),
            str(row.waiting),
            oldest,
            outage,
            alerts,
        )  # fmt: skip
    return table


def render(snapshot: Snapshot, source: str, now: datetime | None = None) -> RenderableType:
    """Heading, table and legend; every line fits an 80-column terminal."""
    now = now or datetime.now(UTC).astimezone()
    event_time = DASH
    if snapshot.watermark_s is not None:
        # The worker's watermark: a replay or the demo's past day shows its own time.
        event_time = datetime.fromtimestamp(snapshot.watermark_s, tz=UTC).strftime(
            "%Y-%m-%d %H:%M UTC"
        )
    heading = Text.assemble((source, "bold"), f" · event time {event_time}"
                            f" · read {now.strftime('%H:%M:%S')}")  # fmt: skip
    legend = Text("hold, ≤30s, disc: last hour/today, red past the CMS limit (120 s, 80 %, "
                  "5 %); wait, oldest: the live queue; outage: open for; worst first",
                  style=DIM)  # fmt: skip
    parts: list[RenderableType] = [heading]
    if snapshot.rows:
        parts.append(render_table(snapshot))
    else:
        parts.append(Text("no contract figures yet (the worker has not seen a call)", style=DIM))
    if snapshot.alerts_error:
        parts.append(Text(f"alerts unavailable: {snapshot.alerts_error}", style="yellow"))
    if snapshot.other_alerts:
        parts.append(Text("other alerts: " + ", ".join(snapshot.other_alerts)))
    parts.append(legend)
    return Group(*parts)


# -- the command -----------------------------------------------------------------------------


def run_top(url: str, alertmanager: str | None, interval: float, once: bool,
            console: Console | None = None) -> int:  # fmt: skip
    """Live view until Ctrl-C (exit 0); one plain table with ``once`` or when stdout is not a
    terminal (exit 1 when a URL cannot be read)."""
    console = console or Console()
    if once or not console.is_terminal:
        try:
            snapshot = fetch_snapshot(url, alertmanager)
        except TopError as exc:
            print(f"monitor top: {exc}", file=sys.stderr)
            return 1
        console.print(render(snapshot, url))
        return 1 if snapshot.alerts_error else 0
    try:
        with Live(console=console, auto_refresh=False, vertical_overflow="ellipsis") as live:
            while True:
                view: RenderableType
                try:
                    view = render(fetch_snapshot(url, alertmanager), url)
                except TopError as exc:
                    # One clear line, and keep trying: the worker may be starting or restarting.
                    view = Text(f"monitor top: {exc}; retrying every {interval:g} s",
                                style="yellow")  # fmt: skip
                live.update(view, refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a live view is left, not a failure
