"""Monitoring artefacts: promtool checks and unit tests of the rules, and every metric they use exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness.extra_tools import promtool

REPO_ROOT = Path(__file__).resolve().parents[3]
MONITORING = REPO_ROOT / "manifests" / "monitoring"
CODE_DIRS = [REPO_ROOT / "operator" / "lighthouse_operator", REPO_ROOT / "bridge" / "lighthouse_bridge"]

# Metrics that other exporters provide: cAdvisor (kubelet) and kube-state-metrics. Nothing else may be used.
EXTERNAL_METRICS = {
    "container_cpu_usage_seconds_total",  # cAdvisor
    "kube_pod_container_resource_limits",  # kube-state-metrics
    "kube_pod_container_resource_requests",  # kube-state-metrics
    "kube_cronjob_status_last_successful_time",  # kube-state-metrics
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
                "inf", "nan"}  # fmt: skip


def rule_spec() -> dict:
    return yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())["spec"]


def write_rules(directory: Path) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_spec(), sort_keys=False))
    return path


def test_promtool_check_rules(tmp_path: Path) -> None:
    proc = subprocess.run([promtool(), "check", "rules", str(write_rules(tmp_path))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_promtool_check_rules_fails_on_a_broken_expression(tmp_path: Path) -> None:
    spec = rule_spec()
    spec["groups"][1]["rules"][0]["expr"] = "lighthouse_bridge:memory_usage:ratio >"
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode != 0


def test_promtool_unit_tests_of_the_rules(tmp_path: Path) -> None:
    write_rules(tmp_path)
    shutil.copy(MONITORING / "tests" / "alerts-test.yaml", tmp_path / "alerts-test.yaml")
    proc = subprocess.run(
        [promtool(), "test", "rules", "alerts-test.yaml"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for g in rule_spec()["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((MONITORING / "tests" / "alerts-test.yaml").read_text())["tests"]
    tested = {t["alertname"] for case in tests for t in case.get("alert_rule_test", [])}
    assert sorted(alerts - tested) == []


def exported_metrics() -> set[str]:
    """Sample names the code exposes, from every prometheus_client definition in the operator and the bridge."""
    pattern = re.compile(
        r"\b(Counter|Gauge|Histogram|Summary|GaugeMetricFamily|CounterMetricFamily)\(\s*\"([a-z_:]+)\""
    )
    names: set[str] = set()
    for directory in CODE_DIRS:
        for path in directory.rglob("*.py"):
            for kind, name in pattern.findall(path.read_text()):
                if kind in ("Counter", "CounterMetricFamily"):
                    names.add(name if name.endswith("_total") else f"{name}_total")
                elif kind in ("Histogram", "Summary"):
                    names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", name}
                else:
                    names.add(name)
    return names


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression: identifiers outside label matchers, groupings and function calls."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    tokens = re.findall(r"(?<![\w$.])([a-zA-Z_:][\w:]*)(?!\w)(\s*\()?", expr)
    return {t for t, call in tokens if not call and t.lower() not in PROMQL_WORDS}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    return [r["expr"] for g in rule_spec()["groups"] for r in g["rules"]]


def test_metric_name_extraction() -> None:
    expr = 'sum by (le, route) (rate(lighthouse_x_bucket{route=~"a|b"}[5m])) / on(pod) group_left x:y:z > bool 2'
    assert metric_names(expr) == {"lighthouse_x_bucket", "x:y:z"}


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_metric_used_is_exported_by_the_code(source: str) -> None:
    exprs = rule_exprs() if source == "rules" else dashboard_exprs()
    recorded = {r["record"] for g in rule_spec()["groups"] for r in g["rules"] if "record" in r}
    known = exported_metrics() | EXTERNAL_METRICS | recorded
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, "no metric found: the extraction is broken"
    assert sorted(used - known) == []


def test_code_exports_the_runbook_metrics() -> None:
    # The names the runbook's dashboards and scripts query.
    runbook = {
        "lighthouse_bridge_memory_usage_bytes", "lighthouse_bridge_memory_limit_bytes",
        "lighthouse_bridge_fuse_mount_status", "lighthouse_bridge_requests_total",
        "lighthouse_bridge_request_duration_seconds_bucket", "lighthouse_bridge_errors_total",
        "lighthouse_bridge_event_store_failures_total", "lighthouse_bridge_redis_connection_status",
        "lighthouse_bridge_postgres_connection_status", "lighthouse_bridge_speed_layer_cache_hits_total",
        "lighthouse_bridge_speed_layer_cache_requests_total",
    }  # fmt: skip
    assert sorted(runbook - exported_metrics()) == []


def test_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] == "lighthouse-bridge-overview"  # the runbook links /d/lighthouse-bridge-overview
    assert dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])


def test_latency_alerts_read_only_the_request_response_histogram() -> None:
    # Long-polls and streams wait on purpose; in this histogram their seconds would be the P95 (issue 19).
    rules = {r.get("record") or r.get("alert"): r["expr"] for g in rule_spec()["groups"] for r in g["rules"]}
    assert metric_names(rules["lighthouse_bridge:request_duration_seconds:p95"]) == {
        "lighthouse_bridge_request_duration_seconds_bucket"
    }
    for alert in ("LighthouseBridgeLatencyHigh", "LighthouseBridgeLatencyCritical"):
        assert metric_names(rules[alert]) == {"lighthouse_bridge:request_duration_seconds:p95"}
    assert "lighthouse_bridge_long_request_duration_seconds_bucket" in exported_metrics()


def test_error_rate_tiers_are_the_runbooks() -> None:
    rules = {r["alert"]: r for g in rule_spec()["groups"] for r in g["rules"] if "alert" in r}
    tiers = {
        name: rules[name]["expr"].split(">")[1].strip()
        for name in (
            "LighthouseBridgeErrorRateHigh",
            "LighthouseBridgeErrorRateCritical",
            "LighthouseBridgeErrorRateSevere",
        )
    }
    assert tiers == {
        "LighthouseBridgeErrorRateHigh": "0.01",
        "LighthouseBridgeErrorRateCritical": "0.05",
        "LighthouseBridgeErrorRateSevere": "0.10",
    }


def test_runbook_covers_every_alert_and_the_sections_alerts_point_to() -> None:
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    headings = set(re.findall(r"^#+ (.+)$", runbook, re.M))
    rules = [r for g in rule_spec()["groups"] for r in g["rules"] if "alert" in r]
    table = runbook[runbook.index("## Alerts") :]
    assert [r["alert"] for r in rules if not re.search(rf"\b{r['alert']}\b", table)] == []
    for r in rules:
        for section in re.findall(r"docs/runbook\.md, ([^.;]+)", r["annotations"].get("runbook", "")):
            assert section in headings, (r["alert"], section)
    assert "/d/lighthouse-bridge-overview" in runbook
