"""Names from the state files of runtimes without a daemon: LXC configs, plain runc, systemd-machined machines.

- LXC: ``<lxcpath>/<name>/config`` (lxcpath from /etc/lxc/lxc.conf, default /var/lib/lxc) names the template the
  container was made from, which is its image.
- runc: ``/run/runc/<id>/state.json`` holds the cgroup paths, the init pid and the bundle of each container; runc
  containers are found by cgroup path, since their cgroup can be any path the caller chose.
- systemd-nspawn and libvirt machines: ``/run/systemd/machines/<name>`` (machined's record: service, root, leader).
"""

from __future__ import annotations

import os
import time

from ..sources.readfile import read_bytes
from .docker_meta import parse_docker_time
from .identify import Identity
from .meta import ContainerMeta, clean_str
from .oci_config import read_json

PATH_RUNTIMES = ("lxc", "nspawn", "libvirt")
LXC_CONF = "/etc/lxc/lxc.conf"
LXC_DEFAULT_PATH = "/var/lib/lxc"
LXC_TEMPLATE_LINE = "# Template used to create this container:"
RUNC_ROOTS = ("/run/runc",)
MACHINES_DIR = "/run/systemd/machines"
SCAN_TTL_S = 10.0
CGROUP_MOUNT = "/sys/fs/cgroup/"


class LocalState:
    """Looks cgroups up in LXC, runc and machined state; runc's states are indexed at most every SCAN_TTL_S."""

    def __init__(self, host_root: str = "/") -> None:
        self.host_root = host_root
        self._runc: tuple[float, dict[str, ContainerMeta]] = (-1e9, {})

    def clear(self) -> None:
        self._runc = (-1e9, {})

    def lookup(self, path: str, identity: Identity) -> ContainerMeta | None:
        """What the local state says about the cgroup ``path``; None when it says nothing."""
        if identity.runtime == "lxc":
            return self._lxc(identity) if identity.container_id else None
        if identity.runtime in ("nspawn", "libvirt"):
            return self._machine(identity)
        return self._runc_index().get(path)

    def _host(self, path: str) -> str:
        return path if self.host_root == "/" else os.path.join(self.host_root, path.lstrip("/"))

    def _lxc(self, identity: Identity) -> ContainerMeta:
        name = identity.container_id
        config = ""
        for lxcpath in self._lxc_paths():
            data = read_bytes(self._host(os.path.join(lxcpath, name, "config")))
            if data is not None:
                config = data.decode("utf-8", "replace")
                break
        return ContainerMeta(runtime="lxc", container_id=name, name=name, image=lxc_template(config),
                             state="running", source="lxc-config")

    def _lxc_paths(self) -> list[str]:
        data = read_bytes(self._host(LXC_CONF))
        for line in (data or b"").decode("utf-8", "replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "lxc.lxcpath" and value.strip():
                return [value.strip(), LXC_DEFAULT_PATH]
        return [LXC_DEFAULT_PATH]

    def _machine(self, identity: Identity) -> ContainerMeta:
        name = identity.container_id
        record = parse_env(read_bytes(self._host(os.path.join(MACHINES_DIR, name))))
        leader = record.get("LEADER", "")
        return ContainerMeta(runtime=identity.runtime, container_id=name, name=name,
                             image=record.get("ROOT", "") or record.get("IMAGE", ""),
                             labels={k.lower(): v for k, v in record.items() if k in ("SERVICE", "CLASS", "ROOT")},
                             pid=int(leader) if leader.isdigit() else None, state="running",
                             source="machined" if record else "path")

    def _runc_index(self) -> dict[str, ContainerMeta]:
        """cgroup path -> meta of every container runc's state directories hold (re-read every SCAN_TTL_S)."""
        now = time.monotonic()
        if self._runc[0] > now:
            return self._runc[1]
        index: dict[str, ContainerMeta] = {}
        for root in RUNC_ROOTS:
            root = self._host(root)
            try:
                ids = sorted(os.listdir(root))
            except OSError:
                continue
            for cid in ids:
                state = read_json(os.path.join(root, cid, "state.json"))
                if not isinstance(state, dict):
                    continue
                meta = runc_meta(cid, state)
                for path in runc_cgroups(state):
                    index.setdefault(path, meta)
        self._runc = (now + SCAN_TTL_S, index)
        return index


def lxc_template(config: str) -> str:
    """The template an LXC config says it was made from (`.../lxc-busybox` -> "busybox"); "" if it does not say."""
    for line in config.splitlines():
        if line.startswith(LXC_TEMPLATE_LINE):
            template = os.path.basename(line[len(LXC_TEMPLATE_LINE):].strip())
            return template[4:] if template.startswith("lxc-") else template
    return ""


def parse_env(data: bytes | None) -> dict[str, str]:
    """KEY=VALUE lines (machined's records) as a dict."""
    out: dict[str, str] = {}
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def runc_meta(cid: str, state: dict) -> ContainerMeta:
    """ContainerMeta of a runc container from its state.json (runc keeps no image: the bundle is a label)."""
    config = state.get("config")
    labels: dict[str, str] = {}
    if isinstance(config, dict) and isinstance(config.get("labels"), list):
        for item in config["labels"]:
            if isinstance(item, str) and "=" in item:
                key, _, value = item.partition("=")
                labels[key] = value
    pid = state.get("init_process_pid")
    return ContainerMeta(runtime="runc", container_id=cid, name=cid, labels=labels, state="running",
                         pid=pid if isinstance(pid, int) and pid > 0 else None,
                         started_at=parse_docker_time(clean_str(state.get("created")) or None), source="runc-state")


def runc_cgroups(state: dict) -> set[str]:
    """The cgroup paths (relative to their hierarchy) a runc state.json names."""
    out: set[str] = set()
    paths = state.get("cgroup_paths")
    if isinstance(paths, dict):
        for key, value in paths.items():
            if not isinstance(value, str) or CGROUP_MOUNT not in value:
                continue
            rest = value.split(CGROUP_MOUNT, 1)[1]
            if key or rest.startswith("unified/"):  # v1 and hybrid: drop the hierarchy's directory
                rest = rest.split("/", 1)[1] if "/" in rest else ""
            out.add("/" + rest.strip("/"))
    config = state.get("config")
    cgroups = config.get("cgroups") if isinstance(config, dict) else None
    path = cgroups.get("path") if isinstance(cgroups, dict) else None
    if isinstance(path, str) and path.startswith("/"):
        out.add("/" + path.strip("/"))
    out.discard("/")
    return out
