"""The eBPF source: the only interface the rest of ctop uses (start in the background, status, read, close).

Usage::

    src = EbpfSource(layout)
    src.start()                 # returns at once; headers, compile and attach happen in a thread
    ...
    reading = src.read()        # None until src.status().state == "ready"
    src.close()
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..model import notices
from ..model.ebpf import EbpfReading, EbpfStatus
from ..sources.cgroupfs_layout import CgroupLayout
from .compiler import NO_BCC, CompilerProcess
from .health import RunStats, ns_per_event
from .loader import Loaded, LoadError
from .progstats import prog_stats

if TYPE_CHECKING:
    from .maps import MapReader

NOT_ROOT = notices.NOT_ROOT.sentence
NO_TRACEFS = ("eBPF fields are off because tracefs is not mounted and could not be mounted: run "
              "'mount -t tracefs nodev /sys/kernel/tracing'.")
NO_HEADERS = ("eBPF fields are off because no kernel headers were found for bcc: install your distribution's "
              "linux-headers package (e.g. apt-get install linux-headers-amd64).")
DISABLED = "eBPF fields are off because eBPF was disabled in ctop's options."


def bcc_findable(bcc_module: str = "bcc") -> bool:
    """Whether ``bcc_module`` can be found, without importing it (importing bcc loads libbcc: some 65 MB)."""
    try:
        return importlib.util.find_spec(bcc_module) is not None
    except (ImportError, ValueError):
        return False


def prerequisite_problem(bcc_module: str = "bcc") -> tuple[str | None, str | None]:
    """(one-sentence reason why eBPF cannot run, or None; the bcc module's name when it can).

    Mounts tracefs/debugfs and prepares a kernel header tree as needed (see headers.py); never raises. bcc itself
    is imported only by the compiler process (a broken install is reported from there).
    """
    from . import headers

    if os.geteuid() == 0:
        headers.ensure_tracefs()
    if not bcc_findable(bcc_module):
        return NO_BCC, None
    if os.geteuid() != 0:
        return NOT_ROOT, None
    if headers.tracefs_dir() is None:
        return NO_TRACEFS, None
    try:
        tree = headers.find_headers()
    except OSError as e:
        return (f"eBPF fields are off because a kernel header tree could not be prepared under "
                f"{headers.DEFAULT_CACHE_DIR} ({e.strerror}): make that directory writable."), None
    if tree is None:
        return NO_HEADERS, None
    headers.apply_to_environment(tree)  # the compiler process inherits the environment
    return None, bcc_module


class EbpfSource:
    """Per-cgroup scheduler, process-churn and OOM counters from ctop's BPF programs.

    ``bcc_module`` names the module to import as bcc (tests pass a missing name to see the "no bcc" status);
    ``compiler_command`` replaces ``python -m ctop.ebpf.compiler`` (tests pass children that die).
    ``run_stats`` keeps the kernel's BPF run-time statistics on from ``start()`` to ``close()`` so that
    ``ns_per_event()`` has data (see health.RunStats).
    """

    def __init__(self, layout: CgroupLayout, *, enabled: bool = True, bcc_module: str = "bcc",
                 run_stats: bool = False, compiler_command: Sequence[str] | None = None) -> None:
        self._layout = layout
        self._enabled = enabled
        self._bcc_module = bcc_module
        self._lock = threading.Lock()
        self._status = EbpfStatus("off", DISABLED if not enabled else "eBPF has not been started.")
        self._thread: threading.Thread | None = None
        self._loaded: Loaded | None = None
        self._reader: MapReader | None = None
        self._closed = False
        self._run_stats = RunStats() if run_stats else None
        self._compiler = CompilerProcess({}, compiler_command)

    def start(self) -> None:
        """Prepare, compile and attach in a background thread; returns at once and never raises."""
        with self._lock:
            if not self._enabled or self._thread is not None or self._closed:
                return
            self._status = EbpfStatus("starting", "eBPF programs are being compiled.")
            if self._run_stats is not None and os.geteuid() == 0:
                self._run_stats.open()  # here, not in the thread: the caller may drop privileges next
            self._thread = threading.Thread(target=self._load, name="ctop-ebpf-load", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            reason, _bcc = prerequisite_problem(self._bcc_module)
            if reason is not None:
                self._set_failed(reason)
                return
            from . import loader, maps

            loaded = loader.load(self._layout, compiler=self._compiler)
            try:
                reader = maps.MapReader(loaded)
            except BaseException:
                loaded.bpf.cleanup()
                raise
        except Exception as e:  # LoadError carries its own sentence; anything else is summed up
            message = str(e) if isinstance(e, LoadError) else (
                f"eBPF fields are off because loading failed ({e.__class__.__name__}: {str(e)[:120]}).")
            self._set_failed(message)
            return
        with self._lock:
            if self._closed:
                loaded.bpf.cleanup()
                return
            self._loaded, self._reader = loaded, reader
            self._status = EbpfStatus("ready", "")

    def _set_failed(self, reason: str) -> None:
        with self._lock:
            if not self._closed:
                self._status = EbpfStatus("failed", reason)

    def wait_ready(self, timeout: float | None = None) -> EbpfStatus:
        """Block until loading has finished (for tests, ``ctop doctor`` and batch mode); returns the status."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()

    def status(self) -> EbpfStatus:
        with self._lock:
            return self._status

    def read(self) -> EbpfReading | None:
        """One batch read of every map (cumulative counters), or None until ready or after a read error."""
        with self._lock:
            reader = self._reader
            if reader is None:
                return None
            try:
                return reader.read()
            except Exception as e:  # a map read failing must never fail a refresh
                self._status = EbpfStatus(
                    "failed", f"eBPF fields stopped because reading the BPF maps failed ({str(e)[:120]}).")
                self._reader = None
                return None

    def ns_per_event(self) -> dict[str, float]:
        """Average ns per run of each loaded program since it was loaded, by event ("sched:sched_switch").

        Empty until ready; a program that has not run while run-time statistics were on is left out.
        """
        with self._lock:
            loaded = self._loaded
            if loaded is None:
                return {}
            fds = {name.decode(): fn.fd for name, fn in loaded.bpf.funcs.items()}
            return ns_per_event({name: prog_stats(fd) for name, fd in fds.items()})

    @property
    def run_stats(self) -> str:
        """How run-time statistics are kept on: "fd", "sysctl", "already on", or "" (not asked for, or refused)."""
        return self._run_stats.method if self._run_stats is not None else ""

    @property
    def runq_method(self) -> str:
        """``sched_info`` (BTF offset of task_struct.sched_info.run_delay) or ``timestamps`` (wake-up probes)."""
        loaded = self._loaded
        return loaded.runq_method if loaded else ""

    @property
    def compiler_pid(self) -> int | None:
        """The pid of the process compiling the programs (None before it started; it exits once they are loaded)."""
        return self._compiler.pid

    def close(self) -> None:
        """Detach every program and free the maps; safe to call more than once, also while starting (the
        compiling process is killed)."""
        self._compiler.kill()
        with self._lock:
            self._closed = True
            loaded, self._loaded, self._reader = self._loaded, None, None
            self._status = EbpfStatus("off", "eBPF was closed.")
        if loaded is not None:
            loaded.bpf.cleanup()
        if self._run_stats is not None:
            self._run_stats.close()
