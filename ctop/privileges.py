"""Dropping root: switch to another user and keep only the named capabilities (setgroups/setresgid/setresuid+capset).

Usage::

    target = resolve_target("nobody:nogroup", extra_gids=socket_groups(["/var/run/docker.sock"]))
    drop_privileges(target, keep=needed_capabilities(ebpf_loaded=True))

Call it when the process has one thread: capset(2), prctl(PR_SET_KEEPCAPS) and the bounding set act on the calling
thread only (glibc broadcasts setresuid/setresgid/setgroups to every thread, but not those); threads started
afterwards inherit the result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import grp
import os
import platform
import pwd
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import CtopError

# include/uapi/linux/capability.h
CAPABILITIES = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
    "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_SYS_MODULE": 16, "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_PERFMON": 38, "CAP_BPF": 39,
}
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4


class PrivilegeError(CtopError):
    """Dropping privileges is impossible or failed; the message is one sentence."""


@dataclass(frozen=True)
class Target:
    """Who to become: uid, primary gid and every supplementary gid."""

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def resolve_target(spec: str, extra_gids: Iterable[int] = ()) -> Target:
    """``USER[:GROUP]`` (names or numbers) -> Target; the user's primary group unless GROUP is given."""
    user_text, _, group_text = spec.partition(":")
    if not user_text:
        raise PrivilegeError(f"--user {spec!r} names no user: give USER or USER:GROUP.")
    try:
        entry = pwd.getpwuid(int(user_text)) if user_text.isdigit() else pwd.getpwnam(user_text)
    except (KeyError, OverflowError):
        raise PrivilegeError(f"--user: there is no user {user_text!r} on this system; create it or name another "
                             "one.") from None
    gid = entry.pw_gid
    if group_text:
        try:
            gid = grp.getgrgid(int(group_text)).gr_gid if group_text.isdigit() else grp.getgrnam(group_text).gr_gid
        except (KeyError, OverflowError):
            raise PrivilegeError(f"--user: there is no group {group_text!r} on this system; create it or name "
                                 "another one.") from None
    if entry.pw_uid == 0:
        raise PrivilegeError("--user names root itself: give an unprivileged user to switch to.")
    groups = tuple(dict.fromkeys([gid, *extra_gids]))
    return Target(entry.pw_name, entry.pw_uid, gid, groups)


def socket_groups(paths: Iterable[str]) -> list[int]:
    """Groups that grant read+write on these existing sockets (e.g. docker's): joined so the socket stays usable."""
    gids: list[int] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o060 == 0o060 and st.st_gid != 0:
            gids.append(st.st_gid)
    return gids


def kernel_release() -> tuple[int, int]:
    """(major, minor) of the running kernel; (0, 0) when it cannot be parsed."""
    parts = platform.release().split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return 0, 0


def needed_capabilities(ebpf_loaded: bool, release: tuple[int, int] | None = None,
                        unprivileged_bpf_disabled: str | None = None) -> list[str]:
    """What the exporter still needs once its BPF programs are attached.

    CAP_SYS_PTRACE: readlink /proc/<pid>/ns/net of other users' processes (per-container network counters).
    Reading BPF maps and program info through the fds already open needs nothing from Linux 5.19 on; before, a
    non-zero kernel.unprivileged_bpf_disabled refuses every bpf() command without CAP_BPF (CAP_SYS_ADMIN before
    5.8, which had no CAP_BPF).
    """
    keep = ["CAP_SYS_PTRACE"]
    if not ebpf_loaded:
        return keep
    release = release or kernel_release()
    if unprivileged_bpf_disabled is None:
        try:
            with open("/proc/sys/kernel/unprivileged_bpf_disabled") as f:
                unprivileged_bpf_disabled = f.read().strip()
        except OSError:
            unprivileged_bpf_disabled = "1"
    if release < (5, 19) and unprivileged_bpf_disabled != "0":
        keep.append("CAP_BPF" if release >= (5, 8) else "CAP_SYS_ADMIN")
    return keep


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def _prctl(libc: ctypes.CDLL, option: int, arg: int, what: str) -> None:
    if libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise PrivilegeError(f"Could not drop privileges: prctl {what} failed ({os.strerror(err)}).")


def _capset(libc: ctypes.CDLL, mask: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        word = (mask >> (32 * i)) & 0xFFFFFFFF
        data[i].effective, data[i].permitted, data[i].inheritable = word, word, 0
    if libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise PrivilegeError(f"Could not drop privileges: capset failed ({os.strerror(err)}); the process is "
                             "stopped rather than left half-privileged.")


def capability_mask(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        if name not in CAPABILITIES:
            raise PrivilegeError(f"Unknown capability {name!r}.")
        mask |= 1 << CAPABILITIES[name]
    return mask


def status_of(pid: int | str = "self", proc_root: str = "/proc") -> dict[str, str]:
    """The key: value lines of /proc/<pid>/status (Uid, Gid, Groups, CapEff, CapBnd, NoNewPrivs ...)."""
    out: dict[str, str] = {}
    try:
        with open(f"{proc_root}/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def _task_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def drop_privileges(target: Target, keep: Iterable[str]) -> None:
    """Become ``target`` with only ``keep`` in the effective, permitted and bounding sets. Raises PrivilegeError."""
    if os.geteuid() != 0:
        raise PrivilegeError("--user needs ctop to start as root: it switches user after loading its BPF programs; "
                             "run it with sudo or leave --user out.")
    others = [t.name for t in threading.enumerate() if t is not threading.current_thread() and t.is_alive()]
    deadline = time.monotonic() + 2.0
    while not others and _task_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.02)  # a joined Python thread can take a moment to leave the kernel's task list
    if others or _task_count() > 1:
        raise PrivilegeError(f"Could not drop privileges: other threads are running ({', '.join(others) or 'native'}"
                             "), and capabilities are per thread.")
    mask = capability_mask(keep)
    libc = _libc()
    for cap in range(_last_cap() + 1):
        if not mask >> cap & 1:
            _prctl(libc, _PR_CAPBSET_DROP, cap, f"PR_CAPBSET_DROP({cap})")
    libc.prctl(_PR_CAP_AMBIENT, ctypes.c_ulong(_PR_CAP_AMBIENT_CLEAR_ALL), ctypes.c_ulong(0), ctypes.c_ulong(0),
               ctypes.c_ulong(0))  # EINVAL before Linux 4.3, which has no ambient set to clear
    _prctl(libc, _PR_SET_KEEPCAPS, 1, "PR_SET_KEEPCAPS")
    try:
        os.setgroups(list(target.groups))
        os.setresgid(target.gid, target.gid, target.gid)
        os.setresuid(target.uid, target.uid, target.uid)
    except OSError as e:
        raise PrivilegeError(f"Could not switch to user {target.user}: {e.strerror}.") from None
    _capset(libc, mask)
    _prctl(libc, _PR_SET_KEEPCAPS, 0, "PR_SET_KEEPCAPS")
    _prctl(libc, _PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")
    status = status_of()
    uids = set(status.get("Uid", "").split())
    if uids != {str(target.uid)} or int(status.get("CapEff", "0"), 16) != mask:
        raise PrivilegeError(f"Could not drop privileges: the process still shows Uid {status.get('Uid')} and "
                             f"CapEff {status.get('CapEff')} after switching.")
    os.environ["HOME"] = pwd.getpwuid(target.uid).pw_dir or "/"
