"""Write the cgroup v2 trees under tests/data/cgroups (pure v2 cannot be mounted on the hybrid test host).

The files follow the kernel's formats (Documentation/admin-guide/cgroup-v2.rst) with values shaped like a
Kubernetes node using the systemd driver and containerd; a few cgroups carry malformed and missing files on purpose.
Run it again after changing it; the output is committed.
"""

from __future__ import annotations

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
POD_G = "0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b"
POD_B = "1a2b3c4d_5e6f_7081_92a3_b4c5d6e7f809"
POD_BE = "2b3c4d5e_6f70_8192_a3b4_c5d6e7f8091a"
CTR = ["5f0c9a2d7e3b41c6a8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
       "6a1d0b3e8f4c52d7b9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e",
       "7b2e1c4f905d63e8c0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f"]

GUARANTEED = f"/kubepods.slice/kubepods-pod{POD_G}.slice"
BURSTABLE = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_B}.slice"
BESTEFFORT = f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_BE}.slice"


def cgroup(usage_us: int, quota: str = "max", memory: int = 50 << 20, limit: str = "max",
           inactive: int = 10 << 20, procs: list[int] | None = None, threads: int | None = None,
           io: str = "", pids_max: str = "max", weight: int = 100, oom_kill: int = 0) -> dict[str, str]:
    procs = procs or []
    throttled = "nr_periods 500\nnr_throttled 125\nthrottled_usec 2500000\n" if quota != "max" else \
        "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n"
    return {
        "cgroup.controllers": "cpuset cpu io memory pids\n",
        "cgroup.procs": "".join(f"{p}\n" for p in procs),
        "cgroup.threads": "".join(f"{p}\n" for p in procs) + "".join(
            f"{procs[0] + 1000 + i}\n" for i in range(max(0, (threads or len(procs)) - len(procs)))),
        "cpu.stat": f"usage_usec {usage_us}\nuser_usec {usage_us * 3 // 4}\nsystem_usec {usage_us // 4}\n"
                    f"core_sched.force_idle_usec 0\n{throttled}nr_bursts 0\nburst_usec 0\n",
        "cpu.max": f"{quota} 100000\n",
        "cpu.weight": f"{weight}\n",
        "cpuset.cpus.effective": "0-3\n",
        "memory.current": f"{memory}\n",
        "memory.peak": f"{memory + (4 << 20)}\n",
        "memory.max": f"{limit}\n",
        "memory.stat": f"anon {memory - inactive - (2 << 20)}\nfile {inactive + (2 << 20)}\nkernel 1048576\n"
                       f"file_mapped 1048576\nactive_file {2 << 20}\ninactive_file {inactive}\nanon_thp 0\n"
                       f"pgfault {usage_us // 1000}\npgmajfault {usage_us // 10_000_000}\n",
        "memory.events": f"low 0\nhigh 0\nmax {oom_kill * 3}\noom {oom_kill}\noom_kill {oom_kill}\n"
                         "oom_group_kill 0\n",
        "memory.swap.current": "0\n",
        "memory.swap.max": "max\n",
        "io.stat": io,
        "pids.current": f"{threads or len(procs)}\n",
        "pids.max": f"{pids_max}\n",
        "cpu.pressure": "some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\n"
                        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\n"
                           "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
        "io.pressure": "some avg10=0.25 avg60=0.00 avg300=0.00 total=2000\n"
                       "full avg10=0.10 avg60=0.00 avg300=0.00 total=1000\n",
    }


def tree() -> dict[str, dict[str, str]]:
    root = cgroup(9_000_000_000, procs=[1, 2, 3], io="8:0 rbytes=1000000 wbytes=2000000 rios=100 wios=200 "
                                                     "dbytes=0 dios=0\n")
    for name in ("cpu.max", "cpu.weight", "memory.current", "memory.max", "memory.peak", "pids.current",
                 "pids.max", "memory.swap.current", "memory.swap.max", "memory.events"):
        root.pop(name)  # the v2 root has none of these
    io_ctr = "8:0 rbytes=4096000 wbytes=8192000 rios=1000 wios=2000 dbytes=0 dios=0\n" \
             "253:0 rbytes=1024 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n"
    return {
        "/": root,
        "/kubepods.slice": cgroup(4_000_000_000),
        GUARANTEED: cgroup(1_000_000_000, quota="50000", limit=str(256 << 20)),
        f"{GUARANTEED}/cri-containerd-{CTR[0]}.scope": cgroup(
            990_000_000, quota="50000", limit=str(256 << 20), memory=200 << 20, procs=[4101, 4102],
            threads=5, io=io_ctr, pids_max="1024", oom_kill=1),
        "/kubepods.slice/kubepods-burstable.slice": cgroup(2_000_000_000, weight=10),
        BURSTABLE: cgroup(2_000_000_000, weight=10),
        f"{BURSTABLE}/cri-containerd-{CTR[1]}.scope": cgroup(1_900_000_000, weight=20, procs=[4201]),
        "/kubepods.slice/kubepods-besteffort.slice": cgroup(500_000_000, weight=1),
        BESTEFFORT: cgroup(500_000_000, weight=1),
        f"{BESTEFFORT}/cri-containerd-{CTR[2]}.scope": cgroup(499_000_000, weight=1, procs=[4301]),
        "/system.slice": cgroup(3_000_000_000),
        "/system.slice/containerd.service": cgroup(2_500_000_000, procs=[800], threads=30),
        "/system.slice/kubelet.service": cgroup(400_000_000, procs=[900], threads=20),
        # Malformed and missing files on purpose.
        "/system.slice/broken.service": {
            "cgroup.controllers": "cpu memory\n", "cgroup.procs": "not-a-pid\n", "cpu.stat": "garbage\n",
            "cpu.max": "lots\n", "memory.current": "12x\n", "memory.stat": "anon\nfile -\n",
            "io.stat": "8:0 rbytes=oops wbytes=5\n", "cpu.pressure": "some avg10=bad total=x\n",
        },
        # No cgroup files at all; ".keep" only because git stores no empty directories.
        "/system.slice/empty.service": {".keep": ""},
    }


def write(out: str) -> None:
    shutil.rmtree(out, ignore_errors=True)
    for path, files in tree().items():
        directory = out + ("" if path == "/" else path)
        os.makedirs(directory, exist_ok=True)
        for name, content in files.items():
            with open(os.path.join(directory, name), "w") as f:
                f.write(content)


def write_proc(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "stat"), "w") as f:
        f.write("cpu  10000 0 5000 80000 100 0 50 0 0 0\n" + "".join(
            f"cpu{i} 2500 0 1250 20000 25 0 12 0 0 0\n" for i in range(4)) + "intr 0\nctxt 0\nbtime 0\n")
    with open(os.path.join(out, "meminfo"), "w") as f:
        f.write("MemTotal:       16384000 kB\nMemFree:         8192000 kB\nMemAvailable:   12000000 kB\n"
                "Cached:          2048000 kB\nAnonPages:       4096000 kB\nInactive(file):  1024000 kB\n")
    with open(os.path.join(out, "partitions"), "w") as f:
        f.write("major minor  #blocks  name\n\n   8        0  104857600 sda\n 253        0   52428800 dm-0\n")


if __name__ == "__main__":
    base = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "cgroups", "v2-k8s-systemd")
    write(os.path.join(base, "cgroup"))
    write_proc(os.path.join(base, "proc"))
