"""Capability sets of a process (/proc/<pid>/status CapEff etc.) decoded to names."""

from __future__ import annotations

import os

from .readfile import ReadErrors, read_bytes

# Bit number -> name, from linux/capability.h.
CAPABILITY_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)


def decode_capabilities(mask: int) -> list[str]:
    """Names of the bits set in ``mask`` (CAP_ prefix dropped); unknown bits appear as "cap_<n>"."""
    names = []
    bit = 0
    mask &= (1 << 64) - 1  # the kernel prints 64 bits; a negative or wider value from a damaged file is cut
    while mask >> bit:
        if mask >> bit & 1:
            names.append(CAPABILITY_NAMES[bit] if bit < len(CAPABILITY_NAMES) else f"cap_{bit}")
        bit += 1
    return names


def capability_masks(pid: int, proc_root: str = "/proc", errors: ReadErrors | None = None) -> dict[str, int]:
    """CapInh, CapPrm, CapEff, CapBnd, CapAmb of ``pid`` as integers ({} when unreadable)."""
    data = read_bytes(os.path.join(proc_root, str(pid), "status"), errors)
    out: dict[str, int] = {}
    if data is None:
        return out
    for line in data.split(b"\n"):
        if line.startswith(b"Cap"):
            key, _, value = line.partition(b":")
            try:
                out[key.decode()] = int(value.strip(), 16)
            except ValueError:
                continue
    return out


def effective_capabilities(pid: int, proc_root: str = "/proc", errors: ReadErrors | None = None) -> list[str] | None:
    """Names of the effective capabilities of ``pid``; None when unknown."""
    mask = capability_masks(pid, proc_root, errors).get("CapEff")
    return None if mask is None else decode_capabilities(mask)
