"""Record layouts of ctop's BPF maps as the compiler laid them out (bcc's ctypes tables) or as bpf/ctop.h spells them.

Nothing here is counted by hand: the map reader takes member order and sizes from the compiled program's tables,
and a unit test compares those rules with the header itself (parse_header), without a kernel.
"""

from __future__ import annotations

import ast
import ctypes
import functools
import importlib.resources
import re
from dataclasses import dataclass

# Sizes of the C types the header uses (kernel types: u64 is __u64, and so on).
C_TYPE_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "s8": 1, "s16": 2, "s32": 4, "s64": 8, "char": 1}
PAD_PREFIX = "__pad"  # members bcc adds for padding it found in the compiled struct

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+(.+?)\s*$", re.MULTILINE)
_STRUCT = re.compile(r"\bstruct\s+(\w+)\s*\{([^}]*)\}\s*;")
_MEMBER = re.compile(r"^\s*(\w+)\s+(\w+)\s*(?:\[\s*(\w+)\s*\])?\s*$")
_INT_SUFFIX = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b")


class LayoutError(Exception):
    """A layout could not be read or does not fit what ctop expects; the message is one sentence."""


@dataclass(frozen=True)
class Member:
    """One struct member: its name, the size of one element in bytes and the number of elements (1 for a scalar)."""

    name: str
    size: int
    count: int = 1


@dataclass(frozen=True)
class Header:
    """What bpf/ctop.h defines: integer constants (#define) and struct layouts, in declaration order."""

    defines: dict[str, int]
    structs: dict[str, tuple[Member, ...]]


def _evaluate(expr: str, known: dict[str, int]) -> int | None:
    """An integer constant expression of the header (literals, earlier names, + - * << >> | &); None otherwise."""
    text = _INT_SUFFIX.sub(r"\1", expr.strip())
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None

    def value(node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in known:
            return known[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = value(node.left), value(node.right)
            ops = {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b, ast.BitOr: a | b, ast.BitAnd: a & b}
            if isinstance(node.op, ast.LShift):
                return a << b
            if isinstance(node.op, ast.RShift):
                return a >> b
            if type(node.op) in ops:
                return ops[type(node.op)]
        raise ValueError(ast.dump(node))

    try:
        return value(tree.body)
    except ValueError:
        return None


def parse_header(text: str) -> Header:
    """The integer #defines and the structs of a header such as bpf/ctop.h (raises LayoutError on a member it
    cannot size)."""
    code = _COMMENT.sub(" ", text)
    defines: dict[str, int] = {}
    for name, expr in _DEFINE.findall(code):
        number = _evaluate(expr, defines)
        if number is not None:
            defines[name] = number
    structs: dict[str, tuple[Member, ...]] = {}
    for struct_name, body in _STRUCT.findall(code):
        members = []
        for declaration in filter(str.strip, body.split(";")):
            match = _MEMBER.match(declaration)
            if match is None or match.group(1) not in C_TYPE_SIZES:
                raise LayoutError(f"struct {struct_name}: cannot size member '{' '.join(declaration.split())}'.")
            ctype, name, length = match.groups()
            if length is None:
                count = 1
            elif length.isdigit():
                count = int(length)
            elif length in defines:
                count = defines[length]
            else:
                raise LayoutError(f"struct {struct_name}: array length {length} of {name} is not defined.")
            members.append(Member(name, C_TYPE_SIZES[ctype], count))
        structs[struct_name] = tuple(members)
    return Header(defines, structs)


def header_path() -> str:
    """bpf/ctop.h as installed (the ctop.bpf package)."""
    return str(importlib.resources.files("ctop.bpf").joinpath("ctop.h"))


@functools.lru_cache(maxsize=1)
def read_header() -> Header:
    """bpf/ctop.h, parsed once per process."""
    with open(header_path()) as f:
        return parse_header(f.read())


def ctypes_members(struct_type: type[ctypes.Structure]) -> tuple[Member, ...]:
    """The members of a compiled record (a bcc table's Key or Leaf ctypes type), padding left out."""
    members = []
    for entry in struct_type._fields_:
        name, ctype = entry[0], entry[1]
        if name.startswith(PAD_PREFIX):
            continue
        count = len(ctype()) if issubclass(ctype, ctypes.Array) else 1
        members.append(Member(name, ctypes.sizeof(ctype) // max(count, 1), count))
    return tuple(members)


WORD_FORMATS = {4: "I", 8: "Q"}  # struct module codes of the unsigned words counter records are made of


def word_columns(struct_name: str, members: tuple[Member, ...]) -> tuple[dict[str, int], str]:
    """(index of each member's first word, struct format of one record) when a record is made of unsigned 32- and
    64-bit words with no padding between them (raises LayoutError otherwise)."""
    columns: dict[str, int] = {}
    offset = 0
    fmt = "="
    position = 0
    for m in members:
        code = WORD_FORMATS.get(m.size)
        if code is None or position % m.size:
            raise LayoutError(f"struct {struct_name}: member {m.name} is not an aligned 32- or 64-bit word.")
        columns[m.name] = offset
        offset += m.count
        fmt += f"{m.count}{code}"
        position += m.size * m.count
    return columns, fmt


@dataclass(frozen=True)
class RunqGeometry:
    """The run-queue histogram's log-linear buckets as bpf/ctop.h defines them (RUNQ_UNIT_SHIFT, RUNQ_SUB_BITS,
    RUNQ_SLOTS): ``2**sub_bits`` buckets per power of two, in units of ``2**unit_shift`` ns."""

    unit_shift: int
    sub_bits: int
    slots: int

    def bounds_ns(self) -> tuple[tuple[int, int], ...]:
        """(lower, upper) of every slot in ns; the first starts at 0, the last also takes every longer wait."""
        subs = 1 << self.sub_bits
        out = []
        for s in range(self.slots):
            octave, m = divmod(s, subs)
            if octave == 0:
                low, high = m, m + 1
            else:
                low, high = (subs + m) << (octave - 1), (subs + m + 1) << (octave - 1)
            out.append((low << self.unit_shift, high << self.unit_shift))
        return tuple(out)

    def slot(self, wait_ns: int) -> int:
        """The slot the BPF program puts a wait in (runq_slot in bpf/sched.bpf.c, for tests)."""
        u = wait_ns >> self.unit_shift
        subs = 1 << self.sub_bits
        if u < subs:
            return u
        e = u.bit_length() - 1
        slot = ((e - self.sub_bits + 1) << self.sub_bits) | ((u >> (e - self.sub_bits)) & (subs - 1))
        return min(slot, self.slots - 1)


def runq_geometry(header: Header) -> RunqGeometry:
    """The histogram layout a header defines (raises LayoutError when it is missing or inconsistent)."""
    d = header.defines
    try:
        geometry = RunqGeometry(d["RUNQ_UNIT_SHIFT"], d["RUNQ_SUB_BITS"], d["RUNQ_SLOTS"])
    except KeyError as e:
        raise LayoutError(f"bpf/ctop.h does not define {e.args[0]}.") from None
    if geometry.slots <= 1 << geometry.sub_bits or geometry.slots % (1 << geometry.sub_bits):
        raise LayoutError(f"bpf/ctop.h: RUNQ_SLOTS {geometry.slots} is not a whole number of powers of two.")
    return geometry
