"""Packs the raw counters of one refresh into a compact frame and back, losslessly.

Every cgroup becomes a fixed-width row of signed 64-bit slots (``SLOTS``): the integer fields of its
CgroupSample, its IO totals, its PSI figures, its network totals and its eBPF counters. ``None`` is the slot value
``NO_DATA``. A frame's rows are zstd-compressed with the same cgroups' rows of the previous frame as the
dictionary (raw content), so an unchanged counter, or one whose high bytes did not change, is a short match
into the previous frame. That runs in C: the Python work per frame is one loop over cgroups, not over values.
(Measured on a synthetic node of 271 cgroups: 0.28 bytes per value and 0.1 ms to decode a frame, where XOR
against the previous frame, byte planes and zstd gave 0.33 bytes and 1.2 ms, the XOR being done on big
integers.)
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import zstandard

from ..model.ebpf import RUNQ_SLOTS, EbpfCgroupCounters
from ..model.sample import CgroupSample, IoCounters, Pressure

NO_DATA = -(2**63)
SLOT_BYTES = 8
# CgroupSample fields that are not integer slots: the path and inode key the row, the rest is kept elsewhere.
_NOT_SLOTS = {"path", "inode", "cpuset_cpus", "io_by_device", "io_total",
              "pressure_cpu", "pressure_memory", "pressure_io"}
SAMPLE_SLOTS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(CgroupSample) if f.name not in _NOT_SLOTS)
IO_SLOTS = ("io_read_bytes", "io_write_bytes", "io_read_ops", "io_write_ops")
PSI_RESOURCES = ("cpu", "memory", "io")
PSI_SLOTS = tuple(f"psi_{r}_{k}" for r in PSI_RESOURCES
                  for k in ("some_avg10_centi", "some_total_ns", "full_avg10_centi", "full_total_ns"))
NET_SLOTS = ("net_rx_bytes", "net_tx_bytes")
EBPF_SLOTS = ("ebpf_cgroup_id", *(f"ebpf_runq_bucket_{i}" for i in range(RUNQ_SLOTS)), "ebpf_runq_sum_ns",
              "ebpf_runq_count", "ebpf_runq_max_ns", "ebpf_nvcsw", "ebpf_nivcsw", "ebpf_preempted_by_others",
              "ebpf_preempted_by_host", "ebpf_forks", "ebpf_execs", "ebpf_exits", "ebpf_oom_kills")
# Bit i set: the i-th of (cpu, memory, io) pressure records is present (a record may hold only Nones).
PRESENCE_SLOT = "pressure_present"
SLOTS: tuple[str, ...] = (*SAMPLE_SLOTS, *IO_SLOTS, *PSI_SLOTS, *NET_SLOTS, *EBPF_SLOTS, PRESENCE_SLOT)
WIDTH = len(SLOTS)
ROW_BYTES = WIDTH * SLOT_BYTES
_ROW = struct.Struct(f"<{WIDTH}q")


class CorruptFrame(ValueError):
    """A frame that does not decode: damaged bytes, or a base that does not match."""


@dataclass(frozen=True, slots=True)
class CgroupCounters:
    """Everything recorded for one cgroup in one frame: the raw sample, network totals and eBPF counters."""

    sample: CgroupSample
    net_rx_bytes: int | None = None
    net_tx_bytes: int | None = None
    ebpf: EbpfCgroupCounters | None = None


def _slot(value: int | None) -> int:
    return NO_DATA if value is None else value


def _value(slot: int) -> int | None:
    return None if slot == NO_DATA else slot


def _seconds_to_ns(value: float) -> int:
    return round(value * 1e9)


def row_values(counters: CgroupCounters) -> list[int]:
    """The slots of one cgroup, in ``SLOTS`` order."""
    s = counters.sample
    values = [_slot(getattr(s, name)) for name in SAMPLE_SLOTS]
    io = s.io_total
    values += [NO_DATA] * 4 if io is None else [io.read_bytes, io.write_bytes, io.read_ops, io.write_ops]
    for pressure in (s.pressure_cpu, s.pressure_memory, s.pressure_io):
        if pressure is None:
            values += [NO_DATA] * 4
        else:
            values += [_centi(pressure.some_avg10), _slot(pressure.some_total_ns),
                       _centi(pressure.full_avg10), _slot(pressure.full_total_ns)]
    values += [_slot(counters.net_rx_bytes), _slot(counters.net_tx_bytes)]
    e = counters.ebpf
    if e is None:
        values += [NO_DATA] * len(EBPF_SLOTS)
    else:
        values += [e.cgroup_id, *e.runq_buckets, _seconds_to_ns(e.runq_sum_seconds), e.runq_count,
                   _seconds_to_ns(e.runq_max_seconds), e.nvcsw, e.nivcsw, e.preempted_by_others,
                   e.preempted_by_host, e.forks, e.execs, e.exits, e.oom_kills]
    values.append((s.pressure_cpu is not None) | (s.pressure_memory is not None) << 1
                  | (s.pressure_io is not None) << 2)
    return values


def _centi(value: float | None) -> int:
    return NO_DATA if value is None else round(value * 100)


def _from_centi(slot: int) -> float | None:
    return None if slot == NO_DATA else slot / 100


def counters_from_values(path: str, inode: int, values: Sequence[int], cpuset_cpus: str | None) -> CgroupCounters:
    """The inverse of ``row_values``."""
    n = len(SAMPLE_SLOTS)
    kwargs = {name: _value(values[i]) for i, name in enumerate(SAMPLE_SLOTS)}
    io = values[n:n + 4]
    io_total = None if io[0] == NO_DATA else IoCounters(*io)
    p = n + 4
    pressures: list[Pressure | None] = []
    present = values[-1]
    for i, _ in enumerate(PSI_RESOURCES):
        some_avg, some_total, full_avg, full_total = values[p:p + 4]
        p += 4
        if not present & (1 << i):
            pressures.append(None)
        else:
            pressures.append(Pressure(_from_centi(some_avg), _value(some_total), _from_centi(full_avg),
                                      _value(full_total)))
    sample = CgroupSample(path=path, inode=inode, cpuset_cpus=cpuset_cpus, io_total=io_total,
                          pressure_cpu=pressures[0], pressure_memory=pressures[1], pressure_io=pressures[2],
                          **kwargs)  # type: ignore[arg-type]
    rx, tx = _value(values[p]), _value(values[p + 1])
    e = values[p + 2:-1]
    ebpf = None
    if e[0] != NO_DATA:
        b = 1 + RUNQ_SLOTS
        ebpf = EbpfCgroupCounters(
            cgroup_id=e[0], runq_buckets=tuple(e[1:b]), runq_sum_seconds=e[b] / 1e9, runq_count=e[b + 1],
            runq_max_seconds=e[b + 2] / 1e9, nvcsw=e[b + 3], nivcsw=e[b + 4], preempted_by_others=e[b + 5],
            preempted_by_host=e[b + 6], forks=e[b + 7], execs=e[b + 8], exits=e[b + 9], oom_kills=e[b + 10])
    return CgroupCounters(sample=sample, net_rx_bytes=rx, net_tx_bytes=tx, ebpf=ebpf)


def pack_row(counters: CgroupCounters) -> bytes:
    """One cgroup's slots as ``ROW_BYTES`` little-endian bytes."""
    return _ROW.pack(*row_values(counters))


def unpack_row(data: bytes) -> tuple[int, ...]:
    return _ROW.unpack(data)


class SlotMap:
    """Rows written with ``written`` slots (a store's META) read as this version's ``SLOTS``: matched by name, a slot
    this version has and the writer did not is no data, one only the writer had is left out."""

    def __init__(self, written: Sequence[str]) -> None:
        self.same = tuple(written) == SLOTS
        self.row_bytes = len(written) * SLOT_BYTES
        self._struct = struct.Struct(f"<{len(written)}q")
        position = {name: i for i, name in enumerate(written)}
        self._take = [position.get(name, -1) for name in SLOTS]

    def values(self, data: bytes) -> Sequence[int]:
        """One written row as values in ``SLOTS`` order."""
        if self.same:
            return _ROW.unpack(data)
        written = self._struct.unpack(data)
        return [written[i] if i >= 0 else (0 if name == PRESENCE_SLOT else NO_DATA)
                for i, name in zip(self._take, SLOTS)]


CURRENT_SLOTS = SlotMap(SLOTS)


class FrameCodec:
    """Encodes the row blocks of consecutive frames against each other; one instance per direction and stream.

    ``encode(keys, block)`` takes the frame's cgroup keys and its rows (``pack_row`` of each, joined) in the same
    order and returns the compressed body; ``decode(keys, body)`` needs the same keys and the same previous frame
    and returns the block. ``reset()`` forgets the previous frame (a key frame follows).
    """

    def __init__(self, level: int = 1, row_bytes: int = ROW_BYTES) -> None:
        self._level = level
        self._row = row_bytes  # a reader of a store written with other slots gives their width
        self._compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._decompressor = zstandard.ZstdDecompressor()
        self._keys: Sequence[object] = ()
        self._block = b""

    def reset(self) -> None:
        self._keys, self._block = (), b""

    @property
    def row_bytes(self) -> int:
        return self._row

    def _base(self, keys: Sequence[object]) -> bytes:
        """The previous frame's rows in the order of ``keys`` (zeros for a cgroup it did not have)."""
        if keys is self._keys or keys == self._keys:
            return self._block
        row = self._row
        if not self._keys:
            return bytes(len(keys) * row)
        index = {k: i * row for i, k in enumerate(self._keys)}
        block, zero = self._block, bytes(row)
        return b"".join([block[i:i + row] if (i := index.get(k, -1)) >= 0 else zero for k in keys])

    def _dictionary(self, keys: Sequence[object]) -> zstandard.ZstdCompressionDict | None:
        base = self._base(keys)
        return zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT) if base else None

    def encode(self, keys: Sequence[object], block: bytes) -> bytes:
        dictionary = self._dictionary(keys) if self._keys else None
        compressor = zstandard.ZstdCompressor(level=self._level, dict_data=dictionary, write_checksum=True) \
            if dictionary else self._compressor
        body = compressor.compress(block)
        self._keys, self._block = keys, block
        return body

    def decode(self, keys: Sequence[object], body: bytes) -> bytes:
        size = len(keys) * self._row
        dictionary = self._dictionary(keys) if self._keys else None
        decompressor = zstandard.ZstdDecompressor(dict_data=dictionary) if dictionary else self._decompressor
        try:
            block = decompressor.decompress(body, max_output_size=size) if size else b""
        except zstandard.ZstdError as e:
            raise CorruptFrame(f"frame does not decompress: {e}") from None
        if len(block) != size:
            raise CorruptFrame(f"frame holds {len(block)} bytes, expected {size}")
        self._keys, self._block = keys, block
        return block
