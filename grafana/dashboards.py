"""The Grafana dashboards, as code (grafana-foundation-sdk, pinned in pyproject.toml).

``python grafana/dashboards.py`` (``make dashboards``) writes ``grafana/dashboards/*.json``;
the JSON is committed and ``tests/grafana`` checks that it matches this file, its structure,
and (against a real Prometheus scraping a real worker) that every query returns data.

Three boards:

* **Fleet overview**: every contract and line, the three standards today and over the last
  hour, red/green against the limits, and open outages with the time left;
* **Contract drill-down** (variables contract and line): the figures against threshold lines at
  the limits, the live queue, volume, TTY and interpreters, and the outage timeline;
* **Monitor health**: throughput, lag, dead letters by reason, rebalances, watermark.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    bargauge,
    dashboard,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    GraphThresholdsStyleMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).with_name("dashboards")
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
GREEN, RED, ORANGE = "green", "red", "orange"

# The CMS limits (42 CFR 422.111(h)(1), 423.128(d)(1)) and the restoration deadline.
ANSWER_TARGET = 0.80
HOLD_LIMIT_S = 120
DISCONNECT_LIMIT = 0.05
TTY_INTERPRETER_TARGET = 0.80


def at_least(limit: float) -> Any:
    """Red below the limit, green from it (a ratio that must reach a target)."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color=RED), Threshold(value=limit, color=GREEN)])
    )


def at_most(limit: float) -> Any:
    """Green up to the limit, red above it (a figure that must stay under a limit)."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color=GREEN), Threshold(value=limit, color=RED)])
    )


def query(
    expr: str, legend: str = "", *, instant: bool = False, table: bool = False, ref: str = "A"
) -> Dataquery:
    q = Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if table:
        q = q.format(PromQueryFormat.TABLE)
    return q


def datasource_variable() -> Any:
    return dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")


def series_panel(title: str, unit: str, thresholds: Any, *targets: Dataquery) -> Any:
    """A time series with the limit drawn as a line."""
    panel = (
        timeseries.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .thresholds(thresholds)
        .thresholds_style(GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.LINE))
        .height(8)
        .span(12)
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def standard_bars(title: str, expr: str, unit: str, thresholds: Any) -> Any:
    return (
        bargauge.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .thresholds(thresholds)
        .display_mode(BarGaugeDisplayMode.BASIC)
        .with_target(query(expr, "{{contract}} {{line}}", instant=True))
        .height(10)
        .span(8)
    )


def fleet_overview() -> Any:
    board = (
        dashboard.Dashboard("Call centers: fleet overview")
        .uid("callcenter-fleet")
        .tags(["callcenter-monitor", "cms"])
        .refresh("1m")
        .time("now-6h", "now")
        .with_variable(datasource_variable())
        .with_row(dashboard.Row("Open outages (72-hour restoration clock)"))
        .with_panel(
            stat.Panel()
            .title("Open outages")
            .unit("short")
            .datasource(DATASOURCE)
            .thresholds(at_most(0.5))
            .with_target(query("sum(callcenter_outage_open) or vector(0)"))
            .height(6)
            .span(6)
        )
        .with_panel(
            table.Panel()
            .title("Open outages: time left to restore")
            .unit("s")
            .datasource(DATASOURCE)
            .thresholds(at_least(12 * 3600))
            .with_target(
                query(
                    "callcenter_outage_restore_deadline_timestamp_seconds - time()",
                    instant=True,
                    table=True,
                )
            )
            .height(6)
            .span(18)
        )
        .with_row(dashboard.Row("Today (local date of each contract)"))
        .with_panel(
            standard_bars(
                "Answered within 30 s, today",
                'callcenter_answered_within_30s_ratio{window="today"}',
                "percentunit",
                at_least(ANSWER_TARGET),
            )
        )
        .with_panel(
            standard_bars(
                "Average hold, today",
                'callcenter_avg_hold_seconds{window="today"}',
                "s",
                at_most(HOLD_LIMIT_S),
            )
        )
        .with_panel(
            standard_bars(
                "Disconnect rate, today",
                'callcenter_disconnect_rate{window="today"}',
                "percentunit",
                at_most(DISCONNECT_LIMIT),
            )
        )
        .with_row(dashboard.Row("Last hour"))
        .with_panel(
            standard_bars(
                "Answered within 30 s, last hour",
                'callcenter_answered_within_30s_ratio{window="1h"}',
                "percentunit",
                at_least(ANSWER_TARGET),
            )
        )
        .with_panel(
            standard_bars(
                "Average hold, last hour",
                'callcenter_avg_hold_seconds{window="1h"}',
                "s",
                at_most(HOLD_LIMIT_S),
            )
        )
        .with_panel(
            standard_bars(
                "Disconnect rate, last hour",
                'callcenter_disconnect_rate{window="1h"}',
                "percentunit",
                at_most(DISCONNECT_LIMIT),
            )
        )
    )
    return board


def contract_drilldown() -> Any:
    sel = 'contract="$contract", line="$line"'
    contract_var = (
        dashboard.QueryVariable("contract")
        .label("Contract")
        .datasource(DATASOURCE)
        .query("label_values(callcenter_contract_info, contract)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    line_var = (
        dashboard.QueryVariable("line")
        .label("Line")
        .datasource(DATASOURCE)
        .query('label_values(callcenter_window_calls_received{contract="$contract"}, line)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    windows = ("today", "1h", "15m")

    def by_window(metric: str) -> list[Dataquery]:
        return [
            query(f'{metric}{{{sel}, window="{w}"}}', w, ref=chr(ord("A") + i))
            for i, w in enumerate(windows)
        ]

    board = (
        dashboard.Dashboard("Call centers: contract drill-down")
        .uid("callcenter-contract")
        .tags(["callcenter-monitor", "cms"])
        .refresh("1m")
        .time("now-24h", "now")
        .with_variable(datasource_variable())
        .with_variable(contract_var)
        .with_variable(line_var)
        .with_row(dashboard.Row("The three standards (limit lines from 42 CFR 422.111(h)(1))"))
        .with_panel(
            series_panel(
                "Answered within 30 s",
                "percentunit",
                at_least(ANSWER_TARGET),
                *by_window("callcenter_answered_within_30s_ratio"),
            )
        )
        .with_panel(
            series_panel(
                "Average hold",
                "s",
                at_most(HOLD_LIMIT_S),
                *by_window("callcenter_avg_hold_seconds"),
            )
        )
        .with_panel(
            series_panel(
                "Disconnect rate",
                "percentunit",
                at_most(DISCONNECT_LIMIT),
                *by_window("callcenter_disconnect_rate"),
            )
        )
        .with_row(dashboard.Row("Live queue and volume"))
        .with_panel(
            series_panel(
                "Oldest wait in the queue",
                "s",
                at_most(HOLD_LIMIT_S),
                query(f"callcenter_queue_oldest_wait_seconds{{{sel}}}", "oldest wait"),
            )
        )
        .with_panel(
            series_panel(
                "Calls waiting now",
                "short",
                at_most(10),
                query(f"callcenter_queue_calls_waiting{{{sel}}}", "waiting"),
            )
        )
        .with_panel(
            series_panel(
                "Calls received per hour",
                "short",
                at_most(1e9),
                query(
                    f'callcenter_window_calls_received{{{sel}, window="1h"}}', "received, last hour"
                ),
            )
        )
        .with_row(dashboard.Row("TTY and interpreters (today)"))
        .with_panel(
            series_panel(
                "TTY connected within 7 minutes",
                "percentunit",
                at_least(TTY_INTERPRETER_TARGET),
                query(f'callcenter_tty_connected_ratio{{{sel}, window="today"}}', "TTY"),
            )
        )
        .with_panel(
            series_panel(
                "Interpreter connected within 8 minutes",
                "percentunit",
                at_least(TTY_INTERPRETER_TARGET),
                query(
                    f'callcenter_interpreter_connected_ratio{{{sel}, window="today"}}',
                    "interpreter",
                ),
            )
        )
        .with_row(dashboard.Row("Outages (42 CFR 422.504(o), 423.505(p))"))
        .with_panel(
            statetimeline.Panel()
            .title("Outage timeline")
            .unit("short")
            .datasource(DATASOURCE)
            .thresholds(at_most(0.5))
            .with_target(query(f"callcenter_outage_open{{{sel}}}", "outage open"))
            .height(5)
            .span(16)
        )
        .with_panel(
            stat.Panel()
            .title("Outage: time left to restore")
            .unit("s")
            .datasource(DATASOURCE)
            .thresholds(at_least(12 * 3600))
            .no_value("no open outage")
            .with_target(
                query(
                    f"(callcenter_outage_restore_deadline_timestamp_seconds{{{sel}}} - time())"
                    f" or on () (0 * max(callcenter_outage_open{{{sel}}}) + 72 * 3600)"
                )
            )
            .height(5)
            .span(8)
        )
    )
    return board


def monitor_health() -> Any:
    return (
        dashboard.Dashboard("Call centers: monitor health")
        .uid("callcenter-monitor-health")
        .tags(["callcenter-monitor"])
        .refresh("30s")
        .time("now-3h", "now")
        .with_variable(datasource_variable())
        .with_panel(
            series_panel(
                "Events accepted per second",
                "ops",
                at_most(1e9),
                query(
                    "sum by (instance) (rate(callcenter_events_accepted_total[5m]))", "{{instance}}"
                ),
            )
        )
        .with_panel(
            series_panel(
                "Consumer lag (messages)",
                "short",
                at_most(10000),
                query(
                    "sum by (instance, partition) (callcenter_consumer_lag)",
                    "{{instance}} p{{partition}}",
                ),
            )
        )
        .with_panel(
            series_panel(
                "Dead letters per second, by reason",
                "ops",
                at_most(1e9),
                query(
                    "sum by (reason) (rate(callcenter_events_rejected_total[5m])) or vector(0)",
                    "{{reason}}",
                ),
            )
        )
        .with_panel(
            series_panel(
                "Rebalances",
                "short",
                at_most(1e9),
                query("sum by (instance) (callcenter_rebalances_total)", "{{instance}}"),
            )
        )
        .with_panel(
            series_panel(
                "Watermark age (wall clock - newest event time)",
                "s",
                at_most(15 * 60),
                query(
                    "time() - callcenter_watermark_timestamp_seconds", "{{instance}} p{{partition}}"
                ),
            )
        )
        .with_panel(
            series_panel(
                "Workers up", "short", at_least(1), query('sum(up{job="callcenter-monitor"})', "up")
            )
        )
    )


BOARDS = {
    "fleet-overview": fleet_overview,
    "contract-drilldown": contract_drilldown,
    "monitor-health": monitor_health,
}


def render(name: str) -> str:
    board = BOARDS[name]().build()
    # Stable, unique panel ids in layout order (Grafana links and alerts refer to them).
    for number, panel in enumerate(board.panels, start=1):
        panel.id_val = number
    text = json.dumps(
        json.loads(JSONEncoder(sort_keys=True, indent=2).encode(board)), indent=2, sort_keys=True
    )
    return text + "\n"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name in BOARDS:
        (OUT / f"{name}.json").write_text(render(name))
        print(f"wrote {OUT / name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
