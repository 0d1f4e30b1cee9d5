"""`ctop --prometheus`: --help tells the options, bad ones are one sentence, and -b prints the fleet's rows from a
real local HTTP server answering as Prometheus does (what the server is asked is checked too)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

from click.testing import CliRunner
from support.fleet import PORTS
from support.http_answers import server

from ctop.cli import cli

PORT = PORTS.start + 22
NOBODY = f"http://127.0.0.1:{PORTS.start + 23}"  # nobody listens there


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_names_the_fleet_options() -> None:
    out = run("--help").output
    for option in ("--prometheus URL", "--prometheus-selector", "--prometheus-basic-auth-user",
                   "--prometheus-basic-auth-password-file", "--prometheus-bearer-token-file", "--prometheus-ca-file",
                   "--prometheus-header", "--prometheus-insecure", "--prometheus-timeout", "--at WHEN"):
        assert option in out, option


def test_fleet_options_without_prometheus_are_one_sentence() -> None:
    result = run("--at", "10m ago", "-b")
    assert result.exit_code == 2 and "need --prometheus URL" in result.output


def test_an_unreachable_server_is_one_sentence() -> None:
    result = run("--prometheus", NOBODY, "-b", "-n", "1")  # nobody listens there
    assert result.exit_code == 1
    assert f"Cannot reach Prometheus at {NOBODY}" in result.output
    assert "Traceback" not in result.output


def test_a_bad_header_or_time_is_one_sentence() -> None:
    result = run("--prometheus", NOBODY, "--prometheus-header", "nocolon", "-b")
    assert result.exit_code == 2 and "Name: value" in result.output
    result = run("--prometheus", NOBODY, "--at", "the day after tomorrow", "-b")
    assert result.exit_code == 2 and "--at" in result.output


def _answer(path: str) -> bytes:
    query = parse_qs(urlparse(path).query)
    if "/targets" in path:
        return json.dumps({"status": "success", "data": {"activeTargets": [{"scrapeInterval": "30s"}]}}).encode()
    expr = query["query"][0]
    result = []
    labels = {"node": "n1", "instance": "n1:10417", "id": "/kubepods/pod1/c1", "name": "", "image": "img",
              "container": "app", "pod": "web", "namespace": "shop"}
    key = {k: labels[k] for k in ("node", "instance", "id")}
    if "ctop_field\", \"names\"" in expr:  # the names (asked once, kept)
        result.append({"metric": {**labels, "ctop_field": "names"}, "value": [1, "1"]})
    if "container_memory_working_set_bytes|" in expr:  # the gauges, grouped by metric name
        result.append({"metric": {**key, "__name__": "container_memory_working_set_bytes"}, "value": [1, "1048576"]})
    if "ctop_field\", \"cpu_seconds_per_s\"" in expr:
        result.append({"metric": {**key, "ctop_field": "cpu_seconds_per_s"}, "value": [1, "0.5"]})
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def test_batch_json_prints_the_fleet_at_a_time(tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("t0k\n")
    with server(lambda r: (200, _answer(r.path)), PORT) as seen:
        result = run("--prometheus", f"http://127.0.0.1:{PORT}", "--prometheus-selector", 'cluster="prod"',
                     "--prometheus-bearer-token-file", str(token), "--at", "1700000000", "-b", "--json", "-n", "1")
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.output.splitlines()[0])}
    app = rows["/n1/kubepods/pod1/c1"]
    assert app["cpu_percent"] == 50.0 and app["memory_working_set_bytes"] == 1048576 and app["node"] == "n1"
    assert app["runq_latency_p99_seconds"] is None and app["memory_limit_bytes"] is None
    assert {r["kind"] for r in rows.values()} == {"container", "pod", "node", "namespace"}
    queries = [parse_qs(urlparse(r.path).query) for r in seen if "/query" in r.path]
    assert 1 <= len(queries) <= 10
    assert all(q["time"] == ["1700000000.000"] and 'cluster="prod"' in q["query"][0] for q in queries)
    assert all(r.headers["Authorization"] == "Bearer t0k" for r in seen)
    assert all("[120s]" in q["query"][0] for q in queries if "rate(" in q["query"][0])  # 4 scrapes of the server's 30 s
