"""Reads every cgroup of a host (v1, v2 or hybrid) into raw CgroupSamples: no rates, no names.

A missing or malformed file is "no data" for its fields; one that exists but cannot be read is also counted
in ``errors`` (see readfile.py); a cgroup that vanishes while it is read is dropped from that refresh. Reads
use raw file descriptors (see readfile.py) because this is the hot path.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable

from ..model.sample import UNLIMITED, CgroupSample, Pressure
from . import parsers
from .cgroupfs_layout import CgroupLayout
from .cgroupwatch import TreeWatch
from .openfiles import V1_TASK_LISTS, OpenFiles
from .procfs import NS_PER_TICK
from .readfile import (
    ReadErrors,
    count_lines,
    first_int,
    parse_int,
    parse_keys,
    parse_limit,
    read_bytes,
)


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

    def __init__(self, layout: CgroupLayout, errors: ReadErrors | None = None, keep_open: bool | None = None,
                 watch_writes: bool | None = None) -> None:
        """``keep_open``: keep files open between refreshes (see openfiles.py); None (the default): where the
        hierarchies are cgroup filesystems, not a recorded tree (whose files a test may replace). Kept are the files
        read every refresh: each cgroup's CPU-time file and a busy cgroup's counters (not its limits when
        ``limits_reread_s`` is set); a pread of one costs about a seventh of an open, read and close.
        ``watch_writes``: learn from inotify which cgroups' files were written (limits set, processes moved in), so
        that a watched cgroup's settings are read when written instead of every few seconds; None (the default):
        on cgroup filesystems (where only people and managers write; a test writes a recorded tree's counters)."""
        self.layout = layout
        self.errors = ReadErrors() if errors is None else errors  # files that exist but could not be read
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
            self._roots = _distinct((self._cpuacct, self._cpu, self._memory, self._pids, self._blkio, self._cpuset))
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
        self._cache: dict[str, _Seen] = {}  # path -> its latest sample and when its files are due again
        on_cgroupfs = None
        if keep_open is None or watch_writes is None:
            mounts = _cgroup_mounts()
            on_cgroupfs = bool(self._roots) and all(os.path.realpath(root) in mounts for root in self._roots)
        keep_open = on_cgroupfs if keep_open is None else keep_open
        self._watch_writes = bool(on_cgroupfs if watch_writes is None else watch_writes)
        self._files = OpenFiles(reopened=() if self._v2 else V1_TASK_LISTS) if keep_open else None
        self._cgroup = ("", 0)  # the cgroup being read (path, inode): its files are kept under it
        self._keep_all = True  # keep every file of the cgroup being read open (else only its CPU-time file)
        self._read_in_full: set[str] = set()  # cgroups read in full by the latest read_all
        self.read_at: dict[str, float] = {}  # path -> time.monotonic() just before its CPU counter was read

    def close(self) -> None:
        """Close the files kept open and the tree watches (the reader still works afterwards, opening them again)."""
        if self._files is not None:
            self._files.close()
        for watch in self._watches.values():
            watch.close()

    def _read(self, path: str) -> bytes | None:
        """A file of the cgroup being read (see read_bytes)."""
        if self._files is None:
            return read_bytes(path, self.errors)
        cgroup, inode = self._cgroup
        keep = self._keep_all or path.endswith(self._activity_file)  # that one is read every refresh
        return self._files.read(cgroup, inode, path, self.errors, keep)

    def _read_int(self, path: str) -> int | None:
        return parse_int(self._read(path))

    @staticmethod
    def _psi_enabled(unified: str | None) -> bool:
        """PSI files exist even when PSI is disabled (reads then fail): try the root's once."""
        return bool(unified) and read_bytes(f"{unified}/cpu.pressure") is not None

    def _paths(self, max_depth: int | None, now: float, rescan_s: float) -> dict[str, int]:
        """Paths to read this refresh: the scan hierarchy's cgroups plus those only other hierarchies hold.

        Every hierarchy is checked at most every ``rescan_s``, the scan hierarchy every refresh; each check
        costs one read of inotify's events (or one stat per known cgroup where inotify is unavailable; see
        cgroupwatch.py), not a listing of every directory.
        """
        if self._watch_depth != max_depth or not self._watches:
            for watch in self._watches.values():
                watch.close()
            self._watches = {root: TreeWatch(root, max_depth, writes=self._watch_writes) for root in self._roots}
            self._watch_depth = max_depth
        if self._scan_root is None or now - self._last_union_walk >= rescan_s:
            self._last_union_walk = now
            found: dict[str, dict[str, int]] = {}
            for root, watch in self._watches.items():
                for path, inode in watch.paths().items():
                    found.setdefault(path, {})[root] = inode
            primary = self._primary or ""
            union = {path: inodes.get(primary) or next(iter(inodes.values())) for path, inodes in found.items()}
            self._extra_paths = {p: i for p, i in union.items() if self._scan_root not in found[p]}
            return union
        paths = self._watches[self._scan_root].paths()
        for path, inode in self._extra_paths.items():
            paths.setdefault(path, inode)
        if self._watch_writes:  # the other hierarchies' writes (one read(2) each); their new cgroups wait for rescan_s
            for root, watch in self._watches.items():
                if root != self._scan_root:
                    watch.poll()
        return paths

    def _take_writes(self) -> _Written:
        """The cgroups whose files were written since the previous refresh, in any hierarchy."""
        if not self._watch_writes:
            return _NOTHING_WRITTEN
        written = _Written(False, set(), ())
        subtrees: list[str] = []
        for watch in self._watches.values():
            writes = watch.take_writes()
            written.everything |= writes.lost
            written.cgroups.update(rel or "/" for rel in writes.cgroups)
            subtrees.extend(rel + "/" for rel in writes.subtrees)
        written.subtrees = tuple(subtrees)
        return written

    def _covered(self, path: str) -> bool:
        """True when a write to any file of ``path`` would be reported (see _take_writes)."""
        if not self._watch_writes:
            return False
        rel = "" if path == "/" else path
        return all(watch.covers(rel) for watch in self._watches.values())

    def read_all(self, max_depth: int | None = None, *, idle_reread_s: float = 0.0, idle_full_reread_s: float = 0.0,
                 rescan_s: float = 0.0, limits_reread_s: float = 0.0,
                 now: float | None = None) -> dict[str, CgroupSample]:
        """Read every cgroup down to ``max_depth``; cgroups that vanish during the read are left out.

        With ``idle_reread_s`` > 0, a cgroup whose CPU time has not moved since its last full read (no task of
        it ran, so its counters cannot have grown) costs one file: its previous sample is reused until it is
        ``idle_reread_s`` old (staggered per cgroup), when it is read in full again. That file's content is
        reused by the full read of a cgroup that did move, so no file is read twice. With ``idle_full_reread_s``
        > 0 as well, that periodic read of an idle cgroup reads only AMBIENT_FIELDS (what changes while its tasks
        sleep: memory, pressure, IO written back) and its limits; the rest (CPU, throttling, OOM kills, processes)
        moves only when its tasks run or a file of it is written, and is read again when that happens or every
        ``idle_full_reread_s``. ``rescan_s`` > 0 walks every hierarchy only that often, and only the CPU hierarchy
        in between. With ``limits_reread_s`` > 0, a busy cgroup's limits and settings (LIMIT_FIELDS: nothing a
        workload changes by running) are read with its counters only when they are that old (staggered per
        cgroup), and carried over in between. Where inotify reports writes (``watch_writes``), limits are read
        when a file of the cgroup was written (and every ``idle_full_reread_s``) instead.
        """
        now = time.monotonic() if now is None else now
        cache = self._cache
        fresh: dict[str, _Seen] = {}
        samples: dict[str, CgroupSample] = {}
        read_in_full, in_full = self._read_in_full, set()
        counter_read_at: dict[str, float] = {}
        clock = time.monotonic
        tiered = idle_reread_s > 0 and idle_full_reread_s > 0
        paths = self._paths(max_depth, now, rescan_s)
        written = self._take_writes()
        for path, inode in paths.items():
            counter_read_at[path] = clock()  # its CPU counter is the next file read (the quick check or the full read)
            seen = cache.get(path)
            activity = None
            if seen is not None and seen.sample.inode != inode:
                seen = None  # recreated under the same path: nothing of the old one carries over
            touched = seen is not None and written.touches(path)
            stagger = _stagger(inode)
            if (idle_reread_s > 0 and seen is not None and not touched and now < seen.full_due
                    and seen.sample.cpu_usage_ns is not None):
                activity = self._read_activity(path, inode)
                if self._idle(activity, seen.sample):
                    if now >= seen.ambient_due:  # (never before full_due without the tiers)
                        sample = self._read_ambient(path, inode, seen.sample, not self._covered(path))
                        if sample is None:
                            continue  # removed
                        seen.sample = sample
                        seen.ambient_due = now + idle_reread_s * stagger
                    samples[path] = seen.sample
                    fresh[path] = seen
                    if self._files is not None:  # read alone until due: its other files need not stay open
                        self._files.keep_only(path, self._activity_path(path))
                    continue
            # A full read: a new or busy cgroup, one whose files were written, or an idle one's periodic full read.
            busy = seen is not None and now < seen.full_due and not touched
            limits = None
            if limits_reread_s > 0 and busy and seen is not None and now < seen.limits_due:
                limits = seen.sample  # a busy cgroup whose limits were read recently (or not written since): they stand
            # Files stay open for cgroups read in full refresh after refresh (busy ones), but not those read only
            # with the limits; a cgroup read in full only now and then (idle, when due) keeps only its CPU-time file.
            self._keep_all = path in read_in_full and (limits is not None or limits_reread_s <= 0)
            sample = self.read(path, inode, activity, limits)
            self._keep_all = True
            if sample is None:
                continue
            if seen is not None and not busy and sample == seen.sample:
                sample = seen.sample  # an idle cgroup's periodic full read that found nothing new
            samples[path] = sample
            in_full.add(path)
            full_due = now + (idle_full_reread_s if tiered else idle_reread_s) * stagger
            if limits is not None and seen is not None:
                limits_due = seen.limits_due
            else:  # read now: next when written (and now and then besides), or every limits_reread_s unwatched
                covered = limits_reread_s > 0 and self._covered(path)
                limits_due = now + (max(idle_full_reread_s, limits_reread_s) if covered else limits_reread_s) * stagger
            fresh[path] = _Seen(sample, full_due, now + idle_reread_s * stagger, limits_due)
        self._cache = fresh
        self._read_in_full = in_full
        self.read_at = counter_read_at  # (a cgroup that vanished mid-read keeps a time no sample asks for)
        if self._files is not None:
            self._files.retain(samples)  # vanished cgroups: their files are closed
        return samples

    def _activity_path(self, path: str) -> str:
        """The file carrying the cgroup's CPU time: cpu.stat (v2) or cpuacct.usage (v1)."""
        base = (self._unified if self._v2 else self._cpuacct) or ""
        return base + ("" if path == "/" else path) + self._activity_file

    def _read_activity(self, path: str, inode: int) -> bytes | None:
        self._cgroup = (path, inode)
        return self._read(self._activity_path(path))

    def _idle(self, activity: bytes | None, previous: CgroupSample) -> bool:
        """True when the CPU time in ``activity`` equals the previous sample's."""
        if activity is None:
            return False
        if self._v2:
            usage = parse_keys(activity, _USAGE_KEYS).get("usage_usec")
            return usage is not None and usage * 1000 == previous.cpu_usage_ns
        return parse_int(activity) == previous.cpu_usage_ns

    def read(self, path: str, inode: int, activity: bytes | None = None,
             limits: CgroupSample | None = None) -> CgroupSample | None:
        """One cgroup; None if it no longer exists (or was recreated) by the end of the read.

        ``activity`` is the content of its CPU-time file when the caller has just read it (see read_all);
        ``limits``: a recent sample of the same cgroup whose limits and settings (LIMIT_FIELDS) stand, unread.
        """
        rel = "" if path == "/" else path
        self._cgroup = (path, inode)
        fields = self._own(rel, activity)
        fields.update(self._ambient(rel))
        fields.update(self._limits(rel) if limits is None else _limits_of(limits))
        if self._gone(path, rel, fields):
            return None  # removed while it was read
        return CgroupSample(path=path, inode=inode, **fields)  # type: ignore[arg-type]

    def _read_ambient(self, path: str, inode: int, previous: CgroupSample, with_limits: bool) -> CgroupSample | None:
        """``previous`` with its AMBIENT_FIELDS read again (and its LIMIT_FIELDS with ``with_limits``); None when
        the cgroup is gone. Its files are opened and closed (an idle cgroup keeps only its CPU-time file)."""
        rel = "" if path == "/" else path
        self._cgroup = (path, inode)
        self._keep_all = False
        try:
            fields = self._ambient(rel)
            if with_limits:
                fields.update(self._limits(rel))
        finally:
            self._keep_all = True
        if self._gone(path, rel, fields):
            return None
        if all(getattr(previous, name) == value for name, value in fields.items()):
            return previous  # nothing moved: the same sample, so that what was derived from it stands too
        return dataclasses.replace(previous, **fields)  # type: ignore[arg-type]

    def _own(self, rel: str, activity: bytes | None) -> dict[str, object]:
        return self._v2_own((self._unified or "") + rel, activity) if self._v2 else self._v1_own(rel, activity)

    def _ambient(self, rel: str) -> dict[str, object]:
        return self._v2_ambient((self._unified or "") + rel, rel) if self._v2 else self._v1_ambient(rel)

    def _limits(self, rel: str) -> dict[str, object]:
        return self._v2_limits((self._unified or "") + rel) if self._v2 else self._v1_limits(rel)

    def _gone(self, path: str, rel: str, fields: dict[str, object]) -> bool:
        """True when no file gave a value because the cgroup is gone (its kept files are then closed)."""
        if _any_data(fields) or self._exists(rel):
            return False
        if self._files is not None:
            self._files.forget(path)
        return True

    def _exists(self, rel: str) -> bool:
        return any(os.path.isdir(root + rel) for root in self._roots)

    def _pressure(self, rel: str) -> tuple[Pressure | None, Pressure | None, Pressure | None]:
        """PSI of cpu, memory and io where the kernel has it on (all None otherwise)."""
        if self._psi_root is None:
            return None, None, None
        base = self._psi_root + rel
        return (parsers.parse_pressure(self._read(base + "/cpu.pressure")),
                parsers.parse_pressure(self._read(base + "/memory.pressure")),
                parsers.parse_pressure(self._read(base + "/io.pressure")))

    def _v1_own(self, rel: str, activity: bytes | None) -> dict[str, object]:
        """What moves only when the cgroup's tasks run (or a process is moved in): CPU time, throttling, memory
        limit hits and OOM kills, block IO (v1 charges write-back to the root), processes."""
        cpu_usage_ns = cpu_user_ns = cpu_system_ns = None
        if self._cpuacct:
            base = self._cpuacct + rel
            if activity is None:
                activity = self._read(base + "/cpuacct.usage")
            cpu_usage_ns = parse_int(activity)
            cpu_user_ns, cpu_system_ns = parsers.parse_ticks_stat(
                self._read(base + "/cpuacct.stat"), NS_PER_TICK)
        cpu_periods = cpu_throttled_periods = cpu_throttled_ns = None
        if self._cpu:
            stat = parse_keys(self._read(self._cpu + rel + "/cpu.stat"), _V1_CPU_STAT_KEYS)
            cpu_periods = stat.get("nr_periods")
            cpu_throttled_periods = stat.get("nr_throttled")
            cpu_throttled_ns = stat.get("throttled_time")
        memory_failcnt = memory_oom_kills = None
        if self._memory:
            base = self._memory + rel
            memory_failcnt = self._read_int(base + "/memory.failcnt")
            memory_oom_kills = parse_keys(self._read(base + "/memory.oom_control"), _OOM_KILL_KEYS).get("oom_kill")
        io_by_device = io_total = None
        if self._blkio:
            base = self._blkio + rel + "/blkio.throttle."
            by_bytes, ok_bytes = parsers.parse_v1_blkio(
                self._read(base + "io_service_bytes" + self._blkio_suffix))
            by_ops, ok_ops = parsers.parse_v1_blkio(self._read(base + "io_serviced" + self._blkio_suffix))
            if ok_bytes or ok_ops:
                io_by_device = parsers.combine_v1_io(by_bytes, by_ops)
                io_total = parsers.sum_io(io_by_device)
        pids_current = None
        if self._pids:
            pids_current = self._read_int(self._pids + rel + "/pids.current")
        processes = first_pid = threads = None
        if self._tasks_root:
            base = self._tasks_root + rel
            procs = self._read(base + "/cgroup.procs")
            processes = count_lines(procs)
            first_pid = first_int(procs)
            threads = count_lines(self._read(base + "/tasks"))
            if procs is None:  # not in that hierarchy: its first process from one that has it (to name it)
                first_pid = next((p for p in (first_int(read_bytes(r + rel + "/cgroup.procs", self.errors))
                                              for r in self._roots if r != self._tasks_root) if p is not None), None)
        return {
            "cpu_usage_ns": cpu_usage_ns, "cpu_user_ns": cpu_user_ns, "cpu_system_ns": cpu_system_ns,
            "cpu_periods": cpu_periods, "cpu_throttled_periods": cpu_throttled_periods,
            "cpu_throttled_ns": cpu_throttled_ns, "memory_failcnt": memory_failcnt,
            "memory_oom_kills": memory_oom_kills, "io_by_device": io_by_device, "io_total": io_total,
            "pids_current": pids_current, "processes": processes, "threads": threads, "first_pid": first_pid,
        }

    def _v1_ambient(self, rel: str) -> dict[str, object]:
        """AMBIENT_FIELDS: memory (reclaim and other cgroups' file deletions shrink it while its tasks sleep), PSI."""
        memory_usage_bytes = memory_max_usage_bytes = None
        mstat: dict[str, int] = {}
        if self._memory:
            base = self._memory + rel
            memory_usage_bytes = self._read_int(base + "/memory.usage_in_bytes")
            memory_max_usage_bytes = self._read_int(base + "/memory.max_usage_in_bytes")
            mstat = parse_keys(self._read(base + "/memory.stat"), _V1_MEMORY_STAT_KEYS)
        pressure_cpu, pressure_memory, pressure_io = self._pressure(rel)
        return {
            "memory_usage_bytes": memory_usage_bytes, "memory_max_usage_bytes": memory_max_usage_bytes,
            "memory_inactive_file_bytes": mstat.get("total_inactive_file", mstat.get("inactive_file")),
            "memory_rss_bytes": mstat.get("total_rss", mstat.get("rss")),
            "memory_cache_bytes": mstat.get("total_cache", mstat.get("cache")),
            "memory_mapped_file_bytes": mstat.get("total_mapped_file", mstat.get("mapped_file")),
            "memory_swap_bytes": mstat.get("total_swap", mstat.get("swap")),
            "memory_pgfault": mstat.get("pgfault"), "memory_pgmajfault": mstat.get("pgmajfault"),
            "memory_pgfault_hierarchy": mstat.get("total_pgfault"),
            "memory_pgmajfault_hierarchy": mstat.get("total_pgmajfault"),
            "pressure_cpu": pressure_cpu, "pressure_memory": pressure_memory, "pressure_io": pressure_io,
        }

    def _v1_limits(self, rel: str) -> dict[str, object]:
        """LIMIT_FIELDS."""
        cpu_quota_us = cpu_period_us = cpu_shares = cpu_weight = None
        if self._cpu:
            base = self._cpu + rel
            quota = self._read_int(base + "/cpu.cfs_quota_us")
            cpu_quota_us = None if quota is None else (UNLIMITED if quota < 0 else quota)
            cpu_period_us = self._read_int(base + "/cpu.cfs_period_us")
            cpu_shares = self._read_int(base + "/cpu.shares")
            cpu_weight = None if cpu_shares is None else parsers.shares_to_weight(cpu_shares)
        cpuset_cpus = None
        if self._cpuset:
            data = self._read(self._cpuset + rel + "/cpuset.effective_cpus")
            if data is None:
                data = self._read(self._cpuset + rel + "/cpuset.cpus")
            cpuset_cpus = None if data is None else data.strip().decode("ascii", "replace")
        memory_limit_bytes = memory_swap_limit_bytes = None
        if self._memory:
            base = self._memory + rel
            memory_limit_bytes = parsers.parse_v1_limit(self._read_int(base + "/memory.limit_in_bytes"))
            if self._memsw:
                memsw_limit = parsers.parse_v1_limit(self._read_int(base + "/memory.memsw.limit_in_bytes"))
                if memsw_limit is not None and memory_limit_bytes is not None:
                    memory_swap_limit_bytes = (UNLIMITED if UNLIMITED in (memsw_limit, memory_limit_bytes)
                                               else max(0, memsw_limit - memory_limit_bytes))
        pids_max = None
        if self._pids:
            present, limit = parse_limit(self._read(self._pids + rel + "/pids.max"))
            pids_max = (UNLIMITED if limit is None else limit) if present else None
        return {
            "cpu_quota_us": cpu_quota_us, "cpu_period_us": cpu_period_us, "cpu_shares": cpu_shares,
            "cpu_weight": cpu_weight, "cpuset_cpus": cpuset_cpus, "memory_limit_bytes": memory_limit_bytes,
            "memory_swap_limit_bytes": memory_swap_limit_bytes, "pids_max": pids_max,
        }

    def _v2_own(self, base: str, activity: bytes | None) -> dict[str, object]:
        """What moves only when the cgroup's tasks run (or a process is moved in): CPU time and throttling, memory
        events (the kernel notes their changes: a write), processes."""
        stat = parse_keys(activity if activity is not None else self._read(base + "/cpu.stat"), _V2_CPU_STAT_KEYS)
        cpu_periods = cpu_throttled_periods = cpu_throttled_ns = None
        if "nr_periods" in stat:
            cpu_periods = stat["nr_periods"]
            cpu_throttled_periods = stat.get("nr_throttled")
            cpu_throttled_ns = _times_1000(stat.get("throttled_usec"))
        events = parse_keys(self._read(base + "/memory.events"), _V2_MEMORY_EVENTS_KEYS)
        procs = self._read(base + "/cgroup.procs")
        return {
            "cpu_usage_ns": _times_1000(stat.get("usage_usec")), "cpu_user_ns": _times_1000(stat.get("user_usec")),
            "cpu_system_ns": _times_1000(stat.get("system_usec")),
            "cpu_periods": cpu_periods, "cpu_throttled_periods": cpu_throttled_periods,
            "cpu_throttled_ns": cpu_throttled_ns,
            "memory_failcnt": events.get("max"), "memory_oom_events": events.get("oom"),
            "memory_oom_kills": events.get("oom_kill"),
            "pids_current": self._read_int(base + "/pids.current"),
            "processes": count_lines(procs), "first_pid": first_int(procs),
            "threads": count_lines(self._read(base + "/cgroup.threads")),
        }

    def _v2_ambient(self, base: str, rel: str) -> dict[str, object]:
        """AMBIENT_FIELDS: memory (reclaim, socket buffers filled by the network), IO (dirty pages written back
        by the kernel's flushers are charged to the cgroup that dirtied them), PSI."""
        mstat = parse_keys(self._read(base + "/memory.stat"), _V2_MEMORY_STAT_KEYS)
        devices = parsers.parse_v2_io_stat(self._read(base + "/io.stat"))
        pressure_cpu, pressure_memory, pressure_io = self._pressure(rel)
        # v2 memory.stat is hierarchical only: the same counts stand for the cgroup and its subtree.
        pgfault, pgmajfault = mstat.get("pgfault"), mstat.get("pgmajfault")
        return {
            "memory_usage_bytes": self._read_int(base + "/memory.current"),
            "memory_max_usage_bytes": self._read_int(base + "/memory.peak"),
            "memory_inactive_file_bytes": mstat.get("inactive_file"), "memory_rss_bytes": mstat.get("anon"),
            "memory_cache_bytes": mstat.get("file"), "memory_mapped_file_bytes": mstat.get("file_mapped"),
            "memory_swap_bytes": self._read_int(base + "/memory.swap.current"),
            "memory_pgfault": pgfault, "memory_pgmajfault": pgmajfault,
            "memory_pgfault_hierarchy": pgfault, "memory_pgmajfault_hierarchy": pgmajfault,
            "io_by_device": devices, "io_total": parsers.sum_io(devices),
            "pressure_cpu": pressure_cpu, "pressure_memory": pressure_memory, "pressure_io": pressure_io,
        }

    def _v2_limits(self, base: str) -> dict[str, object]:
        """LIMIT_FIELDS."""
        cpu_quota_us, cpu_period_us = parsers.parse_cpu_max(self._read(base + "/cpu.max"))
        cpu_weight = self._read_int(base + "/cpu.weight")
        cpuset = self._read(base + "/cpuset.cpus.effective")
        present, limit = parse_limit(self._read(base + "/memory.max"))
        memory_limit_bytes = (UNLIMITED if limit is None else limit) if present else None
        present, limit = parse_limit(self._read(base + "/memory.swap.max"))
        memory_swap_limit_bytes = (UNLIMITED if limit is None else limit) if present else None
        present, limit = parse_limit(self._read(base + "/pids.max"))
        return {
            "cpu_quota_us": cpu_quota_us, "cpu_period_us": cpu_period_us, "cpu_weight": cpu_weight,
            "cpu_shares": None if cpu_weight is None else parsers.weight_to_shares(cpu_weight),
            "cpuset_cpus": None if cpuset is None else cpuset.strip().decode("ascii", "replace"),
            "memory_limit_bytes": memory_limit_bytes, "memory_swap_limit_bytes": memory_swap_limit_bytes,
            "pids_max": (UNLIMITED if limit is None else limit) if present else None,
        }


# The keys of the key-value files that ctop reads (the values of the others are not even converted).
_USAGE_KEYS = frozenset({b"usage_usec"})
_V1_CPU_STAT_KEYS = frozenset({b"nr_periods", b"nr_throttled", b"throttled_time"})
_V1_MEMORY_STAT_KEYS = frozenset(
    prefix + name for prefix in (b"", b"total_")
    for name in (b"inactive_file", b"rss", b"cache", b"mapped_file", b"swap", b"pgfault", b"pgmajfault"))
_OOM_KILL_KEYS = frozenset({b"oom_kill"})
_V2_CPU_STAT_KEYS = frozenset({b"usage_usec", b"user_usec", b"system_usec", b"nr_periods", b"nr_throttled",
                               b"throttled_usec"})
_V2_MEMORY_STAT_KEYS = frozenset({b"inactive_file", b"anon", b"file", b"file_mapped", b"pgfault", b"pgmajfault"})
_V2_MEMORY_EVENTS_KEYS = frozenset({b"max", b"oom", b"oom_kill"})


# What a cgroup's owner sets and its workload does not change by running: read_all(limits_reread_s=...) reads
# these less often than the counters.
LIMIT_FIELDS = ("cpu_quota_us", "cpu_period_us", "cpu_shares", "cpu_weight", "cpuset_cpus", "memory_limit_bytes",
                "memory_swap_limit_bytes", "pids_max")
# What can change while none of a cgroup's tasks runs: read_all(idle_full_reread_s=...) reads only these (and the
# limits) when it re-reads an idle cgroup every idle_reread_s (the fault counts come along in memory.stat). v1 block
# IO is not among them: v1 charges the kernel's write-back to the root cgroup, so a cgroup's v1 IO counters move
# only when its tasks submit IO.
AMBIENT_FIELDS = ("memory_usage_bytes", "memory_max_usage_bytes", "memory_inactive_file_bytes", "memory_rss_bytes",
                  "memory_cache_bytes", "memory_mapped_file_bytes", "memory_swap_bytes", "memory_pgfault",
                  "memory_pgmajfault", "memory_pgfault_hierarchy", "memory_pgmajfault_hierarchy",
                  "pressure_cpu", "pressure_memory", "pressure_io")
V2_AMBIENT_FIELDS = (*AMBIENT_FIELDS, "io_by_device", "io_total")


class _Seen:
    """A cgroup's latest sample and when its files are next due while it stays idle: all of them (full_due), the
    ambient ones (ambient_due), its limits while it is busy (limits_due); monotonic seconds."""

    __slots__ = ("ambient_due", "full_due", "limits_due", "sample")

    def __init__(self, sample: CgroupSample, full_due: float, ambient_due: float, limits_due: float) -> None:
        self.sample, self.full_due, self.ambient_due, self.limits_due = sample, full_due, ambient_due, limits_due


class _Written:
    """The cgroups whose files were written since the previous refresh (see CgroupReader._take_writes)."""

    __slots__ = ("cgroups", "everything", "subtrees")

    def __init__(self, everything: bool, cgroups: set[str], subtrees: tuple[str, ...]) -> None:
        self.everything, self.cgroups, self.subtrees = everything, cgroups, subtrees  # subtrees: "/a/" prefixes

    def touches(self, path: str) -> bool:
        return self.everything or path in self.cgroups or (
            bool(self.subtrees) and (path + "/").startswith(self.subtrees))


_NOTHING_WRITTEN = _Written(False, set(), ())


def _limits_of(sample: CgroupSample) -> dict[str, object]:
    return {name: getattr(sample, name) for name in LIMIT_FIELDS}


def _stagger(inode: int) -> float:
    """0.5-1.0 by cgroup: periodic re-reads of many cgroups spread over refreshes instead of falling due together."""
    return 0.5 + (inode % 101) / 200


def _times_1000(usec: int | None) -> int | None:
    """Microseconds to nanoseconds, keeping "no data"."""
    return None if usec is None else usec * 1000


def _any_data(fields: dict[str, object]) -> bool:
    """True when any file of the cgroup gave a value (else it may have vanished: the caller checks)."""
    return any(value is not None for value in fields.values())


def _distinct(roots: Iterable[str | None]) -> list[str]:
    """The hierarchy roots given, each hierarchy once: systemd co-mounts cpu and cpuacct (and net_cls, net_prio) and
    links both names to one mount such as ``cpu,cpuacct``; the first name of a hierarchy stays."""
    first: dict[str, str] = {}
    for root in roots:
        if root:
            first.setdefault(os.path.realpath(root), root)
    return list(first.values())


def _cgroup_mounts() -> set[str]:
    """Mount points of cgroup filesystems (v1 and v2) in this mount namespace."""
    try:
        with open("/proc/self/mounts", "rb") as f:
            lines = f.read().split(b"\n")
    except OSError:
        return set()
    mounts = set()
    for line in lines:
        parts = line.split()
        if len(parts) > 2 and parts[2] in (b"cgroup", b"cgroup2"):
            mounts.add(parts[1].decode("utf-8", "surrogateescape").replace("\\040", " "))
    return mounts
