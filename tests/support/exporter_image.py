"""Offline exporter image: a debootstrapped Debian base (cached tarball), `docker run` flags from the DaemonSet."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from .dockerd import unmount_below
from .env import need, need_binary

CACHE_DIR = "/var/cache/ctop-tests"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_TIMEOUT_S = 900


def _sources() -> list[tuple[str, list[str]]]:
    """(URI, suites) of every `deb` entry of apt's sources, one-line and deb822 formats."""
    entries: list[tuple[str, list[str]]] = []
    paths = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    key, sep, value = line.partition(":")
                    if sep and not line.lstrip().startswith("#") and not line[:1].isspace():
                        fields[key.strip().lower()] = value.strip()
                if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                    entries += [(uri, fields.get("suites", "").split()) for uri in fields.get("uris", "").split()]
        elif path.endswith(".list"):
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m:
                    entries.append((m.group(1), [m.group(2)]))
    return entries


def debian_mirror(suite: str) -> str:
    """The Debian archive this machine's apt uses: one that lists ``suite``, else any `.../debian`, else the CDN."""
    entries = _sources()
    for uri, suites in entries:
        if suite in suites:
            return uri
    for uri, _ in entries:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    return DEFAULT_MIRROR


def dpkg_architecture() -> str:
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=False)
    return arch.stdout.strip() or "amd64"


@dataclass
class BaseTarball:
    path: str
    made_s: float  # 0 when it came from the cache
    mirror: str


def base_tarball(suite: str, arch: str | None = None, cache_dir: str = CACHE_DIR) -> BaseTarball:
    """A `debootstrap --variant=minbase` root of ``suite`` as a tar file, made once and kept under ``cache_dir``."""
    arch = arch or dpkg_architecture()
    mirror = debian_mirror(suite)
    path = os.path.join(cache_dir, f"debootstrap-{suite}-minbase-{arch}.tar")
    if os.path.isfile(path) and os.path.getsize(path) > 0:
        return BaseTarball(path, 0.0, mirror)
    debootstrap = need_binary("debootstrap")
    os.makedirs(cache_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"ctop-debootstrap-{suite}-", dir="/var/tmp")
    root = os.path.join(work, "root")
    started = time.monotonic()
    try:
        res = subprocess.run([debootstrap, "--variant=minbase", f"--arch={arch}", suite, root, mirror],
                             capture_output=True, timeout=DEBOOTSTRAP_TIMEOUT_S, check=False)
        tail = (res.stdout + res.stderr)[-1500:].decode("utf-8", "replace")
        need(res.returncode == 0, f"a Debian {suite} base from {mirror} (debootstrap failed: {tail})")
        unmount_below(root)
        # What apt downloaded and its package lists are not part of a base image.
        for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
            for name in glob.glob(os.path.join(root, pattern)):
                if os.path.isfile(name):
                    os.unlink(name)
        partial = os.path.join(work, "base.tar")
        subprocess.run(["tar", "-C", root, "--numeric-owner", "-cf", partial, "."], check=True, timeout=300,
                       capture_output=True)
        shutil.move(partial, path + f".{os.getpid()}")
        os.replace(path + f".{os.getpid()}", path)  # atomic: a concurrent run sees a whole file or none
    finally:
        unmount_below(root)
        shutil.rmtree(work, ignore_errors=True)
    return BaseTarball(path, time.monotonic() - started, mirror)


def _quantity_bytes(text: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "K": 10**3, "M": 10**6, "G": 10**9}
    m = re.fullmatch(r"(\d+)([KMG]i?)?", str(text))
    assert m, f"unsupported quantity {text!r}"
    return int(m.group(1)) * units.get(m.group(2) or "", 1)


def _cpus(text: str) -> str:
    text = str(text)
    return str(int(text[:-1]) / 1000) if text.endswith("m") else text


@dataclass
class RunPlan:
    """`docker run` flags equivalent to one DaemonSet container, and what had to differ on this machine."""

    flags: list[str]
    args: list[str]
    capabilities: list[str]
    left_out: dict[str, str] = field(default_factory=dict)  # mount path or capability -> why


def plan_from_daemonset(daemonset: dict[str, Any], host_paths: dict[str, str], listen_address: str,
                        unusable_capabilities: dict[str, str]) -> RunPlan:
    """Translate the pod spec: hostPID, hostPath/emptyDir volumes, securityContext, limits, env and args.

    ``host_paths`` replaces a hostPath by another host path (e.g. the private dockerd's socket); a hostPath that
    does not exist here is left out (``docker run --mount`` would fail, Kubernetes would create an empty one).
    Capabilities in ``unusable_capabilities`` (name without CAP_ -> why: the daemon does not know it, this
    machine's root does not hold it) are left out and reported.
    """
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    sc = container.get("securityContext", {})
    flags = ["--network=host"]
    left_out: dict[str, str] = {}
    if pod.get("hostPID"):
        flags.append("--pid=host")
    if sc.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if sc.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    assert not sc.get("privileged"), "the DaemonSet is meant to run unprivileged"
    caps = sc.get("capabilities", {})
    if "ALL" in caps.get("drop", []):
        flags.append("--cap-drop=ALL")
    kept = []
    for cap in caps.get("add", []):
        if cap in unusable_capabilities:
            left_out["CAP_" + cap] = unusable_capabilities[cap]
        else:
            kept.append(cap)
    flags += [f"--cap-add={c}" for c in kept]
    limits = container.get("resources", {}).get("limits", {})
    if "memory" in limits:
        flags.append(f"--memory={_quantity_bytes(limits['memory'])}")
    if "cpu" in limits:
        flags.append(f"--cpus={_cpus(limits['cpu'])}")
    for env in container.get("env", []):
        value = env.get("value", "ctop-image-test-node")  # valueFrom (the node name) has no value outside a pod
        flags += ["-e", f"{env['name']}={value}"]
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        target = mount["mountPath"]
        if "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            flags += ["--tmpfs", target + (f":size={_quantity_bytes(size)}" if size else "")]
            continue
        source = host_paths.get(volume["hostPath"]["path"], volume["hostPath"]["path"])
        if not os.path.exists(source):
            left_out[target] = f"{source} does not exist on this machine"
            continue
        flags += ["--mount", f"type=bind,src={source},dst={target}" + (",readonly" if mount.get("readOnly") else "")]
    args = [f"--web.listen-address={listen_address}" if a.startswith("--web.listen-address") else a
            for a in container.get("args", [])]
    return RunPlan(flags, args, kept, left_out)
