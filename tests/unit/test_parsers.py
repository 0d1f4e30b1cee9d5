"""Parsers of cgroup and /proc files: exact on good input, and on any input a value or no data, never an error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctop.model.sample import UNLIMITED
from ctop.sources import parsers
from ctop.sources.procfs import parse_meminfo, parse_partitions, parse_proc_stat
from ctop.sources.readfile import count_lines, parse_flat_keyed

junk = st.binary(max_size=400) | st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass"))


def test_cpu_max() -> None:
    assert parsers.parse_cpu_max(b"max 100000\n") == (UNLIMITED, 100000)
    assert parsers.parse_cpu_max(b"20000 100000\n") == (20000, 100000)
    assert parsers.parse_cpu_max(b"20000\n") == (None, None)
    assert parsers.parse_cpu_max(None) == (None, None)


def test_v1_limit_threshold() -> None:
    assert parsers.parse_v1_limit(9223372036854771712) == UNLIMITED
    assert parsers.parse_v1_limit(134217728) == 134217728
    assert parsers.parse_v1_limit(None) is None


def test_weight_shares_round_trip_known_values() -> None:
    assert parsers.shares_to_weight(1024) == 39  # what runc writes for the default
    assert parsers.shares_to_weight(2) == 1 and parsers.shares_to_weight(262144) == 10000
    assert parsers.weight_to_shares(1) == 2 and parsers.weight_to_shares(10000) == 262144


def test_v1_blkio() -> None:
    data = b"8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:16 Read 5\nTotal 305\n"
    by_dev, ok = parsers.parse_v1_blkio(data)
    assert ok and by_dev == {"8:0": (100, 200), "8:16": (5, 0)}


def test_pressure() -> None:
    p = parsers.parse_pressure(b"some avg10=1.50 avg60=0 avg300=0 total=10\nfull avg10=0.25 avg60=0 total=7\n")
    assert p is not None and (p.some_avg10, p.some_total_ns, p.full_avg10, p.full_total_ns) == (1.5, 10000, 0.25, 7000)


def test_proc_stat() -> None:
    total, cpus = parse_proc_stat(b"cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 0 0 0 0 0 0 0 0 0 0\n")
    assert cpus == 2 and total is not None and total == int(28 * parsers_ns_per_tick())


def parsers_ns_per_tick() -> float:
    import os
    return 1e9 / os.sysconf("SC_CLK_TCK")


@given(junk)
def test_parsers_never_raise(data: bytes) -> None:
    parsers.parse_cpu_max(data)
    parsers.parse_v1_blkio(data)
    parsers.parse_v2_io_stat(data)
    parsers.parse_pressure(data)
    parsers.parse_ticks_stat(data, 1e7)
    parse_flat_keyed(data)
    count_lines(data)
    parse_proc_stat(data)
    parse_meminfo(data)
    parse_partitions(data)


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_huge_numbers(n: int) -> None:
    """Every 64-bit value is read exactly; beyond 64 bits no kernel file holds it: a damaged file, no data."""
    text = str(n).encode()
    fits = -(2**63) <= n < 2**64
    assert parse_flat_keyed(b"key " + text) == ({"key": n} if fits else {})
    quota, period = parsers.parse_cpu_max(text + b" 100000")
    assert (quota, period) == ((n, 100000) if fits else (None, None))


def _pressure_before(data: bytes) -> object:
    """parse_pressure as it was before its regular-expression shortcut: the full parser (the positional shortcut it
    had gave the same wherever it answered, and was removed)."""
    if not data:
        return None
    return parsers._parse_pressure(data)


_PSI_PART = st.sampled_from([b"some", b"full", b"avg10=", b"avg60=", b"avg300=", b"total=", b"=", b" ", b"  ", b"\n",
                             b"\t", b"1.50", b"0.00", b"nan", b"inf", b"-1", b"99999999999999999999999", b"7", b"x"])


@given(st.lists(_PSI_PART, max_size=30).map(b"".join))
def test_pressure_reads_any_text_as_before(data: bytes) -> None:
    assert repr(parsers.parse_pressure(data)) == repr(_pressure_before(data))


@pytest.mark.parametrize("data", [
    b"some avg10=94.04 avg60=91.89 avg300=90.18 total=1058444078\nfull avg10=73.69 avg60=71.68 avg300=70.20 "
    b"total=828269428\n",
    b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    b"some avg10=nan avg60=0 avg300=0 total=1\nfull avg10=inf avg60=0 avg300=0 total=2\n",
    b"some avg10=1 avg60=0 avg300=0 total=99999999999999999999999\nfull avg10=1 avg60=0 avg300=0 total=2\n",
    b"some avg10= avg60=0 avg300=0 total=1\nfull avg10=1 avg60=0 avg300=0 total=2\n",
    b"some avg10=1 avg60=0 avg300=0 total=1\nfull avg10=1 avg60=0 avg300=0 total=2",
    b"some avg10=1 avg60=0  avg300=0 total=1\nfull avg10=1 avg60=0 avg300=0 total=2\n",
])
def test_pressure_of_the_kernel_layout_and_near_it_as_before(data: bytes) -> None:
    assert repr(parsers.parse_pressure(data)) == repr(_pressure_before(data))
