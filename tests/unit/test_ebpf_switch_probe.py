"""sched_switch is a BTF-typed raw tracepoint (tp_btf) where the kernel (>= 5.18) and BTF offsets allow it, else a
raw one, else the classic one."""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from ctop.ebpf import compiler, loader, tracing
from ctop.ebpf.compiler import compile_and_attach
from ctop.ebpf.health import program_label
from ctop.ebpf.threads import ThreadMap
from ctop.sources.cgroupfs_layout import CgroupLayout

TRACKING = loader.Tracking(hierarchy_id=0, root="/sys/fs/cgroup", root_id=1, v2=True)
THREADS = ThreadMap(4096)
BTF_OFFSETS = {"RUN_DELAY_OFFSET": 1, "TGID_OFFSET": 3, "PID_OFFSET": 4}


@pytest.mark.parametrize(("raw_switch", "options", "offsets", "expected"), [
    (True, loader.LoadOptions(), BTF_OFFSETS, True),
    (False, loader.LoadOptions(), BTF_OFFSETS, False),  # kernel before 5.18: no prev_state argument
    (True, loader.LoadOptions(raw_tracepoint=False), BTF_OFFSETS, False),
    (True, loader.LoadOptions(), {"TGID_OFFSET": 3}, False),  # no run_delay offset: timestamps need next's pid
    (True, loader.LoadOptions(use_btf=False), {}, False),  # no BTF: timestamps from the classic tracepoint
])
def test_raw_switch_flag_only_where_it_can_work(raw_switch: bool, options: loader.LoadOptions,
                                                 offsets: dict[str, int], expected: bool) -> None:
    flags = loader.build_cflags(TRACKING, options, offsets, THREADS, task_btf=True, raw_switch=raw_switch)
    assert (loader.RAW_SWITCH_FLAG in flags) is expected


@pytest.mark.parametrize(("options", "offsets", "task_btf", "expected"), [
    (loader.LoadOptions(), BTF_OFFSETS, True, True),
    (loader.LoadOptions(btf_tracepoint=False), BTF_OFFSETS, True, False),
    (loader.LoadOptions(raw_tracepoint=False), BTF_OFFSETS, True, False),  # no raw tracepoint: no BTF-typed one
    (loader.LoadOptions(), {"RUN_DELAY_OFFSET": 1}, True, False),  # no pid offset: the raw one asks the helper
    (loader.LoadOptions(), BTF_OFFSETS, False, False),  # kernel before 5.11
])
def test_btf_switch_flag_only_with_the_raw_one_and_the_pid_offset(options: loader.LoadOptions,
                                                                   offsets: dict[str, int], task_btf: bool,
                                                                   expected: bool) -> None:
    flags = loader.build_cflags(TRACKING, options, offsets, THREADS, task_btf=task_btf, raw_switch=True)
    assert (loader.BTF_SWITCH_FLAG in flags) is expected
    if expected:
        assert loader.RAW_SWITCH_FLAG in flags and "-DPID_OFFSET=4" in flags


def test_both_switch_programs_are_in_the_source_and_the_flag_is_optional() -> None:
    text = loader.program_text()
    assert re.search(r"#if defined\(BTF_SCHED_SWITCH\)\s+/\*.*?\*/\s*int tp_btf__sched_switch\(u64 \*ctx\)", text,
                     re.S)
    assert re.search(r"#elif defined\(RAW_SCHED_SWITCH\)\s+/\*.*?\*/\s*RAW_TRACEPOINT_PROBE\(sched_switch\)", text,
                     re.S)
    assert "TRACEPOINT_PROBE(sched, sched_switch)" in text
    assert loader.kernel_version("5.17.3") < loader.RAW_SWITCH_KERNEL <= loader.kernel_version("5.18.0-1-amd64")


def test_switch_probe_is_named_from_the_loaded_programs() -> None:
    assert loader.switch_probe({b"raw_tracepoint__sched_switch": 1, b"tracepoint__sched__sched_fork": 2}) == \
        "raw_tracepoint"
    assert loader.switch_probe({b"tracepoint__sched__sched_switch": 1}) == "tracepoint"
    assert loader.switch_probe({b"tp_btf__sched_switch": 1}) == "tp_btf"


def test_both_switch_programs_report_as_the_same_event() -> None:
    assert program_label("raw_tracepoint__sched_switch") == "sched:sched_switch"
    assert program_label("tp_btf__sched_switch") == "sched:sched_switch"
    assert program_label("tracepoint__sched__sched_switch") == "sched:sched_switch"
    assert program_label("raw_tracepoint__other") == "raw_tracepoint__other"


class _RefusingBcc:
    """A bcc module whose BPF() fails while the raw sched_switch flag is given (a kernel refusing it)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def BPF(self, text: bytes, cflags: list[str]) -> str:
        self.calls.append(list(cflags))
        if loader.RAW_SWITCH_FLAG in cflags:
            raise Exception("Failed to attach BPF to raw tracepoint")
        return "loaded"


def test_a_refused_raw_tracepoint_falls_back_to_the_classic_one() -> None:
    fake = _RefusingBcc()
    request = {"text": "x", "cflags": ["-DA", "-DCURRENT_TASK_BTF", loader.RAW_SWITCH_FLAG],
               "optional": ["-DCURRENT_TASK_BTF", loader.RAW_SWITCH_FLAG]}
    assert compile_and_attach(fake, request) == "loaded"  # type: ignore[arg-type]
    assert fake.calls == [request["cflags"], ["-DA"]]


class _CapturingCompiler:
    """Stands in for the compiler child: keeps the request, loads nothing."""

    def __init__(self) -> None:
        self.request: dict = {}

    def run(self) -> None:
        raise loader.LoadError("not loaded in unit tests")


def test_load_asks_for_the_raw_flag_as_an_optional_one(tmp_path: pathlib.Path) -> None:
    layout = CgroupLayout(mode="v2", root=str(tmp_path), unified=str(tmp_path))
    compiler = _CapturingCompiler()
    with pytest.raises(loader.LoadError):
        loader.load(layout, compiler=compiler)  # type: ignore[arg-type]
    assert loader.RAW_SWITCH_FLAG in compiler.request["optional"]


def test_the_thread_array_is_mmapable_from_linux_5_5_and_the_flag_is_optional(tmp_path: pathlib.Path) -> None:
    assert loader.MMAPABLE_FLAG in loader.build_cflags(TRACKING, loader.LoadOptions(), {}, THREADS, mmapable=True)
    assert loader.MMAPABLE_FLAG not in loader.build_cflags(TRACKING, loader.LoadOptions(), {}, THREADS)
    assert loader.kernel_version("5.4.0-150-generic") < loader.MMAPABLE_KERNEL <= loader.kernel_version("5.5.0")
    text = loader.program_text()
    assert re.search(r"#ifdef THREADS_MMAPABLE\s+BPF_F_TABLE\(\"array\", int, struct thread_state, threads, "
                     r"THREADS_MAX, CTOP_F_MMAPABLE\);", text)
    layout = CgroupLayout(mode="v2", root=str(tmp_path), unified=str(tmp_path))
    compiler = _CapturingCompiler()
    with pytest.raises(loader.LoadError):
        loader.load(layout, compiler=compiler)  # type: ignore[arg-type]
    assert loader.MMAPABLE_FLAG in compiler.request["optional"]
    assert (loader.MMAPABLE_FLAG in compiler.request["cflags"]) is (loader.kernel_version() >= loader.MMAPABLE_KERNEL)


class _Build:
    """What the fake bcc gives back: the flags it was built with, cleaned up or not."""

    def __init__(self, cflags: list[str]) -> None:
        self.cflags, self.cleaned = cflags, False

    def cleanup(self) -> None:
        self.cleaned = True


class _Bcc:
    """A bcc module whose builds all compile."""

    def __init__(self) -> None:
        self.builds: list[_Build] = []

    def BPF(self, text: bytes, cflags: list[str]) -> _Build:
        self.builds.append(_Build(list(cflags)))
        return self.builds[-1]


def _request() -> dict:
    return {"text": "x", "cflags": ["-DA", "-DCURRENT_TASK_BTF", loader.RAW_SWITCH_FLAG, loader.BTF_SWITCH_FLAG],
            "optional": ["-DCURRENT_TASK_BTF", loader.RAW_SWITCH_FLAG, loader.BTF_SWITCH_FLAG],
            "first_dropped": [loader.BTF_SWITCH_FLAG], "tp_btf": [loader.BTF_SWITCH_FLAG]}


def test_a_refused_btf_tracepoint_falls_back_to_the_raw_one() -> None:
    fake = _Bcc()
    attached: list[list[str]] = []

    def refuse(build: _Build) -> None:
        attached.append(build.cflags)
        raise OSError("Permission denied")

    got = compile_and_attach(fake, _request(), attach_btf_tracepoints=refuse)  # type: ignore[arg-type]
    assert got is fake.builds[1] and len(fake.builds) == 2
    assert got.cflags == ["-DA", "-DCURRENT_TASK_BTF", loader.RAW_SWITCH_FLAG]  # the raw tracepoint stays
    assert attached == [_request()["cflags"]]  # tp_btf programs are attached only where the flag brings them


def test_the_btf_tracepoint_is_attached_when_the_kernel_takes_it() -> None:
    fake = _Bcc()
    attached: list[_Build] = []
    got = compile_and_attach(fake, _request(), attach_btf_tracepoints=attached.append)  # type: ignore[arg-type]
    assert got is fake.builds[0] and attached == [got]


def test_the_load_asks_for_the_btf_flag_first_dropped(tmp_path: pathlib.Path) -> None:
    layout = CgroupLayout(mode="v2", root=str(tmp_path), unified=str(tmp_path))
    compiler = _CapturingCompiler()
    with pytest.raises(loader.LoadError):
        loader.load(layout, compiler=compiler)  # type: ignore[arg-type]
    request = compiler.request
    assert request["first_dropped"] == [loader.BTF_SWITCH_FLAG] == request["tp_btf"]
    assert loader.BTF_SWITCH_FLAG in request["optional"]


def test_a_build_whose_btf_tracepoint_fails_is_cleaned_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The attachments made before the refusal are closed and bcc's own detached, so the next build counts alone."""
    read_end, write_end = os.pipe()
    os.close(read_end)

    def attach_one_then_refuse(bpf: _Build, btf_path: str = "") -> int:
        setattr(bpf, tracing.TABLE, {b"first": write_end})
        raise tracing.AttachError("the kernel refused tp_btf__second: Permission denied")

    monkeypatch.setattr(tracing, "attach_all", attach_one_then_refuse)
    build = _Build([loader.BTF_SWITCH_FLAG])
    with pytest.raises(tracing.AttachError):
        compiler._attach_btf_tracepoints(build)
    assert build.cleaned
    with pytest.raises(OSError):
        os.fstat(write_end)  # closed
