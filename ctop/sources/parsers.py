"""Pure parsers for the text formats of cgroup files. Bytes in, values out; malformed input gives no data."""

from __future__ import annotations

import re

from ..model.sample import UNLIMITED, IoCounters, Pressure
from .readfile import kernel_int

# v1 writes a huge page-aligned number for "no limit"; anything this large is treated as unlimited.
V1_UNLIMITED_THRESHOLD = 1 << 60


def parse_v1_limit(value: int | None) -> int | None:
    """memory.limit_in_bytes and similar: huge means UNLIMITED."""
    if value is None:
        return None
    return UNLIMITED if value >= V1_UNLIMITED_THRESHOLD or value < 0 else value


def parse_cpu_max(data: bytes | None) -> tuple[int | None, int | None]:
    """v2 ``cpu.max`` ("max 100000" or "20000 100000") as (quota_us or UNLIMITED, period_us)."""
    if not data:
        return None, None
    parts = data.split()
    if len(parts) != 2:
        return None, None
    try:
        period = kernel_int(parts[1])
        quota = UNLIMITED if parts[0] == b"max" else kernel_int(parts[0])
    except ValueError:
        return None, None
    return quota, period


def weight_to_shares(weight: int) -> int:
    """cgroup v2 cpu.weight (1..10000) to v1 cpu.shares (2..262144), the inverse of runc's conversion."""
    return 2 + ((weight - 1) * 262142) // 9999


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares to v2 cpu.weight, as runc converts them."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def parse_v1_blkio(data: bytes | None) -> tuple[dict[str, tuple[int, int]], bool]:
    """blkio.throttle.io_service_bytes / io_serviced: {"maj:min": (read, write)} and whether the file parsed."""
    result: dict[str, tuple[int, int]] = {}
    if data is None:
        return result, False
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) != 3:
            continue
        op = parts[1]
        if op != b"Read" and op != b"Write":
            continue
        try:
            value = kernel_int(parts[2])
        except ValueError:
            continue
        dev = parts[0].decode("ascii", "replace")
        read, write = result.get(dev, (0, 0))
        result[dev] = (read + value, write) if op == b"Read" else (read, write + value)
    return result, True


def combine_v1_io(
    bytes_by_dev: dict[str, tuple[int, int]], ops_by_dev: dict[str, tuple[int, int]]
) -> dict[str, IoCounters]:
    """Merge the bytes and operations files of v1 blkio into per-device counters."""
    devices: dict[str, IoCounters] = {}
    for dev in bytes_by_dev.keys() | ops_by_dev.keys():
        rb, wb = bytes_by_dev.get(dev, (0, 0))
        ro, wo = ops_by_dev.get(dev, (0, 0))
        devices[dev] = IoCounters(rb, wb, ro, wo)
    return devices


def parse_v2_io_stat(data: bytes | None) -> dict[str, IoCounters] | None:
    """v2 ``io.stat`` lines ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") as per-device counters."""
    if data is None:
        return None
    devices: dict[str, IoCounters] = {}
    for line in data.split(b"\n"):
        parts = line.split()
        if not parts:
            continue
        values: dict[bytes, int] = {}
        for item in parts[1:]:
            key, _, value = item.partition(b"=")
            try:
                values[key] = kernel_int(value)
            except ValueError:
                continue
        devices[parts[0].decode("ascii", "replace")] = IoCounters(
            values.get(b"rbytes", 0), values.get(b"wbytes", 0), values.get(b"rios", 0), values.get(b"wios", 0)
        )
    return devices


def sum_io(devices: dict[str, IoCounters] | None) -> IoCounters | None:
    """Total over devices."""
    if devices is None:
        return None
    rb = wb = ro = wo = 0
    for c in devices.values():
        rb += c.read_bytes
        wb += c.write_bytes
        ro += c.read_ops
        wo += c.write_ops
    return IoCounters(rb, wb, ro, wo)


def parse_pressure(data: bytes | None) -> Pressure | None:
    """A PSI file ("some avg10=0.12 avg60=... total=123\\nfull ...") with totals converted from µs to ns."""
    if not data:
        return None
    quick = _pressure_matched(data)
    return quick if quick is not None else _parse_pressure(data)


_V = rb"([^\s=]*)"  # a value: no whitespace, no "="
_PSI_LAYOUT = re.compile(rb"some avg10=%s avg60=[^\s=]* avg300=[^\s=]* total=%s\n"
                         rb"full avg10=%s avg60=[^\s=]* avg300=[^\s=]* total=%s\n" % (_V, _V, _V, _V))


def _pressure_matched(data: bytes) -> Pressure | None:
    """The kernel's two-line layout in one regular expression, read as _parse_pressure reads it; None for anything
    else (which _parse_pressure reads)."""
    match = _PSI_LAYOUT.fullmatch(data)
    if match is None:
        return None
    some_avg10, some_total, full_avg10, full_total = match.groups()
    try:
        return Pressure(float(some_avg10), kernel_int(some_total) * 1000, float(full_avg10),
                        kernel_int(full_total) * 1000)
    except ValueError:
        return None


def _parse_pressure(data: bytes) -> Pressure | None:
    fields: dict[str, tuple[float | None, int | None]] = {}
    for line in data.split(b"\n"):
        parts = line.split()
        if not parts or parts[0] not in (b"some", b"full"):
            continue
        avg10: float | None = None
        total: int | None = None
        for item in parts[1:]:
            key, _, value = item.partition(b"=")
            try:
                if key == b"avg10":
                    avg10 = float(value)
                elif key == b"total":
                    total = kernel_int(value) * 1000
            except ValueError:
                continue
        fields[parts[0].decode()] = (avg10, total)
    if not fields:
        return None
    some = fields.get("some", (None, None))
    full = fields.get("full", (None, None))
    return Pressure(some[0], some[1], full[0], full[1])


def parse_ticks_stat(data: bytes | None, ns_per_tick: float) -> tuple[int | None, int | None]:
    """v1 ``cpuacct.stat`` ("user N\\nsystem N" in USER_HZ ticks) as (user_ns, system_ns)."""
    if not data:
        return None, None
    user = system = None
    for line in data.split(b"\n"):
        key, _, value = line.partition(b" ")
        try:
            if key == b"user":
                user = int(kernel_int(value) * ns_per_tick)
            elif key == b"system":
                system = int(kernel_int(value) * ns_per_tick)
        except (ValueError, OverflowError):  # OverflowError: a number too large for a float
            continue
    return user, system
