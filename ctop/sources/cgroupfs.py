"""Reads every cgroup of a host (v1, v2 or hybrid) into raw CgroupSamples: no rates, no names.

A missing or malformed file is "no data" for its fields; a cgroup that vanishes while it is read is dropped
from that refresh. Reads use raw file descriptors (see readfile.py) because this is the hot path.
"""

from __future__ import annotations

import os
import time

from ..model.sample import UNLIMITED, CgroupSample
from . import parsers
from .cgroupfs_layout import CgroupLayout
from .cgroupwatch import TreeWatch
from .procfs import NS_PER_TICK
from .readfile import count_lines, first_int, parse_flat_keyed, read_bytes, read_int, read_limit


def walk_cgroups(roots: list[str], max_depth: int | None = None) -> dict[str, dict[str, int]]:
    """All cgroup paths found under any of ``roots``: path -> {root: inode of that directory}.

    ``max_depth`` limits how deep to descend (0 = the root cgroup only). Directories that vanish while
    being listed are skipped.
    """
    found: dict[str, dict[str, int]] = {}
    for root in roots:
        try:
            found.setdefault("/", {})[root] = os.stat(root).st_ino
        except OSError:
            continue
        stack: list[tuple[str, str, int]] = [(root, "", 0)]
        while stack:
            directory, rel, depth = stack.pop()
            if max_depth is not None and depth >= max_depth:
                continue
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            child_rel = rel + "/" + entry.name
                            found.setdefault(child_rel, {})[root] = entry.inode()
                            stack.append((entry.path, child_rel, depth + 1))
            except OSError:
                continue
    return found


class CgroupReader:
    """Reads cgroups of one layout. Create once, call ``read_all`` every refresh."""

    def __init__(self, layout: CgroupLayout) -> None:
        self.layout = layout
        c = layout.controllers
        self._cpu = c.get("cpu")
        self._cpuacct = c.get("cpuacct")
        self._cpuset = c.get("cpuset")
        self._memory = c.get("memory")
        self._blkio = c.get("blkio")
        self._pids = c.get("pids")
        self._unified = layout.unified
        self._v2 = layout.mode == "v2"
        # The hierarchy whose directory inode identifies a cgroup (recreated cgroups get a new one).
        if self._v2:
            self._roots = [layout.unified] if layout.unified else []
        else:
            self._roots = [r for r in (self._cpuacct, self._cpu, self._memory, self._pids, self._blkio,
                                       self._cpuset) if r]
        self._primary = self._roots[0] if self._roots else None
        self._tasks_root = self._pids or self._cpu or self._memory or self._primary
        self._psi_root = layout.unified if self._psi_enabled(layout.unified) else None
        self._memsw = bool(self._memory and os.path.exists(self._memory + "/memory.memsw.usage_in_bytes"))
        self._blkio_suffix = "_recursive" if (
            self._blkio and os.path.exists(self._blkio + "/blkio.throttle.io_service_bytes_recursive")) else ""
        # Each refresh walks one hierarchy (the one carrying CPU time, the activity signal); the union of all
        # hierarchies is walked every ``rescan_s`` to find cgroups that exist only in other controllers.
        self._scan_root = self._primary
        self._activity_file = "/cpu.stat" if self._v2 else "/cpuacct.usage"
        self._extra_paths: dict[str, int] = {}
        self._last_union_walk = -1e9
        self._watches: dict[str, TreeWatch] = {}
        self._watch_depth: int | None = None
        self._cache: dict[str, tuple[CgroupSample, float]] = {}

    @staticmethod
    def _psi_enabled(unified: str | None) -> bool:
        """PSI files exist even when PSI is disabled (reads then fail): try the root's once."""
        return bool(unified) and read_bytes(f"{unified}/cpu.pressure") is not None

    def discover(self, max_depth: int | None = None) -> dict[str, int]:
        """Every cgroup path with the inode that identifies it."""
        found = walk_cgroups(self._roots, max_depth)
        return {path: inodes.get(self._primary) or next(iter(inodes.values())) for path, inodes in found.items()}

    def _paths(self, max_depth: int | None, now: float, rescan_s: float) -> dict[str, int]:
        """Paths to read this refresh: the scan hierarchy's cgroups plus those only other hierarchies hold.

        Every hierarchy is checked at most every ``rescan_s``, the scan hierarchy every refresh; each check
        costs one stat per known cgroup (see cgroupwatch.py), not a listing of every directory.
        """
        if self._watch_depth != max_depth or not self._watches:
            self._watches = {root: TreeWatch(root, max_depth) for root in self._roots}
            self._watch_depth = max_depth
        if self._scan_root is None or now - self._last_union_walk >= rescan_s:
            self._last_union_walk = now
            found: dict[str, dict[str, int]] = {}
            for root, watch in self._watches.items():
                for path, inode in watch.paths().items():
                    found.setdefault(path, {})[root] = inode
            union = {path: inodes.get(self._primary) or next(iter(inodes.values())) for path, inodes in found.items()}
            self._extra_paths = {p: i for p, i in union.items() if self._scan_root not in found[p]}
            return union
        paths = self._watches[self._scan_root].paths()
        for path, inode in self._extra_paths.items():
            paths.setdefault(path, inode)
        return paths

    def read_all(self, max_depth: int | None = None, *, idle_reread_s: float = 0.0,
                 rescan_s: float = 0.0, now: float | None = None) -> dict[str, CgroupSample]:
        """Read every cgroup down to ``max_depth``; cgroups that vanish during the read are left out.

        With ``idle_reread_s`` > 0, a cgroup whose CPU time has not moved since its last full read (no task of
        it ran, so its counters cannot have grown) costs one file: its previous sample is reused until it is
        ``idle_reread_s`` old (staggered per cgroup), when it is read in full again. ``rescan_s`` > 0 walks
        every hierarchy only that often, and only the CPU hierarchy in between.
        """
        now = time.monotonic() if now is None else now
        cache = self._cache
        fresh: dict[str, tuple[CgroupSample, float]] = {}
        samples: dict[str, CgroupSample] = {}
        for path, inode in self._paths(max_depth, now, rescan_s).items():
            cached = cache.get(path)
            if idle_reread_s > 0 and cached is not None and cached[0].inode == inode:
                previous, read_at = cached
                due = read_at + idle_reread_s * (0.5 + (inode % 101) / 200)
                if now < due and previous.cpu_usage_ns is not None and self._idle(path, previous):
                    samples[path] = previous
                    fresh[path] = cached
                    continue
            sample = self.read(path, inode)
            if sample is not None:
                samples[path] = sample
                fresh[path] = (sample, now)
        self._cache = fresh
        return samples

    def _idle(self, path: str, previous: CgroupSample) -> bool:
        """True when the cgroup's CPU time equals the previous sample's (one small read)."""
        base = (self._unified if self._v2 else self._cpuacct) or ""
        data = read_bytes(base + ("" if path == "/" else path) + self._activity_file)
        if data is None:
            return False
        if self._v2:
            usage = parse_flat_keyed(data).get("usage_usec")
            return usage is not None and usage * 1000 == previous.cpu_usage_ns
        try:
            return int(data) == previous.cpu_usage_ns
        except ValueError:
            return False

    def read(self, path: str, inode: int) -> CgroupSample | None:
        """One cgroup; None if it no longer exists (or was recreated) by the end of the read."""
        rel = "" if path == "/" else path
        values = self._read_v2(rel) if self._v2 else self._read_v1(rel)
        if self._psi_root is not None:
            base = self._psi_root + rel
            values["pressure_cpu"] = parsers.parse_pressure(read_bytes(base + "/cpu.pressure"))
            values["pressure_memory"] = parsers.parse_pressure(read_bytes(base + "/memory.pressure"))
            values["pressure_io"] = parsers.parse_pressure(read_bytes(base + "/io.pressure"))
        if not any(v is not None for v in values.values()) and not self._exists(rel):
            return None  # removed while it was read
        return CgroupSample(path=path, inode=inode, **values)

    def _exists(self, rel: str) -> bool:
        return any(os.path.isdir(root + rel) for root in self._roots)

    def _read_v1(self, rel: str) -> dict[str, object]:
        v: dict[str, object] = {}
        if self._cpuacct:
            base = self._cpuacct + rel
            v["cpu_usage_ns"] = read_int(base + "/cpuacct.usage")
            v["cpu_user_ns"], v["cpu_system_ns"] = parsers.parse_ticks_stat(
                read_bytes(base + "/cpuacct.stat"), NS_PER_TICK)
        if self._cpu:
            base = self._cpu + rel
            quota = read_int(base + "/cpu.cfs_quota_us")
            v["cpu_quota_us"] = None if quota is None else (UNLIMITED if quota < 0 else quota)
            v["cpu_period_us"] = read_int(base + "/cpu.cfs_period_us")
            shares = read_int(base + "/cpu.shares")
            v["cpu_shares"] = shares
            v["cpu_weight"] = None if shares is None else parsers.shares_to_weight(shares)
            stat = parse_flat_keyed(read_bytes(base + "/cpu.stat"))
            v["cpu_periods"] = stat.get("nr_periods")
            v["cpu_throttled_periods"] = stat.get("nr_throttled")
            v["cpu_throttled_ns"] = stat.get("throttled_time")
        if self._cpuset:
            data = read_bytes(self._cpuset + rel + "/cpuset.effective_cpus")
            if data is None:
                data = read_bytes(self._cpuset + rel + "/cpuset.cpus")
            v["cpuset_cpus"] = None if data is None else data.strip().decode("ascii", "replace")
        if self._memory:
            base = self._memory + rel
            v["memory_usage_bytes"] = read_int(base + "/memory.usage_in_bytes")
            v["memory_max_usage_bytes"] = read_int(base + "/memory.max_usage_in_bytes")
            limit = parsers.parse_v1_limit(read_int(base + "/memory.limit_in_bytes"))
            v["memory_limit_bytes"] = limit
            stat = parse_flat_keyed(read_bytes(base + "/memory.stat"))
            if stat:
                v["memory_inactive_file_bytes"] = stat.get("total_inactive_file", stat.get("inactive_file"))
                v["memory_rss_bytes"] = stat.get("total_rss", stat.get("rss"))
                v["memory_cache_bytes"] = stat.get("total_cache", stat.get("cache"))
                v["memory_mapped_file_bytes"] = stat.get("total_mapped_file", stat.get("mapped_file"))
                v["memory_swap_bytes"] = stat.get("total_swap", stat.get("swap"))
                v["memory_pgfault"] = stat.get("pgfault")
                v["memory_pgmajfault"] = stat.get("pgmajfault")
                v["memory_pgfault_hierarchy"] = stat.get("total_pgfault")
                v["memory_pgmajfault_hierarchy"] = stat.get("total_pgmajfault")
            v["memory_failcnt"] = read_int(base + "/memory.failcnt")
            oom = parse_flat_keyed(read_bytes(base + "/memory.oom_control"))
            v["memory_oom_kills"] = oom.get("oom_kill")
            if self._memsw:
                memsw_limit = parsers.parse_v1_limit(read_int(base + "/memory.memsw.limit_in_bytes"))
                if memsw_limit is not None and limit is not None:
                    v["memory_swap_limit_bytes"] = (
                        UNLIMITED if UNLIMITED in (memsw_limit, limit) else max(0, memsw_limit - limit))
        if self._blkio:
            base = self._blkio + rel + "/blkio.throttle."
            by_bytes, ok_bytes = parsers.parse_v1_blkio(read_bytes(base + "io_service_bytes" + self._blkio_suffix))
            by_ops, ok_ops = parsers.parse_v1_blkio(read_bytes(base + "io_serviced" + self._blkio_suffix))
            if ok_bytes or ok_ops:
                devices = parsers.combine_v1_io(by_bytes, by_ops)
                v["io_by_device"] = devices
                v["io_total"] = parsers.sum_io(devices)
        if self._pids:
            base = self._pids + rel
            v["pids_current"] = read_int(base + "/pids.current")
            present, pids_max = read_limit(base + "/pids.max")
            v["pids_max"] = (UNLIMITED if pids_max is None else pids_max) if present else None
        if self._tasks_root:
            base = self._tasks_root + rel
            procs = read_bytes(base + "/cgroup.procs")
            v["processes"] = count_lines(procs)
            v["first_pid"] = first_int(procs)
            v["threads"] = count_lines(read_bytes(base + "/tasks"))
        return v

    def _read_v2(self, rel: str) -> dict[str, object]:
        v: dict[str, object] = {}
        base = (self._unified or "") + rel
        stat = parse_flat_keyed(read_bytes(base + "/cpu.stat"))
        usage = stat.get("usage_usec")
        v["cpu_usage_ns"] = None if usage is None else usage * 1000
        user = stat.get("user_usec")
        v["cpu_user_ns"] = None if user is None else user * 1000
        system = stat.get("system_usec")
        v["cpu_system_ns"] = None if system is None else system * 1000
        if "nr_periods" in stat:
            v["cpu_periods"] = stat["nr_periods"]
            v["cpu_throttled_periods"] = stat.get("nr_throttled")
            throttled = stat.get("throttled_usec")
            v["cpu_throttled_ns"] = None if throttled is None else throttled * 1000
        v["cpu_quota_us"], v["cpu_period_us"] = parsers.parse_cpu_max(read_bytes(base + "/cpu.max"))
        weight = read_int(base + "/cpu.weight")
        v["cpu_weight"] = weight
        v["cpu_shares"] = None if weight is None else parsers.weight_to_shares(weight)
        data = read_bytes(base + "/cpuset.cpus.effective")
        v["cpuset_cpus"] = None if data is None else data.strip().decode("ascii", "replace")
        v["memory_usage_bytes"] = read_int(base + "/memory.current")
        v["memory_max_usage_bytes"] = read_int(base + "/memory.peak")
        present, limit = read_limit(base + "/memory.max")
        v["memory_limit_bytes"] = (UNLIMITED if limit is None else limit) if present else None
        mstat = parse_flat_keyed(read_bytes(base + "/memory.stat"))
        if mstat:
            v["memory_inactive_file_bytes"] = mstat.get("inactive_file")
            v["memory_rss_bytes"] = mstat.get("anon")
            v["memory_cache_bytes"] = mstat.get("file")
            v["memory_mapped_file_bytes"] = mstat.get("file_mapped")
            # v2 memory.stat is hierarchical only: the same counts stand for the cgroup and its subtree.
            v["memory_pgfault"] = v["memory_pgfault_hierarchy"] = mstat.get("pgfault")
            v["memory_pgmajfault"] = v["memory_pgmajfault_hierarchy"] = mstat.get("pgmajfault")
        events = parse_flat_keyed(read_bytes(base + "/memory.events"))
        if events:
            v["memory_failcnt"] = events.get("max")
            v["memory_oom_events"] = events.get("oom")
            v["memory_oom_kills"] = events.get("oom_kill")
        v["memory_swap_bytes"] = read_int(base + "/memory.swap.current")
        present, swap_max = read_limit(base + "/memory.swap.max")
        v["memory_swap_limit_bytes"] = (UNLIMITED if swap_max is None else swap_max) if present else None
        devices = parsers.parse_v2_io_stat(read_bytes(base + "/io.stat"))
        v["io_by_device"] = devices
        v["io_total"] = parsers.sum_io(devices)
        v["pids_current"] = read_int(base + "/pids.current")
        present, pids_max = read_limit(base + "/pids.max")
        v["pids_max"] = (UNLIMITED if pids_max is None else pids_max) if present else None
        procs = read_bytes(base + "/cgroup.procs")
        v["processes"] = count_lines(procs)
        v["first_pid"] = first_int(procs)
        v["threads"] = count_lines(read_bytes(base + "/cgroup.threads"))
        return v

