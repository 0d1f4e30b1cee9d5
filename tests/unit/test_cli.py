"""Every command and --help through click's CliRunner; bad flags give one clear sentence and exit status 2."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from support.trees import tree

from ctop.cli import cli

V2 = tree("v2-k8s-systemd")
ROOTS = ["--cgroup-root", V2[0], "--proc-root", V2[1]]
REQUIRED_KEYS = {"id", "cpu_percent", "cpu_limit_cores", "throttled_percent", "memory_usage_bytes",
                 "memory_working_set_bytes", "memory_limit_bytes", "io_read_bytes_per_s", "io_write_bytes_per_s",
                 "pids"}


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("args", [["--help"], ["doctor", "--help"], ["fields", "--help"]])
def test_help(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_main_help_lists_options_and_commands() -> None:
    out = run("--help").output
    for word in ("--batch", "--iterations", "--delay", "--order", "--depth", "--json", "--csv", "doctor", "fields"):
        assert word in out


@pytest.mark.parametrize(("args", "phrase"), [
    (["--bogus"], "No such option"),
    (["-n", "0"], "0 is not in the range"),
    (["-d", "abc"], "not a valid float"),
    (["--order", "colour"], "'colour' is not one of"),
    (["--depth", "-1"], "-1 is not in the range"),
    (["-b", "--json", "--csv"], "cannot be used together"),
    (["frobnicate"], "No such command"),
])
def test_bad_flags_exit_2_with_one_sentence(args: list[str], phrase: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and phrase in error_lines[0]
    assert "Traceback" not in result.output


def test_batch_json_has_the_stable_keys() -> None:
    result = run("-b", "--json", "-n", "2", "-d", "0.05", *ROOTS)
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    rows = json.loads(lines[0])
    assert isinstance(rows, list) and rows
    assert all(set(r) >= REQUIRED_KEYS for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert "/" in by_id
    limited = next(r for r in rows if r["id"].endswith(".scope") and "kubepods-pod" in r["id"])
    assert limited["cpu_limit_cores"] == 0.5 and limited["memory_limit_bytes"] == 256 << 20
    assert by_id["/system.slice/kubelet.service"]["cpu_limit_cores"] is None
    assert by_id["/system.slice/kubelet.service"]["memory_limit_bytes"] is None


def test_batch_csv_has_a_header_once() -> None:
    result = run("-b", "--csv", "-n", "2", "-d", "0.05", *ROOTS)
    assert result.exit_code == 0
    records = list(csv.reader(io.StringIO(result.output)))
    header = records[0]
    assert header[0] == "time" and set(header) >= REQUIRED_KEYS
    assert sum(1 for r in records if r and r[0] == "time") == 1
    assert all(len(r) == len(header) for r in records if r)


def test_batch_text_order_and_depth() -> None:
    result = run("-b", "-n", "1", "-d", "0.05", "--order", "memory", "--depth", "1", *ROOTS)
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].split()[0] == "CGROUP"
    ids = [line.split()[0] for line in lines[1:]]
    assert set(ids) == {"/", "/kubepods.slice", "/system.slice"}
    assert ids[0] == "/"  # the root holds the most memory


def test_order_by_name_is_ascending_and_reversible() -> None:
    forward = run("-b", "--json", "-n", "1", "-d", "0.05", "--order", "path", *ROOTS).output
    backward = run("-b", "--json", "-n", "1", "-d", "0.05", "--order", "path", "-r", *ROOTS).output
    ids = [r["id"] for r in json.loads(forward)]
    assert ids == sorted(ids)
    assert [r["id"] for r in json.loads(backward)] == ids[::-1]


def test_missing_cgroup_root_is_one_sentence(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["-b", "-n", "1", "--cgroup-root", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "No cgroup filesystem" in result.output and "Traceback" not in result.output


def test_doctor_reports_each_check_and_fails_without_cgroups(tmp_path) -> None:
    ok = run(*ROOTS, "doctor")
    assert "cgroups" in ok.output and "cgroup v2" in ok.output
    assert ok.exit_code == 0
    bad = CliRunner().invoke(cli, ["--cgroup-root", str(tmp_path), "doctor", "--json"])
    assert bad.exit_code == 1
    checks = json.loads(bad.output)
    assert any(c["name"] == "cgroups" and c["status"] == "fail" for c in checks)
    assert all(c["message"] for c in checks)


def test_fields_lists_every_json_key() -> None:
    out = run("fields").output
    for key in REQUIRED_KEYS:
        assert key in out


def test_order_takes_any_sortable_field_key_and_a_bad_one_is_one_sentence() -> None:
    by_key = run("-b", "--json", "-n", "1", "-d", "0.05", "--order", "memory_working_set_bytes", *ROOTS).output
    by_alias = run("-b", "--json", "-n", "1", "-d", "0.05", "--order", "memory", *ROOTS).output
    assert [r["id"] for r in json.loads(by_key)] == [r["id"] for r in json.loads(by_alias)]
    result = CliRunner().invoke(cli, ["-b", "--order", "container_id", *ROOTS])
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 2 and len(errors) == 1
    assert "'container_id' is not one of " in errors[0] and "a sortable field key" in errors[0]
    assert all(alias in errors[0] for alias in ("cpu", "memory", "io", "pids", "throttle", "limit", "net", "path"))


def test_fields_lines_keep_key_header_unit_meaning_and_add_sorting_and_metrics() -> None:
    from ctop.model.fields import JSON_FIELDS

    lines = run("fields").output.splitlines()
    assert lines[0].startswith("time ") and "seconds since the Unix epoch" in lines[0]  # the first JSON/CSV key
    for f, line in zip(JSON_FIELDS, lines[1:]):
        assert line.startswith(f"{f.key:<28} {f.header:<9} {f.unit or 'text':<12} {f.description}")
    cpu = next(line for line in lines if line.startswith("cpu_percent "))
    assert "--order cpu" in cpu and "key P" in cpu and "metric container_cpu_usage_seconds_total" in cpu
    assert any(line.startswith("display_name ") and "interactive list only" in line for line in lines)
    records = json.loads(run("fields", "--json").output)
    assert [r["key"] for r in records if r["json"]] == ["time", *(f.key for f in JSON_FIELDS)]
    p99 = next(r for r in records if r["key"] == "runq_latency_p99_seconds")
    assert (p99["hotkey"], p99["sortable"], p99["metric"]) == ("Q", True, "ctop_runqueue_latency_seconds")


def test_doctor_says_how_each_runtime_is_named_here(tmp_path) -> None:
    import socket as socketlib

    from ctop.doctor import check_docker, check_state_files

    missing = str(tmp_path / "docker.sock")
    assert check_docker(missing, str(tmp_path / "no-data")).status == "ok"  # no Docker: nothing to warn about
    data = tmp_path / "docker-data"
    data.mkdir()
    warned = check_docker(missing, str(data))
    assert warned.status == "warn" and "without names" in warned.message
    listening = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    listening.bind(missing)
    listening.listen(8)
    try:
        answered = check_docker(missing, str(data))
        assert answered.status == "ok" and "Engine API" in answered.message
    finally:
        listening.close()
    tasks = tmp_path / "tasks"
    assert check_state_files("containerd", (str(tasks),)).message.startswith("no containerd state")
    tasks.mkdir()
    named = check_state_files("containerd", (str(tasks),))
    assert named.status == "ok" and named.message == f"named from state files in {tasks}"
