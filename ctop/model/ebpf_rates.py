"""eBPF rates for one cgroup from two cumulative readings: run-queue latency, switches, churn, OOM kills.

Keys are the batch JSON keys. With eBPF off every value is None; with eBPF on, a cgroup that had no event is 0.
"""

from __future__ import annotations

from typing import Any

from ..ebpf.reading import EbpfCgroupCounters, delta_quantile

RATE_COUNTERS = {
    "ctx_switches_voluntary_per_s": "nvcsw",
    "ctx_switches_involuntary_per_s": "nivcsw",
    "preempted_by_others_per_s": "preempted_by_others",
    "preempted_by_host_per_s": "preempted_by_host",
    "forks_per_s": "forks",
    "execs_per_s": "execs",
    "exits_per_s": "exits",
}
EBPF_KEYS = ("runq_latency_p50_seconds", "runq_latency_p99_seconds", "runq_wait_seconds_per_s",
             *RATE_COUNTERS, "oom_kills")
EMPTY = EbpfCgroupCounters()


def ebpf_rates(new: EbpfCgroupCounters | None, old: EbpfCgroupCounters | None,
               seconds: float | None) -> dict[str, Any]:
    """Rates between two readings of one cgroup; ``new`` None means "no event yet" (eBPF is on)."""
    new = new or EMPTY
    rates: dict[str, Any] = dict.fromkeys(EBPF_KEYS)
    rates["oom_kills"] = new.oom_kills
    if seconds is None or seconds <= 0:
        return rates
    if old is not None and old.cgroup_id != new.cgroup_id and new is not EMPTY:
        return rates  # recreated cgroup: no delta
    old = old or EMPTY
    for key, attr in RATE_COUNTERS.items():
        delta = getattr(new, attr) - getattr(old, attr)
        rates[key] = None if delta < 0 else delta / seconds
    waited = new.runq_sum_seconds - old.runq_sum_seconds
    rates["runq_wait_seconds_per_s"] = None if waited < 0 else waited / seconds
    rates["runq_latency_p50_seconds"] = delta_quantile(new, old, 0.50)
    rates["runq_latency_p99_seconds"] = delta_quantile(new, old, 0.99)
    return rates
