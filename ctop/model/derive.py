"""Rates from two snapshots: CPU % (docker stats formula), CPU % of the limit, throttling, IO, major faults, network.

No rate is computed across a cgroup that was removed and recreated under the same path (different inode), nor
across a counter that went backwards.
"""

from __future__ import annotations

from .ebpf import EbpfCgroupCounters
from .ebpf_rates import EbpfRates
from .frame import CgroupRow, Identity, NetCounters
from .sample import UNLIMITED, CgroupSample, HostSample
from .window import Throttling


def counter_delta(prev: int | None, cur: int | None) -> int | None:
    """cur - prev for a cumulative counter; None when unknown or when it went backwards (a reset)."""
    if prev is None or cur is None or cur < prev:
        return None
    return cur - prev


def cpu_limit_cores(sample: CgroupSample) -> float | None:
    """quota / period in CPUs; None when unlimited or unknown."""
    quota, period = sample.cpu_quota_us, sample.cpu_period_us
    if quota is None or quota == UNLIMITED or quota <= 0 or not period:
        return None
    return quota / period


def cpu_percent(prev: CgroupSample, cur: CgroupSample, host_prev: HostSample, host_cur: HostSample,
                read_s: float | None = None) -> float | None:
    """Δ container CPU / Δ host CPU × online CPUs × 100 (docker stats); 100 = one full CPU.

    ``read_s``, the seconds between the two reads of the container's counter where they were timed: the host's CPU
    time is taken over that interval instead of the one between the host's reads (the same when nothing held the
    reader back between the host's figures and the container's, as docker reads both together per container).
    """
    used = counter_delta(prev.cpu_usage_ns, cur.cpu_usage_ns)
    system = counter_delta(host_prev.cpu_time_ns, host_cur.cpu_time_ns)
    if used is None or not system:
        return None
    host_s = host_cur.monotonic_s - host_prev.monotonic_s
    stretch = read_s / host_s if read_s is not None and read_s > 0 and host_s > 0 else 1.0
    return used / (system * stretch) * host_cur.online_cpus * 100.0


def throttled_percent(prev: CgroupSample, cur: CgroupSample) -> float | None:
    """Share of CFS periods in which the cgroup was throttled; None without a CPU limit."""
    if cpu_limit_cores(cur) is None:
        return None
    periods = counter_delta(prev.cpu_periods, cur.cpu_periods)
    throttled = counter_delta(prev.cpu_throttled_periods, cur.cpu_throttled_periods)
    if periods is None or throttled is None:
        return None
    return 0.0 if periods == 0 else min(100.0, throttled / periods * 100.0)


def memory_limit_percent(sample: CgroupSample) -> float | None:
    """Working set as a share of the memory limit; None when unlimited."""
    limit = sample.memory_limit_bytes
    ws = sample.working_set_bytes
    if ws is None or limit is None or limit == UNLIMITED or limit <= 0:
        return None
    return ws / limit * 100.0


def _rate(prev: int | None, cur: int | None, seconds: float) -> float | None:
    delta = counter_delta(prev, cur)
    return None if delta is None or seconds <= 0 else delta / seconds


def net_totals(net: dict[str, NetCounters] | None) -> tuple[int, int] | None:
    """(rx_bytes, tx_bytes) summed over the interfaces of a namespace, loopback excluded."""
    if net is None:
        return None
    rx = tx = 0
    for name, counters in net.items():
        if name == "lo":
            continue
        rx += counters.rx_bytes
        tx += counters.tx_bytes
    return rx, tx


def derive_row(
    cur: CgroupSample,
    prev: CgroupSample | None,
    host_cur: HostSample,
    host_prev: HostSample | None,
    identity: Identity | None = None,
    net: dict[str, NetCounters] | None = None,
    prev_net: dict[str, NetCounters] | None = None,
    *,
    tasks_recursive: int | None = None,
    ebpf: EbpfCgroupCounters | None = None,
    ebpf_rates: EbpfRates | None = None,
    throttling: Throttling | None = None,
    read_s: float | None = None,
) -> CgroupRow:
    """One row: the sample plus every rate that the previous sample of the same cgroup allows.

    ``tasks_recursive``, the eBPF values and the windowed ``throttling``, worked out by the collector over the whole
    tree or over several refreshes, are carried as given. ``read_s``: the seconds between the cgroup's two reads,
    where timed (CPU, IO and fault rates go by it; network counters are read apart, by the host's interval).
    """
    limit_cores = cpu_limit_cores(cur)
    cpu = cpu_limit = throttled = major_faults = None
    io_read_bytes = io_write_bytes = io_read_ops = io_write_ops = net_rx = net_tx = None
    if prev is not None and host_prev is not None and prev.inode == cur.inode:
        host_seconds = host_cur.monotonic_s - host_prev.monotonic_s
        seconds = read_s if read_s is not None and read_s > 0 else host_seconds
        cpu = cpu_percent(prev, cur, host_prev, host_cur, read_s)
        if cpu is not None and limit_cores:
            cpu_limit = cpu / limit_cores
        if limit_cores is not None:  # throttled_percent(prev, cur), whose own check is this one
            throttled = throttled_percent(prev, cur)
        a, b = prev.io_total, cur.io_total
        if a is not None and a is b:  # an idle cgroup's sample, kept from the previous refresh: no IO since
            io_read_bytes = io_write_bytes = io_read_ops = io_write_ops = 0 / seconds if seconds > 0 else None
        elif a is not None and b is not None:
            io_read_bytes = _rate(a.read_bytes, b.read_bytes, seconds)
            io_write_bytes = _rate(a.write_bytes, b.write_bytes, seconds)
            io_read_ops = _rate(a.read_ops, b.read_ops, seconds)
            io_write_ops = _rate(a.write_ops, b.write_ops, seconds)
        major_faults = _rate(prev.memory_pgmajfault, cur.memory_pgmajfault, seconds)
        now_net, then_net = net_totals(net), net_totals(prev_net)
        if now_net is not None and then_net is not None:
            net_rx = _rate(then_net[0], now_net[0], host_seconds)
            net_tx = _rate(then_net[1], now_net[1], host_seconds)
    return CgroupRow(
        sample=cur, identity=identity or Identity(), net=net,
        cpu_percent=cpu, cpu_limit_cores=limit_cores, cpu_limit_percent=cpu_limit, throttled_percent=throttled,
        memory_limit_percent=memory_limit_percent(cur),
        io_read_bytes_per_s=io_read_bytes, io_write_bytes_per_s=io_write_bytes,
        io_read_ops_per_s=io_read_ops, io_write_ops_per_s=io_write_ops,
        memory_major_faults_per_s=major_faults, net_rx_bytes_per_s=net_rx, net_tx_bytes_per_s=net_tx,
        tasks_recursive=tasks_recursive, ebpf=ebpf, ebpf_rates=ebpf_rates,
        throttled_percent_avg=throttling.percent if throttling is not None else None,
        throttled_seconds_per_s=throttling.seconds_per_s if throttling is not None else None,
    )
