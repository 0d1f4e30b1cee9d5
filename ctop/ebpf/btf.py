"""Reads byte offsets of kernel struct fields from the running kernel's BTF (/sys/kernel/btf/vmlinux)."""

from __future__ import annotations

import struct

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"

_MAGIC = 0xEB9F
_KIND_STRUCT, _KIND_UNION = 4, 5
_KIND_TYPEDEF, _KIND_VOLATILE, _KIND_CONST, _KIND_RESTRICT, _KIND_TYPE_TAG = 8, 9, 10, 11, 18
# Bytes that follow the 12-byte common header, per kind: (fixed, per vlen entry).
_EXTRA = {1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 13: (0, 8), 14: (4, 0), 15: (0, 12),
          17: (4, 0), 19: (0, 12)}


class BtfError(Exception):
    """The BTF blob is missing, malformed, or lacks the requested field."""


class Btf:
    """The type section of one BTF blob, indexed lazily: enough to resolve struct member offsets."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 24:
            raise BtfError("BTF data is too short")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != _MAGIC:
            raise BtfError("not little-endian BTF data")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        self._types = data[hdr_len + type_off: hdr_len + type_off + type_len]
        self._strings = data[hdr_len + str_off: hdr_len + str_off + str_len]
        # offsets[type_id] = position of that type's header in self._types (type ids start at 1).
        self._offsets: list[int] = [0]
        self._structs: dict[str, int] = {}
        self._typedefs: dict[str, int] = {}
        pos, end = 0, len(self._types)
        types = self._types
        while pos + 12 <= end:
            name_off, info = struct.unpack_from("<II", types, pos)
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            self._offsets.append(pos)
            if kind in (_KIND_STRUCT, _KIND_UNION) and name_off:
                self._structs.setdefault(self._name(name_off), len(self._offsets) - 1)
            elif kind == _KIND_TYPEDEF and name_off:
                self._typedefs.setdefault(self._name(name_off), len(self._offsets) - 1)
            fixed, per = _EXTRA.get(kind, (0, 0))
            pos += 12 + fixed + per * vlen

    @classmethod
    def load(cls, path: str = VMLINUX_BTF) -> Btf:
        try:
            with open(path, "rb") as f:
                return cls(f.read())
        except OSError as e:
            raise BtfError(f"cannot read {path}: {e.strerror}") from e

    def _name(self, off: int) -> str:
        end = self._strings.find(b"\0", off)
        return self._strings[off:end].decode("ascii", "replace")

    def _header(self, type_id: int) -> tuple[int, int, int, int]:
        pos = self._offsets[type_id]
        name_off, info, size_or_type = struct.unpack_from("<III", self._types, pos)
        return name_off, info, size_or_type, pos

    def _resolve(self, type_id: int) -> int:
        """Follow typedefs and qualifiers to the underlying type."""
        for _ in range(32):
            _, info, target, _ = self._header(type_id)
            if (info >> 24) & 0x1F not in (_KIND_TYPEDEF, _KIND_VOLATILE, _KIND_CONST, _KIND_RESTRICT,
                                           _KIND_TYPE_TAG):
                return type_id
            type_id = target
        raise BtfError("typedef chain too long")

    def _member(self, type_id: int, name: str) -> tuple[int, int] | None:
        """(bit offset, member type id) of ``name`` in a struct/union, looking into anonymous members."""
        _, info, _, pos = self._header(type_id)
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        if kind not in (_KIND_STRUCT, _KIND_UNION):
            return None
        for i in range(vlen):
            m_name, m_type, m_off = struct.unpack_from("<III", self._types, pos + 12 + 12 * i)
            bit_off = m_off & 0xFFFFFF if kflag else m_off
            if m_name == 0:
                found = self._member(self._resolve(m_type), name)
                if found is not None:
                    return bit_off + found[0], found[1]
            elif self._name(m_name) == name:
                return bit_off, m_type
        return None

    def typedef_id(self, name: str) -> int:
        """The type id of typedef ``name`` (what a BTF-typed raw tracepoint attaches to: btf_trace_<event>)."""
        type_id = self._typedefs.get(name)
        if type_id is None:
            raise BtfError(f"typedef {name} is not in BTF")
        return type_id

    def offset(self, struct_name: str, field_path: str) -> int:
        """Byte offset of ``field_path`` (dotted, e.g. ``sched_info.run_delay``) inside ``struct struct_name``."""
        type_id = self._structs.get(struct_name)
        if type_id is None:
            raise BtfError(f"struct {struct_name} is not in BTF")
        bits = 0
        for part in field_path.split("."):
            try:
                found = self._member(self._resolve(type_id), part)
            except (IndexError, struct.error, RecursionError) as e:  # type ids or lengths beyond the blob, loops
                raise BtfError(f"BTF data is malformed around struct {struct_name}") from e
            if found is None:
                raise BtfError(f"struct {struct_name} has no field {field_path}")
            bits += found[0]
            type_id = found[1]
        if bits % 8:
            raise BtfError(f"{struct_name}.{field_path} is a bit field")
        return bits // 8


def task_offsets(path: str = VMLINUX_BTF) -> dict[str, int]:
    """The task_struct and mm_struct offsets ctop's programs can use, by macro name; fields not found are left out."""
    wanted = {
        "RUN_DELAY_OFFSET": ("task_struct", "sched_info.run_delay"),
        "REAL_PARENT_OFFSET": ("task_struct", "real_parent"),
        "TGID_OFFSET": ("task_struct", "tgid"),
        "PID_OFFSET": ("task_struct", "pid"),
        "MM_OFFSET": ("task_struct", "mm"),
        "ARG_START_OFFSET": ("mm_struct", "arg_start"),
        "ARG_END_OFFSET": ("mm_struct", "arg_end"),
    }
    try:
        btf = Btf.load(path)
    except BtfError:
        return {}
    result: dict[str, int] = {}
    for macro, (struct_name, field_path) in wanted.items():
        try:
            result[macro] = btf.offset(struct_name, field_path)
        except BtfError:
            continue
    return result
