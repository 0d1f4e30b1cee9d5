"""Churn and resource probes for the churn/soak tests: process RSS and fds, BPF map entries, container/cgroup churn."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ctop.ebpf.hybrid import v1_tag
from ctop.sources.openfiles import FD_FLOOR

from .cgroups import TestCgroup, hierarchy_roots, host_layout, make_cgroup, remove_tree
from .dockerd import IMAGE, PrivateDockerd, unique
from .env import need, patience

_NAME_LABEL = re.compile(r'(?:^|[{,])name="((?:[^"\\]|\\.)*)"')
_ID_LABEL = re.compile(r'(?:^|[{,])id="((?:[^"\\]|\\.)*)"')


# process probes -------------------------------------------------------------------------------------------
def rss_kib(pid: int, kind: str = "VmRSS") -> int:
    """``kind`` (VmRSS, RssAnon, RssFile) of ``pid`` in KiB, from /proc/<pid>/status.

    RssAnon is what a leak grows: VmRSS also counts file pages of shared libraries (about 90 MiB of LLVM once
    bcc has compiled), which the kernel drops under memory pressure and faults in again when touched.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(kind + ":"):
                return int(line.split()[1])
    raise LookupError(f"pid {pid} has no {kind}")


def fd_count(pid: int) -> int:
    """The process's own descriptors: those below FD_FLOOR. The cgroup files a reader keeps open live above it and
    follow the host's cgroups (kept_cgroup_files checks those)."""
    return sum(1 for fd in os.listdir(f"/proc/{pid}/fd") if int(fd) < FD_FLOOR)


def kept_cgroup_files(pid: int) -> tuple[int, frozenset[tuple[str, str]]]:
    """(descriptors at or above FD_FLOOR, those of them holding a file of a cgroup that is gone or was recreated, as
    (descriptor, path)): a reader closes the files of cgroups missing from its latest refresh, so a descriptor
    found stale again a few refreshes later is a leak."""
    kept = 0
    stale: set[tuple[str, str]] = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        if int(name) < FD_FLOOR:
            continue
        link = f"/proc/{pid}/fd/{name}"
        try:
            target = os.readlink(link)
            held = os.stat(link).st_ino
        except OSError:  # closed meanwhile
            continue
        kept += 1
        try:
            if os.stat(target).st_ino != held:
                stale.add((name, target))
        except OSError:
            stale.add((name, target))
    return kept, frozenset(stale)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def descendant_running(pid: int, argument: str, timeout: float = 10.0) -> int:
    """The first descendant of ``pid`` (or ``pid`` itself) having ``argument`` as one of its command-line words."""
    deadline = time.monotonic() + timeout
    while True:
        todo = [pid]
        while todo:
            p = todo.pop(0)
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if argument.encode() in f.read().split(b"\0"):
                        return p
                with open(f"/proc/{p}/task/{p}/children") as f:
                    todo += [int(c) for c in f.read().split()]
            except OSError:
                continue
        if time.monotonic() > deadline:
            raise LookupError(f"no process running {argument!r} below pid {pid}")
        time.sleep(0.1)


# BPF maps -------------------------------------------------------------------------------------------------
def bpf_map_ids(pid: int) -> dict[str, int]:
    """name -> map id of every BPF map ``pid`` holds a file descriptor of (from /proc/<pid>/fdinfo)."""
    ids: list[int] = []
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("map_id:"):
                        ids.append(int(line.split()[1]))
        except OSError:
            continue
    out: dict[str, int] = {}
    for map_id in ids:
        res = subprocess.run(["bpftool", "map", "show", "id", str(map_id), "--json"], capture_output=True,
                             timeout=30, check=False)
        if res.returncode == 0:
            out[json.loads(res.stdout)["name"]] = map_id
    return out


def wait_bpf_maps(pid: int, timeout: float = 90) -> dict[str, int]:
    """ctop's BPF maps in ``pid`` once its eBPF programs are loaded (skips locally, fails in CI, if never)."""
    found: dict[str, int] = {}

    def ready() -> bool:
        nonlocal found
        found = bpf_map_ids(pid) if alive(pid) else {}
        return {"cgroup_index", "cgroups", "threads"} <= found.keys()

    poll_until(ready, timeout, 1.0)
    need({"cgroup_index", "cgroups", "threads"} <= found.keys(), f"ctop's BPF maps in pid {pid} (eBPF loaded)")
    return found


def _dump(map_id: int) -> list[dict]:
    res = subprocess.run(["bpftool", "map", "dump", "id", str(map_id), "--json"], capture_output=True,
                         timeout=patience(60), check=True)
    return json.loads(res.stdout)


def _le_int(hex_bytes: list[str]) -> int:
    return int.from_bytes(bytes(int(b, 16) for b in hex_bytes), "little")


@dataclass(frozen=True)
class MapCounts:
    """Entries in use in ctop's two growing maps, and those whose cgroup or thread is gone for good."""

    cgroups: int
    cgroups_stale: int
    threads: int
    threads_stale: int


def unified_cgroup_ids(root: str) -> set[int]:
    """Inode numbers (= cgroup2 ids) of every directory under the unified hierarchy."""
    ids = {os.stat(root).st_ino}
    for directory, subdirs, _ in os.walk(root):
        for name in subdirs:
            try:
                ids.add(os.stat(os.path.join(directory, name)).st_ino)
            except OSError:
                continue
    return ids


THREAD_TID_BYTES = slice(28, 32)  # struct thread_state (bpf/ctop.h): cgroup_id, last, v1_id, u32 slot, then u32 tid


def _entries(ids: dict[str, int]) -> tuple[set[int], set[int]]:
    """Cgroup ids holding counters (the keys of ``cgroup_index``) and the tids of the threads in use in ``threads``
    (an array slot is not a tid: each state holds its tid) and, on a tagged array, ``threads_more``."""
    cgroups = {_le_int(e["key"]) for e in _dump(ids["cgroup_index"])}
    threads = set()
    for name in ("threads", "threads_more"):
        for entry in _dump(ids[name]) if name in ids else []:
            value = entry.get("value")
            if value is None or _le_int(value[:8]) == 0:  # a free array slot has cgroup_id 0
                continue
            threads.add(_le_int(value[THREAD_TID_BYTES]))
    return cgroups, threads


def map_counts(ids: dict[str, int], recheck_s: float = 0.5) -> MapCounts:
    """Entries in use in ctop's ``cgroups`` and ``threads`` maps, and how many of them are stale.

    Stale: the entry's cgroup directory or thread was already gone after the first dump, and the entry is still
    there in a second dump ``recheck_s`` later (a thread's entry goes at its last context switch, a cgroup's at
    rmdir or release: one that outlives both by that long is a leak; one whose owner died while the map was
    being dumped is not counted).
    """
    cgroups, threads = _entries(ids)
    layout = host_layout()
    live_ids = unified_cgroup_ids(layout.unified) if layout.unified else set()
    cpu_v1 = layout.controllers.get("cpu")
    if layout.unified and cpu_v1:  # hybrid: tasks of the unified root are keyed by their tagged v1 cpu cgroup
        live_ids |= {v1_tag() | ino for ino in unified_cgroup_ids(cpu_v1)}
    dead_cgroups = {c for c in cgroups if c and live_ids and c not in live_ids}
    dead_threads = {t for t in threads if not os.path.exists(f"/proc/{t}")}
    time.sleep(recheck_s)
    cgroups_again, threads_again = _entries(ids)
    return MapCounts(len(cgroups), len(dead_cgroups & cgroups_again), len(threads), len(dead_threads & threads_again))


# exporter text --------------------------------------------------------------------------------------------
def exported(text: str, family: str = "container_cpu_usage_seconds_total") -> tuple[set[str], set[str]]:
    """(name labels, id labels) of the series of ``family`` in an exposition."""
    names: set[str] = set()
    ids: set[str] = set()
    prefix = family + "{"
    for line in text.splitlines():
        if line.startswith(prefix):
            labels = line[len(family):line.rindex("}") + 1]
            m = _NAME_LABEL.search(labels)
            if m and m.group(1):
                names.add(m.group(1))
            m = _ID_LABEL.search(labels)
            if m:
                ids.add(m.group(1))
    return names, ids


# churn ----------------------------------------------------------------------------------------------------
@dataclass
class Containers:
    """Containers this test started on a private dockerd: started in concurrent batches, removed by id."""

    docker: PrivateDockerd
    workers: int = 4
    live: dict[str, str] = field(default_factory=dict)  # name -> id
    started: int = 0

    def start(self, count: int, command: tuple[str, ...] = ("sleep", "600"), *, auto_remove: bool = False,
              ) -> dict[str, tuple[str, float]]:
        """Start ``count`` containers at once; name -> (id, monotonic time ``docker run`` returned)."""
        names = [unique("churn") for _ in range(count)]
        extra = ("--rm",) if auto_remove else ()

        def run(name: str) -> tuple[str, float]:
            cid = self.docker.out("run", "-d", "--name", name, "--network", "none", *extra, IMAGE, *command)
            return cid, time.monotonic()

        out: dict[str, tuple[str, float]] = {}
        with ThreadPoolExecutor(self.workers) as pool:
            for name, result in zip(names, pool.map(run, names)):
                out[name] = result
                self.live[name] = result[0]
                self.started += 1
        return out

    def remove(self, names: list[str]) -> None:
        ids = [self.live.pop(n) for n in names if n in self.live]
        if ids:
            self.docker.run("rm", "-f", *ids, timeout=120)

    def forget(self, names: list[str]) -> None:
        """Containers that ended on their own (``--rm``)."""
        for n in names:
            self.live.pop(n, None)

    def running(self, names: list[str]) -> set[str]:
        """Those of ``names`` the daemon still lists (any state)."""
        out = self.docker.out("ps", "-a", "--format", "{{.Names}}")
        listed = set(out.split())
        return {n for n in names if n in listed}

    def remove_all(self) -> None:
        ids = list(self.live.values())
        self.live.clear()
        if ids:
            self.docker.run("rm", "-f", *ids, check=False, timeout=300)


class CgroupChurn:
    """A thread that creates and removes plain cgroups below one parent it owns, in batches.

    Every ``busy_every``-th cgroup runs a short process, so that the BPF programs see its tasks (and fill their
    maps) before it is removed. ``total`` None: churn until stopped.
    """

    def __init__(self, total: int | None, batch: int = 50, lifetime_s: float = 2.0, busy_every: int = 5,
                 parent: str = "") -> None:
        self.layout = host_layout()
        self.parent = make_cgroup(self.layout, parent or "/" + unique("ctop-churn"))
        self.total, self.batch, self.lifetime_s, self.busy_every = total, batch, lifetime_s, busy_every
        self.created = self.removed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cgroup-churn", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and (self.total is None or self.created < self.total):
                n = self.batch if self.total is None else min(self.batch, self.total - self.created)
                made: list[TestCgroup] = []
                for _ in range(n):
                    cg = self.parent.child(f"c{self.created}")
                    self.created += 1
                    if self.created % self.busy_every == 0:
                        cg.spawn(["sleep", "0.2"])
                    made.append(cg)
                self._stop.wait(self.lifetime_s)
                for cg in made:
                    for proc in cg.processes:
                        proc.wait(timeout=30)
                    cg.processes.clear()
                    remove_tree(self.layout, cg.path)
                    self.removed += 1
        except Exception as e:  # reported by the test, never lost in a thread
            self.errors.append(f"{e.__class__.__name__}: {e}")

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(60)
        self.parent.stop_processes()
        remove_tree(self.layout, self.parent.path)

    def leftovers(self) -> list[str]:
        """Child cgroups of the parent still present (in the unified hierarchy, or pure v1's first one)."""
        top = (self.layout.unified or hierarchy_roots(self.layout)[0]) + self.parent.path
        try:
            return sorted(e.name for e in os.scandir(top) if e.is_dir(follow_symlinks=False))
        except OSError:
            return []


def poll_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> float | None:
    """Seconds until ``check()`` held, or None after ``timeout`` (stretched by ``patience``)."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > patience(timeout):
            return None
        time.sleep(interval)


def metric_value(text: str, name: str) -> float | None:
    """The value of the unlabelled sample ``name`` in an exposition, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class ExportWatcher:
    """Scrapes an exporter in a thread, back to back (``pause_s`` apart), and remembers when each container name
    and cgroup id was first seen; ``latest`` is (scrape start, scrape end, names, ids) of the newest scrape."""

    def __init__(self, fetch: Callable[[], str], pause_s: float = 0.1) -> None:
        self.fetch, self.pause_s = fetch, pause_s
        self.first_seen: dict[str, float] = {}
        self.collections: list[float] = []
        self.sizes: list[int] = []
        self.errors: list[str] = []
        self.latest: tuple[float, float, set[str], set[str]] = (0.0, 0.0, set(), set())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="export-watcher", daemon=True)

    def __enter__(self) -> ExportWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                text = self.fetch()
            except Exception as e:  # reported by the test
                self.errors.append(f"{e.__class__.__name__}: {e}")
                self._stop.wait(self.pause_s)
                continue
            end = time.monotonic()
            names, ids = exported(text)
            for key in names | ids:
                self.first_seen.setdefault(key, end)
            self.collections.append(metric_value(text, "ctop_collection_duration_seconds") or 0.0)
            self.sizes.append(len(text))
            self.latest = (start, end, names, ids)
            self._stop.wait(self.pause_s)

    def wait_shown(self, keys: dict[str, float], timeout: float) -> dict[str, float]:
        """Seconds from each key's time (e.g. ``docker run`` returned) to its first sighting; AssertionError after
        ``timeout`` naming the missing ones. A key seen before its time counts 0."""
        deadline = time.monotonic() + timeout
        while any(k not in self.first_seen for k in keys) and time.monotonic() < deadline:
            time.sleep(0.05)
        missing = sorted(k for k in keys if k not in self.first_seen)
        assert not missing, f"never exported: {missing}"
        return {k: max(0.0, self.first_seen[k] - t) for k, t in keys.items()}

    def wait_gone(self, keys: set[str], since: float, timeout: float) -> float:
        """Seconds from ``since`` to the end of the first scrape, started after ``since``, that lacks all ``keys``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            start, end, names, ids = self.latest
            if start >= since and not keys & (names | ids):
                return end - since
            time.sleep(0.05)
        raise AssertionError(f"still exported {timeout:.0f} s after they ended: {sorted(keys & self.latest[2])}")


class ContainerChurn:
    """A thread that keeps starting containers and ending the oldest, so that about ``keep`` run at any time.

    Every other container runs a short sleep with ``--rm`` and ends on its own; the others are removed with
    ``docker rm -f``. Everything it started is removed by ``stop``.
    """

    def __init__(self, docker: PrivateDockerd, keep: int = 5, pause_s: float = 0.2) -> None:
        self.containers = Containers(docker, workers=1)
        self.keep, self.pause_s = keep, pause_s
        self.errors: list[str] = []
        self._order: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="container-churn", daemon=True)

    @property
    def started(self) -> int:
        return self.containers.started

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                auto = n % 2 == 1
                batch = self.containers.start(1, ("sleep", "2") if auto else ("sleep", "600"), auto_remove=auto)
                if auto:
                    self.containers.forget(list(batch))  # it ends by itself
                else:
                    self._order += list(batch)
                while len(self._order) > self.keep:
                    self.containers.remove([self._order.pop(0)])
            except Exception as e:  # reported by the test, never lost in a thread
                self.errors.append(f"{e.__class__.__name__}: {e}")
                self._stop.wait(1.0)
            n += 1
            self._stop.wait(self.pause_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(120)
        self.containers.remove_all()
