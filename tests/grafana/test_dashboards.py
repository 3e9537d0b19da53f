"""The committed boards match their code and are well formed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards", ROOT / "grafana" / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def boards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(BOARDS_DIR.glob("*.json"))}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_committed_json_is_what_the_code_generates() -> None:
    module = generator()
    assert set(module.BOARDS) == set(boards()), "run `make dashboards`"
    for name in module.BOARDS:
        committed = (BOARDS_DIR / f"{name}.json").read_text()
        assert committed == module.render(name), f"{name}.json is stale: run `make dashboards`"


def test_the_three_boards_exist_with_unique_uids() -> None:
    found = boards()
    assert set(found) == {"fleet-overview", "contract-drilldown", "monitor-health"}
    uids = [b["uid"] for b in found.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", ["fleet-overview", "contract-drilldown", "monitor-health"])
def test_panels_have_unique_ids_units_and_the_datasource_variable(name: str) -> None:
    board = boards()[name]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(board):
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert target["expr"].strip()


def thresholds_of(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(s["value"], s["color"]) for s in steps]


def test_limits_are_drawn_where_the_rules_put_them() -> None:
    drill = {p["title"]: p for p in panels(boards()["contract-drilldown"])}
    expected = {
        "Answered within 30 s": [(None, "red"), (0.8, "green")],
        "Average hold": [(None, "green"), (120, "red")],
        "Disconnect rate": [(None, "green"), (0.05, "red")],
        "Oldest wait in the queue": [(None, "green"), (120, "red")],
        "TTY connected within 7 minutes": [(None, "red"), (0.8, "green")],
        "Interpreter connected within 8 minutes": [(None, "red"), (0.8, "green")],
    }
    for title, steps in expected.items():
        assert thresholds_of(drill[title]) == steps, title
        custom = drill[title]["fieldConfig"]["defaults"]["custom"]
        assert custom["thresholdsStyle"]["mode"] == "line", title
    fleet = {p["title"]: p for p in panels(boards()["fleet-overview"])}
    for window in ("today", "last hour"):
        assert thresholds_of(fleet[f"Answered within 30 s, {window}"])[1] == (0.8, "green")
        assert thresholds_of(fleet[f"Average hold, {window}"])[1] == (120, "red")
        assert thresholds_of(fleet[f"Disconnect rate, {window}"])[1] == (0.05, "red")


def test_drilldown_variables_chain_contract_then_line() -> None:
    variables = {v["name"]: v for v in boards()["contract-drilldown"]["templating"]["list"]}
    assert variables["contract"]["query"] == "label_values(callcenter_contract_info, contract)"
    assert "$contract" in variables["line"]["query"]
    for panel in panels(boards()["contract-drilldown"]):
        for target in panel["targets"]:
            assert 'contract="$contract"' in target["expr"] and 'line="$line"' in target["expr"]


def test_provisioning_files() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["type"], source["uid"]) == ("prometheus", "prometheus")
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "callcenter.yml").read_text())
    assert providers["providers"][0]["type"] == "file"
