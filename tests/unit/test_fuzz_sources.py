"""Bad input for every reader of cgroup and /proc files: any content gives a value or no data, never an exception.

Inputs are built from the tokens the real files use (so the parsers get past their first checks) mixed with
garbage: truncated lines, non-UTF-8 bytes, numbers beyond 2**64 and beyond a float, "max", negatives, odd
escapes. test_parsers.py checks the exact values on good input; this file only checks the "never raises" half.
"""

from __future__ import annotations

import os
import shutil
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.trees import DATA, copy_tree

from ctop.collector import Collector, CollectorConfig
from ctop.ebpf import btf
from ctop.errors import NoCgroupsError
from ctop.model.notices import NoticeKind
from ctop.sources import parsers, procfs_caps, procfs_mounts, procfs_net, procfs_ns, procfs_procs
from ctop.sources.cgroupfs import CgroupReader
from ctop.sources.cgroupfs_layout import detect_layout
from ctop.sources.procfs import HostReader, parse_meminfo, parse_partitions, parse_proc_stat
from ctop.sources.readfile import (
    count_lines,
    first_int,
    parse_flat_keyed,
    read_bytes,
    read_int,
    read_limit,
)

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Numbers a kernel (or a corrupted file) can hold: 0, negatives, > 2**64, too big for a float, too long for int().
NUMBERS = [b"0", b"-1", b"-9223372036854775808", b"18446744073709551615", b"18446744073709551616",
           b"9" * 330, b"9" * 5000, b"1e400", b"nan", b"inf", b"-inf", b"0x10", b"1_000", b"\xd9\xa3", b"\xc2\xb2"]
# Words the real files use, so that lines get past the first checks of each parser.
WORDS = [b"max", b"some", b"full", b"avg10=", b"avg60=", b"total=", b"user", b"system", b"cpu", b"cpu0", b"Read",
         b"Write", b"Total", b"8:0", b"253:1", b"rbytes=", b"wbytes=", b"rios=", b"wios=", b"NSpid:", b"CapEff:",
         b"CapPrm:", b"kB", b"MemTotal:", b"MemFree:", b"usage_usec", b"nr_periods", b"oom_kill", b"-", b"(", b")",
         b"=", b":", b"/", b"\\", b"\\040", b"\\999", b"\\\xd9\xa3\xd9\xa3\xd9\xa3", b"\\\xc2\xb2\xc2\xb2\xc2\xb2",
         b"overlay", b"upperdir=", b"|--", b"/32", b"host", b"LOCAL", b"eth0:", b"lo:", b"00000000", b"FFFFFFFF",
         b"fe800000000000000000000000000001", b"\xff\xfe", b"\x00", b"\x1b[2J", "é".encode()]
token = st.sampled_from(NUMBERS + WORDS) | st.binary(max_size=6) | st.integers(-(2**80), 2**80).map(
    lambda n: str(n).encode())
line = st.lists(token, max_size=24).flatmap(
    lambda parts: st.sampled_from([b" ", b"\t", b"", b"="]).map(lambda sep: sep.join(parts)))


@st.composite
def file_content(draw: st.DrawFn) -> bytes:
    """Lines of tokens, optionally cut short at any byte; sometimes pure random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    data = b"\n".join(draw(st.lists(line, max_size=12)))
    if data and draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return data


def any_result(value: object) -> None:
    """Touch the result: a parser must return plain data, not something that raises when used."""
    repr(value)


@given(file_content())
@EXAMPLES
def test_readfile_parsers_never_raise(data: bytes) -> None:
    flat = parse_flat_keyed(data)
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in flat.items())
    assert first_int(data) is None or isinstance(first_int(data), int)
    assert count_lines(data) is None or count_lines(data) >= 0


@given(file_content())
@EXAMPLES
def test_cgroup_parsers_never_raise(data: bytes) -> None:
    any_result(parsers.parse_cpu_max(data))
    by_bytes, _ = parsers.parse_v1_blkio(data)
    by_ops, _ = parsers.parse_v1_blkio(data)
    any_result(parsers.sum_io(parsers.combine_v1_io(by_bytes, by_ops)))
    any_result(parsers.sum_io(parsers.parse_v2_io_stat(data)))
    any_result(parsers.parse_pressure(data))
    user, _system = parsers.parse_ticks_stat(data, procfs_procs.CLOCK_TICKS and 1e9 / procfs_procs.CLOCK_TICKS)
    assert user is None or isinstance(user, int)


@given(st.integers(-(2**80), 2**80) | st.sampled_from([None, 0, -1, 2**64, 10**400]))
def test_limit_and_weight_conversions_never_raise(n: int | None) -> None:
    any_result(parsers.parse_v1_limit(n))
    if n is not None:
        any_result(parsers.weight_to_shares(n))
        assert 1 <= parsers.shares_to_weight(n) <= 10000


@given(file_content())
@EXAMPLES
def test_procfs_parsers_never_raise(data: bytes) -> None:
    total, cpus = parse_proc_stat(data)
    assert total is None or isinstance(total, int)
    assert cpus >= 1
    any_result(parse_meminfo(data))
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parse_partitions(data).items())
    any_result(procfs_procs.parse_stat(data))
    any_result(procfs_procs.parse_nspid(data))
    mounts = procfs_mounts.parse_mountinfo(data)
    any_result(procfs_mounts.overlay_upper_dir(mounts))
    devices = procfs_net.parse_net_dev(data)
    assert all(isinstance(d.rx_bytes, int) for d in devices.values())
    local = procfs_net.parse_fib_trie_local(data)
    any_result(procfs_net.ipv4_addresses(local, procfs_net.parse_routes(data)))
    any_result(procfs_net.parse_if_inet6(data))


@given(st.binary(max_size=60), st.sampled_from(NUMBERS + WORDS))
def test_lines_built_around_a_prefix_never_raise(tail: bytes, word: bytes) -> None:
    """Single lines that start the way each parser looks for: past the prefix test, garbage after it."""
    for prefix in (b"cpu ", b"cpu0 ", b"NSpid:", b"Cap", b"some ", b"full ", b"user ", b"system "):
        data = prefix + word + b" " + tail
        parse_proc_stat(data)
        procfs_procs.parse_nspid(data)
        procfs_caps.decode_capabilities(0)
        parsers.parse_pressure(data)
        parsers.parse_ticks_stat(data, 1e7)
    parse_partitions(b"major minor  #blocks  name\n\n" + word + b" " + tail + b" 1 sda\n")
    parse_partitions(b"h\n\n" + tail + b" " + word + b" 2 " + tail)
    procfs_procs.parse_stat(b"1 (" + tail + b") " + word + b" " + b" ".join([word] * 25))
    procfs_mounts.parse_mountinfo(b"1 2 0:1 " + word + tail + b" /m" + word + b" rw - overlay " + tail + b" rw\n")


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_capability_masks_of_any_size_decode(mask: int) -> None:
    names = procfs_caps.decode_capabilities(mask)
    assert len(names) <= max(mask.bit_length(), 64)


# --- readers of real files and directories --------------------------------------------------------------------------

def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


@given(data=file_content())
@EXAMPLES
def test_file_readers_never_raise(scratch: str, data: bytes) -> None:
    path = os.path.join(scratch, "value")
    write(path, data)
    assert read_bytes(path) == data
    value = read_int(path)
    assert value is None or isinstance(value, int)
    _present, limit = read_limit(path)
    assert limit is None or isinstance(limit, int)
    assert all(isinstance(p, int) for p in procfs_procs.read_pids(path))


@given(stat=file_content(), status=file_content(), cmdline=file_content(), net=file_content(),
       link=st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b and b"/" not in b))
@EXAMPLES
def test_process_readers_never_raise(scratch: str, stat: bytes, status: bytes, cmdline: bytes, net: bytes,
                                     link: bytes) -> None:
    proc = os.path.join(scratch, "proc")
    shutil.rmtree(proc, ignore_errors=True)
    base = os.path.join(proc, "4242")
    for name, data in (("stat", stat), ("status", status), ("cmdline", cmdline), ("mountinfo", stat),
                       ("net/dev", net), ("net/route", net), ("net/fib_trie", net), ("net/if_inet6", net)):
        write(os.path.join(base, name), data)
    os.makedirs(os.path.join(base, "ns"))
    os.symlink(os.fsencode("net:[") + link + b"]", os.path.join(os.fsencode(base), b"ns", b"net"))
    os.symlink(link, os.path.join(os.fsencode(base), b"ns", b"pid"))
    info = procfs_procs.read_process(4242, proc)
    assert info is None or isinstance(info.command, str)
    any_result(procfs_caps.capability_masks(4242, proc))
    any_result(procfs_caps.effective_capabilities(4242, proc))
    any_result(procfs_mounts.mounts_of(4242, proc))
    any_result(procfs_ns.namespaces(4242, proc))
    any_result(procfs_net.net_devices(4242, proc))
    any_result(procfs_net.netns_totals({"c": 4242}, proc))
    host, _ = HostReader(base).read()
    assert host.online_cpus >= 1


BTF_STRINGS = b"\0task_struct\0sched_info\0run_delay\0real_parent\0tgid\0"
BTF_NAMES = [0, 1, 13, 24, 34, 46, 999]  # offsets of the names above, plus none and one past the end


@st.composite
def btf_blob(draw: st.DrawFn) -> bytes:
    """A BTF blob whose records name task_struct and its fields but point anywhere: loops, missing ids, cut short."""
    types = b""
    for i in range(draw(st.integers(1, 6))):
        first = i == 0  # the first record is a struct task_struct with members, so lookups go into the rest
        kind = draw(st.sampled_from([4, 5] if first else [1, 3, 4, 5, 6, 8, 9, 10, 11, 18, 31]))
        vlen = draw(st.integers(1 if first else 0, 3))
        name = 1 if first else draw(st.sampled_from(BTF_NAMES))
        info = (kind << 24) | vlen | (draw(st.integers(0, 1)) << 31)
        types += struct.pack("<III", name, info, draw(st.integers(0, 8)))
        fixed, per = {1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8)}.get(kind, (0, 0))
        types += bytes(fixed)
        for _ in range(vlen if per else 0):
            member = struct.pack("<III", draw(st.sampled_from(BTF_NAMES)), draw(st.integers(0, 8)),
                                 draw(st.integers(0, 2**32 - 1)))
            types += member[:per]
    if draw(st.booleans()):
        types = types[:draw(st.integers(0, len(types)))]
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(BTF_STRINGS))
    return header + types + BTF_STRINGS


@given(blob=btf_blob() | st.binary(max_size=200))
@settings(max_examples=400, deadline=None)
def test_btf_offsets_from_a_damaged_blob_are_no_data(scratch: str, blob: bytes) -> None:
    """A damaged BTF blob gives no offsets (the programs then do without), never an exception."""
    path = os.path.join(scratch, "btf")
    write(path, blob)
    assert isinstance(btf.task_offsets(path), dict)


# --- a whole recorded tree with some files replaced by garbage --------------------------------------------------------

def tree_files(name: str) -> list[str]:
    base = os.path.join(DATA, name)
    return sorted(os.path.relpath(os.path.join(d, f), base) for d, _, files in os.walk(base) for f in files)


TREES = ("hybrid-k8s-cgroupfs", "v1-k8s-cgroupfs", "v2-k8s-systemd")
FILES = {name: tree_files(name) for name in TREES}


@st.composite
def damaged_tree(draw: st.DrawFn) -> tuple[str, dict[str, bytes], list[str]]:
    """A tree name, files to overwrite with garbage, and files to delete."""
    name = draw(st.sampled_from(TREES))
    files = FILES[name]
    garbage = draw(st.dictionaries(st.sampled_from(files), file_content(), min_size=1, max_size=25))
    gone = draw(st.lists(st.sampled_from(files), max_size=5))
    return name, garbage, gone


@given(damaged_tree())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_collector_reads_a_damaged_recorded_tree(scratch: str, case: tuple[str, dict[str, bytes], list[str]]) -> None:
    name, garbage, gone = case
    dest = os.path.join(scratch, "tree")
    shutil.rmtree(dest, ignore_errors=True)
    cgroup_root, proc_root = copy_tree(name, dest)
    for rel, data in garbage.items():
        write(os.path.join(dest, rel), data)
    for rel in gone:
        if os.path.exists(os.path.join(dest, rel)):
            os.remove(os.path.join(dest, rel))
    config = CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False, ebpf=False,
                             idle_reread_s=0)
    if any(os.path.dirname(rel).count("/") <= 2 and rel.endswith(("/cgroup.controllers", "/cgroup.procs"))
           for rel in gone):
        try:  # a hierarchy root lost the file that marks it: maybe no cgroupfs at all, said in one sentence
            Collector(config)
        except NoCgroupsError as e:
            assert "\n" not in str(e) and str(e)[-1] in ".?" and "Traceback" not in str(e)
            return
    collector = Collector(config)
    first = collector.collect()
    second = collector.collect()
    assert set(second.rows) == set(first.rows)
    for row in second.rows.values():
        any_result(row)
    # Garbage is "no data" and a deleted file is absent: neither is a file that could not be read.
    assert [n for n in second.notices if n.kind is NoticeKind.UNREADABLE_FILE] == []


def test_collector_reads_a_tree_with_non_utf8_cgroup_names(tmp_path: object) -> None:
    """A cgroup directory whose name is not UTF-8 is read and named like any other."""
    cgroup_root, proc_root = copy_tree("v2-k8s-systemd", os.path.join(str(tmp_path), "tree"))
    odd = os.path.join(os.fsencode(cgroup_root), b"bad\xff\xfename\x1b[2J")
    os.mkdir(odd)
    with open(os.path.join(odd, b"cpu.stat"), "wb") as f:
        f.write(b"usage_usec 5\nuser_usec 3\nsystem_usec 2\n")
    collector = Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False, ebpf=False))
    collector.collect()
    frame = collector.collect()
    path = os.fsdecode(b"/bad\xff\xfename\x1b[2J")
    assert path in frame.rows
    assert frame.rows[path].sample.cpu_usage_ns == 5000


def test_layout_and_reader_of_an_empty_or_odd_root(tmp_path: object) -> None:
    """A root with cgroup.controllers but nothing else still reads as one cgroup with no data."""
    root = str(tmp_path)
    write(os.path.join(root, "cgroup.controllers"), b"\xff garbage")
    reader = CgroupReader(detect_layout(root))
    samples = reader.read_all()
    assert list(samples) == ["/"] and samples["/"].cpu_usage_ns is None
