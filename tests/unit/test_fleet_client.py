"""The fleet view's Prometheus client against a real local HTTP server of the test: what it sends (auth, headers,
time) and one sentence for every failure (unreachable, 401/403, rejected query, garbage, slow, partial data)."""

from __future__ import annotations

import base64
import http.server
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from support.fleet import PORTS
from support.http_answers import ok, server

from ctop.fleet.client import ClientConfig, FleetError, PrometheusClient, parse_duration_s, parse_header

PORT = PORTS.start + 20  # the fleet tests' ports: 19100-19149

def client(**kw: Any) -> PrometheusClient:
    return PrometheusClient(ClientConfig(url=f"http://127.0.0.1:{PORT}", **kw))


def one_sentence(error: FleetError) -> str:
    text = str(error)
    assert "\n" not in text and text.endswith(".") and "Traceback" not in text
    return text


def test_a_vector_comes_back_with_labels_values_and_warnings():
    sample = [{"metric": {"id": "/a", "node": "n1"}, "value": [1.0, "0.25"]},
              {"metric": {"id": "/b"}, "value": [1.0, "NaN"]}]
    with server(lambda r: (200, ok(sample, ["partial response: store 2 down"]))) as seen:
        answer = client().query("up", at=1700000000.5)
    assert [s.labels for s in answer.series] == [{"id": "/a", "node": "n1"}, {"id": "/b"}]
    assert answer.series[0].value == 0.25 and answer.series[1].value != answer.series[1].value  # NaN
    assert answer.warnings == ("partial response: store 2 down",)
    query = parse_qs(urlparse(seen[0].path).query)
    assert query == {"query": ["up"], "time": ["1700000000.500"]}


def test_auth_and_headers_are_sent(tmp_path):
    password, token = tmp_path / "password", tmp_path / "token"
    password.write_text("s3cret\n")
    token.write_text("tok-123\n")
    with server(lambda r: (200, ok([]))) as seen:
        client(basic_auth_user="alice", basic_auth_password_file=str(password),
               headers={"X-Scope-OrgID": "team-a"}).query("up")
        client(bearer_token_file=str(token)).query("up")
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert seen[0].headers["X-Scope-OrgID"] == "team-a"
    assert seen[1].headers["Authorization"] == "Bearer tok-123"


@pytest.mark.parametrize("status,needle", [(401, "HTTP 401 (unauthorized)"), (403, "HTTP 403 (forbidden)")])
def test_refused_credentials_are_one_sentence(status, needle):
    with server(lambda r: (status, b"Unauthorized\n")), pytest.raises(FleetError) as e:
        client().query("up")
    assert needle in one_sentence(e.value) and "--prometheus-bearer-token-file" in str(e.value)


def test_a_rejected_query_says_what_prometheus_said():
    body = json.dumps({"status": "error", "errorType": "bad_data",
                       "error": "invalid parameter \"query\": 1:6: parse error: unexpected \"}\""}).encode()
    with server(lambda r: (400, body)), pytest.raises(FleetError) as e:
        client().query("up{}}")
    assert "rejected the query: invalid parameter" in one_sentence(e.value) and "parse error" in str(e.value)


def test_a_query_timeout_on_the_server_is_named():
    body = json.dumps({"status": "error", "errorType": "timeout", "error": "query timed out in expression "
                       "evaluation"}).encode()
    with server(lambda r: (503, body)), pytest.raises(FleetError) as e:
        client().query("up")
    assert "timed out evaluating the query" in one_sentence(e.value)


def test_garbage_is_one_sentence():
    with server(lambda r: (200, b"<html>a login page</html>")), pytest.raises(FleetError) as e:
        client().query("up")
    assert "not the Prometheus API's JSON" in one_sentence(e.value)
    with server(lambda r: (200, json.dumps({"status": "success", "data": {"resultType": "matrix"}}).encode())), \
            pytest.raises(FleetError) as e:
        client().query("up")
    assert "other than an instant vector" in one_sentence(e.value)
    bad = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}).encode()
    with server(lambda r: (200, bad)), pytest.raises(FleetError) as e:
        client().query("up")
    assert "malformed sample" in one_sentence(e.value)


def test_queries_sent_together_come_back_in_their_order_and_one_failure_is_one_sentence():
    def reply(r: http.server.BaseHTTPRequestHandler) -> tuple[int, bytes]:
        expr = parse_qs(urlparse(r.path).query)["query"][0]
        if expr == "bad{":
            return 400, json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}).encode()
        time.sleep(0.3 if expr == "slow" else 0.0)  # answered last, asked first
        return 200, ok([{"metric": {"id": "/" + expr}, "value": [1.0, "1"]}])

    given: list[tuple[int, str]] = []
    with server(reply):
        fleet = client()
        answers = fleet.query_all(["slow", "a", "b", "c"], at=5.0,
                                  each=lambda i, a: given.append((i, a.series[0].labels["id"])))
        assert [a.series[0].labels["id"] for a in answers] == ["/slow", "/a", "/b", "/c"] and fleet.queries == 4
        assert sorted(given) == [(0, "/slow"), (1, "/a"), (2, "/b"), (3, "/c")]
        with pytest.raises(FleetError) as e:
            fleet.query_all(["a", "bad{", "b"])
    assert "rejected the query: parse error" in one_sentence(e.value)


def test_a_slow_server_times_out_in_one_sentence():
    def slow(_r: http.server.BaseHTTPRequestHandler) -> tuple[int, bytes]:
        time.sleep(1.5)
        return 200, ok([])

    with server(slow), pytest.raises(FleetError) as e:
        client(timeout_s=0.3).query("up")
    assert "did not answer the query within 0.3 s" in one_sentence(e.value)


def test_an_unreachable_server_is_one_sentence():
    with pytest.raises(FleetError) as e:
        PrometheusClient(ClientConfig(url=f"http://127.0.0.1:{PORT + 1}")).query("up")  # nobody listens there
    assert one_sentence(e.value).startswith(f"Cannot reach Prometheus at http://127.0.0.1:{PORT + 1}: ")


def test_bad_settings_are_one_sentence(tmp_path):
    with pytest.raises(FleetError) as e:
        PrometheusClient(ClientConfig(url="prometheus:9090"))
    assert "is not a Prometheus URL" in one_sentence(e.value)
    with pytest.raises(FleetError) as e:
        client(bearer_token_file=str(tmp_path / "missing"))
    assert "Cannot read the bearer token file" in one_sentence(e.value)
    with pytest.raises(ValueError, match="Name: value"):
        parse_header("no colon here")
    assert parse_header("X-Scope-OrgID: team-a") == ("X-Scope-OrgID", "team-a")


def test_the_scrape_interval_comes_from_the_targets_else_the_configuration():
    targets = {"status": "success", "data": {"activeTargets": [{"scrapeInterval": "30s"}, {"scrapeInterval": "15s"}]}}
    config = {"status": "success", "data": {"yaml": "global:\n  scrape_interval: 1m\n"}}

    def reply(r: http.server.BaseHTTPRequestHandler) -> tuple[int, bytes]:
        return 200, json.dumps(targets if "/targets" in r.path else config).encode()

    with server(reply):
        assert client().scrape_interval_s() == 15.0
    targets["data"]["activeTargets"] = []
    with server(reply):
        assert client().scrape_interval_s() == 60.0
    assert parse_duration_s("1m30s") == 90.0 and parse_duration_s("soon") is None
