"""Rows that stand for a group of rows (a node, a pod, a namespace, a Compose project): their figures added up."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .ebpf_rates import EBPF_KEYS, EbpfRates
from .frame import CgroupRow, Identity
from .sample import UNLIMITED, CgroupSample

COMPOSE_PATH = "/~compose"  # group rows are not cgroups: their paths start with "/~", which no cgroup name has here
SUMMED_RATES = ("cpu_percent", "io_read_bytes_per_s", "io_write_bytes_per_s", "io_read_ops_per_s",
                "io_write_ops_per_s", "memory_major_faults_per_s", "net_rx_bytes_per_s", "net_tx_bytes_per_s",
                "throttled_seconds_per_s")
SUMMED_SAMPLE = ("cpu_usage_ns", "memory_usage_bytes", "memory_inactive_file_bytes", "memory_rss_bytes",
                 "memory_cache_bytes", "memory_swap_bytes", "memory_oom_kills", "processes", "threads")
SUMMED_EBPF = tuple(k for k in EBPF_KEYS if k.endswith("_per_s"))


def sum_present(values: Iterable[float | int | None]) -> float | None:
    """The sum of the values that are known; None when none is."""
    present = [x for x in values if x is not None]
    return sum(present) if present else None


def summed_row(path: str, identity: Identity, rows: list[CgroupRow]) -> CgroupRow:
    """One row for a group: figures and rates added up, limits only when all members have one."""
    def sample_sum(name: str) -> int | None:
        total = sum_present(getattr(r.sample, name) for r in rows)
        return None if total is None else int(total)

    memory_limits = [r.sample.memory_limit_bytes for r in rows]
    memory_limit = (sum(x for x in memory_limits if x is not None) if rows and
                    all(x is not None and x != UNLIMITED for x in memory_limits) else None)
    sums: dict[str, Any] = {name: sample_sum(name) for name in SUMMED_SAMPLE}
    sample = dataclasses.replace(CgroupSample(path=path, inode=0, memory_limit_bytes=memory_limit), **sums)
    rates: dict[str, Any] = {name: sum_present(getattr(r, name) for r in rows) for name in SUMMED_RATES}
    cores_list = [r.cpu_limit_cores for r in rows]
    cores = sum(c for c in cores_list if c is not None) if rows and all(c is not None for c in cores_list) else None
    ebpf = [r.ebpf_rates for r in rows if r.ebpf_rates is not None]
    ebpf_rates = None
    if ebpf:
        per_s: dict[str, Any] = {k: sum_present(getattr(e, k) for e in ebpf) for k in SUMMED_EBPF}
        kills = sum_present(e.oom_kills for e in ebpf)
        ebpf_rates = dataclasses.replace(EbpfRates(oom_kills=None if kills is None else int(kills)), **per_s)
    working = sample.working_set_bytes
    cpu = rates["cpu_percent"]
    has_net = any(r.net is not None for r in rows)
    row = CgroupRow(sample=sample, identity=identity, cpu_limit_cores=cores,
                    cpu_limit_percent=None if cpu is None or not cores else cpu / cores,
                    memory_limit_percent=None if working is None or not memory_limit else working / memory_limit * 100,
                    net={} if has_net else None, ebpf_rates=ebpf_rates)
    return dataclasses.replace(row, **rates)


def compose_path(project: str) -> str:
    """The path of a Compose project's group row."""
    return f"{COMPOSE_PATH}/{project.replace('/', '_')}"


def compose_projects(rows: Mapping[str, CgroupRow]) -> dict[str, CgroupRow]:
    """One row per Docker Compose project, adding up its containers (containers inside containers count once)."""
    members: dict[str, list[CgroupRow]] = {}
    for row in rows.values():
        ident = row.identity
        if ident.kind == "container" and ident.compose_project:
            members.setdefault(ident.compose_project, []).append(row)
    out = {}
    for project, group in sorted(members.items()):
        path = compose_path(project)
        out[path] = summed_row(path, Identity(kind="compose", name=project, compose_project=project), group)
    return out
