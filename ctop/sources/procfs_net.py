"""Network devices of a process's network namespace: counters (net/dev) and addresses (fib_trie, if_inet6)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from .procfs_ns import host_namespaces, namespace_inode
from .readfile import ReadErrors, kernel_int, read_bytes

K = TypeVar("K")


@dataclass(frozen=True)
class NetDevice:
    """One interface: cumulative counters from net/dev and its addresses ("10.0.0.2/24", "fe80::1/64")."""

    name: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_drops: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_drops: int
    addresses: tuple[str, ...] = field(default=())


def parse_net_dev(data: bytes | None) -> dict[str, NetDevice]:
    """/proc/<pid>/net/dev as name -> NetDevice (no addresses); malformed lines are skipped."""
    out: dict[str, NetDevice] = {}
    if not data:
        return out
    for line in data.decode("ascii", "replace").split("\n")[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        values = rest.split()
        if len(values) < 16:
            continue
        try:
            v = [kernel_int(x) for x in values[:16]]
        except ValueError:
            continue
        name = name.strip()
        out[name] = NetDevice(name, rx_bytes=v[0], rx_packets=v[1], rx_errors=v[2], rx_drops=v[3],
                              tx_bytes=v[8], tx_packets=v[9], tx_errors=v[10], tx_drops=v[11])
    return out


def parse_routes(data: bytes | None) -> list[tuple[str, int, int]]:
    """/proc/<pid>/net/route as (interface, destination, mask); the kernel prints addresses as little-endian hex."""
    routes: list[tuple[str, int, int]] = []
    if not data:
        return routes
    for line in data.decode("ascii", "replace").split("\n")[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            dest = struct.unpack("<I", bytes.fromhex(f[1]))[0]
            mask = struct.unpack("<I", bytes.fromhex(f[7]))[0]
        except (ValueError, struct.error):
            continue
        routes.append((f[0], dest, mask))
    return routes


def parse_fib_trie_local(data: bytes | None) -> list[str]:
    """Local IPv4 addresses: the leaves marked "/32 host LOCAL" in /proc/<pid>/net/fib_trie."""
    found: list[str] = []
    if not data:
        return found
    last_leaf = ""
    for line in data.decode("ascii", "replace").split("\n"):
        s = line.strip()
        if s.startswith("|-- "):
            last_leaf = s[4:].strip()
        elif s.startswith("/32 host LOCAL") and last_leaf:
            try:
                ipaddress.IPv4Address(last_leaf)
            except ValueError:
                continue
            if last_leaf not in found:
                found.append(last_leaf)
    return found


def ipv4_addresses(local: list[str], routes: list[tuple[str, int, int]]) -> dict[str, list[str]]:
    """Attach each local address to the interface of the most specific link route containing it."""
    out: dict[str, list[str]] = {}
    for addr in local:
        value = int(ipaddress.IPv4Address(addr))
        best: tuple[int, str] | None = None
        for iface, dest, mask in routes:
            if dest == 0 or mask == 0:
                continue
            if value & mask == dest:
                plen = bin(mask).count("1")
                if best is None or plen > best[0]:
                    best = (plen, iface)
        if best is not None:
            out.setdefault(best[1], []).append(f"{addr}/{best[0]}")
        elif addr.startswith("127."):
            out.setdefault("lo", []).append(f"{addr}/8")
    return out


def parse_if_inet6(data: bytes | None) -> dict[str, list[str]]:
    """/proc/<pid>/net/if_inet6 as interface -> ["addr/prefix", ...]."""
    out: dict[str, list[str]] = {}
    if not data:
        return out
    for line in data.decode("ascii", "replace").split("\n"):
        f = line.split()
        if len(f) < 6 or len(f[0]) != 32:
            continue
        try:
            addr = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(f[0]))
            plen = int(f[2], 16)
        except (ValueError, OSError):
            continue
        if not 0 <= plen <= 128:  # a damaged file: its huge number would not even print
            continue
        out.setdefault(f[5], []).append(f"{addr}/{plen}")
    return out


def net_devices(pid: int, proc_root: str = "/proc", errors: ReadErrors | None = None) -> list[NetDevice]:
    """Every interface of the network namespace ``pid`` is in, with counters and addresses."""
    base = os.path.join(proc_root, str(pid), "net")
    devices = parse_net_dev(read_bytes(os.path.join(base, "dev"), errors))
    v4 = ipv4_addresses(parse_fib_trie_local(read_bytes(os.path.join(base, "fib_trie"), errors)),
                        parse_routes(read_bytes(os.path.join(base, "route"), errors)))
    v6 = parse_if_inet6(read_bytes(os.path.join(base, "if_inet6"), errors))
    result = []
    for name in sorted(devices):
        d = devices[name]
        addrs = tuple(v4.get(name, []) + v6.get(name, []))
        result.append(dataclasses.replace(d, addresses=addrs))
    return result


@dataclass(frozen=True)
class NetTotals:
    """Cumulative bytes over the non-loopback interfaces of one network namespace."""

    netns: int
    rx_bytes: int
    tx_bytes: int


def netns_totals(
    pids: Mapping[K, int], proc_root: str = "/proc", include_host: bool = False, errors: ReadErrors | None = None
) -> dict[K, NetTotals]:
    """For each key's main pid: its netns totals, reading each netns once (keys sharing one get the same).

    Keys in the host's network namespace are left out unless ``include_host``: their traffic is the host's.
    """
    host = host_namespaces(proc_root, errors, ("net",)).get("net")
    by_ns: dict[int, NetTotals | None] = {}
    out: dict[K, NetTotals] = {}
    for key, pid in pids.items():
        ns = namespace_inode(pid, "net", proc_root, errors)
        if ns is None or (ns == host and not include_host):
            continue
        if ns not in by_ns:
            devices = parse_net_dev(read_bytes(os.path.join(proc_root, str(pid), "net", "dev"), errors))
            if not devices:
                by_ns[ns] = None
            else:
                rx = sum(d.rx_bytes for n, d in devices.items() if n != "lo")
                tx = sum(d.tx_bytes for n, d in devices.items() if n != "lo")
                by_ns[ns] = NetTotals(ns, rx, tx)
        totals = by_ns[ns]
        if totals is not None:
            out[key] = totals
    return out
