"""eBPF values as the model holds them: status, per-cgroup counters, logs, map fill, run-queue histogram maths."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..ebpf.layout import read_header, runq_geometry

# Run-queue wait histogram: log-linear buckets (several per power of two) whose layout bpf/ctop.h defines once
# (RUNQ_UNIT_SHIFT, RUNQ_SUB_BITS, RUNQ_SLOTS); bucket i holds waits in [RUNQ_BUCKET_LOWER_SECONDS[i],
# RUNQ_BUCKET_UPPER_SECONDS[i]), the first starts at 0 and the last also takes everything longer. The loader refuses a
# program whose histogram has another length.
RUNQ_GEOMETRY = runq_geometry(read_header())
RUNQ_SLOTS = RUNQ_GEOMETRY.slots
RUNQ_BUCKET_LOWER_SECONDS: tuple[float, ...] = tuple(low / 1e9 for low, _ in RUNQ_GEOMETRY.bounds_ns())
RUNQ_BUCKET_UPPER_SECONDS: tuple[float, ...] = tuple(high / 1e9 for _, high in RUNQ_GEOMETRY.bounds_ns())
# Buckets that end on a power of two (all but the open-ended last): where the exporter's coarser ``le`` bounds are.
RUNQ_POWER_OF_TWO_ENDS: tuple[int, ...] = tuple(
    i for i in range(RUNQ_SLOTS - 1) if i % (1 << RUNQ_GEOMETRY.sub_bits) == (1 << RUNQ_GEOMETRY.sub_bits) - 1)
# The exporter's finite ``le`` bounds (1.024 us ... 68.7 s; +Inf follows them), in seconds.
RUNQ_EXPORTED_BOUNDS_SECONDS: tuple[float, ...] = tuple(RUNQ_BUCKET_UPPER_SECONDS[i] for i in RUNQ_POWER_OF_TWO_ENDS)


def le_text(seconds: float) -> str:
    """A bucket bound as an exposition writes it in ``le`` (Go's and Python's shortest form: ``1.024e-06``, ``0.5``,
    ``+Inf``), so that a query can select bounds by their label."""
    return "+Inf" if seconds == float("inf") else repr(float(seconds))

State = Literal["off", "starting", "ready", "failed"]


@dataclass(frozen=True)
class EbpfStatus:
    """Whether eBPF fields are available. ``reason`` is one sentence for the user when state is off/failed."""

    state: State
    reason: str = ""


@dataclass(frozen=True)
class EbpfCgroupCounters:
    """Cumulative counters of one cgroup since ctop loaded its programs (or since the cgroup appeared).

    A cgroup removed and created again under the same path gets a new ``cgroup_id`` and counters from zero.
    Run-queue wait: ``runq_buckets[i]`` counts waits between ``RUNQ_BUCKET_LOWER_SECONDS[i]`` and
    ``RUNQ_BUCKET_UPPER_SECONDS[i]``. ``nvcsw``/``nivcsw`` are voluntary/involuntary context switches of its tasks;
    ``preempted_by_others``/``preempted_by_host`` count involuntary switches in favour of a task of another
    non-root cgroup / of the root cgroup (the host). ``forks`` and ``exits`` count tasks (threads included),
    ``execs`` successful execve calls, ``oom_kills`` OOM-killer victims among its tasks. ``preempted_by`` counts
    involuntary switches by the cgroup path of the task that ran instead (``/`` is the host), largest first; a pair
    the bounded BPF map dropped starts again from zero.
    """

    cgroup_id: int = 0
    runq_buckets: tuple[int, ...] = (0,) * RUNQ_SLOTS
    runq_sum_seconds: float = 0.0
    runq_count: int = 0
    runq_max_seconds: float = 0.0
    nvcsw: int = 0
    nivcsw: int = 0
    preempted_by_others: int = 0
    preempted_by_host: int = 0
    forks: int = 0
    execs: int = 0
    exits: int = 0
    oom_kills: int = 0
    preempted_by: tuple[tuple[str, int], ...] = ()


def merged_culprits(pairs: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """(culprit, count) pairs with each culprit once, its counts added, largest first."""
    totals: dict[str, int] = {}
    for culprit, n in pairs:
        totals[culprit] = totals.get(culprit, 0) + n
    return tuple(sorted(totals.items(), key=lambda pair: -pair[1]))


def added_counters(a: EbpfCgroupCounters, b: EbpfCgroupCounters, cgroup_id: int) -> EbpfCgroupCounters:
    """Two cgroups' counters counted as one, under ``cgroup_id``: sums, the larger maximum, culprits merged."""
    return EbpfCgroupCounters(
        cgroup_id=cgroup_id,
        runq_buckets=tuple(x + y for x, y in zip(a.runq_buckets, b.runq_buckets)),
        runq_sum_seconds=a.runq_sum_seconds + b.runq_sum_seconds, runq_count=a.runq_count + b.runq_count,
        runq_max_seconds=max(a.runq_max_seconds, b.runq_max_seconds),
        nvcsw=a.nvcsw + b.nvcsw, nivcsw=a.nivcsw + b.nivcsw,
        preempted_by_others=a.preempted_by_others + b.preempted_by_others,
        preempted_by_host=a.preempted_by_host + b.preempted_by_host,
        forks=a.forks + b.forks, execs=a.execs + b.execs, exits=a.exits + b.exits, oom_kills=a.oom_kills + b.oom_kills,
        preempted_by=merged_culprits([*a.preempted_by, *b.preempted_by]))


@dataclass(frozen=True)
class OomKill:
    """One task picked by the OOM killer (``oom:mark_victim``); cgroup is None when it was not attributed."""

    cgroup: str | None
    pid: int
    comm: str
    unix_time: float


@dataclass(frozen=True)
class ExecRecord:
    """One successful exec: ``ppid`` is 0 when the kernel's BTF did not give task_struct offsets; ``args`` is the
    new program's argv joined by spaces (bounded, ending in ARGS_TRUNCATED when cut), "" when it was not read."""

    pid: int
    ppid: int
    comm: str
    filename: str
    unix_time: float
    args: str = ""


ARGS_TRUNCATED = " …"  # ends the arguments of an exec whose argv was longer than the programs keep


@dataclass(frozen=True)
class MapFill:
    """How full one BPF map is."""

    used: int
    capacity: int


@dataclass(frozen=True)
class EbpfReading:
    """One batch read of ctop's BPF maps: cumulative counters keyed by cgroup path relative to the root.

    ``by_cgroup`` keys look like ``/``, ``/docker/<id>``; ``unattributed`` holds events of tasks whose cgroup
    was unknown. ``oom_kills`` are the most recent kills (oldest first, bounded); ``execs`` the most recent
    execs per cgroup (oldest first, bounded); ``new_cgroups``/``removed_cgroups`` are paths the kernel created or
    removed since the previous read. ``dropped`` counts events lost: a full map, a log overwritten before it was
    read, a cgroup id that could not be named. ``monotonic_time`` is ``time.monotonic()`` of the read. ``covered``
    holds the paths the programs can attribute events to (None: every path): a cgroup outside it (on a hybrid
    host, one only in v1 hierarchies other than cpu) has no eBPF data rather than zeros.
    """

    monotonic_time: float
    by_cgroup: dict[str, EbpfCgroupCounters]
    unattributed: EbpfCgroupCounters
    oom_kills: tuple[OomKill, ...] = ()
    execs: dict[str, tuple[ExecRecord, ...]] = field(default_factory=dict)
    new_cgroups: tuple[str, ...] = ()
    removed_cgroups: tuple[str, ...] = ()
    map_fill: dict[str, MapFill] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    runq_method: str = ""
    covered: frozenset[str] | None = None

    def covers(self, path: str) -> bool:
        """Whether the programs attribute events of ``path``'s tasks to it (no counters then means none happened)."""
        return self.covered is None or path in self.covered


def histogram_delta(new: Sequence[int], old: Sequence[int] | None) -> tuple[int, ...]:
    """Bucket-wise ``new - old``; a bucket that went down (counters reset) counts as ``new``."""
    if old is None or len(old) != len(new):
        return tuple(new)
    if new == old:  # the common case for idle cgroups, compared in C
        return (0,) * len(new)
    delta = tuple(map(operator.sub, new, old))
    return tuple(new) if min(delta) < 0 else delta


def histogram_quantile(
    buckets: Sequence[int],
    q: float,
    *,
    lower_seconds: Sequence[float] = RUNQ_BUCKET_LOWER_SECONDS,
    upper_seconds: Sequence[float] = RUNQ_BUCKET_UPPER_SECONDS,
    max_seconds: float | None = None,
) -> float | None:
    """The ``q`` quantile (0..1) of a histogram, interpolated linearly inside its bucket; None when empty.

    ``max_seconds``, when known, caps the result (the largest sample seen).
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError("quantile must be between 0 and 1")
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    value = upper_seconds[len(buckets) - 1]
    for i, n in enumerate(buckets):
        if n <= 0:
            continue
        if seen + n >= rank:
            fraction = (rank - seen) / n
            value = lower_seconds[i] + (upper_seconds[i] - lower_seconds[i]) * fraction
            break
        seen += n
    if max_seconds is not None and max_seconds > 0:
        value = min(value, max_seconds)
    return value


def delta_quantile(
    new: EbpfCgroupCounters, old: EbpfCgroupCounters | None, q: float
) -> float | None:
    """The ``q`` quantile of the waits between two readings of one cgroup (None when there were none)."""
    if old is not None and old.cgroup_id != new.cgroup_id:
        old = None
    return histogram_quantile(histogram_delta(new.runq_buckets, old.runq_buckets if old else None), q)
