"""Compiles, loads and attaches BPF programs with bcc in a short-lived child process, which hands the map, program
and attachment fds to ctop over a unix socket and exits: LLVM (over 100 MB) never stays in ctop's memory.

Parent::

    child = CompilerProcess({"text": text, "cflags": flags, "optional": ["-DX", "-DY"], "first_dropped": ["-DY"],
                             "tp_btf": ["-DY"]})
    prog = child.run()          # an FdProgram, or raises LoadError with one sentence

Child: ``python -m ctop.ebpf.compiler FD`` reads the request from socket FD, answers and exits without detaching
(the perf-event and raw-tracepoint fds it hands over keep the programs attached while ctop holds them). A build that
fails to compile, load or attach is tried again without the ``first_dropped`` flags, then without every ``optional``
one.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from . import handover, tracing
from .fdtables import QUEUE_TYPES, FdFunction, FdProgram, FdTable, MapSpec, possible_cpus
from .typedesc import DescError

PREFIX = "eBPF fields are off because "
NO_BCC = ("eBPF fields are off because the bcc Python module cannot be imported: install python3-bpfcc and run "
          "ctop with the system python3 (or a virtualenv made with --system-site-packages).")
ATTACHMENT_TABLES = ("kprobe_fds", "uprobe_fds", "tracepoint_fds", "raw_tracepoint_fds", "kfunc_entry_fds",
                     "kfunc_exit_fds", "lsm_fds", tracing.TABLE)
DIAGNOSTICS_KEPT = 65536
PR_SET_PDEATHSIG = 1


class LoadError(Exception):
    """Loading failed; the message is one sentence for the user."""


def first_error(diagnostics: str) -> str | None:
    """The first line of compiler output that names an error, trimmed (None when there is none)."""
    for line in diagnostics.splitlines():
        if "error" in line.lower() and line.strip():
            return line.strip()[:200]
    return None


def exit_sentence(returncode: int, diagnostics: str) -> str:
    """Why a child that handed nothing over ended, as one sentence."""
    error = first_error(diagnostics)
    if error:
        return f"{PREFIX}compiling or attaching ctop's programs failed: {error.rstrip('.')}."
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"{PREFIX}the process compiling ctop's programs was killed by {name}."
    return (f"{PREFIX}the process compiling ctop's programs exited with status {returncode} without a message "
            "(LLVM ends it that way, for instance, when a program needs more than 512 bytes of BPF stack).")


def program_of(manifest: dict[str, Any], fds: list[int]) -> FdProgram:
    """The FdProgram a child's manifest describes; fds are indexed by the manifest's ``fd`` entries."""
    ncpus = possible_cpus()
    tables = {}
    unreadable = {}
    for m in manifest["maps"]:
        spec = MapSpec(m["name"], int(m["type"]), int(m["max_entries"]), m["key_desc"], m["leaf_desc"])
        try:
            tables[spec.name.encode()] = FdTable(spec, fds[m["fd"]], ncpus)
        except (DescError, ValueError) as e:  # only a reader of this map fails (as with bcc's own tables)
            unreadable[spec.name.encode()] = (fds[m["fd"]], str(e))
    funcs = {f["name"].encode(): FdFunction(f["name"].encode(), fds[f["fd"]]) for f in manifest["funcs"]}
    attachments = {a["name"]: fds[a["fd"]] for a in manifest["attachments"]}
    return FdProgram(tables, funcs, attachments, unreadable)


class CompilerProcess:
    """One child compile: ``run()`` starts it and waits for its hand-over; ``kill()`` ends it from another thread."""

    def __init__(self, request: dict[str, Any], command: Sequence[str] | None = None) -> None:
        self.request = request
        self.command = list(command) if command is not None else [sys.executable, "-m", "ctop.ebpf.compiler"]
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._killed = False

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs (None before it started)."""
        proc = self._proc
        return proc.pid if proc is not None else None

    def kill(self) -> None:
        """End the child (SIGKILL) if it is still running; run() then raises LoadError."""
        with self._lock:
            self._killed = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()

    def run(self) -> FdProgram:
        """Compile, load and attach in the child; the program set it handed over, or LoadError."""
        ours, theirs = handover.pair()
        with ours, tempfile.TemporaryFile() as output:
            with theirs, self._lock:
                if self._killed:
                    raise LoadError(f"{PREFIX}eBPF was closed while starting.")
                try:
                    self._proc = subprocess.Popen(
                        [*self.command, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                        stdin=subprocess.DEVNULL, stdout=output, stderr=output, close_fds=True,
                        start_new_session=True)  # a Ctrl-C meant for the view does not reach the compiler
                except OSError as e:
                    raise LoadError(f"{PREFIX}the process compiling ctop's programs could not start "
                                    f"({e.strerror}).") from e
            proc = self._proc
            value: Any = None
            fds: list[int] = []
            try:  # a child that ended already cannot take the request, but may have left its answer
                handover.send(ours, self.request)
            except OSError:
                pass
            try:
                value, fds = handover.receive(ours)
            except (handover.HandoverError, OSError, ValueError):
                value, fds = None, []
            returncode = proc.wait()
            output.seek(0)
            diagnostics = output.read(DIAGNOSTICS_KEPT).decode("utf-8", "replace")
        if not isinstance(value, dict) or "error" in value or "maps" not in value:
            for fd in fds:
                os.close(fd)
            if isinstance(value, dict) and value.get("error") == "bcc":
                raise LoadError(NO_BCC)
            if isinstance(value, dict) and "error" in value:
                message = str(value["error"]).strip()
                detail = first_error(diagnostics) or (message.splitlines()[0][:200] if message else "no message")
                raise LoadError(f"{PREFIX}compiling or attaching ctop's programs failed: {detail.rstrip('.')}.")
            raise LoadError(exit_sentence(returncode, diagnostics))
        try:
            return program_of(value, fds)
        except (KeyError, IndexError, TypeError, ValueError, OSError) as e:
            for fd in fds:
                os.close(fd)
            raise LoadError(f"{PREFIX}the compiling process sent a description ctop cannot read ({e}).") from e


# -- the child side ----------------------------------------------------------------------------------------------

def _describe_maps(bcc: ModuleType, bpf: Any, fds: list[int]) -> list[dict[str, Any]]:
    """Every map of the compiled module: name, type, size and bcc's key/leaf descriptions; their fds go in ``fds``."""
    import json

    lib = bcc.libbcc.lib
    lib.bpf_num_tables.restype, lib.bpf_num_tables.argtypes = ctypes.c_size_t, [ctypes.c_void_p]
    for name in ("bpf_table_name", "bpf_table_key_desc_id", "bpf_table_leaf_desc_id"):
        getattr(lib, name).restype = ctypes.c_char_p
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.bpf_table_fd_id.restype, lib.bpf_table_fd_id.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t]
    maps = []
    for i in range(lib.bpf_num_tables(bpf.module)):
        fd = lib.bpf_table_fd_id(bpf.module, i)
        if fd < 0:
            continue
        map_type = int(lib.bpf_table_type_id(bpf.module, i))
        key = (lib.bpf_table_key_desc_id(bpf.module, i) or b"").decode()
        leaf = (lib.bpf_table_leaf_desc_id(bpf.module, i) or b"").decode()
        maps.append({"name": lib.bpf_table_name(bpf.module, i).decode(), "type": map_type,
                     "max_entries": int(lib.bpf_table_max_entries_id(bpf.module, i)),
                     "key_desc": json.loads(key) if key and map_type not in QUEUE_TYPES else None,
                     "leaf_desc": json.loads(leaf) if leaf else None, "fd": len(fds)})
        fds.append(fd)
    return maps


def _describe_attachments(bpf: Any, fds: list[int]) -> list[dict[str, Any]]:
    """Every attachment fd bcc keeps (tracepoints, raw tracepoints, probes), named by where it is attached."""
    out = []
    for table in ATTACHMENT_TABLES:
        for where, held in getattr(bpf, table, {}).items():
            inner = held.items() if isinstance(held, dict) else [("", held)]
            for fn_name, fd in inner:
                if isinstance(fd, int):
                    label = where.decode() if isinstance(where, bytes) else str(where)
                    fn = fn_name.decode() if isinstance(fn_name, bytes) else str(fn_name)
                    out.append({"name": f"{table}:{label}" + (f":{fn}" if fn else ""), "fd": len(fds)})
                    fds.append(fd)
    return out


def _builds(request: dict[str, Any]) -> list[list[str]]:
    """The flag sets to try in turn: all, without ``first_dropped``, without every ``optional`` flag."""
    cflags = list(request["cflags"])
    builds = [cflags]
    for dropped in (request.get("first_dropped", []), request.get("optional", [])):
        fewer = [flag for flag in cflags if flag not in dropped]
        if fewer not in builds:
            builds.append(fewer)
    return builds


def _attach_btf_tracepoints(bpf: Any) -> None:
    """Load and attach the build's tp_btf programs (tracing.py); a refusal detaches the whole build."""
    try:
        tracing.attach_all(bpf)
    except Exception:
        for fd in getattr(bpf, tracing.TABLE, {}).values():
            os.close(fd)
        bpf.cleanup()
        raise


def compile_and_attach(bcc: ModuleType, request: dict[str, Any],
                       attach_btf_tracepoints: Any = _attach_btf_tracepoints) -> Any:
    """bcc.BPF for the request's text and flags, with its tp_btf programs attached when a ``tp_btf`` flag is among
    them; the first of ``_builds`` that compiles, loads and attaches (the last one's error when none does: the
    plainest build's reason)."""
    text = request["text"].encode()
    error: Exception | None = None
    for cflags in _builds(request):
        try:
            bpf = bcc.BPF(text=text, cflags=cflags)
            if any(flag in cflags for flag in request.get("tp_btf", [])):
                attach_btf_tracepoints(bpf)
            return bpf
        except Exception as e:  # bcc raises bare Exception for compile, load and attach errors
            error = e
    assert error is not None
    raise error


def child_main(sock: socket.socket) -> None:
    """Answer one request on ``sock``: the fds and their manifest, or ``{"error": ...}``."""
    import importlib

    request, _none = handover.receive(sock)
    try:
        bcc = importlib.import_module("bcc")
    except Exception:
        handover.send(sock, {"error": "bcc"})
        return
    try:
        bpf = compile_and_attach(bcc, request)
        fds: list[int] = []
        manifest = {"maps": _describe_maps(bcc, bpf, fds),
                    "funcs": [],  # filled below, after the maps, so every fd has one index
                    "attachments": []}
        for name, fn in bpf.funcs.items():
            manifest["funcs"].append({"name": name.decode() if isinstance(name, bytes) else str(name),
                                      "fd": len(fds)})
            fds.append(fn.fd)
        manifest["attachments"] = _describe_attachments(bpf, fds)
    except Exception as e:  # bcc raises bare Exception for compile, load and attach errors
        sys.stderr.flush()
        handover.send(sock, {"error": str(e) or e.__class__.__name__})
        return
    handover.send(sock, manifest, fds)


def main(argv: list[str]) -> None:
    """Entry point of the child: argv[1] is the socket's fd. Never runs bcc's cleanup (it would detach)."""
    code = 0
    try:
        # Die with the thread that started this process (ctop killed mid-compile leaves no compiler behind).
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        with socket.socket(fileno=int(argv[1])) as sock:
            child_main(sock)
    except BaseException as e:  # reported through the exit status and stderr, which the parent reads
        print(f"ctop compiler error: {e.__class__.__name__}: {e}", file=sys.stderr)
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv)
