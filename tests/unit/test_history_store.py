"""The flight recorder's store: frames read back exactly, damage and truncation skipped, never a traceback."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import tempfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctop.history.codec import NO_DATA, SLOTS, CgroupCounters, FrameCodec, pack_row
from ctop.history.store import (
    FRAME,
    IDENTITY,
    KEYFRAME_EVERY,
    LAYOUT,
    META,
    Attributes,
    Event,
    FrameRecord,
    StoreError,
    StoreReader,
    StoreWriter,
    encode_record,
    list_segments,
    scan,
)
from ctop.model.ebpf import RUNQ_SLOTS, EbpfCgroupCounters
from ctop.model.frame import Identity
from ctop.model.sample import CgroupSample, HostSample, IoCounters, Pressure

T0 = 1_800_000_000.0  # a segment boundary (divisible by 3600)
counter = st.one_of(st.none(), st.integers(min_value=0, max_value=2**62))


@st.composite
def samples(draw: st.DrawFn, path: str, inode: int) -> CgroupCounters:
    avg10 = st.one_of(st.none(), st.integers(0, 10000).map(lambda v: v / 100))
    pressure = st.one_of(st.none(), st.builds(Pressure, avg10, counter, avg10, counter))
    sample = CgroupSample(
        path=path, inode=inode, cpu_usage_ns=draw(counter), cpu_quota_us=draw(st.one_of(counter, st.just(-1))),
        cpu_period_us=draw(counter), cpuset_cpus=draw(st.one_of(st.none(), st.sampled_from(["0", "0-1", ""]))),
        memory_usage_bytes=draw(counter), memory_limit_bytes=draw(st.one_of(counter, st.just(-1))),
        memory_oom_kills=draw(counter), pids_current=draw(counter), threads=draw(counter),
        io_total=draw(st.one_of(st.none(), st.builds(IoCounters, *[st.integers(0, 2**62)] * 4))),
        pressure_cpu=draw(pressure), pressure_memory=draw(pressure), pressure_io=draw(pressure))
    ebpf = draw(st.one_of(st.none(), st.builds(
        EbpfCgroupCounters, cgroup_id=st.integers(1, 2**40),
        runq_buckets=st.tuples(*[st.integers(0, 2**40)] * RUNQ_SLOTS),
        runq_sum_seconds=st.integers(0, 2**50).map(lambda ns: ns / 1e9), runq_count=st.integers(0, 2**40),
        nvcsw=st.integers(0, 2**40), oom_kills=st.integers(0, 100))))
    return CgroupCounters(sample=sample, net_rx_bytes=draw(counter), net_tx_bytes=draw(counter), ebpf=ebpf)


@st.composite
def records(draw: st.DrawFn) -> list[FrameRecord]:
    """A run of frames over a changing set of cgroups (some appear, some vanish, some are recreated)."""
    paths = [f"/docker/c{i}" for i in range(draw(st.integers(0, 5)))]
    out = []
    t = T0 + draw(st.integers(0, 3000))
    for _ in range(draw(st.integers(1, 8))):
        present = [p for p in paths if draw(st.booleans())]
        cgroups = {p: draw(samples(p, 100 + draw(st.integers(0, 2)))) for p in present}
        attributes = {p: Attributes(Identity(kind="container", runtime="docker", name=p[-2:],
                                             labels={"k": draw(st.sampled_from(["a", "b"]))}),
                                    cgroups[p].sample.cpuset_cpus) for p in present}
        host = HostSample(monotonic_s=t - T0 + 5.0, wall_time_s=t, cpu_time_ns=draw(counter), online_cpus=2,
                          memory_total_bytes=2**34)
        out.append(FrameRecord(host=host, mode="hybrid", cgroups=cgroups, attributes=attributes,
                               ebpf_monotonic_s=draw(st.one_of(st.none(), st.just(t - T0 + 4.5)))))
        t += draw(st.sampled_from([1.0, 1.0, 0.5, 700.0]))  # 700 s steps cross segment boundaries
    return out


def write_all(directory: str, frames: list[FrameRecord], **options: float) -> None:
    writer = StoreWriter(directory, **options)  # type: ignore[arg-type]
    try:
        for record in frames:
            assert writer.append(record), writer.last_error
    finally:
        writer.close()


def assert_same(recorded: FrameRecord, read: object) -> None:
    assert read.host == recorded.host  # type: ignore[attr-defined]
    assert read.cgroups == dict(recorded.cgroups)  # type: ignore[attr-defined]
    assert read.attributes == dict(recorded.attributes)  # type: ignore[attr-defined]
    assert read.ebpf_monotonic_s == recorded.ebpf_monotonic_s  # type: ignore[attr-defined]
    assert read.mode == recorded.mode  # type: ignore[attr-defined]


def test_codec_round_trip_with_changing_layout() -> None:
    rng = random.Random(3)
    enc, dec = FrameCodec(), FrameCodec()
    for step in range(50):
        keys = [(f"/c{i}", 1) for i in range(rng.randrange(6)) if rng.random() < 0.8]
        rows = [pack_row(CgroupCounters(CgroupSample(path=p, inode=1, cpu_usage_ns=step * 10**7 + rng.randrange(9))))
                for p, _ in keys]
        block = b"".join(rows)
        assert dec.decode(keys, enc.encode(keys, block)) == block


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=records())
def test_frames_read_back_exactly(frames: list[FrameRecord]) -> None:
    directory = tempfile.mkdtemp(prefix="ctop-store-test-")
    try:
        write_all(directory, frames)
        reader = StoreReader(directory)
        got = list(reader.frames(0, 2**40))
        assert len(got) == len(frames)
        for recorded, read in zip(frames, got):
            assert_same(recorded, read)
        middle = frames[len(frames) // 2]
        at = reader.frame_at(middle.host.wall_time_s + 0.25)
        assert at is not None and at.host == middle.host  # frames are at least 0.5 s apart
        assert reader.frame_at(frames[0].host.wall_time_s - 1) is None
        assert reader.problems == []
        reader.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def steady_frames(n: int, start: float = T0) -> list[FrameRecord]:
    out = []
    for i in range(n):
        cgroups = {f"/docker/c{j}": CgroupCounters(CgroupSample(path=f"/docker/c{j}", inode=7 + j,
                                                                cpu_usage_ns=i * 10**8 + j, threads=j))
                   for j in range(3)}
        out.append(FrameRecord(HostSample(monotonic_s=10.0 + i, wall_time_s=start + i, cpu_time_ns=i * 2 * 10**9,
                                          online_cpus=2, memory_total_bytes=2**34),
                               "v2", cgroups, {p: Attributes(Identity(name=p)) for p in cgroups}))
    return out


def test_key_frames_bound_decoding_and_any_instant_opens(store_dir: str) -> None:
    frames = steady_frames(3 * KEYFRAME_EVERY + 7)
    write_all(store_dir, frames)
    reader = StoreReader(store_dir)
    for i in (0, KEYFRAME_EVERY - 1, KEYFRAME_EVERY, 2 * KEYFRAME_EVERY + 3, len(frames) - 1):
        at = reader.frame_at(frames[i].host.wall_time_s)
        assert at is not None
        assert_same(frames[i], at)
    assert reader.time_range() == (frames[0].host.wall_time_s, frames[-1].host.wall_time_s)
    assert reader.neighbours(frames[5].host.wall_time_s) == (frames[4].host.wall_time_s,
                                                             frames[6].host.wall_time_s)


def damaged_reads(directory: str, frames: list[FrameRecord]) -> int:
    """Read a damaged store: no exception, and every frame that comes back is one that was recorded."""
    by_time = {f.host.wall_time_s: f for f in frames}
    reader = StoreReader(directory)
    got = list(reader.frames(0, 2**40))
    for read in got:
        assert read.host.wall_time_s in by_time
        recorded = by_time[read.host.wall_time_s]
        assert read.host == recorded.host and read.cgroups == dict(recorded.cgroups)
        for path, attributes in read.attributes.items():  # a lost identity is said, never made up
            assert attributes == recorded.attributes[path] or (attributes == Attributes() and reader.problems)
    reader.frame_at(frames[-1].host.wall_time_s)
    reader.close()
    return len(got)


@settings(max_examples=40, deadline=None)
@given(cut=st.floats(0, 1))
def test_truncation_at_any_byte_loses_only_the_tail(cut: float) -> None:
    directory = tempfile.mkdtemp(prefix="ctop-store-test-")
    try:
        frames = steady_frames(2 * KEYFRAME_EVERY)
        write_all(directory, frames)
        [(_, path)] = list_segments(directory)
        with open(path, "rb") as f:
            data = f.read()
        at = int(len(data) * cut)
        whole = sum(1 for e in scan(data)[0] if e.kind == FRAME and e.offset + e.length <= at)
        with open(path, "r+b") as f:
            f.truncate(at)
        assert damaged_reads(directory, frames) == whole  # every frame before the cut, in order
        reader = StoreReader(directory)
        list(reader.frames(0, 2**40))
        cut_inside_a_record = at not in {0, len(data)} | {e.offset + e.length for e in scan(data)[0]}
        assert len(reader.problems) == int(cut_inside_a_record)  # said once, and only when something was lost
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@settings(max_examples=40, deadline=None)
@given(offsets=st.lists(st.floats(0, 1), min_size=1, max_size=5), value=st.integers(0, 255))
def test_corrupted_bytes_never_give_wrong_frames(offsets: list[float], value: int) -> None:
    directory = tempfile.mkdtemp(prefix="ctop-store-test-")
    try:
        frames = steady_frames(2 * KEYFRAME_EVERY)
        write_all(directory, frames)
        [(_, path)] = list_segments(directory)
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            for o in offsets:
                f.seek(min(size - 1, int(size * o)))
                f.write(bytes([value]))
        damaged_reads(directory, frames)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_damaged_frame_skips_to_the_next_key_frame(store_dir: str) -> None:
    frames = steady_frames(2 * KEYFRAME_EVERY)
    write_all(store_dir, frames)
    [(_, path)] = list_segments(store_dir)
    with open(path, "rb") as f:
        entries = [e for e in scan(f.read())[0] if e.kind == FRAME]
    last_byte = entries[10].offset + entries[10].length - 1
    with open(path, "r+b") as f:  # one byte of frame 10's body
        f.seek(last_byte)
        flipped = bytes([f.read(1)[0] ^ 0xFF])
        f.seek(last_byte)
        f.write(flipped)
    reader = StoreReader(store_dir)
    got = [f.host.wall_time_s for f in reader.frames(0, 2**40)]
    expected = [f.host.wall_time_s for i, f in enumerate(frames) if not 10 <= i < KEYFRAME_EVERY]
    assert got == expected
    assert len(reader.problems) == 1 and "damaged" in reader.problems[0]


def test_a_lost_frame_is_never_decoded_against_the_wrong_base(store_dir: str) -> None:
    """Frame 10 cut out whole (its neighbours intact): frame 11 must not be decoded against frame 9."""
    frames = steady_frames(KEYFRAME_EVERY)
    write_all(store_dir, frames)
    [(_, path)] = list_segments(store_dir)
    with open(path, "rb") as f:
        data = f.read()
    entries = [e for e in scan(data)[0] if e.kind == FRAME]
    start = entries[9].offset + entries[9].length  # frame 10's record begins where frame 9 ends
    with open(path, "wb") as f:
        f.write(data[:start] + data[entries[10].offset + entries[10].length:])
    reader = StoreReader(store_dir)
    got = [f.host.wall_time_s for f in reader.frames(0, 2**40)]
    assert got == [f.host.wall_time_s for f in frames[:10]]
    assert len(reader.problems) == 1


def test_retention_by_age_and_size_deletes_whole_segments(store_dir: str) -> None:
    hours = [T0 + h * 3600 for h in range(6)]
    for start in hours:
        write_all(store_dir, steady_frames(3, start), retain_s=3 * 3600)
    starts = [s for s, _ in list_segments(store_dir)]
    assert starts == [int(h) for h in hours[-4:]]  # the current hour and those ending within 3 h of it
    write_all(store_dir, steady_frames(3, T0 + 6 * 3600), max_bytes=1)
    assert [s for s, _ in list_segments(store_dir)] == [int(T0 + 6 * 3600)]  # never the segment being written


def test_one_writer_per_store(store_dir: str) -> None:
    writer = StoreWriter(store_dir)
    try:
        with pytest.raises(StoreError, match="already recording"):
            StoreWriter(store_dir)
    finally:
        writer.close()
    StoreWriter(store_dir).close()


def test_reading_while_writing(store_dir: str) -> None:
    frames = steady_frames(KEYFRAME_EVERY + 5)
    writer = StoreWriter(store_dir)
    reader = StoreReader(store_dir)
    try:
        for i, record in enumerate(frames):
            assert writer.append(record)
            if i % 20 == 0:
                latest = reader.frame_at(2**40)
                assert latest is not None
                assert_same(record, latest)
    finally:
        writer.close()
        reader.close()


def test_newer_format_gets_one_sentence(store_dir: str) -> None:
    write_all(store_dir, steady_frames(2))
    [(_, path)] = list_segments(store_dir)
    with open(path, "ab") as f:
        f.write(encode_record(META, T0 + 5, b'{"format_version": 99, "mode": "v2"}'))
    with pytest.raises(StoreError, match="newer ctop"):
        list(StoreReader(store_dir).frames(0, 2**40))


def test_events_round_trip(store_dir: str) -> None:
    writer = StoreWriter(store_dir)
    try:
        assert writer.add_event(Event(T0 + 5, "oom_kill", "web", {"pid": 42, "comm": "leak"}))
        assert writer.add_event(Event(T0 + 9, "restart", "web", {"restarts": 1}))
    finally:
        writer.close()
    events = list(StoreReader(store_dir).events(T0, T0 + 60))
    assert [(e.type, e.workload, dict(e.figures)) for e in events] == [
        ("oom_kill", "web", {"pid": 42, "comm": "leak"}), ("restart", "web", {"restarts": 1})]


def test_missing_store_says_how_to_start_one(store_dir: str) -> None:
    with pytest.raises(StoreError, match="ctop record"):
        StoreReader(os.path.join(store_dir, "nope"))


def test_a_store_written_with_other_slots_is_read_by_name(store_dir: str) -> None:
    """A store from another version: a slot it lacks is no data, a slot it has and this version does not is left
    out, and the rest land where they belong."""
    written = [s for s in SLOTS if s not in ("memory_usage_bytes", "pids_current")] + ["some_future_counter"]
    row = {name: NO_DATA for name in written}
    row.update(cpu_usage_ns=123_000, threads=7, some_future_counter=99, pressure_present=0,
               ebpf_cgroup_id=NO_DATA)
    block = struct.pack(f"<{len(written)}q", *[row[n] for n in written])
    keys = [("/docker/old", 42)]
    body = FrameCodec(row_bytes=len(written) * 8).encode(keys, block)
    header = struct.pack("<IIdqqiqqI", 0, 1, T0 + 1, 5 * 10**9, 10**10, 2, 2**34, -1, 1)
    records = [
        encode_record(META, T0 + 1, json.dumps({"format_version": 1, "slots": written, "mode": "v2"}).encode()),
        encode_record(LAYOUT, T0 + 1, struct.pack("<I", 1) + zlib.compress(json.dumps(keys).encode())),
        encode_record(IDENTITY, T0 + 1, json.dumps(["/docker/old", 42, {"identity": {"name": "old"}}]).encode()),
        encode_record(FRAME, T0 + 1, header + body, flags=1),
    ]
    with open(os.path.join(store_dir, f"seg-{int(T0)}.ctr"), "wb") as f:
        f.write(b"".join(records))
    reader = StoreReader(store_dir)
    [frame] = list(reader.frames(0, 2**40))
    sample = frame.cgroups["/docker/old"].sample
    assert sample.cpu_usage_ns == 123_000 and sample.threads == 7
    assert sample.memory_usage_bytes is None and sample.pids_current is None and sample.pressure_cpu is None
    assert frame.attributes["/docker/old"].identity.name == "old" and frame.mode == "v2" and reader.problems == []
