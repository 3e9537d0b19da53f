"""Prometheus rules and Alertmanager routing, checked with the real promtool and amtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "rules" / "alerts.yml"
RECORDING = PROMETHEUS / "rules" / "recording.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULE_TESTS = Path(__file__).with_name("alerts_test.yml")
RUNBOOKS = ROOT / "docs" / "runbooks"
RUNBOOK_BASE = "https://github.com/callcenter-monitor/callcenter-monitor/blob/main/docs/runbooks/"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} missing: run `make tools` (deploy/prometheus/ensure-tools.sh)"
    return found


def run(*args: str, stdout_only: bool = False) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout if stdout_only else done.stdout + done.stderr


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_checks_config_and_rules() -> None:
    out = run(tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert "SUCCESS: 2 rule files found" in out
    out = run(tool("promtool"), "check", "rules", str(ALERTS), str(RECORDING))
    assert f"SUCCESS: {len(alert_rules())} rules found" in out


def test_promtool_rule_unit_tests_pass() -> None:
    out = run(tool("promtool"), "test", "rules", str(RULE_TESTS))
    assert "SUCCESS" in out


def test_every_alert_has_severity_annotations_runbook_and_a_firing_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}{name}.md", name
        runbook = (RUNBOOKS / f"{name}.md").read_text()
        for section in ("## What it means", "## The regulation", "## First checks",
                        "## Who to tell"):  # fmt: skip
            assert section in runbook, (name, section)
        assert name in fired, f"{name} has no test that it fires"
        if rule["labels"].get("category") == "data":
            # Data alerts name the contract and line in what they say.
            assert "{{ $labels.contract }}" in annotations["summary"], name
            assert "{{ $labels.line }}" in annotations["description"], name
    # The quiet cases: tests where the alert must not fire (good day, quiet night, blip).
    assert len(quiet) >= 8


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings (code blocks skipped)."""
    anchors: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_runbooks_have_commands_and_their_links_resolve() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    index = (RUNBOOKS / "README.md").read_text()
    # The index lists every alert's runbook, and every runbook is an alert's.
    assert set(re.findall(r"^\| \[(\w+)\]\(\1\.md\) \|", index, re.MULTILINE)) == names
    assert {path.stem for path in RUNBOOKS.glob("*.md")} - {"README"} == names
    checked = 0
    for path in sorted(RUNBOOKS.glob("*.md")):
        text = path.read_text()
        if path.stem != "README":
            assert "## Commands" in text, path.name
            assert "```sh" in text, path.name
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            file_part, _, fragment = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            assert linked.is_file(), (path.name, target)
            if fragment:
                assert fragment in heading_anchors(linked.read_text()), (path.name, target)
            checked += 1
    assert checked >= 50


def test_runbook_queries_are_valid_promql(tmp_path: Path) -> None:
    # Every PromQL query a runbook gives (promtool query instant|range ... "$PROM" '<expr>'),
    # checked by promtool as the expression of a recording rule.
    pattern = re.compile(r"promtool query \w+ [^'\n]*\"\$PROM\" '([^'\n]+)'")
    queries = sorted({q for md in RUNBOOKS.glob("*.md") for q in pattern.findall(md.read_text())})
    assert len(queries) >= 40
    rules = [{"record": f"runbook:query_{n}:check", "expr": q} for n, q in enumerate(queries)]
    check = tmp_path / "runbook-queries.yml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "runbooks", "rules": rules}]}))
    out = run(tool("promtool"), "check", "rules", str(check))
    assert f"SUCCESS: {len(queries)} rules found" in out


def test_recording_rules_are_named_level_metric_operations() -> None:
    document = yaml.safe_load(RECORDING.read_text())
    names = [rule["record"] for group in document["groups"] for rule in group["rules"]]
    assert names
    for name in names:
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), name


def test_alertmanager_config_is_valid() -> None:
    out = run(tool("amtool"), "check-config", str(ALERTMANAGER))
    assert "SUCCESS" in out
    assert "6 inhibit rules" in out


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=CallCenterOutageOpened", "severity=page", "contract=H1001"], "pager"),
        (["alertname=CallCenterHoldTimeAboveLimit", "severity=ticket"], "ticket"),
        (["alertname=Watchdog", "severity=ticket"], "deadmansswitch"),
        (["alertname=Unlabelled"], "ticket"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    out = run(tool("amtool"), "config", "routes", "test", "--config.file", str(ALERTMANAGER),
              *labels, stdout_only=True)  # fmt: skip
    assert out.strip() == receiver
