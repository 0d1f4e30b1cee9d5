"""Container-like cgroups without a runtime: a cgroup whose processes run in their own pid or network namespace
(``unshare --fork --pid --net`` in a cgroup made with mkdir) is a container of runtime "unshare", named by its cgroup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..model.frame import Identity
from ..model.sample import CgroupSample
from ..sources.procfs_ns import host_namespaces, own_namespaces
from ..sources.readfile import ReadErrors

RUNTIME = "unshare"


def is_plain(identity: Identity) -> bool:
    """A cgroup no runtime and no systemd unit claims (the only rows namespaces can make containers of)."""
    return identity.kind == "cgroup" and not identity.runtime and not identity.container_id


def as_container(path: str) -> Identity:
    """The identity of a container-like cgroup: named by the last component of its path."""
    return Identity(kind="container", runtime=RUNTIME, name=path.rstrip("/").rsplit("/", 1)[-1])


class NamespacedCgroups:
    """Finds container-like cgroups among plain ones; remembers each cgroup's answer while its first pid stays."""

    def __init__(self, proc_root: str = "/proc", errors: ReadErrors | None = None) -> None:
        self.proc_root = proc_root
        self.errors = errors
        self._known: dict[str, tuple[int, bool]] = {}  # path -> (first pid, namespaced), of the latest call only

    def classify(self, identities: dict[str, Identity], samples: Mapping[str, CgroupSample]) -> dict[str, Identity]:
        """``identities`` with plain cgroups whose first process runs in its own pid or network namespace turned
        into containers of runtime "unshare"."""
        known, self._known = self._known, {}
        host: dict[str, int | None] | None = None
        out = identities
        for path, identity in identities.items():
            sample = samples.get(path)
            pid = sample.first_pid if sample is not None else None
            if path == "/" or pid is None or not is_plain(identity):
                continue
            cached = known.get(path)
            if cached is not None and cached[0] == pid:
                namespaced = cached[1]
            else:
                if host is None:
                    host = host_namespaces(self.proc_root, self.errors, ("pid", "net"))
                namespaced = bool(own_namespaces(pid, host, self.proc_root))
            self._known[path] = (pid, namespaced)
            if namespaced:
                if out is identities:
                    out = dict(identities)
                out[path] = dataclasses.replace(as_container(path), labels=dict(identity.labels))
        return out
