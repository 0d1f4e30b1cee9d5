"""The eBPF source's status and reason when it cannot run, and its non-blocking start."""

from __future__ import annotations

import os
import time

from ctop.ebpf.source import NO_BCC, NOT_ROOT, EbpfSource, prerequisite_problem
from ctop.sources.cgroupfs_layout import CgroupLayout

LAYOUT = CgroupLayout(mode="v2", root="/sys/fs/cgroup", unified="/sys/fs/cgroup")
MISSING = "ctop_no_such_bcc_module_for_tests"


def test_disabled_source_is_off_and_reads_nothing() -> None:
    src = EbpfSource(LAYOUT, enabled=False)
    src.start()
    status = src.status()
    assert status.state == "off" and status.reason.endswith(".") and "disabled" in status.reason
    assert src.read() is None
    src.close()


def test_missing_bcc_fails_with_one_sentence() -> None:
    src = EbpfSource(LAYOUT, bcc_module=MISSING)
    t0 = time.monotonic()
    src.start()
    assert time.monotonic() - t0 < 0.5  # start never waits for the load
    status = src.wait_ready(30)
    assert status.state == "failed"
    assert status.reason == NO_BCC
    assert status.reason.count(". ") == 0 and status.reason.endswith(".")
    assert "python3-bpfcc" in status.reason
    assert src.read() is None
    src.close()
    assert src.status().state == "off"


def test_prerequisites_name_the_first_problem() -> None:
    reason, module = prerequisite_problem(MISSING)
    assert reason == NO_BCC and module is None
    if os.geteuid() != 0:
        reason, module = prerequisite_problem("json")  # any importable module stands in for bcc
        assert reason == NOT_ROOT and module is None


def test_close_while_starting_is_safe() -> None:
    src = EbpfSource(LAYOUT, bcc_module=MISSING)
    src.start()
    src.close()
    src.wait_ready(30)
    assert src.status().state == "off"
    assert src.read() is None
