"""Benchmark: the flight recorder's store on a node of 200 containers recorded every second.

Synthetic counters shaped like a Kubernetes node (3 QoS classes, 67 pods, 200 containers; a fifth of them busy,
their CPU, memory, IO, network and eBPF counters moving every second, the rest idle) are appended for one hour
of frames. Reported: bytes on disk per stored counter value, CPU per appended frame, the time to open the store
cold at random instants (over 168 hourly segments: one real hour re-encoded with shifted times), and
the time to read one hour of one container.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ctop.history.codec import WIDTH, CgroupCounters  # noqa: E402
from ctop.history.store import (  # noqa: E402
    FRAME,
    Attributes,
    FrameRecord,
    StoreReader,
    StoreWriter,
    encode_record,
    list_segments,
    scan,
)
from ctop.model.ebpf import RUNQ_SLOTS, EbpfCgroupCounters  # noqa: E402
from ctop.model.frame import Identity  # noqa: E402
from ctop.model.sample import CgroupSample, HostSample, IoCounters  # noqa: E402

START = 1_800_000_000.0


def node(rng: random.Random, containers: int = 200) -> dict[str, CgroupCounters]:
    """The cgroups of one node: QoS levels, pods, containers, with plausible starting counters."""
    paths = ["/kubepods", "/kubepods/burstable", "/kubepods/besteffort"]
    pods = containers // 3 + 1
    for p in range(pods):
        pod = f"{paths[p % 3]}/pod{p:04d}-aaaa-bbbb-cccc-{p:012d}"
        paths.append(pod)
        paths += [f"{pod}/{rng.getrandbits(256):064x}" for _ in range(3) if len(paths) < containers + pods + 3]
    out = {}
    for i, path in enumerate(paths):
        r = rng.randrange
        sample = CgroupSample(
            path=path, inode=10_000 + i, cpu_usage_ns=r(10**13), cpu_user_ns=r(10**13), cpu_system_ns=r(10**12),
            cpu_quota_us=50_000 if i % 3 else -1, cpu_period_us=100_000, cpu_shares=1024, cpu_weight=39,
            cpuset_cpus="0-1", cpu_periods=r(10**6), cpu_throttled_periods=r(10**4), cpu_throttled_ns=r(10**11),
            memory_usage_bytes=r(10**9), memory_max_usage_bytes=2 * 10**9, memory_limit_bytes=2**30,
            memory_inactive_file_bytes=r(10**8), memory_rss_bytes=r(10**9), memory_cache_bytes=r(10**8),
            memory_mapped_file_bytes=r(10**7), memory_swap_bytes=0, memory_swap_limit_bytes=-1, memory_failcnt=0,
            memory_oom_events=0, memory_oom_kills=0, memory_pgfault=r(10**8), memory_pgmajfault=r(10**4),
            memory_pgfault_hierarchy=r(10**8), memory_pgmajfault_hierarchy=r(10**4),
            io_total=IoCounters(r(10**10), r(10**10), r(10**6), r(10**6)), pids_current=r(60), pids_max=4096,
            processes=r(5), threads=r(60), first_pid=r(4 * 10**6))
        ebpf = EbpfCgroupCounters(cgroup_id=20_000 + i, runq_buckets=tuple(r(10**6) for _ in range(RUNQ_SLOTS)),
                                  runq_sum_seconds=r(10**12) / 1e9, runq_count=r(10**8), runq_max_seconds=0.02,
                                  nvcsw=r(10**8), nivcsw=r(10**7), preempted_by_others=r(10**6),
                                  preempted_by_host=r(10**6), forks=r(10**5), execs=r(10**5), exits=r(10**5))
        out[path] = CgroupCounters(sample, r(10**11), r(10**11), ebpf)
    return out


def advance(rng: random.Random, c: CgroupCounters, busy: bool) -> CgroupCounters:
    """One second later: a busy cgroup moves most counters, an idle one a little CPU time."""
    s, e = c.sample, c.ebpf
    assert e is not None and s.cpu_usage_ns is not None and s.cpu_periods is not None
    if not busy:
        used = rng.randrange(10**6)
        return dataclasses.replace(c, sample=dataclasses.replace(
            s, cpu_usage_ns=s.cpu_usage_ns + used, cpu_user_ns=(s.cpu_user_ns or 0) + used,
            cpu_periods=s.cpu_periods + 1))
    used = rng.randrange(5 * 10**8)
    io = s.io_total or IoCounters()
    buckets = list(e.runq_buckets)
    for k in range(6, 14):
        buckets[k] += rng.randrange(200)
    return CgroupCounters(
        dataclasses.replace(
            s, cpu_usage_ns=s.cpu_usage_ns + used, cpu_user_ns=(s.cpu_user_ns or 0) + used * 4 // 5,
            cpu_system_ns=(s.cpu_system_ns or 0) + used // 5, cpu_periods=s.cpu_periods + 10,
            cpu_throttled_periods=(s.cpu_throttled_periods or 0) + rng.randrange(3),
            memory_usage_bytes=(s.memory_usage_bytes or 0) + rng.randrange(-10**6, 10**6),
            memory_rss_bytes=(s.memory_rss_bytes or 0) + rng.randrange(-10**6, 10**6),
            memory_pgfault=(s.memory_pgfault or 0) + rng.randrange(5000),
            memory_pgfault_hierarchy=(s.memory_pgfault_hierarchy or 0) + rng.randrange(5000),
            io_total=IoCounters(io.read_bytes + rng.randrange(10**6), io.write_bytes + rng.randrange(10**6),
                                io.read_ops + rng.randrange(100), io.write_ops + rng.randrange(100)),
            threads=s.threads),
        (c.net_rx_bytes or 0) + rng.randrange(10**6), (c.net_tx_bytes or 0) + rng.randrange(10**6),
        dataclasses.replace(e, runq_buckets=tuple(buckets), runq_count=e.runq_count + rng.randrange(2000),
                            runq_sum_seconds=(round(e.runq_sum_seconds * 1e9) + rng.randrange(10**7)) / 1e9,
                            nvcsw=e.nvcsw + rng.randrange(2000), nivcsw=e.nivcsw + rng.randrange(200),
                            preempted_by_others=e.preempted_by_others + rng.randrange(50)))


def record_hour(directory: str, seconds: int, containers: int) -> dict[str, float]:
    rng = random.Random(42)
    cgroups = node(rng, containers)
    busy = {p for i, p in enumerate(cgroups) if i % 5 == 0}
    attributes = {p: Attributes(Identity(kind="container", runtime="containerd", name=p[-12:], image="app:1"),
                                "0-1") for p in cgroups}
    writer = StoreWriter(directory)
    cpu = 0.0
    try:
        for t in range(seconds):
            cgroups = {p: advance(rng, c, p in busy) for p, c in cgroups.items()}
            host = HostSample(monotonic_s=100.0 + t, wall_time_s=START + t, cpu_time_ns=t * 2 * 10**9,
                              online_cpus=2, memory_total_bytes=2**35)
            record = FrameRecord(host, "v2", cgroups, attributes, ebpf_monotonic_s=99.5 + t)
            before = time.process_time()
            assert writer.append(record), writer.last_error
            cpu += time.process_time() - before
    finally:
        writer.close()
    size = sum(os.path.getsize(p) for _, p in list_segments(directory))
    values = seconds * len(cgroups) * WIDTH
    return {"cgroups": len(cgroups), "frames": seconds, "counters_per_cgroup": WIDTH,
            "bytes_on_disk": size, "bytes_per_counter_value": round(size / values, 4),
            "append_cpu_ms_per_frame": round(cpu / seconds * 1000, 3),
            "append_cpu_percent_of_one_cpu_at_1s": round(cpu / seconds * 100, 3)}


def seven_days(directory: str, hour_segment: str) -> None:
    """167 more hourly segments: the recorded hour re-encoded with every time shifted back by whole hours."""
    with open(hour_segment, "rb") as f:
        data = f.read()
    entries, _, _ = scan(data)
    for h in range(1, 168):
        shift = h * 3600
        out = []
        for e in entries:
            payload = bytearray(data[e.offset:e.offset + e.length])
            if e.kind == FRAME:  # the frame header's wall time (after frame number and layout id)
                (wall,) = struct.unpack_from("<d", payload, 8)
                struct.pack_into("<d", payload, 8, wall - shift)
            out.append(encode_record(e.kind, e.time - shift, bytes(payload), e.flags))
        with open(os.path.join(directory, f"seg-{int(START) - shift}.ctr"), "wb") as f:
            f.write(b"".join(out))


def run(seconds: int = 3600, containers: int = 200, opens: int = 20) -> dict[str, object]:
    directory = tempfile.mkdtemp(prefix="ctop-bench-store-")
    try:
        result: dict[str, object] = {"recording": record_hour(directory, seconds, containers)}
        [(_, hour)] = list_segments(directory)
        target = next(iter(node(random.Random(42), containers)))  # any cgroup; take a container below
        reader = StoreReader(directory)
        last = reader.frame_at(START + seconds)
        assert last is not None
        target = [p for p in last.cgroups if p.count("/") == 4][7]
        reader.close()
        before = time.perf_counter()
        reader = StoreReader(directory)
        rows = [f.cgroups[target] for f in reader.frames(START, START + seconds, paths={target})]
        one_hour = time.perf_counter() - before
        reader.close()
        assert len(rows) == seconds
        seven_days(directory, hour)
        rng = random.Random(7)
        open_times = []
        for _ in range(opens):
            when = START - rng.uniform(0, 167 * 3600) + rng.uniform(0, seconds)
            before = time.perf_counter()
            reader = StoreReader(directory)
            frame = reader.frame_at(when)
            open_times.append(time.perf_counter() - before)
            reader.close()
            assert frame is not None
        result["one_hour_of_one_container_s"] = round(one_hour, 3)
        result["open_7_day_store_at_random_instants_ms"] = {
            "segments": len(list_segments(directory)), "median": round(sorted(open_times)[opens // 2] * 1000, 1),
            "max": round(max(open_times) * 1000, 1)}
        return result
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 3600
    print(json.dumps(run(seconds), indent=2))
