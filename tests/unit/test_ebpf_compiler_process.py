"""The compiler child's end, whatever it is, becomes one sentence: silent exit, a signal, compiler errors, no bcc;
a hand-over of real fds becomes an FdProgram (no kernel needed: pipes stand in for maps and programs)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from ctop.ebpf.compiler import NO_BCC, CompilerProcess, LoadError, exit_sentence, first_error

PY = sys.executable


def _fails_with(code: str) -> str:
    with pytest.raises(LoadError) as caught:
        CompilerProcess({"text": "", "cflags": []}, [PY, "-c", code]).run()
    sentence = str(caught.value)
    assert sentence.startswith("eBPF fields are off because ") and sentence.endswith(".")
    assert ". " not in sentence and "\n" not in sentence  # one sentence
    return sentence


def test_a_child_that_exits_1_without_a_word_is_named_with_its_status() -> None:
    sentence = _fails_with("import os; os._exit(1)")
    assert "exited with status 1 without a message" in sentence and "512 bytes" in sentence


def test_a_child_killed_by_a_signal_says_which() -> None:
    assert "killed by SIGKILL" in _fails_with("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")


def test_the_first_compiler_error_line_is_the_reason() -> None:
    code = ("import sys; print('warning: something harmless', file=sys.stderr); "
            "print('/virtual/main.c:12:5: error: use of undeclared identifier x', file=sys.stderr); sys.exit(1)")
    assert _fails_with(code).endswith("failed: /virtual/main.c:12:5: error: use of undeclared identifier x.")


def test_an_error_message_from_the_child_is_the_reason() -> None:
    code = ("import socket, sys; from ctop.ebpf import handover; "
            "handover.send(socket.socket(fileno=int(sys.argv[1])), {'error': 'Failed to attach BPF program'})")
    assert "failed: Failed to attach BPF program." in _fails_with(code)


def test_a_child_without_bcc_says_how_to_get_it() -> None:
    code = ("import socket, sys; from ctop.ebpf import handover; "
            "handover.send(socket.socket(fileno=int(sys.argv[1])), {'error': 'bcc'})")
    assert _fails_with(code) == NO_BCC


def test_kill_before_run_never_starts_a_child() -> None:
    child = CompilerProcess({}, [PY, "-c", "raise SystemExit(0)"])
    child.kill()
    with pytest.raises(LoadError):
        child.run()
    assert child.pid is None


def test_a_handover_of_fds_becomes_a_program_whose_fds_are_ours() -> None:
    code = """
import os, socket, sys
from ctop.ebpf import handover
r, w = os.pipe()
os.write(w, b"prog")
manifest = {"maps": [{"name": "seqs", "type": 2, "max_entries": 4, "key_desc": "int",
                      "leaf_desc": "unsigned long long", "fd": 0}],
            "funcs": [{"name": "tracepoint__sched__sched_switch", "fd": 1}],
            "attachments": [{"name": "tracepoint_fds:sched:sched_switch", "fd": 1}]}
handover.send(socket.socket(fileno=int(sys.argv[1])), manifest, [w, r])
"""
    prog = CompilerProcess({}, [PY, "-c", code]).run()
    try:
        table = prog[b"seqs"]
        assert table.max_entries == 4 and table.Key.__name__ == "c_int" and table.sLeaf is table.Leaf
        fn = prog.funcs[b"tracepoint__sched__sched_switch"]
        assert os.read(fn.fd, 4) == b"prog"  # the pipe's read end, alive after the child exited
        assert list(prog.attachments) == ["tracepoint_fds:sched:sched_switch"]
    finally:
        prog.cleanup()
    with pytest.raises(OSError):
        os.fstat(fn.fd)
    prog.cleanup()  # twice is fine


def test_exit_sentences() -> None:
    assert first_error("note: x\n  In file: error: boom\n") == "In file: error: boom"
    assert first_error("all good") is None
    assert "killed by SIGTERM" in exit_sentence(-signal.SIGTERM, "")
    assert "killed by signal 99" in exit_sentence(-99, "")
    assert "status 3" in exit_sentence(3, "")


def test_a_map_whose_type_cannot_be_built_fails_only_its_readers() -> None:
    from ctop.ebpf.compiler import program_of

    r, w = os.pipe()
    odd = ["odd", [["a", "unsigned int"], ["b", "unsigned int"], ["c", "unsigned int"]], "struct"]
    manifest = {"maps": [{"name": "seqs", "type": 2, "max_entries": 4, "key_desc": "int",
                          "leaf_desc": "unsigned long long", "fd": 0},
                         {"name": "odd", "type": 6, "max_entries": 1, "key_desc": "int", "leaf_desc": odd, "fd": 1}],
                "funcs": [], "attachments": []}
    prog = program_of(manifest, [r, w])
    assert prog[b"seqs"].max_entries == 4
    with pytest.raises(ValueError, match="map odd cannot be read: per-CPU map odd has a leaf of 12 bytes"):
        prog[b"odd"]
    prog.cleanup()
    for fd in (r, w):  # held until cleanup, then closed
        with pytest.raises(OSError):
            os.fstat(fd)
