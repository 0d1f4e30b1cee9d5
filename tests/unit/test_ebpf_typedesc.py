"""ctypes types built from bcc's JSON key/leaf descriptions match what the C layout says (sizes, offsets, members)."""

from __future__ import annotations

import ctypes

import pytest

from ctop.ebpf.typedesc import DescError, ctype_of


def test_scalars_are_the_c_types() -> None:
    assert ctype_of("unsigned long long") is ctypes.c_ulonglong
    assert ctype_of("unsigned int") is ctypes.c_uint
    assert ctypes.sizeof(ctype_of("unsigned __int128")) == 16


def test_a_struct_with_arrays_padding_and_a_bit_field() -> None:
    desc = ["exec_record", [["seq", "unsigned long long"], ["pid", "unsigned int"], ["flags", "unsigned int", 3],
                            ["__pad_0", "char", [4]], ["comm", "char", [16]], ["grid", "unsigned short", [2, 3]]],
            "struct"]
    t = ctype_of(desc)
    assert t.__name__ == "exec_record" and issubclass(t, ctypes.Structure)
    assert [f[0] for f in t._fields_] == ["seq", "pid", "flags", "__pad_0", "comm", "grid"]
    assert t.flags.offset == 12 and t.comm.offset == 20 and t.comm.size == 16  # a bit field takes its own int
    assert t.grid.size == 12 and len(t().grid) == 2 and len(t().grid[0]) == 3
    rec = t(seq=7, pid=42, comm=b"sh")
    assert (rec.seq, rec.pid, bytes(rec.comm).rstrip(b"\0")) == (7, 42, b"sh")


def test_packed_structs_and_nested_anonymous_unions() -> None:
    packed = ctype_of(["k", [["a", "unsigned char"], ["b", "unsigned long long"]], "struct_packed"])
    assert ctypes.sizeof(packed) == 9
    outer = ctype_of(["outer", [["id", "unsigned int"],
                                ["", [["x", "unsigned int"], ["y", "int"]], "union"]], "struct"])
    value = outer(id=1)
    value.x = 5
    assert ctypes.sizeof(outer) == 8 and value.y == 5  # the anonymous union's members read through the struct


@pytest.mark.parametrize("desc", ["struct task_struct *", ["s", [["a", "no such type"]], "struct"],
                                  ["s", [["a", "int", "sideways"]], "struct"], ["s", "not a list"], 42,
                                  ["s", [["a", "int"]], "enum"]])
def test_descriptions_it_cannot_read_raise_desc_error(desc: object) -> None:
    with pytest.raises(DescError):
        ctype_of(desc)
