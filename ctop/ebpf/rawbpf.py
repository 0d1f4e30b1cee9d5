"""The bpf() map commands ctop needs, called through libc's syscall(): no libbcc (and so no LLVM) in the process.

``lib`` offers the few libbcc functions ctop called by name, with the same arguments and return values
(0, or a negative errno with ``ctypes.get_errno()`` set), so a caller only swaps where ``lib`` comes from.
"""

from __future__ import annotations

import ctypes
import platform
import struct
from typing import Any

SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}.get(platform.machine(), 321)
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
MAP_DELETE_ELEM = 3
MAP_GET_NEXT_KEY = 4
OBJ_GET_INFO_BY_FD = 15
MAP_LOOKUP_BATCH = 24
NOEXIST = 1  # update flag: only insert
_ELEM_ATTR = struct.Struct("=IIQQQ")  # map_fd, pad, key, value (or next_key), flags
_BATCH_ATTR = struct.Struct("=QQQQIIQQ")  # in_batch, out_batch, keys, values, count, map_fd, elem_flags, flags
_MAP_INFO = struct.Struct("=IIIIII")  # type, id, key_size, value_size, max_entries, map_flags

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _address(obj: Any) -> int:
    """The address of a ctypes object, a pointer to one (byref), or 0 for None."""
    if obj is None:
        return 0
    if isinstance(obj, int):
        return obj
    return ctypes.cast(obj, ctypes.c_void_p).value or 0


def bpf(cmd: int, attr: bytes) -> int:
    """One bpf() call; returns its result, or -errno (``ctypes.get_errno()`` also holds errno)."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = _libc.syscall(SYS_BPF, cmd, buf, len(attr))
    return int(ret) if ret >= 0 else -ctypes.get_errno()


def _elem(cmd: int, fd: int, key: Any, value: Any, flags: int = 0) -> int:
    return bpf(cmd, _ELEM_ATTR.pack(fd, 0, _address(key), _address(value), flags))


class _Lib:
    """libbcc's map functions by name (``bcc.libbcc.lib``), over raw bpf() calls."""

    @staticmethod
    def bpf_lookup_elem(fd: int, key: Any, value: Any) -> int:
        return min(_elem(MAP_LOOKUP_ELEM, fd, key, value), 0)

    @staticmethod
    def bpf_update_elem(fd: int, key: Any, value: Any, flags: int) -> int:
        return min(_elem(MAP_UPDATE_ELEM, fd, key, value, flags), 0)

    @staticmethod
    def bpf_delete_elem(fd: int, key: Any) -> int:
        return min(_elem(MAP_DELETE_ELEM, fd, key, None), 0)

    @staticmethod
    def bpf_get_next_key(fd: int, key: Any, next_key: Any) -> int:
        return min(_elem(MAP_GET_NEXT_KEY, fd, key, next_key), 0)

    @staticmethod
    def bpf_lookup_batch(fd: int, in_batch: Any, out_batch: Any, keys: Any, values: Any, count: Any) -> int:
        """BPF_MAP_LOOKUP_BATCH; ``count`` points to a u32 that goes in as room and comes back as entries read."""
        counter = ctypes.cast(count, ctypes.POINTER(ctypes.c_uint32))
        attr = ctypes.create_string_buffer(_BATCH_ATTR.pack(
            _address(in_batch), _address(out_batch), _address(keys), _address(values), counter[0], fd, 0, 0),
            _BATCH_ATTR.size)
        ret = _libc.syscall(SYS_BPF, MAP_LOOKUP_BATCH, attr, _BATCH_ATTR.size)
        counter[0] = _BATCH_ATTR.unpack(attr.raw)[4]  # the kernel writes back how many it copied, also on ENOENT
        return 0 if ret >= 0 else -ctypes.get_errno()


lib = _Lib()


def map_info(fd: int) -> tuple[int, int, int, int, int] | None:
    """(type, id, key size, value size, max entries) of the map behind ``fd``, or None when it is not one."""
    info = ctypes.create_string_buffer(64)
    attr = struct.pack("=IIQ", fd, 64, _address(info))
    if bpf(OBJ_GET_INFO_BY_FD, attr) < 0:
        return None
    map_type, map_id, key_size, value_size, max_entries, _flags = _MAP_INFO.unpack_from(info.raw)
    return map_type, map_id, key_size, value_size, max_entries
