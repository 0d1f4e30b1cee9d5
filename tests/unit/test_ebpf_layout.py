"""The Python side of the BPF maps agrees with bpf/ctop.h (parsed here, no kernel): constants, member order, sizes."""

from __future__ import annotations

import ctypes
import os
import re
import typing

import pytest

from ctop.ebpf import bcc_types, layout, loader
from ctop.ebpf.layout import LayoutError, Member, ctypes_members, parse_header
from ctop.ebpf.maps import CounterColumns, Slots, slot_culprits, sum_counters
from ctop.ebpf.threads import ThreadMap
from ctop.model.ebpf import RUNQ_BUCKET_UPPER_SECONDS, RUNQ_GEOMETRY, RUNQ_SLOTS, EbpfCgroupCounters

BPF_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "bpf")
HEADER_PATH = os.path.join(BPF_DIR, "ctop.h")
CTYPES = {8: ctypes.c_uint64, 4: ctypes.c_uint32, 2: ctypes.c_uint16}


def header_text() -> str:
    with open(HEADER_PATH) as f:
        return f.read()


def struct_like_bcc(name: str, members: tuple[Member, ...]) -> type[ctypes.Structure]:
    """A ctypes record laid out from the header's members, as bcc builds a table's Leaf from the compiled program."""
    fields: list[tuple[str, type]] = []
    for m in members:
        ctype: type = ctypes.c_char if m.size == 1 else CTYPES[m.size]
        fields.append((m.name, ctype * m.count if m.count > 1 else ctype))
    return type(name, (ctypes.Structure,), {"_fields_": fields})


def test_the_installed_header_is_the_checkout_header() -> None:
    assert os.path.samefile(layout.header_path(), HEADER_PATH)


def test_run_queue_slots_agree_with_the_header() -> None:
    header = parse_header(header_text())
    assert header.defines["RUNQ_SLOTS"] == RUNQ_SLOTS == len(RUNQ_BUCKET_UPPER_SECONDS)
    hist = next(m for m in header.structs["cgroup_counters"] if m.name == "runq_hist")
    assert (hist.size, hist.count) == (4, RUNQ_SLOTS)


def test_every_counter_member_is_read_and_nothing_else() -> None:
    members = parse_header(header_text()).structs["cgroup_counters"]
    assert sorted(CounterColumns._fields[2:]) == sorted(m.name for m in members)
    columns = CounterColumns.of(struct_like_bcc("cgroup_counters", members))
    assert columns.width == sum(m.count for m in members)
    start = 0
    for m in members:  # each member starts where the ones before it end
        assert getattr(columns, m.name) == start, m.name
        start += m.count


def test_every_counter_member_reaches_its_model_attribute() -> None:
    """Each member gets a distinct value; a member read from the wrong column would show another member's value."""
    members = parse_header(header_text()).structs["cgroup_counters"]
    record = struct_like_bcc("cgroup_counters", members)
    columns = CounterColumns.of(record)
    copy = record()
    values = {}
    arrays = {}
    for i, m in enumerate(members):
        if m.count > 1:
            arrays[m.name] = [1000 * (i + 1) + s for s in range(m.count)]
            getattr(copy, m.name)[:] = arrays[m.name]
        else:
            values[m.name] = 1000 * (i + 1) * 1_000_000
            setattr(copy, m.name, values[m.name])
    got = sum_counters(bytes(copy), columns, columns.unpacker(), 7)
    assert got.runq_buckets == tuple(arrays["runq_hist"])
    assert slot_culprits(bytes(copy), columns, columns.unpacker(), 7) == [
        (7, culprit, count) for culprit, count in zip(arrays["culprit_id"], arrays["culprit_count"])]
    assert got.runq_sum_seconds == values["runq_sum_ns"] / 1e9
    assert got.runq_max_seconds == values["runq_max_ns"] / 1e9
    same_name = [f for f in values if f in EbpfCgroupCounters.__dataclass_fields__]
    assert len(same_name) == len(values) - 2  # all but the two nanosecond members keep their C name
    for name in same_name:
        assert getattr(got, name) == values[name], name


def test_a_header_with_another_histogram_length_is_refused() -> None:
    text = re.sub(r"#define RUNQ_OCTAVES \d+", "#define RUNQ_OCTAVES 26", header_text())  # 4 slots fewer
    members = parse_header(text).structs["cgroup_counters"]
    with pytest.raises(LayoutError, match="run-queue slots"):
        CounterColumns.of(struct_like_bcc("cgroup_counters", members))


def test_a_counter_member_of_another_size_is_refused() -> None:
    text = header_text().replace("    u64 nivcsw;", "    u32 nivcsw;")
    members = parse_header(text).structs["cgroup_counters"]
    with pytest.raises(LayoutError, match="nivcsw"):
        CounterColumns.of(struct_like_bcc("cgroup_counters", members))


def test_a_histogram_of_u64_slots_is_refused() -> None:
    text = header_text().replace("    u32 runq_hist[RUNQ_SLOTS];", "    u64 runq_hist[RUNQ_SLOTS];")
    members = parse_header(text).structs["cgroup_counters"]
    with pytest.raises(LayoutError, match="8-byte run-queue slots"):
        CounterColumns.of(struct_like_bcc("cgroup_counters", members))


def test_a_reordered_header_moves_the_columns() -> None:
    text = header_text().replace("    u64 forks;\n    u64 execs;", "    u64 execs;\n    u64 forks;")
    members = parse_header(text).structs["cgroup_counters"]
    columns = CounterColumns.of(struct_like_bcc("cgroup_counters", members))
    assert columns.execs == columns.forks - 1


def test_culprit_slots_of_two_copies_are_read_per_cpu_and_free_ones_left_out() -> None:
    members = parse_header(header_text()).structs["cgroup_counters"]
    record = struct_like_bcc("cgroup_counters", members)
    columns = CounterColumns.of(record)
    cpu0, cpu1 = record(), record()
    cpu0.culprit_id[0], cpu0.culprit_count[0] = 55, 9   # slot 1 of cpu0 free
    cpu1.culprit_id[0], cpu1.culprit_count[0] = 66, 4
    cpu1.culprit_id[1], cpu1.culprit_count[1] = 55, 3
    assert slot_culprits(bytes(cpu0) + bytes(cpu1), columns, columns.unpacker(), 8) == [
        (8, 55, 9), (8, 66, 4), (8, 55, 3)]


def test_culprit_slots_of_unequal_lengths_are_refused() -> None:
    text = header_text().replace("u64 culprit_count[CULPRIT_SLOTS];", "u64 culprit_count[3];")
    members = parse_header(text).structs["cgroup_counters"]
    with pytest.raises(LayoutError, match="culprit_count"):
        CounterColumns.of(struct_like_bcc("cgroup_counters", members))


def test_slots_come_from_the_header() -> None:
    header = parse_header(header_text())
    slots = Slots.of(header)
    counters = [v for k, v in header.defines.items() if k.startswith("C_")]
    seqs = [v for k, v in header.defines.items() if k.startswith("SEQ_")]
    assert sorted(counters) == list(range(slots.n_counters))
    assert sorted(seqs) == list(range(header.defines["N_SEQS"]))
    with pytest.raises(LayoutError, match="SEQ_OOM"):
        Slots.of(parse_header(header_text().replace("#define SEQ_OOM 1", "")))


@pytest.mark.parametrize(("protocol", "struct"), [
    (bcc_types.ExecRecord, "exec_record"), (bcc_types.OomRecord, "oom_record"),
    (bcc_types.CgroupRecord, "cgroup_record"),
])
def test_log_records_read_only_members_the_header_has(protocol: type, struct: str) -> None:
    members = {m.name: m for m in parse_header(header_text()).structs[struct]}
    hints = typing.get_type_hints(protocol)
    assert hints and set(hints) <= set(members)
    for name, hint in hints.items():
        assert (hint is bytes) == (members[name].size == 1 and members[name].count > 1), name


def test_ctypes_members_match_the_header_members() -> None:
    for name, members in parse_header(header_text()).structs.items():
        assert ctypes_members(struct_like_bcc(name, members)) == members


def test_every_option_flag_is_one_the_programs_know() -> None:
    sources = header_text() + loader.program_text()
    tracking = loader.Tracking(hierarchy_id=0, root="/sys/fs/cgroup", root_id=1, v2=True)
    offsets = {"RUN_DELAY_OFFSET": 1, "REAL_PARENT_OFFSET": 2, "TGID_OFFSET": 3}
    for threads in (ThreadMap(4096), ThreadMap(1 << 18, 1 << 15)):
        flags = loader.build_cflags(tracking, loader.LoadOptions(), offsets, threads, task_btf=True)
        assert "-DCURRENT_TASK_BTF" in flags
        names = [f[2:].split("=", 1)[0] for f in flags if f.startswith("-D")]
        assert ("THREADS_TAGGED" in names) is threads.tagged
        assert f"-DTHREADS_MAX={threads.max_entries}" in flags
        for name in names:
            assert re.search(rf"\b{name}\b", sources), name


def test_unparseable_members_are_named() -> None:
    with pytest.raises(LayoutError, match="float x"):
        parse_header("struct s {\n    float x;\n};\n")
    with pytest.raises(LayoutError, match="NOPE"):
        parse_header("struct s {\n    u64 x[NOPE];\n};\n")


def test_run_queue_bounds_come_from_the_header_defines() -> None:
    geometry = layout.runq_geometry(parse_header(header_text()))
    assert geometry == RUNQ_GEOMETRY and geometry.slots == RUNQ_SLOTS == len(RUNQ_BUCKET_UPPER_SECONDS)
    finer = layout.runq_geometry(parse_header(re.sub(r"#define RUNQ_SUB_BITS \d+", "#define RUNQ_SUB_BITS 3",
                                                     header_text())))
    assert finer.slots == 2 * RUNQ_SLOTS and finer.bounds_ns()[8] == (2048, 2304)  # 8 per power of two


def test_a_header_without_run_queue_geometry_is_refused() -> None:
    with pytest.raises(LayoutError, match="RUNQ_SUB_BITS"):
        layout.runq_geometry(layout.Header({"RUNQ_UNIT_SHIFT": 8, "RUNQ_SLOTS": 112}, {}))
    with pytest.raises(LayoutError, match="whole number"):
        layout.runq_geometry(layout.Header({"RUNQ_UNIT_SHIFT": 8, "RUNQ_SUB_BITS": 2, "RUNQ_SLOTS": 30}, {}))


def test_the_culprit_key_is_two_cgroup_ids() -> None:
    members = parse_header(header_text()).structs["culprit_key"]
    assert [(m.name, m.size, m.count) for m in members] == [("victim", 8, 1), ("culprit", 8, 1)]


def test_kernel_versions_are_read_from_the_release() -> None:
    assert loader.kernel_version("6.18.44-fc-v657") == (6, 18) >= loader.TASK_BTF_KERNEL
    assert loader.kernel_version("5.4.0-150-generic") < loader.TASK_BTF_KERNEL
    assert loader.kernel_version("weird") == (0, 0)
