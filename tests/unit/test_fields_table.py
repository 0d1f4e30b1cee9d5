"""The field table is the one place a field is defined: every reference to a field key resolves to an entry of it,
the JSON/CSV keys and the default tables stay as they were, and no key literal creeps back into the code."""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import pytest
from ctop.exporters.cadvisor import cadvisor_families
from ctop.exporters.ctop_families import Health, ebpf_families, health_families, info_families
from unit.test_ui_frames import make_frame, node_rows

from ctop.batch import BatchOptions
from ctop.model import fields
from ctop.model.ebpf_rates import EBPF_KEYS
from ctop.model.filters import FILTER_KEYS
from ctop.model.frame import CgroupRow, Identity
from ctop.model.sample import CgroupSample
from ctop.ui import detail, keys
from ctop.ui.columns import COLUMNS, COLUMNS_BY_KEY, DEFAULT_COLUMNS

REPO = pathlib.Path(__file__).resolve().parents[2]

# The stable interface for scripts: these keys, in this order, after "time". A new field appends; none renames.
JSON_KEYS = (
    "id", "name", "kind", "runtime", "container_id", "image", "pod", "namespace", "container", "qos_class", "depth",
    "cpu_percent", "cpu_limit_cores", "cpu_limit_percent", "throttled_percent", "cpu_usage_seconds",
    "cpu_throttled_seconds", "cpu_shares", "cpu_weight", "cpuset_cpus", "memory_usage_bytes",
    "memory_working_set_bytes", "memory_limit_bytes", "memory_limit_percent", "memory_rss_bytes", "memory_cache_bytes",
    "memory_swap_bytes", "memory_failcnt", "memory_oom_kills", "memory_major_faults_per_s", "io_read_bytes_per_s",
    "io_write_bytes_per_s", "io_read_ops_per_s", "io_write_ops_per_s", "net_rx_bytes_per_s", "net_tx_bytes_per_s",
    "runq_latency_p50_seconds", "runq_latency_p99_seconds", "runq_wait_seconds_per_s", "ctx_switches_voluntary_per_s",
    "ctx_switches_involuntary_per_s", "preempted_by_others_per_s", "preempted_by_host_per_s", "forks_per_s",
    "execs_per_s", "exits_per_s", "oom_kills", "pids", "pids_max", "processes", "threads", "psi_cpu_some_avg10",
    "psi_memory_some_avg10", "psi_memory_full_avg10", "psi_io_some_avg10", "psi_io_full_avg10",
    "throttled_percent_avg", "throttled_seconds_per_s", "restarts", "oom_kill_age_seconds", "compose_project",
    "compose_service", "top_preemptor", "preempted_by",
)


def test_the_table_is_sound():
    assert fields.problems() == []


def test_a_reference_to_a_missing_key_is_a_problem(monkeypatch):
    bad = fields.Field("bad_colour", "BAD", "count", "refers to nothing", lambda r: 1,
                       colour=fields.Threshold(1, 2, on=("memroy_limit_percent",)))
    monkeypatch.setattr(fields, "FIELDS", (*fields.FIELDS, bad))
    assert any("memroy_limit_percent" in p for p in fields.problems())
    twice = fields.Field("cpu_percent", "CPU2", "percent", "a second cpu_percent", lambda r: 1, hotkey="P")
    monkeypatch.setattr(fields, "FIELDS", (*fields.FIELDS, twice))
    found = fields.problems()
    assert any("'cpu_percent' is defined twice" in p for p in found) and any("hotkey 'P'" in p for p in found)


def test_json_and_csv_keys_keep_their_names_and_places():
    keys_ = tuple(f.key for f in fields.JSON_FIELDS)
    assert keys_[:len(JSON_KEYS)] == JSON_KEYS  # a new field is appended: CSV columns keep their places
    assert set(EBPF_KEYS) <= set(JSON_KEYS)  # every eBPF rate is a JSON key


def test_the_batch_table_and_the_list_keep_their_default_columns():
    assert [f.header for f in BatchOptions().columns] == [
        "CGROUP", "NAME", "PROCS", "PIDS", "CPU%", "CPULIM", "THR%", "MEM", "MEMLIM", "IOR/s", "IOW/s", "NETRX/s",
        "NETTX/s", "RQP99"]
    assert [c.header for c in DEFAULT_COLUMNS] == [
        "NAME", "NAMESPACE/POD", "QOS", "CPU%", "%CPULIM", "THR%", "MEM", "MEMLIM", "%MEMLIM", "RQP99", "CSW/s",
        "NETRX/s", "NETTX/s", "IOR/s", "IOW/s", "PIDS", "OOMK", "RESTARTS", "LASTOOM"]  # the last two: history
    assert [c.width for c in DEFAULT_COLUMNS[1:]] == [20, 10, 6, 8, 5, 7, 7, 8, 7, 6, 8, 8, 8, 8, 5, 5, 9, 8]
    assert [c.priority for c in DEFAULT_COLUMNS] == [0, 6, 7, 0, 3, 2, 0, 4, 1, 3, 6, 5, 5, 4, 4, 2, 1, 3, 3]


def test_every_reference_to_a_field_resolves_to_an_entry():
    table = set(fields.FIELDS)
    for b in keys.BINDINGS:
        if b.action == "sort_column":
            assert b.arg in fields.FIELDS_BY_KEY and b.arg in COLUMNS_BY_KEY, b
    assert set(BatchOptions().columns) <= table
    assert set(fields.ORDER_ALIASES.values()) <= table
    assert {c.field for c in COLUMNS} <= table and COLUMNS_BY_KEY.keys() <= fields.FIELDS_BY_KEY.keys()
    assert set(FILTER_KEYS.values()) <= table
    assert table >= detail.SHOWN and set(detail.EBPF_FIELDS) <= table
    for f in fields.FIELDS:
        for key in f.colour.on if f.colour else ():
            assert key in fields.FIELDS_BY_KEY, (f.key, key)
    for name, value in vars(fields).items():
        if isinstance(value, fields.Field):
            assert value in table and name == value.key.upper()


def test_the_order_aliases_hotkeys_and_filter_keys_of_before():
    aliases = {alias: f.key for alias, f in fields.ORDER_ALIASES.items()}
    assert aliases.items() >= {"cpu": "cpu_percent", "memory": "memory_working_set_bytes", "io": "io_read_bytes_per_s",
                       "pids": "pids", "throttle": "throttled_percent", "limit": "cpu_limit_percent",
                       "net": "net_rx_bytes_per_s", "name": "display_name", "path": "id"}.items()
    assert {b.keys[0] for b in keys.SORT_BINDINGS} >= set("PMNTILQK")
    assert set(FILTER_KEYS) >= {"name", "pod", "namespace", "runtime", "qos", "kind", "image", "container", "id"}


def test_sort_field_takes_aliases_and_sortable_keys_only():
    assert fields.sort_field("io") is fields.IO_READ_BYTES_PER_S
    assert fields.sort_field("runq_latency_p99_seconds") is fields.RUNQ_LATENCY_P99_SECONDS
    for bad in ("colour", "container_id", ""):
        with pytest.raises(KeyError):
            fields.sort_field(bad)


def test_io_and_net_sort_by_both_directions_of_traffic():
    rows = [CgroupRow(sample=CgroupSample(path=p, inode=i), io_read_bytes_per_s=r, io_write_bytes_per_s=w)
            for i, (p, r, w) in enumerate([("/a", 5.0, 0.0), ("/b", 1.0, 9.0), ("/c", None, None)])]
    io = fields.sort_field("io")
    assert [r.path for r in fields.sort_rows(rows, io.sort_key, io.sorts_descending)] == ["/b", "/a", "/c"]


def test_colour_rules_judge_their_own_or_another_field():
    nginx, sidecar = (next(r for r in node_rows() if r.identity.name == n) for n in ("nginx", "sidecar"))
    assert fields.level(fields.MEMORY_WORKING_SET_BYTES, nginx) == "crit"  # 97.7 % of its limit
    assert fields.level(fields.MEMORY_LIMIT_PERCENT, nginx) == "crit"
    assert fields.level(fields.CPU_LIMIT_PERCENT, nginx) == "warn"
    assert fields.level(fields.DISPLAY_NAME, sidecar) == "crit" and fields.level(fields.DISPLAY_NAME, nginx) is None
    assert fields.level(fields.CPU_PERCENT, nginx) is None


def test_every_metric_named_is_a_family_the_exporter_builds():
    frame = make_frame(node_rows())
    labeled = [("", r) for r in frame.rows.values()]
    built = {fam.name for fam in (*cadvisor_families(frame, labeled), *info_families(labeled),
                                  *ebpf_families(labeled), *health_families(frame, Health(), 0))}
    named = {f.metric for f in fields.FIELDS if f.metric}
    assert named and named <= built, named - built


def _model_attributes() -> set[str]:
    """Attribute names of the records readers and derive build by keyword (they share some names with fields)."""
    names = {f.name for cls in (CgroupSample, CgroupRow, Identity) for f in dataclasses.fields(cls)}
    return names | {n for n in vars(CgroupSample) if isinstance(getattr(CgroupSample, n), property)}


VIEWS = ("ctop/ui/", "ctop/batch.py", "ctop/cli.py", "ctop/model/filters.py")


def key_literals() -> list[str]:
    """String literals outside fields.py that name a field key (keys with an underscore; words like "pod" are
    labels and kinds too). Views may name none; elsewhere a record attribute that shares a key's name is allowed."""
    field_keys = {f.key for f in fields.FIELDS if "_" in f.key}
    attributes = _model_attributes()
    found = []
    for top in ("ctop", "exporters"):
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel == "ctop/model/fields.py":
                continue
            view = rel.startswith(VIEWS)
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if isinstance(node, ast.Constant) and node.value in field_keys and (
                        view or node.value not in attributes):
                    found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return found


def test_no_field_key_literal_outside_the_table():
    assert key_literals() == []


def test_the_literal_scan_finds_a_key(tmp_path, monkeypatch):
    planted = REPO / "ctop" / "ui" / "zz_planted_for_test.py"
    monkeypatch.setattr(pathlib.Path, "rglob", lambda self, pattern: [planted] if self.name == "ctop" else [])
    monkeypatch.setattr(pathlib.Path, "read_text", lambda self: 'SORT = "runq_latency_p99_seconds"\n')
    assert key_literals() == ["ctop/ui/zz_planted_for_test.py:1: 'runq_latency_p99_seconds'"]
