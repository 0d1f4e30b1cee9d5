"""The only orchestrator: reads the sources, keeps the previous snapshot, and hands out one Frame per refresh.

cgroup files are read on the caller's thread every refresh; container names (MetadataService) and eBPF
(EbpfSource) work in their own threads and are merged in when they have something, never waited for.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING

from .ebpf.health import fill_ratios
from .model.culprits import workload_namer
from .model.derive import counter_delta, derive_row
from .model.ebpf import EbpfReading, State
from .model.ebpf_rates import EMPTY, ebpf_rates, runq_rates
from .model.events import Event, EventDetector
from .model.frame import CgroupRow, Frame, Identity, NetCounters
from .model.groups import compose_projects
from .model.host import HOST_IDENTITY, host_ebpf, host_sample, host_threads, top_level_workloads
from .model.notices import NOT_ROOT, Notice, NoticeKind
from .model.sample import CgroupSample, Snapshot
from .model.window import ThrottleWindow, Throttling
from .runtimes.fold import fold_inner, fold_reading, limits_where_set
from .runtimes.identify import Identity as PathIdentity
from .runtimes.identify import identify
from .runtimes.namespaced import NamespacedCgroups
from .sources.cgroupfs import CgroupReader
from .sources.cgroupfs_layout import CgroupLayout, detect_layout
from .sources.procfs import HostReader
from .sources.procfs_net import parse_net_dev
from .sources.procfs_ns import host_namespaces, namespace_inode
from .sources.readfile import ReadErrors, read_bytes

if TYPE_CHECKING:
    from .ebpf.source import EbpfSource
    from .history.series import RecordedSeries
    from .runtimes.meta import ContainerMeta
    from .runtimes.metadata import MetadataService


DEFAULT_HISTORY_DIR = "/var/lib/ctop/history"
HISTORY_SEED_S = 7 * 86400.0  # restart counts and OOM kills of this long ago carry over from a recorder's store
UNTAKEN_EVENTS = 10_000  # events kept for take_events() when no recorder takes them


@dataclass(frozen=True)
class CollectorConfig:
    """Where to read from and how much."""

    cgroup_root: str = "/sys/fs/cgroup"
    proc_root: str = "/proc"
    max_depth: int | None = None  # None: the whole tree
    idle_reread_s: float = 10.0  # idle cgroups (CPU time unchanged): memory, IO and pressure re-read this often
    idle_full_reread_s: float = 60.0  # and everything else at least this often (or when a file of them is written)
    limits_reread_s: float = 5.0  # busy cgroups' limits and settings are re-read at least this often
    rescan_s: float = 10.0  # cgroups present only in non-CPU v1 hierarchies are looked for this often
    containers: bool = True  # ask container runtimes for names (after start())
    docker_socket: str | None = None  # None: the default socket
    ebpf: bool = True  # load the eBPF programs (after start(); root only)
    bpf_run_stats: bool = False  # keep the kernel's BPF run-time statistics on from start() to close()
    derive: bool = True  # rates and subtree totals per row; the exporter, which exports counters only, turns it off
    events: bool = True  # detect restarts, OOM kills, limit changes and episodes (needs derive)
    history_dir: str | None = DEFAULT_HISTORY_DIR  # a recorder's store: restart counts and OOM kills carry over
    keep_events: bool = False  # keep every collection's events for take_events() (a recorder takes them)


@dataclass(frozen=True)
class Enrichment:
    """What the slower sources add to one snapshot: names, network counters, eBPF counters."""

    identities: dict[str, Identity] = field(default_factory=dict)
    net: dict[str, dict[str, NetCounters]] = field(default_factory=dict)
    ebpf: EbpfReading | None = None  # None while eBPF is off or not ready


class Collector:
    """Reads a snapshot per call and derives rates against the previous one."""

    def __init__(self, config: CollectorConfig | None = None, layout: CgroupLayout | None = None) -> None:
        self.config = config or CollectorConfig()
        self.layout = layout or detect_layout(self.config.cgroup_root)
        self.read_errors = ReadErrors()  # files that exist but cannot be read: become notices
        self.cgroups = CgroupReader(self.layout, self.read_errors)
        self.host = HostReader(self.config.proc_root, self.read_errors)
        self.metadata: MetadataService | None = None
        self.ebpf: EbpfSource | None = None
        self._untaken: deque[Event] = deque(maxlen=UNTAKEN_EVENTS)
        self.events = EventDetector() if self.config.events and self.config.derive else None
        self._previous: Snapshot | None = None
        self._settled: dict[str, CgroupRow] = {}  # the latest frame's settled rows (see build_frame)
        self._previous_enrichment = Enrichment()
        # The latest refresh's names and cgroups: its top-level containers and pods are the host row's edge.
        self._latest_names: tuple[dict[str, Identity], dict[str, CgroupSample]] = ({}, {})
        self._path_identities: dict[str, PathIdentity] = {}  # of the cgroups of the latest refresh only
        self._named: dict[str, tuple[PathIdentity, ContainerMeta | None, Identity]] = {}  # the Identity made of each
        self._namespaced = NamespacedCgroups(self.config.proc_root, self.read_errors)  # runtime-less containers
        self._throttling = ThrottleWindow()  # CFS counters over >= 10 s, of the cgroups of the latest refresh only
        self._seeding: threading.Thread | None = None
        self._seed: list[Event] | None = None  # a recorder's events, once read, until the next collect() takes them

    def start(self) -> None:
        """Start the background sources (container metadata, eBPF); returns at once."""
        if self.config.containers and self.metadata is None:
            from .runtimes.metadata import MetadataService

            self.metadata = MetadataService(docker_socket=self.config.docker_socket)
            self.metadata.start()
        if self.ebpf is None and self.config.ebpf:
            from .ebpf.source import EbpfSource

            self.ebpf = EbpfSource(self.layout, enabled=self.config.ebpf, run_stats=self.config.bpf_run_stats)
            self.ebpf.start()

    def close(self) -> None:
        for source in (self.metadata, self.ebpf):
            if source is not None:
                source.close()
        self.cgroups.close()

    def snapshot(self) -> Snapshot:
        """Read the host and every cgroup once."""
        host, meminfo = self.host.read()
        samples = self.cgroups.read_all(self.config.max_depth, idle_reread_s=self.config.idle_reread_s,
                                        idle_full_reread_s=self.config.idle_full_reread_s,
                                        rescan_s=self.config.rescan_s, limits_reread_s=self.config.limits_reread_s)
        samples, folded = fold_inner(samples)  # one row per container: crun's inner cgroup goes into the scope
        if self.layout.mode != "v2":
            samples = limits_where_set(samples, lambda p: self.cgroups.read(p, 0), self.config.proc_root)
        root = samples.get("/")
        if root is not None and root.memory_usage_bytes is None and meminfo:
            samples["/"] = _root_memory_from_meminfo(root, meminfo)
        return Snapshot(host=host, cgroups=samples, mode=self.layout.mode, folded=folded,
                        read_at=self.cgroups.read_at)

    def collect(self) -> Frame:
        """One refresh: a new snapshot turned into rows with rates against the previous refresh."""
        current = self.snapshot()
        enrichment = self.enrich(current)
        previous, previous_enrichment = self._previous, self._previous_enrichment
        self._previous, self._previous_enrichment = current, enrichment
        throttling = self._throttling.update(current) if self.config.derive else None
        frame = build_frame(current, previous, enrichment, previous_enrichment, throttling,
                            derive=self.config.derive, settled=self._settled)
        self._latest_names = (enrichment.identities, current.cgroups)  # inspect() finds the host row's edge in them
        reading = enrichment.ebpf
        frame = dataclasses.replace(
            frame, notices=tuple(self.notices()), ebpf_state=self.ebpf_state(),
            ebpf_execs=dict(reading.execs) if reading is not None else {},
            ebpf_oom_kills=tuple(reading.oom_kills) if reading is not None else (),
            ebpf_monotonic_s=reading.monotonic_time if reading is not None else None)
        if self.events is not None:
            self._seed_from_recorder()
            frame = with_history(frame, self.events)
            if self.config.keep_events:
                self._untaken.extend(frame.events)
        rows = frame.rows
        self._settled = {path: rows[path] for path in frame.settled}  # as listed: with their history
        return frame

    def recorded_history(self, row: CgroupRow) -> RecordedSeries | None:
        """``row``'s workload over the last minutes from the recorder's store, across restarts (slow: call it off
        the UI thread); None without a store or a recording of it."""
        from .history.series import workload_series
        from .history.store import StoreError, StoreReader

        directory = self.config.history_dir
        if not directory or not os.path.isdir(directory):
            return None
        try:
            reader = StoreReader(directory)
        except StoreError:
            return None
        try:
            return workload_series(reader, row, time.time())
        finally:
            reader.close()

    def _seed_from_recorder(self) -> None:
        """Restart counts and OOM kills from a recorder's store: read once, in a thread started at the first
        collect() (a week of store takes a while, and ``--user`` drops root before while the process has one
        thread), and handed to the detector by the collect() after it arrived."""
        directory = self.config.history_dir
        if self._seeding is None and directory and os.path.isdir(directory):
            def read() -> None:
                self._seed = recorded_events(directory, time.time() - HISTORY_SEED_S)

            self._seeding = threading.Thread(target=read, name="ctop-history-seed", daemon=True)
            self._seeding.start()
        if self._seed is not None and self.events is not None:
            self.events.seed(self._seed)
            self._seed = None

    def take_events(self) -> list[Event]:
        """The events of every collection since the last call (a recorder stores them even when several collections
        happened between two of its frames); the oldest go first when nobody takes them for long. Only with
        ``keep_events``: a view that never takes them would hold up to UNTAKEN_EVENTS of them."""
        taken = []
        while self._untaken:
            taken.append(self._untaken.popleft())
        return taken

    def inspect(self, row: CgroupRow) -> dict[str, object]:
        """Everything ``ctop inspect`` knows about one row's container (slow: call it off the UI thread)."""
        from .inspect_cmd import container_report, host_report
        from .runtimes.locate import Located, walk_root

        if row.identity.kind == HOST_IDENTITY.kind:
            return host_report(top_level_workloads(*self._latest_names), proc_root=self.config.proc_root)
        ident = identify(row.path)
        meta = self.metadata.lookup(row.path, ident) if self.metadata is not None else None
        located = Located(row.path, walk_root(self.layout) + ("" if row.path == "/" else row.path), ident, meta)
        return container_report(located, proc_root=self.config.proc_root)

    def enrich(self, snapshot: Snapshot) -> Enrichment:
        """Names for every cgroup, network counters for the cgroups owning a netns, the latest eBPF reading."""
        known = self._path_identities  # kept for the cgroups that still exist: churned paths are forgotten
        self._path_identities = {path: known.get(path) or identify(path) for path in snapshot.cgroups}
        named, self._named = self._named, {}
        identities = {path: self._identity(path, named) for path in snapshot.cgroups}
        identities = self._namespaced.classify(identities, snapshot.cgroups)
        net = self._network(identities, snapshot.cgroups)
        reading = self.ebpf.read() if self.ebpf is not None else None
        if reading is not None:
            reading = fold_reading(reading, snapshot.folded)  # the tasks of crun's inner cgroups: their container's
        return Enrichment(identities=identities, net=net, ebpf=reading)

    def notices(self) -> list[Notice]:
        """One notice per thing that is missing (not root, no eBPF, no container names, unreadable files)."""
        notes: list[Notice] = []
        if os.geteuid() != 0:
            notes.append(NOT_ROOT)
        if self.ebpf is not None:
            status = self.ebpf.status()
            if status.state in ("off", "failed") and status.reason and os.geteuid() == 0:
                notes.append(Notice(NoticeKind.EBPF_OFF, status.reason))
        if self.metadata is not None:
            notes.extend(self.metadata.notices())
        notes.extend(self.read_errors.notices())
        return notes

    def ebpf_state(self) -> State:
        return "off" if self.ebpf is None else self.ebpf.status().state

    def wait_ebpf(self, timeout_s: float) -> State:
        """Wait up to ``timeout_s`` for eBPF to finish loading (at once when it is off); its state then."""
        if self.ebpf is not None and self.ebpf.status().state == "starting":
            self.ebpf.wait_ready(timeout_s)
        return self.ebpf_state()

    def ebpf_health(self) -> tuple[dict[str, float], dict[str, float]]:
        """(ns per event by BPF program, fill ratio 0..1 by BPF map as of the latest collect()).

        Costs need ``bpf_run_stats``; both are empty while eBPF is off or still loading.
        """
        if self.ebpf is None:
            return {}, {}
        return self.ebpf.ns_per_event(), fill_ratios(self._previous_enrichment.ebpf)

    def _identity(self, path: str, named: dict[str, tuple[PathIdentity, ContainerMeta | None, Identity]]) -> Identity:
        """``path``'s Identity; the previous refresh's (in ``named``) when the path and the runtime say the same."""
        if path == "/":
            return Identity(kind="root")
        ident = self._path_identities.get(path) or identify(path)
        meta = self.metadata.lookup(path, ident) if self.metadata is not None else None
        before = named.get(path)
        if before is not None and before[0] is ident and before[1] == meta:
            identity = before[2]
        else:
            identity = identity_of(ident, meta)
        self._named[path] = (ident, meta, identity)  # of the cgroups of the latest refresh only
        return identity

    def _network(self, identities: dict[str, Identity],
                 samples: dict[str, CgroupSample]) -> dict[str, dict[str, NetCounters]]:
        """Per-interface counters of each container network namespace, on one owning row per namespace."""
        containers = sorted((p for p, i in identities.items() if i.kind == "container"),
                            key=lambda p: (identities[p].container != "POD", p))  # pod sandboxes own first
        if not containers:
            return {}
        proc = self.config.proc_root
        host_net = host_namespaces(proc, self.read_errors, ("net",)).get("net")
        owners: dict[str, dict[str, NetCounters]] = {}
        seen: set[int] = set()
        for path in containers:
            pid = samples[path].first_pid
            if pid is None:
                continue
            ns = namespace_inode(pid, "net", proc, self.read_errors)
            if ns is None or ns == host_net or ns in seen:
                continue
            seen.add(ns)
            devices = parse_net_dev(read_bytes(f"{proc}/{pid}/net/dev", self.read_errors))
            owners[path] = {name: NetCounters(rx_bytes=d.rx_bytes, rx_packets=d.rx_packets, rx_errors=d.rx_errors,
                                              rx_dropped=d.rx_drops, tx_bytes=d.tx_bytes, tx_packets=d.tx_packets,
                                              tx_errors=d.tx_errors, tx_dropped=d.tx_drops)
                            for name, d in devices.items()}
        return owners


def with_history(frame: Frame, detector: EventDetector) -> Frame:
    """``frame`` with the events it revealed and, on container rows, their workload's restarts and last OOM kill."""
    events = tuple(detector.observe(frame))
    now = frame.snapshot.host.wall_time_s
    rows = dict(frame.rows)
    for path, state in detector.by_path.items():
        row = rows.get(path)
        if row is not None:
            age = None if state.last_oom_kill is None else max(0.0, now - state.last_oom_kill)
            if row.restarts == state.restarts and row.oom_kill_age_seconds == age:
                continue  # a row kept from the previous refresh (see build_frame): it has them already
            values = list(_row_values(row))  # dataclasses.replace, for a row per container per refresh, made cheaper
            values[_RESTARTS_AT], values[_OOM_KILL_AGE_AT] = state.restarts, age
            rows[path] = CgroupRow(*values)
    return dataclasses.replace(frame, rows=rows, events=events)


_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(CgroupRow))  # CgroupRow's positional arguments, in order
_row_values = attrgetter(*_ROW_FIELDS)
_RESTARTS_AT, _OOM_KILL_AGE_AT = _ROW_FIELDS.index("restarts"), _ROW_FIELDS.index("oom_kill_age_seconds")


def recorded_events(directory: str, since: float) -> list[Event]:
    """The events a recorder stored since ``since``; none when there is no readable store."""
    from .history.store import StoreReader

    if not os.path.isdir(directory):
        return []
    try:
        reader = StoreReader(directory)
        try:
            return list(reader.events(since, float("inf")))
        finally:
            reader.close()
    except Exception:  # a store we cannot read only means no history: the live view goes on without it
        return []


def identity_of(ident: PathIdentity, meta: ContainerMeta | None) -> Identity:
    """The model's Identity from what the path says (runtimes.identify) and what the runtime says (metadata)."""
    runtime = (meta.runtime if meta is not None and meta.runtime else "") or (
        ident.runtime if ident.runtime != "none" else "")
    # A cgroup below a container's own (crun's `libpod-<id>.scope/container`) stays a plain cgroup: one row a container.
    below = ident.kind == "other" and bool(ident.container_id)
    kind = meta.kind if meta is not None and meta.kind and not below else ident.kind
    if meta is None:
        name = ident.detail if ident.runtime == "systemd" else ident.name
        return Identity(kind="cgroup" if kind == "other" else kind, runtime=runtime,
                        container_id=ident.container_id, name=name, pod_uid=ident.pod_uid,
                        qos_class=ident.qos_class)
    return Identity(
        kind="cgroup" if kind == "other" else kind, runtime=runtime,
        container_id=ident.container_id or meta.container_id, name=meta.name or ident.name, image=meta.image,
        pod=meta.pod,
        pod_uid=ident.pod_uid or meta.pod_uid, namespace=meta.namespace, container=meta.container,
        qos_class=ident.qos_class, compose_project=meta.compose_project, compose_service=meta.compose_service,
        labels=dict(meta.labels), start_time_s=meta.started_at)


def build_frame(current: Snapshot, previous: Snapshot | None, enrichment: Enrichment | None = None,
                previous_enrichment: Enrichment | None = None,
                throttling: dict[str, Throttling] | None = None, *, derive: bool = True,
                settled: Mapping[str, CgroupRow] | None = None) -> Frame:
    """Rows for ``current`` with rates against ``previous`` (pure: used by tests on recorded snapshots).

    ``throttling`` is the windowed throttling by path (model/window.py), kept across refreshes by the Collector.
    With ``derive`` False rows carry only the sample, identity, network and eBPF counters, and of the rates only the
    run-queue quantiles (no subtree totals): what the exporter exports. ``settled``: the previous frame's rows of its
    ``settled`` paths; one whose inputs are still the same (the same sample and Identity objects, equal network and
    eBPF counters, throttling and threads) is kept as it is instead of derived again: most cgroups of a node are
    idle, and their rows (every rate 0) are then the same objects refresh after refresh.
    """
    throttling = throttling or {}
    enrichment = enrichment or Enrichment()
    previous_enrichment = previous_enrichment or Enrichment()
    host_prev = previous.host if previous else None
    prev_cgroups = previous.cgroups if previous else {}
    tasks = subtree_threads(current.cgroups) if derive else {}
    reading, prev_reading = enrichment.ebpf, previous_enrichment.ebpf
    ebpf_seconds = None
    if reading is not None and prev_reading is not None:
        ebpf_seconds = reading.monotonic_time - prev_reading.monotonic_time
    rows: dict[str, CgroupRow] = {}
    name_of = workload_namer(enrichment.identities)  # culprits of preemptions, named as the list names them
    interval = None if previous is None else current.host.monotonic_s - previous.host.monotonic_s
    # Rates of unchanged counters are 0 (not None) when the host's clock and CPU time moved (or its CPU time is
    # unknown both times): a row with unchanged inputs then comes out the same whenever it is derived.
    host_cpu = counter_delta(host_prev.cpu_time_ns, current.host.cpu_time_ns) if host_prev is not None else 0
    steady_host = interval is not None and interval > 0 and host_cpu != 0
    settled = settled or {}
    settled_now: list[str] = []
    for path, sample in current.cgroups.items():
        identity = enrichment.identities.get(path) or root_identity(path)
        if not derive:
            counters = reading.by_cgroup.get(path) if reading is not None else None
            old = prev_reading.by_cgroup.get(path) if prev_reading is not None and counters is not None else None
            rows[path] = CgroupRow(sample=sample, identity=identity, net=enrichment.net.get(path), ebpf=counters,
                                   ebpf_rates=None if counters is None else runq_rates(counters, old, ebpf_seconds))
            continue
        counters = old = None
        covered = reading is not None and reading.covers(path)
        if covered:
            assert reading is not None
            counters = reading.by_cgroup.get(path)
            old = prev_reading.by_cgroup.get(path) if prev_reading is not None else None
        net, window, threads = enrichment.net.get(path), throttling.get(path), tasks.get(path)
        steady = (steady_host and sample is prev_cgroups.get(path) and net == previous_enrichment.net.get(path)
                  and (not covered or (bool(ebpf_seconds) and (counters or EMPTY) == (old or EMPTY))))
        if steady:
            settled_now.append(path)
            kept = settled.get(path)
            if (kept is not None and kept.sample is sample and kept.identity is identity and kept.net == net
                    and kept.ebpf == counters and (kept.ebpf_rates is not None) == covered
                    and kept.tasks_recursive == threads and _same_window(kept, window)):
                rows[path] = kept
                continue
        rates = ebpf_rates(counters, old, ebpf_seconds, name_of) if covered else None
        rows[path] = derive_row(sample, prev_cgroups.get(path), current.host, host_prev, identity,
                                net, previous_enrichment.net.get(path),
                                tasks_recursive=threads, ebpf=counters, ebpf_rates=rates,
                                throttling=window, read_s=_read_interval(path, current, previous))
    host = _host_row(current, previous, enrichment, previous_enrichment, tasks, ebpf_seconds, name_of) \
        if derive else None
    return Frame(snapshot=current, rows=rows, interval_s=interval, host=host,
                 groups=compose_projects(rows) if derive else {}, settled=frozenset(settled_now))


def _same_window(row: CgroupRow, window: Throttling | None) -> bool:
    """True when ``row`` carries what ``window`` says (both None included)."""
    if window is None:
        return row.throttled_percent_avg is None and row.throttled_seconds_per_s is None
    return row.throttled_percent_avg == window.percent and row.throttled_seconds_per_s == window.seconds_per_s


def _read_interval(path: str, current: Snapshot, previous: Snapshot | None) -> float | None:
    """Seconds between the two reads of the cgroup's CPU counter, where both refreshes timed them."""
    if previous is None:
        return None
    now, then = current.read_at.get(path), previous.read_at.get(path)
    return None if now is None or then is None else now - then


def _host_row(current: Snapshot, previous: Snapshot | None, enrichment: Enrichment,
              previous_enrichment: Enrichment, tasks: dict[str, int], ebpf_seconds: float | None,
              name_of: Callable[[str], str]) -> CgroupRow | None:
    """The node outside every container (model/host.py), or None on a node without containers."""
    workloads = top_level_workloads(enrichment.identities, current.cgroups)
    now = host_sample(current.cgroups, workloads)
    if not workloads or now is None:
        return None
    then = host_sample(previous.cgroups, workloads, same_as=current.cgroups) if previous is not None else None
    reading, prev_reading = enrichment.ebpf, previous_enrichment.ebpf
    counters = rates = None
    if reading is not None:
        counters = host_ebpf(reading.by_cgroup, workloads)
        old = host_ebpf(prev_reading.by_cgroup, workloads, same_ids=reading.by_cgroup) \
            if prev_reading is not None else None
        rates = ebpf_rates(counters, old, ebpf_seconds, name_of)
    row = derive_row(now, then, current.host, previous.host if previous is not None else None, HOST_IDENTITY,
                     enrichment.net.get("/"), previous_enrichment.net.get("/"),
                     tasks_recursive=host_threads(tasks, workloads), ebpf=counters, ebpf_rates=rates)
    if row.cpu_percent is None and then is not None and then.cpu_usage_ns is not None \
            and now.cpu_usage_ns is not None and now.cpu_usage_ns < then.cpu_usage_ns:
        row = dataclasses.replace(row, cpu_percent=0.0)  # the workloads read a little later than the root
    return row


def root_identity(path: str) -> Identity:
    return Identity(kind="root") if path == "/" else Identity()


def subtree_threads(samples: dict[str, CgroupSample]) -> dict[str, int]:
    """Threads in each cgroup plus all its descendants (only cgroups that were read count)."""
    totals: dict[str, int] = {}
    for path in sorted(samples, key=lambda p: p.count("/") if p != "/" else 0, reverse=True):
        own = samples[path].threads or 0
        totals[path] = totals.get(path, 0) + own
        if path != "/":
            parent = path.rsplit("/", 1)[0] or "/"
            totals[parent] = totals.get(parent, 0) + totals[path]
    return totals


def _root_memory_from_meminfo(root: CgroupSample, meminfo: dict[str, int]) -> CgroupSample:
    """cgroup v2 has no memory.current at the root: take the host's from /proc/meminfo, as cAdvisor does."""
    total, free = meminfo.get("MemTotal"), meminfo.get("MemFree")
    if total is None or free is None:
        return root
    return dataclasses.replace(
        root,
        memory_usage_bytes=total - free,
        memory_inactive_file_bytes=meminfo.get("Inactive(file)"),
        memory_cache_bytes=meminfo.get("Cached"),
        memory_rss_bytes=meminfo.get("AnonPages"),
    )
