"""Loads and attaches the BTF-typed raw tracepoint programs (tp_btf) that bcc compiles but cannot load: in the
compiler child only, beside bcc's own attachments.

A function named ``tp_btf__<event>`` is loaded as a tracing program attached to ``btf_trace_<event>`` of the
kernel's BTF (Linux >= 5.5). Its arguments are typed: a task pointer among them is read with plain loads the verifier
checks against the kernel's layout, where a raw tracepoint program needs a helper call (sched.bpf.c).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from .btf import VMLINUX_BTF, Btf, BtfError

PREFIX = b"tp_btf__"
TABLE = "tp_btf_fds"  # the attribute of the bcc object holding the attachments, as bcc's own *_fds tables

_BPF_PROG_LOAD, _BPF_RAW_TRACEPOINT_OPEN = 5, 17
_BPF_PROG_TYPE_TRACING, _BPF_TRACE_RAW_TP = 26, 23
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}
_LOG_SIZE = 1 << 20


class AttachError(Exception):
    """The kernel refused to load or attach a tp_btf program (the message says which and why)."""


class _ProgLoadAttr(ctypes.Structure):
    """The leading fields of union bpf_attr for BPF_PROG_LOAD, up to attach_btf_id (zero-padded beyond)."""

    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
                ("expected_attach_type", ctypes.c_uint32), ("prog_btf_fd", ctypes.c_uint32),
                ("func_info_rec_size", ctypes.c_uint32), ("func_info", ctypes.c_uint64),
                ("func_info_cnt", ctypes.c_uint32), ("line_info_rec_size", ctypes.c_uint32),
                ("line_info", ctypes.c_uint64), ("line_info_cnt", ctypes.c_uint32), ("attach_btf_id", ctypes.c_uint32),
                ("attach_prog_fd", ctypes.c_uint32), ("_rest", ctypes.c_char * 64)]


class _RawTracepointAttr(ctypes.Structure):
    """union bpf_attr for BPF_RAW_TRACEPOINT_OPEN: no name, the program's attach_btf_id says where."""

    _fields_ = [("name", ctypes.c_uint64), ("prog_fd", ctypes.c_uint32), ("_pad", ctypes.c_uint32),
                ("_rest", ctypes.c_char * 64)]


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise AttachError(f"tp_btf programs are not supported on {os.uname().machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    result = int(libc.syscall(number, cmd, ctypes.byref(attr), ctypes.sizeof(attr)))
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


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
    attr = _ProgLoadAttr(prog_type=_BPF_PROG_TYPE_TRACING, insn_cnt=len(insns) // 8, insns=ctypes.addressof(code),
                         license=ctypes.addressof(lic), log_level=0, log_size=0, log_buf=0,
                         prog_name=name[:15], expected_attach_type=_BPF_TRACE_RAW_TP, attach_btf_id=target)
    try:
        prog_fd = _bpf(_BPF_PROG_LOAD, attr)
    except OSError:
        attr.log_level, attr.log_size, attr.log_buf = 1, _LOG_SIZE, ctypes.addressof(log)  # again, for the reason
        try:
            prog_fd = _bpf(_BPF_PROG_LOAD, attr)
        except OSError as e:
            reason = _verifier_reason(log.value.decode("utf-8", "replace"))
            raise AttachError(f"the kernel refused {name.decode()}: {e.strerror}"
                              + (f" ({reason})" if reason else "")) from e
    try:
        link_fd = _bpf(_BPF_RAW_TRACEPOINT_OPEN, _RawTracepointAttr(name=0, prog_fd=prog_fd))
    except OSError as e:
        os.close(prog_fd)
        raise AttachError(f"attaching {name.decode()} failed: {e.strerror}") from e
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
