"""The errors ctop raises on purpose: each carries one sentence that tells the user what to do."""

from __future__ import annotations


class CtopError(Exception):
    """A problem the user can fix; its message is one sentence shown as is, without a stack trace."""


class NoCgroupsError(CtopError):
    """No cgroup hierarchy was found where ctop looked."""
