"""ctypes types from bcc's JSON description of a map's key or leaf (``bpf_table_key_desc``/``bpf_table_leaf_desc``).

A description is a C type name ("unsigned long long"), or ``[name, members, kind]`` where kind is "struct",
"struct_packed" or "union" and each member is ``[name, type]``, ``[name, type, [count]]`` (an array),
``[name, type, bits]`` (a bit field) or a nested description. Built here so that the process reading the maps
never loads libbcc.
"""

from __future__ import annotations

import ctypes
from typing import Any

SCALARS: dict[str, Any] = {
    "_Bool": ctypes.c_bool, "char": ctypes.c_char, "signed char": ctypes.c_byte, "unsigned char": ctypes.c_ubyte,
    "short": ctypes.c_short, "unsigned short": ctypes.c_ushort, "int": ctypes.c_int, "unsigned int": ctypes.c_uint,
    "long": ctypes.c_long, "unsigned long": ctypes.c_ulong, "long long": ctypes.c_longlong,
    "unsigned long long": ctypes.c_ulonglong, "float": ctypes.c_float, "double": ctypes.c_double,
    "long double": ctypes.c_longdouble, "__int128": ctypes.c_int64 * 2, "unsigned __int128": ctypes.c_uint64 * 2,
}
COMPOUND_KINDS = ("struct", "struct_packed", "union")


class DescError(ValueError):
    """A description this module cannot turn into a ctypes type."""


def ctype_of(desc: Any) -> Any:
    """The ctypes type a description stands for (raises DescError)."""
    if isinstance(desc, str):
        try:
            return SCALARS[desc]
        except KeyError:
            raise DescError(f"unknown C type {desc!r}") from None
    if not isinstance(desc, list) or len(desc) < 2 or not isinstance(desc[1], list):
        raise DescError(f"not a type description: {desc!r}")
    kind = desc[2] if len(desc) > 2 else "struct"
    if kind not in COMPOUND_KINDS:
        raise DescError(f"unknown kind {kind!r}")
    fields: list[tuple[Any, ...]] = []
    anonymous: list[str] = []
    for member in desc[1]:
        fields.append(_field(member, anonymous))
    namespace: dict[str, Any] = {"_anonymous_": anonymous, "_fields_": fields}
    if kind == "struct_packed":
        namespace["_pack_"] = 1
    base = ctypes.Union if kind == "union" else ctypes.Structure
    return type(str(desc[0]) or "anonymous", (base,), namespace)


def _field(member: Any, anonymous: list[str]) -> tuple[Any, ...]:
    if not isinstance(member, list) or len(member) not in (2, 3):
        raise DescError(f"not a member description: {member!r}")
    name, type_desc = member[0], member[1]
    if len(member) == 2:
        return (name, ctype_of(type_desc))
    extra = member[2]
    if isinstance(extra, list):  # an array, perhaps of several dimensions: innermost last
        ctype = ctype_of(type_desc)
        for count in reversed(extra):
            ctype = ctype * int(count)
        return (name, ctype)
    if isinstance(extra, int):
        return (name, ctype_of(type_desc), extra)
    if extra in COMPOUND_KINDS:  # a nested struct or union, perhaps without a name
        if not name:
            name = f"__anon{len(anonymous)}"
            anonymous.append(name)
        return (name, ctype_of(member))
    raise DescError(f"not a member description: {member!r}")
