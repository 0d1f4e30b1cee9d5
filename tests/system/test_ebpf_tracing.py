"""The tp_btf loader (ctop/ebpf/tracing.py) against the running kernel: a program it loads runs at every context
switch until its attachment is closed, and a refusal is one sentence naming the program and the verifier's reason."""

from __future__ import annotations

import os

import pytest
from support.env import need, need_root

from ctop.ebpf import btf, progstats, tracing

pytestmark = pytest.mark.system

RETURN_0 = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
EXIT_ONLY = bytes.fromhex("9500000000000000")  # exit with r0 never set: the verifier refuses it


def vmlinux() -> btf.Btf:
    need_root()
    need(os.path.exists(btf.VMLINUX_BTF), "kernel BTF")
    return btf.Btf.load()


def test_a_loaded_tp_btf_program_runs_at_each_switch_until_detached() -> None:
    types = vmlinux()
    was_on = progstats.stats_enabled()
    progstats.set_stats_enabled(True)
    prog_fd, link_fd = tracing.load_and_attach(b"tp_btf__sched_switch", RETURN_0, b"GPL", types)
    try:
        before = progstats.prog_stats(prog_fd)
        progstats.pipe_pingpong(1000)
        during = progstats.prog_stats(prog_fd)
        assert before is not None and during is not None
        assert during.run_cnt - before.run_cnt >= 2000  # two switches per round trip at least
        os.close(link_fd)
        link_fd = -1
        progstats.pipe_pingpong(1000)
        after = progstats.prog_stats(prog_fd)
        assert after is not None and after.run_cnt == during.run_cnt  # detached with its attachment
    finally:
        if link_fd >= 0:
            os.close(link_fd)
        os.close(prog_fd)
        if not was_on:
            progstats.set_stats_enabled(False)


def test_a_refused_program_is_one_sentence_with_the_verifiers_reason() -> None:
    types = vmlinux()
    with pytest.raises(tracing.AttachError, match=r"^the kernel refused tp_btf__sched_switch: .*\(.*R0.*\)$"):
        tracing.load_and_attach(b"tp_btf__sched_switch", EXIT_ONLY, b"GPL", types)
    with pytest.raises(tracing.AttachError, match=r"^no BTF-typed tracepoint no_such_event: typedef "
                                                  r"btf_trace_no_such_event is not in BTF$"):
        tracing.load_and_attach(b"tp_btf__no_such_event", RETURN_0, b"GPL", types)
