"""Loads and attaches the BTF-typed raw tracepoint programs (tp_btf) that bcc compiles but cannot load: in the
compiler child only, beside bcc's own attachments.

A function named ``tp_btf__<event>`` is loaded as a tracing program attached to ``btf_trace_<event>`` of the
kernel's BTF (Linux >= 5.5). Its arguments are typed: a task pointer among them is read with plain loads the verifier
checks against the kernel's layout, where a raw tracepoint program needs a helper call (sched.bpf.c).
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Any

from . import rawbpf
from .btf import VMLINUX_BTF, Btf, BtfError

PREFIX = b"tp_btf__"
TABLE = "tp_btf_fds"  # the attribute of the bcc object holding the attachments, as bcc's own *_fds tables

_PROG_LOAD, _RAW_TRACEPOINT_OPEN = 5, 17
_PROG_TYPE_TRACING, _TRACE_RAW_TP = 26, 23
# union bpf_attr for BPF_PROG_LOAD up to attach_btf_id: prog_type, insn_cnt, insns, license, log_level, log_size,
# log_buf, kern_version, prog_flags, prog_name, prog_ifindex, expected_attach_type, prog_btf_fd, func_info_rec_size,
# func_info, func_info_cnt, line_info_rec_size, line_info, line_info_cnt, attach_btf_id
_PROG_LOAD_ATTR = struct.Struct("=IIQQIIQII16sIIIIQIIQII")
_RAW_TRACEPOINT_ATTR = struct.Struct("=QII")  # name (none: the program's attach_btf_id says where), prog_fd, pad
_LOG_SIZE = 1 << 20


class AttachError(Exception):
    """The kernel refused to load or attach a tp_btf program (the message says which and why)."""


def _verifier_reason(log: str) -> str:
    """The verifier's last message before its statistics (``processed N insns ...``, ``verification time``)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    while lines and lines[-1].startswith(("processed ", "verification time", "stack depth")):
        lines.pop()
    return lines[-1] if lines else ""


def load_and_attach(name: bytes, insns: bytes, license_: bytes, btf: Btf) -> tuple[int, int]:
    """(program fd, attachment fd) of function ``name`` (tp_btf__<event>) compiled to ``insns``."""
    event = name[len(PREFIX):].decode()
    try:
        target = btf.typedef_id(f"btf_trace_{event}")
    except BtfError as e:
        raise AttachError(f"no BTF-typed tracepoint {event}: {e}") from e
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license_)
    log = ctypes.create_string_buffer(_LOG_SIZE)

    def load(log_level: int) -> int:
        log_size, log_buf = (_LOG_SIZE, ctypes.addressof(log)) if log_level else (0, 0)
        return rawbpf.bpf(_PROG_LOAD, _PROG_LOAD_ATTR.pack(
            _PROG_TYPE_TRACING, len(insns) // 8, ctypes.addressof(code), ctypes.addressof(lic), log_level, log_size,
            log_buf, 0, 0, name[:15], 0, _TRACE_RAW_TP, 0, 0, 0, 0, 0, 0, 0, target))

    prog_fd = load(0)
    if prog_fd < 0:
        prog_fd = load(1)  # again, for the verifier's reason
    if prog_fd < 0:
        reason = _verifier_reason(log.value.decode("utf-8", "replace"))
        raise AttachError(f"the kernel refused {name.decode()}: {os.strerror(-prog_fd)}"
                          + (f" ({reason})" if reason else ""))
    link_fd = rawbpf.bpf(_RAW_TRACEPOINT_OPEN, _RAW_TRACEPOINT_ATTR.pack(0, prog_fd, 0))
    if link_fd < 0:
        os.close(prog_fd)
        raise AttachError(f"attaching {name.decode()} failed: {os.strerror(-link_fd)}")
    return prog_fd, link_fd


def attach_all(bpf: Any, btf_path: str = VMLINUX_BTF) -> int:
    """Load and attach every tp_btf__ function of bcc module ``bpf``; they join ``bpf.funcs`` and their attachments
    ``bpf.tp_btf_fds`` (by event). Returns how many; AttachError names the first one refused."""
    import bcc

    lib = bcc.lib
    names = [lib.bpf_function_name(bpf.module, i) for i in range(lib.bpf_num_functions(bpf.module))]
    wanted = [n for n in names if n.startswith(PREFIX)]
    if not wanted:
        return 0
    try:
        btf = Btf.load(btf_path)
    except BtfError as e:
        raise AttachError(str(e)) from e
    held = getattr(bpf, TABLE, None)
    if held is None:
        held = {}
        setattr(bpf, TABLE, held)
    for name in wanted:
        prog_fd, link_fd = load_and_attach(name, bpf.dump_func(name), lib.bpf_module_license(bpf.module), btf)
        bpf.funcs[name] = bcc.BPF.Function(bpf, name, prog_fd)
        held[name[len(PREFIX):]] = link_fd
    return len(wanted)
