"""The shipped Grafana dashboard, Prometheus rules and scrape config, Kubernetes manifests and systemd unit."""

from __future__ import annotations

import configparser
import json
import re
import subprocess
from importlib import resources
from pathlib import Path

import yaml
from support.env import need_binary

from ctop.exporter_cmd import DEFAULT_LISTEN_ADDRESS

ASSETS = Path(str(resources.files("ctop.exporters")))
PORT = DEFAULT_LISTEN_ADDRESS.rsplit(":", 1)[1]


def dashboard() -> dict:
    return json.loads((ASSETS / "grafana-dashboard.json").read_text())


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    return [(p["title"], t["expr"]) for p in dashboard()["panels"] if p["type"] != "row" for t in p["targets"]]


def test_dashboard_parses_and_every_panel_has_a_query():
    dash = dashboard()
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len(panels) >= 20
    for p in panels:
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["refId"], p["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "job", "instance", "namespace", "pod", "container"} <= variables
    types = {p["type"] for p in panels}
    assert "heatmap" in types
    heatmap = next(p for p in panels if p["type"] == "heatmap")
    assert "ctop_runqueue_latency_seconds_bucket" in heatmap["targets"][0]["expr"]
    assert heatmap["targets"][0]["format"] == "heatmap"


def test_dashboard_covers_what_the_issue_asks_for():
    text = " ".join(expr for _, expr in panel_queries())
    for name in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                 "container_spec_memory_limit_bytes", "container_cpu_cfs_throttled_periods_total",
                 "ctop_runqueue_latency_seconds_bucket", "container_oom_events_total", "ctop_oom_kills_total",
                 "container_network_receive_bytes_total", "container_fs_reads_bytes_total"):
        assert name in text, name
    for grouping in ("by (namespace)", "by (namespace, pod)", "by (namespace, pod, container)"):
        assert grouping in text, grouping


def test_dashboard_queries_are_valid_promql():
    """promtool parses a query inside a rule file: every panel query must parse (with variables filled in)."""
    promtool = need_binary("promtool")
    rules = [{"record": f"ctop_dashboard:query_{i}", "expr": substitute(expr)}
             for i, (_, expr) in enumerate(panel_queries())]
    path = Path("/tmp") / f"ctop-dashboard-rules-{id(rules)}.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    try:
        result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    finally:
        path.unlink()
    assert result.returncode == 0, result.stdout + result.stderr


def substitute(expr: str, rate_interval: str = "1m") -> str:
    """Fill in Grafana's variables the way "All" does."""
    expr = expr.replace("$__rate_interval", rate_interval)
    return re.sub(r"\$(job|instance|namespace|pod|container)\b", ".*", expr)


def test_promtool_check_rules_passes():
    promtool = need_binary("promtool")
    result = subprocess.run([promtool, "check", "rules", str(ASSETS / "rules.yml")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    groups = yaml.safe_load((ASSETS / "rules.yml").read_text())["groups"]
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert {"CtopNoisyNeighbour", "CtopCPUThrottlingHigh", "CtopContainerOOMKilled",
            "CtopContainerNearMemoryLimit"} <= alerts
    assert [r for g in groups for r in g["rules"] if "record" in r]


def test_scrape_config_is_valid_and_honors_labels():
    promtool = need_binary("promtool")
    result = subprocess.run([promtool, "check", "config", str(ASSETS / "prometheus.yml")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((ASSETS / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "ctop"]
    assert job["honor_labels"] is True
    assert job["static_configs"][0]["targets"] == [f"localhost:{PORT}"]


def test_kubernetes_manifests():
    docs = {}
    for path in (ASSETS / "deploy").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    assert {"DaemonSet", "Service", "ServiceMonitor", "Kustomization"} <= docs.keys()
    pod = docs["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    (container,) = pod["containers"]
    assert container["args"][0] == "exporter"
    assert f"--web.listen-address=:{PORT}" in container["args"]
    assert container["ports"][0]["containerPort"] == int(PORT)
    caps = set(container["securityContext"]["capabilities"]["add"])
    assert {"BPF", "PERFMON", "SYS_ADMIN"} <= caps
    assert container["resources"]["requests"] and container["resources"]["limits"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/sys/kernel/tracing", "/sys/kernel/debug", "/lib/modules", "/host/sys/fs/cgroup"} <= mounts
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (endpoint,) = docs["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True and endpoint["port"] == "metrics"
    assert docs["Service"]["spec"]["ports"][0]["port"] == int(PORT)
    assert docs["Service"]["spec"]["selector"] == docs["DaemonSet"]["spec"]["selector"]["matchLabels"]


def test_systemd_unit():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((ASSETS / "ctop-exporter.service").read_text())
    exec_start = unit["Service"]["ExecStart"]
    assert " exporter " in exec_start and f":{PORT}" in exec_start
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert unit["Service"]["Restart"] == "on-failure"
