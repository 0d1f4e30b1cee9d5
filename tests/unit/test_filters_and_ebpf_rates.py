"""--filter terms and eBPF rates between two readings."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner
from support.trees import tree

from ctop.cli import cli
from ctop.errors import CtopError
from ctop.model.ebpf import RUNQ_SLOTS, EbpfCgroupCounters
from ctop.model.ebpf_rates import EBPF_KEYS, changed_rates, ebpf_rates, runq_rates
from ctop.model.filters import parse_filters

V2 = tree("v2-k8s-systemd")


def buckets(**at: int) -> tuple[int, ...]:
    values = [0] * RUNQ_SLOTS
    for key, n in at.items():
        values[int(key[1:])] = n
    return tuple(values)


def ids(*filters: str) -> list[str]:
    args = ["--cgroup-root", V2[0], "--proc-root", V2[1], "-b", "--json", "-n", "1", "-d", "0.05"]
    for f in filters:
        args += ["--filter", f]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return sorted(r["id"] for r in json.loads(result.output))


def test_filters_combine_and_match_substrings() -> None:
    assert ids("id=kubelet") == ["/system.slice/kubelet.service"]
    assert ids("KUBELET") == ["/system.slice/kubelet.service"]
    assert ids("kind=root") == ["/"]
    assert ids("id=system.slice", "id=containerd") == ["/system.slice/containerd.service"]
    assert ids("id=no-such-thing") == []


def test_unknown_filter_key_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["-b", "--filter", "colour=red"])
    assert result.exit_code == 2 and "Unknown filter key 'colour'" in result.output
    with pytest.raises(CtopError):
        parse_filters(["bogus=1"])


def test_ebpf_rates_between_readings() -> None:
    old = EbpfCgroupCounters(cgroup_id=7, nvcsw=100, nivcsw=10, forks=1, execs=2, exits=1, runq_sum_seconds=1.0,
                             runq_count=10, runq_buckets=buckets(s5=10), preempted_by=(("/docker/b", 4),))
    new = dataclasses.replace(old, nvcsw=300, nivcsw=50, forks=5, execs=6, exits=5, runq_sum_seconds=1.5,
                              runq_count=30, runq_buckets=buckets(s5=10, s41=20), oom_kills=1,
                              preempted_by=(("/docker/b", 24), ("/", 2)))
    rates = ebpf_rates(new, old, 2.0)
    assert all(getattr(rates, key) is not None for key in EBPF_KEYS)
    assert rates.ctx_switches_voluntary_per_s == 100 and rates.ctx_switches_involuntary_per_s == 20
    assert rates.ctx_switches_per_s == 120
    assert rates.forks_per_s == 2 and rates.execs_per_s == 2 and rates.exits_per_s == 2
    assert rates.runq_wait_seconds_per_s == 0.25
    assert rates.oom_kills == 1
    assert rates.preempted_by == {"/docker/b": 10.0, "/": 1.0} and rates.top_preemptor == "/docker/b"
    assert rates.runq_latency_p99_seconds is not None and rates.runq_latency_p99_seconds > 2**19 * 1e-9
    # No events yet with eBPF on: 0, not "no data"; no previous reading: no rates.
    assert ebpf_rates(None, None, 1.0).forks_per_s == 0
    assert ebpf_rates(new, None, None).forks_per_s is None
    assert ebpf_rates(new, None, None).ctx_switches_per_s is None
    # A recreated cgroup (new id): no delta.
    assert ebpf_rates(dataclasses.replace(new, cgroup_id=8), old, 2.0).forks_per_s is None


@pytest.mark.parametrize("counters", [
    EbpfCgroupCounters(),
    EbpfCgroupCounters(cgroup_id=7, nvcsw=100, nivcsw=10, forks=1, execs=2, exits=1, runq_sum_seconds=1.0,
                       runq_count=10, runq_buckets=buckets(s5=10), oom_kills=3,
                       preempted_by=(("/docker/b", 4), ("/", 1))),
])
@pytest.mark.parametrize("seconds", [2.0, 1, 0.001])
def test_unchanged_readings_give_what_the_full_computation_gives(counters: EbpfCgroupCounters,
                                                                  seconds: float) -> None:
    """The shortcut for a cgroup with no event since the previous reading: the same values of the same types (0.0,
    not 0; an empty culprit list, not None) as the rates worked out in full, for a copy and for no reading at all."""
    copy = dataclasses.replace(counters)
    full = changed_rates(copy, counters, seconds)
    assert repr(ebpf_rates(copy, counters, seconds)) == repr(full)
    assert json.dumps(dataclasses.asdict(ebpf_rates(copy, counters, seconds))) == json.dumps(dataclasses.asdict(full))
    if counters == EbpfCgroupCounters():
        assert repr(ebpf_rates(None, None, seconds)) == repr(full)
    # One event more is not unchanged.
    assert ebpf_rates(dataclasses.replace(copy, forks=copy.forks + 1), counters, 2.0).forks_per_s == 0.5


def test_the_exporters_run_queue_quantiles_are_the_views():
    """runq_rates (the exporter's only derived figures) gives ebpf_rates' quantiles and OOM kills in every case: a
    change, none, a first reading, a recreated cgroup, no interval."""
    old = EbpfCgroupCounters(cgroup_id=7, runq_count=10, runq_buckets=buckets(s5=10), oom_kills=1)
    new = dataclasses.replace(old, runq_count=40, runq_buckets=buckets(s5=12, s30=20, s41=8), oom_kills=2)
    cases = [(new, old, 2.0), (old, old, 2.0), (new, None, 2.0), (None, None, 2.0), (new, old, None),
             (dataclasses.replace(new, cgroup_id=8), old, 2.0), (new, old, 0.0)]
    for n, o, seconds in cases:
        full, lean = ebpf_rates(n, o, seconds), runq_rates(n, o, seconds)
        assert (lean.runq_latency_p50_seconds, lean.runq_latency_p99_seconds, lean.oom_kills) == \
            (full.runq_latency_p50_seconds, full.runq_latency_p99_seconds, full.oom_kills), (n, o, seconds)
        assert lean.forks_per_s is None and lean.runq_wait_seconds_per_s is None  # nothing else is derived
    assert runq_rates(new, old, 2.0).runq_latency_p99_seconds is not None
