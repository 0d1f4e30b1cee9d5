"""Reads ctop's BPF maps in one batch per refresh and turns kernel cgroup ids into paths: an EbpfReading."""

from __future__ import annotations

import collections
import ctypes
import os
import struct
import time

from .loader import Loaded
from .reading import (
    RUNQ_SLOTS,
    EbpfCgroupCounters,
    EbpfReading,
    ExecRecord,
    MapFill,
    OomKill,
)

# Must match bpf/ctop.h.
C_CGROUP_MAP_FULL, C_THREAD_MAP_FULL, C_THREADS_ADDED, C_THREADS_REMOVED, C_EVENTS_UNATTRIBUTED = range(5)
SEQ_EXEC, SEQ_OOM, SEQ_CGROUP = range(3)
EXECS_PER_CGROUP = 32       # recent execs kept per cgroup in user space
OOM_KILLS_KEPT = 64
_N_FIELDS = RUNQ_SLOTS + 11  # u64 fields of struct cgroup_counters
_COUNTERS = struct.Struct(f"<{_N_FIELDS}Q")


def _text(raw: bytes) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", "replace")


def _sum_counters(rows: list[tuple[int, ...]], cgroup_id: int) -> EbpfCgroupCounters:
    """Add up the per-CPU copies of one cgroup's counters (max is a max)."""
    total = [sum(column) for column in zip(*rows)] if rows else [0] * _N_FIELDS
    runq_max = max((row[RUNQ_SLOTS + 2] for row in rows), default=0)
    s = RUNQ_SLOTS
    return EbpfCgroupCounters(
        cgroup_id=cgroup_id,
        runq_buckets=tuple(total[:s]),
        runq_sum_seconds=total[s] / 1e9,
        runq_count=total[s + 1],
        runq_max_seconds=runq_max / 1e9,
        nvcsw=total[s + 3],
        nivcsw=total[s + 4],
        preempted_by_others=total[s + 5],
        preempted_by_host=total[s + 6],
        forks=total[s + 7],
        execs=total[s + 8],
        exits=total[s + 9],
        oom_kills=total[s + 10],
    )


class MapReader:
    """Keeps what one reading needs from the previous one: id->path names, log positions, recent execs."""

    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded
        bpf = loaded.bpf
        self._cgroups = bpf[b"cgroups"]
        self._counters = bpf[b"counters"]
        self._seqs = bpf[b"seqs"]
        self._exec_log = bpf[b"exec_log"]
        self._oom_log = bpf[b"oom_log"]
        self._cgroup_log = bpf[b"cgroup_log"]
        self._paths: dict[int, str] = {}
        self._walked_at = 0.0
        self._last_seq = [int(v.value) for v in self._seqs.values()]
        self._execs: dict[str, collections.deque[ExecRecord]] = {}
        self._ooms: collections.deque[OomKill] = collections.deque(maxlen=OOM_KILLS_KEPT)
        self._dropped_logs = {"exec_log_overwritten": 0, "oom_log_overwritten": 0, "cgroup_log_overwritten": 0}
        self._walk()

    # -- cgroup ids -> paths ---------------------------------------------------------------------------------
    def _walk(self, replace: bool = False) -> None:
        """Name every cgroup id from the tracking hierarchy; ``replace`` also forgets ids that are gone."""
        root = self.loaded.tracking.root
        paths = {self.loaded.tracking.root_id: "/"}
        for dirpath, _dirs, _files in os.walk(root):
            if dirpath == root:
                continue
            try:
                paths[os.stat(dirpath).st_ino] = dirpath[len(root):]
            except OSError:
                continue
        if replace:
            self._paths = paths
            live = set(paths.values())
            self._execs = {p: d for p, d in self._execs.items() if p in live}
        else:
            self._paths.update(paths)
        self._walked_at = time.monotonic()

    def path_of(self, cgroup_id: int) -> str | None:
        path = self._paths.get(cgroup_id)
        if path is None and time.monotonic() - self._walked_at > 0.5:
            self._walk()
            path = self._paths.get(cgroup_id)
        return path

    # -- logs ------------------------------------------------------------------------------------------------
    def _new_records(self, table: object, which: int, size: int, name: str) -> list[object]:
        seq_now = int(self._seqs[ctypes.c_int(which)].value)
        first = self._last_seq[which] + 1
        self._last_seq[which] = seq_now
        if seq_now < first:
            return []
        if seq_now - first + 1 > size:
            self._dropped_logs[name] += seq_now - first + 1 - size
            first = seq_now - size + 1
        records = []
        for seq in range(first, seq_now + 1):
            rec = table[ctypes.c_int((seq - 1) % size)]  # type: ignore[index]
            if rec.seq == seq:
                records.append(rec)
        return records

    def read(self) -> EbpfReading:
        now_mono = time.monotonic()
        boot_to_unix = time.time() - now_mono  # bpf_ktime_get_ns() is CLOCK_MONOTONIC

        new_cgroups: list[str] = []
        removed: list[str] = []
        removed_ids: list[int] = []  # forgotten only after this read has named its last events
        lost_before = self._dropped_logs["cgroup_log_overwritten"]
        for rec in self._new_records(self._cgroup_log, SEQ_CGROUP, 256, "cgroup_log_overwritten"):
            path = _text(rec.path) or "/"
            if rec.kind == 1:
                self._paths[int(rec.cgroup_id)] = path
                new_cgroups.append(path)
            else:
                removed_ids.append(int(rec.cgroup_id))
                removed.append(path)

        by_cgroup: dict[str, EbpfCgroupCounters] = {}
        unattributed = EbpfCgroupCounters()
        used = unresolved = 0
        for key, value in self._cgroups.items_lookup_batch():
            used += 1
            cgroup_id = int(key.value) if hasattr(key, "value") else int(key)
            raw = bytes(value)
            rows = [_COUNTERS.unpack_from(raw, i * _COUNTERS.size) for i in range(len(raw) // _COUNTERS.size)]
            counters = _sum_counters(rows, cgroup_id)
            if cgroup_id == 0:
                unattributed = counters
                continue
            path = self.path_of(cgroup_id)
            if path is None:
                unresolved += 1
                continue
            by_cgroup[path] = counters

        for rec in self._new_records(self._exec_log, SEQ_EXEC, 256, "exec_log_overwritten"):
            path = self.path_of(int(rec.cgroup_id)) if rec.cgroup_id else None
            record = ExecRecord(int(rec.pid), int(rec.ppid), _text(rec.comm), _text(rec.filename),
                                boot_to_unix + rec.time_ns / 1e9)
            self._execs.setdefault(path or "", collections.deque(maxlen=EXECS_PER_CGROUP)).append(record)
        for rec in self._new_records(self._oom_log, SEQ_OOM, 64, "oom_log_overwritten"):
            path = self.path_of(int(rec.cgroup_id)) if rec.cgroup_id else None
            self._ooms.append(OomKill(path, int(rec.pid), _text(rec.comm), boot_to_unix + rec.time_ns / 1e9))
        for path in removed:
            self._execs.pop(path, None)
        for cgroup_id in removed_ids:
            self._paths.pop(cgroup_id, None)
        if self._dropped_logs["cgroup_log_overwritten"] > lost_before:
            self._walk(replace=True)  # removals were lost with the overwritten records: forget what is gone

        counter_sums = [sum(int(c) for c in self._counters[ctypes.c_int(i)]) for i in range(5)]
        threads_used = self.loaded.seeded_threads + counter_sums[C_THREADS_ADDED] - counter_sums[C_THREADS_REMOVED]
        dropped = {
            "cgroup_map_full": counter_sums[C_CGROUP_MAP_FULL],
            "thread_map_full": counter_sums[C_THREAD_MAP_FULL],
            "events_of_unknown_tasks": counter_sums[C_EVENTS_UNATTRIBUTED],
            "unnamed_cgroup_ids": unresolved,
            **self._dropped_logs,
        }
        return EbpfReading(
            monotonic_time=now_mono,
            by_cgroup=by_cgroup,
            unattributed=unattributed,
            oom_kills=tuple(self._ooms),
            execs={p: tuple(d) for p, d in self._execs.items() if p},
            new_cgroups=tuple(new_cgroups),
            removed_cgroups=tuple(removed),
            map_fill={
                "cgroups": MapFill(used, self.loaded.cgroups_max),
                "threads": MapFill(max(threads_used, 0), self.loaded.threads_max),
            },
            dropped=dropped,
            runq_method=self.loaded.runq_method,
        )
