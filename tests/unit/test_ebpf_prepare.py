"""Header-tree discovery/merging for bcc and BTF member offsets, on trees and blobs built by the test."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from ctop.ebpf import headers
from ctop.ebpf.btf import Btf, BtfError


def touch(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def debian_split_tree(tmp: Path) -> tuple[Path, Path, Path]:
    """/usr/src/linux-headers-6.1.0-9-{amd64,common} and /lib/modules/6.1.0-9-amd64/{build,source}."""
    src = tmp / "usr-src"
    common = src / "linux-headers-6.1.0-9-common"
    build = src / "linux-headers-6.1.0-9-amd64"
    touch(common / "include/linux/kconfig.h", "/* kconfig */")
    touch(common / "arch/x86/include/asm/ptrace.h")
    touch(common / "Makefile", "# top makefile")
    touch(build / "include/generated/autoconf.h", "#define CONFIG_X 1")
    touch(build / "arch/x86/include/generated/asm/orc_hash.h")
    touch(build / "Makefile", f"include {common}/Makefile\n")
    modules = tmp / "modules"
    (modules / "6.1.0-9-amd64").mkdir(parents=True)
    os.symlink(build, modules / "6.1.0-9-amd64/build")
    os.symlink(common, modules / "6.1.0-9-amd64/source")
    return modules, src, build


def test_split_tree_is_merged_into_one(tmp_path: Path) -> None:
    modules, src, _ = debian_split_tree(tmp_path)
    cache = tmp_path / "cache"
    tree = headers.find_headers("6.18.0-other", str(cache), str(modules), str(src), kheaders=str(tmp_path / "none"))
    assert tree is not None and not tree.matches_kernel
    merged = Path(tree.kernel_source or "")
    assert merged.parent == cache
    for rel in ("include/linux/kconfig.h", "include/generated/autoconf.h", "arch/x86/include/asm/ptrace.h",
                "arch/x86/include/generated/asm/orc_hash.h"):
        assert (merged / rel).is_file(), rel
    # the build tree's Makefile wins over the source tree's
    assert (merged / "Makefile").read_text().startswith("include ")
    again = headers.find_headers("6.18.0-other", str(cache), str(modules), str(src), kheaders=str(tmp_path / "none"))
    assert again == tree


def test_headers_of_the_running_kernel_need_no_merge(tmp_path: Path) -> None:
    modules, src, _ = debian_split_tree(tmp_path)
    tree = headers.find_headers("6.1.0-9-amd64", str(tmp_path / "cache"), str(modules), str(src),
                                kheaders=str(tmp_path / "none"))
    assert tree is not None and tree.kernel_source is None and tree.matches_kernel
    assert not (tmp_path / "cache").exists()


def test_no_headers_at_all(tmp_path: Path) -> None:
    assert headers.find_headers("6.18.0", str(tmp_path / "c"), str(tmp_path / "m"), str(tmp_path / "s"),
                                kheaders=str(tmp_path / "none")) is None


def _btf_blob() -> bytes:
    strings = b"\0int\0inner\0a\0b\0outer\0x\0in\0y\0btf_trace_ev\0"

    def off(name: bytes) -> int:
        return strings.index(b"\0" + name + b"\0") + 1

    types = b""
    types += struct.pack("<III", off(b"int"), 1 << 24, 4) + struct.pack("<I", 32)           # 1: int
    types += struct.pack("<III", off(b"inner"), (4 << 24) | 2, 8)                          # 2: struct inner
    types += struct.pack("<III", off(b"a"), 1, 0) + struct.pack("<III", off(b"b"), 1, 32)
    types += struct.pack("<III", 0, (5 << 24) | 1, 4)                                      # 3: anon union
    types += struct.pack("<III", off(b"y"), 1, 0)
    types += struct.pack("<III", off(b"outer"), (4 << 24) | 3, 16)                         # 4: struct outer
    types += struct.pack("<III", off(b"x"), 1, 0) + struct.pack("<III", off(b"in"), 2, 32)
    types += struct.pack("<III", 0, 3, 96)
    types += struct.pack("<III", off(b"btf_trace_ev"), 8 << 24, 4)                         # 5: typedef -> outer
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def test_btf_member_offsets_nested_and_anonymous() -> None:
    btf = Btf(_btf_blob())
    assert btf.offset("outer", "x") == 0
    assert btf.offset("outer", "in") == 4
    assert btf.offset("outer", "in.b") == 8
    assert btf.offset("outer", "y") == 12
    with pytest.raises(BtfError):
        btf.offset("outer", "nope")
    with pytest.raises(BtfError):
        btf.offset("missing", "x")
    with pytest.raises(BtfError):
        Btf(b"\0" * 32)


def test_btf_typedef_ids_name_what_a_btf_tracepoint_attaches_to() -> None:
    btf = Btf(_btf_blob())
    assert btf.typedef_id("btf_trace_ev") == 5
    with pytest.raises(BtfError):
        btf.typedef_id("outer")  # a struct, not a typedef
