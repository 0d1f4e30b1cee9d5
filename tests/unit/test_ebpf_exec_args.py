"""Execs with their arguments: argv as the exec program keeps it, and exec events bounded per refresh."""

from __future__ import annotations

import ctypes
import dataclasses

import pytest
from unit.test_ebpf_layout import header_text, struct_like_bcc
from unit.test_history_replay import T0, WEB, live_frame

from ctop.ebpf.layout import parse_header
from ctop.ebpf.maps import exec_args, raw_member
from ctop.model import events
from ctop.model.ebpf import ARGS_TRUNCATED, ExecRecord
from ctop.model.events import EXECS_PER_REFRESH, EventDetector

KEPT = parse_header(header_text()).defines["EXEC_ARGS_LEN"]


def kept(argv: bytes) -> bytes:
    """What the program copies into the record: the first EXEC_ARGS_LEN bytes, the rest of the slot stale."""
    return (argv[:KEPT] + b"stale\0old" * KEPT)[:KEPT]


def test_argv_is_joined_by_spaces() -> None:
    argv = b"/bin/busybox\0sleep\0ctoph-bpf-42\0"
    assert exec_args(kept(argv), len(argv)) == "/bin/busybox sleep ctoph-bpf-42"


def test_an_empty_argument_stays_a_gap_and_nothing_read_is_empty() -> None:
    argv = b"printf\0\0x\0"
    assert exec_args(kept(argv), len(argv)) == "printf  x"
    assert exec_args(kept(b""), 0) == ""


def test_argv_longer_than_kept_ends_in_the_marker() -> None:
    argv = b"sh\0-c\0" + b"y" * 500 + b"\0"
    text = exec_args(kept(argv), len(argv))
    assert text.startswith("sh -c yyy") and text.endswith(ARGS_TRUNCATED)
    assert len(text) == KEPT + len(ARGS_TRUNCATED)
    assert "stale" not in text


def test_the_whole_char_array_is_read_past_its_first_nul() -> None:
    record_type = struct_like_bcc("exec_record", parse_header(header_text()).structs["exec_record"])
    record = record_type()
    argv = b"ls\0-l\0/tmp\0"
    ctypes.memmove(ctypes.addressof(record) + record_type.args.offset, argv, len(argv))
    record.args_len = len(argv)
    assert record.args == b"ls"  # what ctypes gives for a char array member
    assert exec_args(raw_member(record, "args"), record.args_len) == "ls -l /tmp"


def _execs(start: int, count: int) -> tuple[ExecRecord, ...]:
    return tuple(ExecRecord(pid=1000 + i, ppid=999, comm="sleep", filename="/bin/busybox", unix_time=T0 + i / 100,
                            args=f"sleep 0 ctoph-bpf-{i}") for i in range(start, start + count))


def test_exec_events_carry_arguments_and_a_storm_is_bounded_per_refresh() -> None:
    detector = EventDetector()
    frame, previous = live_frame(1, None)
    first = detector.observe(dataclasses.replace(frame, ebpf_execs={WEB: _execs(0, 2)}))
    execs = [e for e in first if e.type == "exec"]
    assert [e.figures["args"] for e in execs] == ["sleep 0 ctoph-bpf-0", "sleep 0 ctoph-bpf-1"]
    assert execs[0].workload == "docker:web" and execs[0].figures["comm"] == "sleep"
    assert not [e for e in first if e.type == "exec_more"]
    # The log still holds the two seen ones, and 30 new ones; the counter (1 before) says 40 happened since.
    frame, previous = live_frame(2, previous)
    row = frame.rows[WEB]
    assert row.ebpf is not None
    rows = {**frame.rows, WEB: dataclasses.replace(row, ebpf=dataclasses.replace(row.ebpf, execs=1 + 40))}
    second = detector.observe(dataclasses.replace(frame, rows=rows, ebpf_execs={WEB: _execs(0, 32)}))
    listed = [e.figures["args"] for e in second if e.type == "exec"]
    assert listed == [f"sleep 0 ctoph-bpf-{i}" for i in range(2, 2 + EXECS_PER_REFRESH)]
    more = [e for e in second if e.type == "exec_more"]
    assert len(more) == 1 and more[0].figures["execs"] == 40 - EXECS_PER_REFRESH
    frame, _ = live_frame(3, previous)
    assert not [e for e in detector.observe(dataclasses.replace(frame, ebpf_execs={WEB: _execs(0, 32)}))
                if e.type.startswith("exec")]  # nothing new: nothing listed again


def test_a_frame_lists_at_most_its_budget_of_execs_over_all_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "EXECS_PER_FRAME", 3)
    detector = EventDetector()
    frame, _ = live_frame(1, None)
    containers = [p for p, r in frame.rows.items() if r.identity.kind == "container"]
    assert len(containers) == 2
    seen = detector.observe(dataclasses.replace(frame, ebpf_execs={p: _execs(0, 4) for p in containers}))
    assert len([e for e in seen if e.type == "exec"]) == 3
    assert sorted(e.figures["execs"] for e in seen if e.type == "exec_more") == [1, 4]
