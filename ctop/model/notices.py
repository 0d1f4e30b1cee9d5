"""Notices: one typed sentence each about what is missing and why; views print ``sentence``, code compares ``kind``."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class NoticeKind(enum.Enum):
    """What a notice is about (views and tests compare kinds, never the sentence's text)."""

    NOT_ROOT = "not_root"  # ctop runs without root: eBPF is off, some files and details are out of reach
    EBPF_OFF = "ebpf_off"  # eBPF could not start (no bcc, no tracefs, no headers, a failed load)
    NO_CONTAINER_NAMES = "no_container_names"  # a runtime's metadata source does not answer
    UNREADABLE_FILE = "unreadable_file"  # a kernel file exists but cannot be read (permission, I/O error)
    PARTIAL_DATA = "partial_data"  # the fleet view's Prometheus answered in part (warnings, targets down)


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing that is missing: its kind and the one sentence a person reads."""

    kind: NoticeKind
    sentence: str


NOT_ROOT = Notice(NoticeKind.NOT_ROOT,
                  "Not root: eBPF fields and some container details are off; run ctop as root (sudo).")
