"""eBPF rates for one cgroup from two cumulative readings: run-queue latency, switches, churn, OOM kills.

Attribute names are the batch JSON keys. A rate is None where there is no previous reading (or the cgroup was
recreated); with eBPF on, a cgroup that had no event is 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from .culprits import CulpritRates, by_name
from .ebpf import EbpfCgroupCounters, histogram_delta, histogram_quantile


@dataclass(frozen=True, slots=True)
class EbpfRates:
    """What eBPF measured for one cgroup between two readings (per second unless the name says otherwise)."""

    runq_latency_p50_seconds: float | None = None
    runq_latency_p99_seconds: float | None = None
    runq_wait_seconds_per_s: float | None = None
    ctx_switches_voluntary_per_s: float | None = None
    ctx_switches_involuntary_per_s: float | None = None
    preempted_by_others_per_s: float | None = None
    preempted_by_host_per_s: float | None = None
    forks_per_s: float | None = None
    execs_per_s: float | None = None
    exits_per_s: float | None = None
    oom_kills: int | None = None  # cumulative since ctop loaded its programs
    top_preemptor: str | None = None  # the culprit with the most preemptions; None when there were none
    preempted_by: CulpritRates | None = None  # culprit name -> preemptions per second, largest first

    @property
    def ctx_switches_per_s(self) -> float | None:
        """Voluntary plus involuntary switches; None when neither is known."""
        v, i = self.ctx_switches_voluntary_per_s, self.ctx_switches_involuntary_per_s
        return None if v is None and i is None else (v or 0.0) + (i or 0.0)


EBPF_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EbpfRates))
EMPTY = EbpfCgroupCounters()


def _per_s(new: int, old: int, seconds: float) -> float | None:
    delta = new - old
    return None if delta < 0 else delta / seconds


def culprit_rates(new: EbpfCgroupCounters, old: EbpfCgroupCounters,
                  seconds: float) -> list[tuple[str, float]]:
    """(culprit path, preemptions per second) between two readings of one cgroup. A pair whose count went down
    was dropped from the bounded BPF map and started again: what it counted since is its delta."""
    before = dict(old.preempted_by)
    out = []
    for path, count in new.preempted_by:
        delta = count - before.get(path, 0)
        out.append((path, (count if delta < 0 else delta) / seconds))
    return out


def ebpf_rates(new: EbpfCgroupCounters | None, old: EbpfCgroupCounters | None,
               seconds: float | None, name_of: Callable[[str], str] = str) -> EbpfRates:
    """Rates between two readings of one cgroup; ``new`` None means "no event yet" (eBPF is on).

    ``name_of`` names a culprit cgroup path (ctop.model.culprits.workload_namer); culprits with one name add up.
    """
    new, base = _baseline(new, old, seconds)
    if base is None or seconds is None:
        return EbpfRates(oom_kills=new.oom_kills)
    if new == base:  # no event since the previous reading (most cgroups of a node, most of the time)
        return unchanged_rates(new)
    return changed_rates(new, base, seconds, name_of)


def _baseline(new: EbpfCgroupCounters | None, old: EbpfCgroupCounters | None,
              seconds: float | None) -> tuple[EbpfCgroupCounters, EbpfCgroupCounters | None]:
    """``new`` (EMPTY: no event yet) and the reading to take deltas from: None where there is none to take (no
    interval, or a recreated cgroup), EMPTY where the cgroup had no reading before."""
    new = new or EMPTY
    if seconds is None or seconds <= 0:
        return new, None
    if old is not None and old.cgroup_id != new.cgroup_id and new is not EMPTY:
        return new, None  # recreated cgroup: no delta
    return new, old or EMPTY


def unchanged_rates(new: EbpfCgroupCounters) -> EbpfRates:
    """What changed_rates gives for two equal readings, without working it out: no wait, every rate 0."""
    return EbpfRates(runq_wait_seconds_per_s=0.0, ctx_switches_voluntary_per_s=0.0, ctx_switches_involuntary_per_s=0.0,
                     preempted_by_others_per_s=0.0, preempted_by_host_per_s=0.0, forks_per_s=0.0, execs_per_s=0.0,
                     exits_per_s=0.0, oom_kills=new.oom_kills, preempted_by=CulpritRates())


def changed_rates(new: EbpfCgroupCounters, old: EbpfCgroupCounters, seconds: float,
                  name_of: Callable[[str], str] = str) -> EbpfRates:
    """Rates between two readings of the same cgroup ``seconds`` apart (see ebpf_rates)."""
    waited = new.runq_sum_seconds - old.runq_sum_seconds
    culprits = by_name(culprit_rates(new, old, seconds), name_of)
    p50, p99 = _runq_quantiles(new, old)
    return EbpfRates(
        runq_latency_p50_seconds=p50,
        runq_latency_p99_seconds=p99,
        runq_wait_seconds_per_s=None if waited < 0 else waited / seconds,
        ctx_switches_voluntary_per_s=_per_s(new.nvcsw, old.nvcsw, seconds),
        ctx_switches_involuntary_per_s=_per_s(new.nivcsw, old.nivcsw, seconds),
        preempted_by_others_per_s=_per_s(new.preempted_by_others, old.preempted_by_others, seconds),
        preempted_by_host_per_s=_per_s(new.preempted_by_host, old.preempted_by_host, seconds),
        forks_per_s=_per_s(new.forks, old.forks, seconds),
        execs_per_s=_per_s(new.execs, old.execs, seconds),
        exits_per_s=_per_s(new.exits, old.exits, seconds),
        oom_kills=new.oom_kills,
        top_preemptor=culprits.top(),
        preempted_by=culprits,
    )


def runq_rates(new: EbpfCgroupCounters | None, old: EbpfCgroupCounters | None,
               seconds: float | None) -> EbpfRates:
    """Only the run-queue quantiles of ebpf_rates (and the OOM kills it carries): what the exporter derives, where
    every other figure is exported as a counter."""
    new, base = _baseline(new, old, seconds)
    if base is None or new == base:
        return EbpfRates(oom_kills=new.oom_kills)
    p50, p99 = _runq_quantiles(new, base)
    return EbpfRates(runq_latency_p50_seconds=p50, runq_latency_p99_seconds=p99, oom_kills=new.oom_kills)


def _runq_quantiles(new: EbpfCgroupCounters, old: EbpfCgroupCounters) -> tuple[float | None, float | None]:
    """The median and 99th percentile of the waits between two readings of the same cgroup (None: no wait)."""
    delta = histogram_delta(new.runq_buckets, old.runq_buckets)
    return histogram_quantile(delta, 0.50), histogram_quantile(delta, 0.99)
