"""eBPF helpers for system tests: a loaded source (the `ebpf` fixture, tests/conftest.py), a reading that must exist."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ctop.ebpf import headers, loader, maps
from ctop.ebpf.source import EbpfSource
from ctop.model.ebpf import EbpfReading

from .cgroups import host_layout
from .env import need, need_root, patience

BUSY_LOOP = "while :; do :; done"
# A web-like task: a few ms of CPU per request, then a short sleep; long enough to be preempted by its neighbours.
WEB_LIKE = ("import time\n"
            "while True:\n"
            "    end = time.perf_counter() + 0.004\n"
            "    while time.perf_counter() < end: pass\n"
            "    time.sleep(0.002)\n")


def read(src: EbpfSource) -> EbpfReading:
    """The source's next reading; fails with its status when there is none."""
    reading = src.read()
    assert reading is not None, src.status().reason
    return reading


def loaded_source() -> Iterator[EbpfSource]:
    """One loaded source (a compile costs ~0.4 s of CPU and ~130 MB), closed afterwards."""
    need_root()
    src = EbpfSource(host_layout())
    src.start()
    status = src.wait_ready(patience(60))
    need(status.state == "ready", f"eBPF ({status.reason})")
    yield src
    src.close()


def use_kernel_headers() -> None:
    """Point bcc at kernel headers (the host's or ctop's built tree) and make sure tracefs is mounted, as ctop does
    before it loads its programs; skips (fails in CI) when there are none."""
    need(headers.ensure_tracefs() is not None, "tracefs")
    tree = headers.find_headers()
    need(tree is not None, "kernel headers for bcc")
    assert tree is not None
    headers.apply_to_environment(tree)


def tagged_thread_array(slots: int = 16) -> loader.LoadOptions:
    """Load options for a tagged thread array of ``slots`` slots, as hosts whose pid_max is above 2^18 (systemd's
    4194304) have; so few slots that most threads share theirs and go to the hash beside it (`threads_more`)."""
    return loader.LoadOptions(threads_max=slots)


@contextmanager
def loaded_reader(options: loader.LoadOptions | None = None) -> Iterator[tuple[loader.Loaded, maps.MapReader]]:
    """ctop's programs loaded in this process (kernel headers as ctop finds them) and a map reader that has read
    once; the programs are detached afterwards."""
    use_kernel_headers()
    loaded = loader.load(host_layout(), options or loader.LoadOptions())
    try:
        reader = maps.MapReader(loaded)
        reader.read()
        yield loaded, reader
    finally:
        loaded.bpf.cleanup()
