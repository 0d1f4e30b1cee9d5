"""Per-process kernel facts parsed from a /proc tree recorded from a Docker container (pid 5323) on this host."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from ctop.sources import procfs_caps, procfs_mounts, procfs_net, procfs_ns, procfs_procs

PROC = os.path.join(os.path.dirname(__file__), "..", "data", "runtimes", "procfs")
PID = 5323


def test_namespaces_and_sharing_with_host() -> None:
    ns = procfs_ns.namespaces(PID, PROC)
    assert ns["net"] == 4026532184 and ns["pid"] == 4026532183
    # pid 1 is not in the recording (it hides its namespaces on this host): kthreadd stands in.
    host = procfs_ns.host_namespaces(PROC)
    assert host["net"] == 4026531833
    shared = procfs_ns.shared_with_host(ns, host)
    assert shared == {"pid": False, "net": False, "mnt": False, "ipc": False, "uts": False,
                      "user": True, "cgroup": True, "time": True}


def test_missing_process_has_no_namespaces() -> None:
    assert set(procfs_ns.namespaces(999999, PROC).values()) == {None}
    assert procfs_ns.shared_with_host({}, {})["net"] is None


def test_capabilities_docker_default_set() -> None:
    caps = procfs_caps.effective_capabilities(PID, PROC)
    assert caps is not None
    assert "NET_RAW" in caps and "CHOWN" in caps and "SYS_ADMIN" not in caps
    assert len(caps) == 14
    assert procfs_caps.effective_capabilities(999999, PROC) is None


def test_decode_capabilities() -> None:
    assert procfs_caps.decode_capabilities(0) == []
    assert procfs_caps.decode_capabilities(1 << 13) == ["NET_RAW"]
    assert procfs_caps.decode_capabilities((1 << 40) | (1 << 45)) == ["CHECKPOINT_RESTORE", "cap_45"]
    assert len(procfs_caps.decode_capabilities((1 << 41) - 1)) == 41


def test_mounts_and_overlay_upper_dir() -> None:
    mounts = procfs_mounts.mounts_of(PID, PROC)
    assert len(mounts) == 28
    assert mounts[0].mount_point == "/" and mounts[0].fstype == "overlay"
    upper = procfs_mounts.overlay_upper_dir(mounts)
    assert upper is not None and upper.startswith("/var/lib/docker/overlay2/") and upper.endswith("/diff")


def test_mountinfo_unescapes_and_skips_garbage() -> None:
    data = (b"36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
            b"garbage line\n\n"
            b"1 2 3\n")
    mounts = procfs_mounts.parse_mountinfo(data)
    assert [m.mount_point for m in mounts] == ["/mnt with space"]
    assert procfs_mounts.overlay_upper_dir(mounts) is None
    assert procfs_mounts.parse_mountinfo(None) == []


def test_directory_size_is_bounded(tmp_path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(b"x" * 10000)
    size = procfs_mounts.directory_size(str(tmp_path))
    assert size is not None and size >= 50000
    assert procfs_mounts.directory_size(str(tmp_path), max_entries=3) is None
    assert procfs_mounts.directory_size(str(tmp_path / "missing")) is None


def test_net_devices_with_addresses() -> None:
    devices = {d.name: d for d in procfs_net.net_devices(PID, PROC)}
    assert set(devices) == {"eth0", "lo"}
    eth0 = devices["eth0"]
    assert eth0.addresses == ("10.213.77.2/24",)
    assert eth0.rx_bytes == 2089 and eth0.rx_packets == 26 and eth0.tx_bytes == 701 and eth0.tx_packets == 8
    assert devices["lo"].addresses == ("127.0.0.1/8",)


def test_netns_totals_dedupes_and_skips_host() -> None:
    totals = procfs_net.netns_totals({"app": PID, "sidecar": PID, "host": 2, "gone": 999999}, PROC)
    assert set(totals) == {"app", "sidecar"}
    assert totals["app"] == totals["sidecar"] == procfs_net.NetTotals(4026532184, 2089, 701)


def test_parse_net_dev_malformed() -> None:
    data = b"h1\nh2\n  eth0: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n bad: x y\nnocolon 1 2\n short: 1 2 3\n"
    devs = procfs_net.parse_net_dev(data)
    assert list(devs) == ["eth0"]
    d = devs["eth0"]
    assert (d.rx_bytes, d.rx_packets, d.rx_errors, d.rx_drops) == (1, 2, 3, 4)
    assert (d.tx_bytes, d.tx_packets, d.tx_errors, d.tx_drops) == (5, 6, 7, 8)


def test_if_inet6() -> None:
    data = (b"fd000000000000000000000000000002 02 40 00 80     eth0\n"
            b"00000000000000000000000000000001 01 80 10 80       lo\n"
            b"zz\n")
    assert procfs_net.parse_if_inet6(data) == {"eth0": ["fd00::2/64"], "lo": ["::1/128"]}


def test_process_from_recording() -> None:
    p = procfs_procs.read_process(PID, PROC)
    assert p is not None
    assert p.command == "httpd -f -p 80 -h /www" and p.ns_pid == 1 and p.threads == 1
    assert p.rss_bytes and p.rss_bytes > 0
    assert procfs_procs.read_process(999999, PROC) is None


def test_stat_with_parens_in_comm() -> None:
    fields = " ".join(["S"] + ["0"] * 10 + ["100", "50"] + ["0"] * 4 + ["3", "0", "0", "0", "25"] + ["0"] * 10)
    parsed = procfs_procs.parse_stat(f"42 (a) b (c)) {fields}".encode())
    assert parsed is not None
    comm, state, cpu, threads, rss = parsed
    assert comm == "a) b (c)" and state == "S" and threads == 3 and rss == 25
    assert abs(cpu - 150 / procfs_procs.CLOCK_TICKS) < 1e-9


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_parsers_never_raise_on_garbage(data: bytes) -> None:
    procfs_net.parse_net_dev(data)
    procfs_net.parse_routes(data)
    procfs_net.parse_fib_trie_local(data)
    procfs_net.parse_if_inet6(data)
    procfs_mounts.parse_mountinfo(data)
    procfs_procs.parse_stat(data)
    procfs_procs.parse_nspid(data)


def test_a_process_reads_with_its_owner_and_the_detail_view_lists_the_busiest_first(tmp_path) -> None:
    from ctop.inspect_cmd import process_lines
    from ctop.sources.procfs_procs import parse_uid, read_process

    assert parse_uid(b"Name:\tsh\nUid:\t1000\t1000\t1000\t1000\n") == 1000
    assert parse_uid(b"Uid:\tx\n") is None and parse_uid(None) is None and parse_uid(b"") is None
    me = read_process(os.getpid())
    assert me is not None and me.uid == os.getuid() and me.rss_bytes and me.command
    lines = process_lines([
        {"pid": 1, "user": "root", "cpu_percent": 0.5, "rss_bytes": 2**20, "state": "S", "threads": 1,
         "command": "init"},
        {"pid": 7, "user": "a-very-long-user-name", "cpu_percent": 99.0, "rss_bytes": None, "state": "R",
         "threads": 4, "command": "burn --hot"},
        {"pid": 9, "user": None, "cpu_percent": None, "rss_bytes": 4096, "state": "S", "threads": 1, "command": "x"},
    ], limit=2)
    assert lines[0].split() == ["PID", "USER", "CPU%", "RSS", "S", "THR", "COMMAND"]
    assert lines[1].split() == ["7", "a-very-lon", "99.0", "-", "R", "4", "burn", "--hot"]  # busiest first
    assert lines[2].split()[:3] == ["1", "root", "0.5"]
    assert lines[3] == "... and 1 more (ctop inspect lists them all)"


def test_inspect_finds_the_main_process_in_cruns_inner_cgroup(tmp_path) -> None:
    """crun under systemd (podman on v1 and v2 hosts): the scope's cgroup.procs is empty, `container` below holds
    the processes; the report's main pid is found there."""
    from ctop.inspect_cmd import container_report
    from ctop.runtimes.identify import identify
    from ctop.runtimes.locate import Located

    path = "/machine.slice/libpod-" + "a" * 64 + ".scope"
    scope = tmp_path / "scope"
    (scope / "container").mkdir(parents=True)
    (scope / "cgroup.procs").write_text("")
    (scope / "container" / "cgroup.procs").write_text(f"{os.getpid()}\n")
    report = container_report(Located(path, str(scope), identify(path), None), cpu_sample_s=0.01)
    assert report["main_pid"] == os.getpid()
