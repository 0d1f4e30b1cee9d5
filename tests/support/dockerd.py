"""A private dockerd for system tests (own data/exec root, socket, bridge), an offline busybox image, cleanup."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from ctop.sources.cgroupfs_layout import CgroupLayout

from .cgroups import controller_root, hierarchy_roots, host_layout, remove_tree
from .env import need, need_binary, need_root, patience

IMAGE = "ctop-busybox:test"
BUSYBOX_APPLETS = ("sh", "sleep", "yes", "httpd", "cat", "ls", "wget", "echo", "ps", "top", "dd", "true")


@dataclass
class PrivateDockerd:
    """One dockerd that only this test run uses. ``base`` holds its data root, exec root, socket and log."""

    base: str
    pid: int | None = None
    network: str = ""
    subnet: str = ""
    cgroup_parents: list[str] = field(default_factory=list)
    _proc: subprocess.Popen | None = None
    _containerd: subprocess.Popen | None = None
    _driver: str = ""

    @property
    def socket(self) -> str:
        return os.path.join(self.base, "docker.sock")

    @property
    def exec_root(self) -> str:
        return os.path.join(self.base, "x")

    @property
    def containerd_socket(self) -> str:
        return os.path.join(self.exec_root, "containerd", "containerd.sock")

    @property
    def containerd_task_dir(self) -> str:
        return os.path.join(self.exec_root, "containerd", "daemon", "io.containerd.runtime.v2.task")

    def start_containerd(self, deadline: float) -> None:
        """The daemon's own containerd (socket and state where a dockerd-managed one has them). dockerd would use a
        system containerd instead of starting its own wherever one runs (Debian's containerd.service), and the
        tests' ``ctr`` would then reach neither it nor its containers."""
        state = os.path.dirname(self.containerd_task_dir)
        config = os.path.join(self.base, "containerd.toml")
        with open(config, "w") as f:
            f.write(f'version = 2\nroot = "{self.base}/containerd-root"\nstate = "{state}"\n'
                    f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{self.containerd_socket}"\n'
                    f'[ttrpc]\n  address = "{self.containerd_socket}.ttrpc"\n'
                    '[debug]\n  address = ""\n[metrics]\n  address = ""\n')
        os.makedirs(os.path.dirname(self.containerd_socket), exist_ok=True)
        with open(os.path.join(self.base, "containerd.log"), "wb") as log:
            self._containerd = subprocess.Popen([need_binary("containerd"), "--config", config], stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)
        while not os.path.exists(self.containerd_socket):
            if self._containerd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the test's containerd did not start: " + self.log_tail(name="containerd.log"))
            time.sleep(0.2)

    def start(self, timeout_s: float = 40.0) -> None:
        dockerd = need_binary("dockerd")
        deadline = time.monotonic() + patience(timeout_s)
        self.start_containerd(deadline)
        log = open(os.path.join(self.base, "dockerd.log"), "wb")  # noqa: SIM115 - kept open for the daemon
        self._proc = subprocess.Popen(
            [dockerd, "--data-root", os.path.join(self.base, "data"), "--exec-root", self.exec_root,
             "--pidfile", os.path.join(self.base, "dockerd.pid"), "-H", "unix://" + self.socket,
             "--containerd", self.containerd_socket,
             "--iptables=false", "--ip-masq=false", "--bridge=none", "--storage-driver=overlay2"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.pid = self._proc.pid
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("dockerd exited at start: " + self.log_tail())
            if os.path.exists(self.socket) and self.run("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError("dockerd did not answer in time: " + self.log_tail())

    def log_tail(self, n: int = 2000, name: str = "dockerd.log") -> str:
        try:
            with open(os.path.join(self.base, name), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def run(self, *args: str, check: bool = True, timeout: float = 60, input: bytes | None = None,
            ) -> subprocess.CompletedProcess:
        """``docker -H unix://<socket> ARGS``; text output."""
        cmd = [shutil.which("docker") or "docker", "-H", "unix://" + self.socket, *args]
        res = subprocess.run(cmd, capture_output=True, timeout=timeout, input=input, check=False)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {res.stderr.decode(errors='replace')}")
        return res

    def out(self, *args: str, timeout: float = 60) -> str:
        return self.run(*args, timeout=timeout).stdout.decode().strip()

    def cgroup_driver(self) -> str:
        """The daemon's cgroup driver: ``cgroupfs``, or ``systemd`` (Docker's default on pure v2 with systemd)."""
        if not self._driver:
            self._driver = self.out("info", "--format", "{{.CgroupDriver}}")
        return self._driver

    def inspect(self, name: str) -> dict:
        return json.loads(self.out("inspect", name))[0]

    def cgroup_path(self, cid: str) -> str:
        """The cgroup (as ctop names it) of container ``cid`` started without --cgroup-parent: ``/docker/<id>``
        under the cgroupfs driver, ``/system.slice/docker-<id>.scope`` under systemd's."""
        return f"/system.slice/docker-{cid}.scope" if self.cgroup_driver() == "systemd" else f"/docker/{cid}"

    def ctr(self, *args: str, check: bool = True, timeout: float = 60, input: bytes | None = None,
            ) -> subprocess.CompletedProcess:
        """``ctr --address <private containerd> ARGS``."""
        # ctr gives up on a containerd slow to answer after a couple of seconds (emulated guests): wait like the rest.
        cmd = [need_binary("ctr"), "--address", self.containerd_socket, "--connect-timeout", f"{patience(10):g}s",
               *args]
        res = subprocess.run(cmd, capture_output=True, timeout=patience(timeout), input=input, check=False)
        if check and res.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} failed: {res.stderr.decode(errors='replace')}")
        return res

    def build_busybox_image(self) -> None:
        """``docker import`` a directory holding busybox-static and its applet symlinks (no registry needed)."""
        busybox = "/bin/busybox"
        need(os.path.exists(busybox), "busybox-static (apt-get install busybox-static)")
        with tempfile.TemporaryDirectory(prefix="ctop-img-") as root:
            os.makedirs(os.path.join(root, "bin"))
            os.makedirs(os.path.join(root, "www"))
            os.makedirs(os.path.join(root, "tmp"))
            shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
            for applet in BUSYBOX_APPLETS:
                os.symlink("busybox", os.path.join(root, "bin", applet))
            with open(os.path.join(root, "www", "index.html"), "w") as f:
                f.write("<html>" + "ctop test page " * 400 + "</html>\n")
            tar = subprocess.run(["tar", "-C", root, "-c", "."], capture_output=True, check=True)
            self.run("import", "-c", "ENV PATH=/bin", "-", IMAGE, input=tar.stdout, timeout=120)

    def create_network(self) -> None:
        """A bridge network with a unique name and a subnet no route of this host covers (host <-> container)."""
        self.subnet = _free_subnet()
        tag = uuid.uuid4().hex[:6]
        self.network = f"ctopnet-{tag}"
        self.run("network", "create", "--subnet", self.subnet, "-o",
                 f"com.docker.network.bridge.name=ctopbr{tag}", self.network)

    def stop(self) -> None:
        """Remove containers, stop the daemon by pid, unmount what it left, delete its directories."""
        if self._proc is not None and self._proc.poll() is None:
            ids = self.run("ps", "-aq", check=False, timeout=30).stdout.decode().split()
            if ids:
                self.run("rm", "-f", *ids, check=False, timeout=120)
            if self.network:
                self.run("network", "rm", self.network, check=False, timeout=30)
        for proc in (self._proc, self._containerd):  # dockerd first: it still talks to its containerd
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        unmount_below(self.base)
        shutil.rmtree(self.base, ignore_errors=True)
        layout = host_layout()
        for parent in self.cgroup_parents:
            if parent.endswith(".slice") and shutil.which("systemctl"):  # the systemd driver's: systemd's unit
                subprocess.run(["systemctl", "stop", os.path.basename(parent)], capture_output=True, check=False,
                               timeout=60)
            remove_tree(layout, parent)
            _remove_empty_parents(layout, parent)


def _free_subnet() -> str:
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    used = []
    for line in routes.splitlines():
        first = line.split()[0] if line.split() else ""
        if first in ("local", "broadcast", "unreachable"):
            first = line.split()[1]
        try:
            used.append(ipaddress.ip_network(first, strict=False))
        except ValueError:
            continue
    for _ in range(200):
        value = int.from_bytes(os.urandom(2), "big")
        net = ipaddress.ip_network(f"10.{200 + value % 50}.{value >> 8}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return str(net)
    raise RuntimeError("no free 10.x subnet for the test bridge")


def unmount_below(base: str) -> None:
    """Lazily unmount everything mounted below ``base`` (a daemon's or debootstrap's leftovers), deepest first."""
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        return
    for point in sorted((p for p in points if p.startswith(base + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _remove_empty_parents(layout: object, path: str) -> None:
    """rmdir the now-empty ancestors Docker created for --cgroup-parent (never one that still has members)."""
    roots = hierarchy_roots(layout)  # type: ignore[arg-type]
    parent = os.path.dirname(path.rstrip("/"))
    while parent not in ("", "/"):
        for root in roots:
            try:
                os.rmdir(root + parent)
            except OSError:
                pass
        parent = os.path.dirname(parent)


_lock = threading.Lock()
_shared: PrivateDockerd | None = None
_users = 0


def _acquire() -> PrivateDockerd:
    global _shared, _users
    with _lock:
        if _shared is None:
            daemon = PrivateDockerd(base=tempfile.mkdtemp(prefix="ctopd-", dir="/tmp"))
            try:
                daemon.start()
                daemon.build_busybox_image()
                daemon.create_network()
            except Exception:
                daemon.stop()
                raise
            _shared = daemon
        _users += 1
        return _shared


def _release() -> None:
    global _shared, _users
    with _lock:
        _users -= 1
        if _users == 0 and _shared is not None:
            _shared.stop()
            _shared = None


@pytest.fixture(scope="session")
def dockerd() -> Iterator[PrivateDockerd]:
    """The session's private dockerd with the busybox image and a test bridge (shared by every module using it)."""
    need_root()
    need_binary("dockerd")
    need_binary("docker")
    try:
        daemon = _acquire()
    except RuntimeError as e:
        need(False, f"a private dockerd ({e})")
        raise
    try:
        yield daemon
    finally:
        _release()


@pytest.fixture
def own_dockerd() -> Iterator[PrivateDockerd]:
    """A private dockerd of its own for tests that stop it; only the busybox image, no network."""
    need_root()
    need_binary("dockerd")
    need_binary("docker")
    daemon = PrivateDockerd(base=tempfile.mkdtemp(prefix="ctopd-", dir="/tmp"))
    try:
        daemon.start()
        daemon.build_busybox_image()
        yield daemon
    finally:
        daemon.stop()


def cgroup_of(pid: int, controller: str = "memory") -> str:
    """The cgroup path of ``pid`` in the hierarchy holding ``controller`` (its v1 one where there is one, else the
    unified one); ``""`` is the hierarchy ctop's eBPF tracks: the unified one, on pure v1 the first v1 of
    ``V1_TRACKED`` (cpu)."""
    layout = host_layout()
    controller = _tracked_if_unified_missing(layout, controller)
    want_v1 = controller != "" and controller in layout.controllers
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if (controller in controllers.split(",")) if want_v1 else (controllers == ""):
                return path
    raise LookupError(f"pid {pid} has no {controller!r} cgroup")


def cgroup_dir(pid: int, controller: str = "memory") -> str:
    """The directory of ``pid``'s cgroup in the hierarchy holding ``controller`` (see ``cgroup_of``)."""
    layout = host_layout()
    return controller_root(layout, _tracked_if_unified_missing(layout, controller)) + cgroup_of(pid, controller)


def _tracked_if_unified_missing(layout: CgroupLayout, controller: str) -> str:
    """``controller``, except "" on pure v1: the v1 controller ctop's eBPF tracks there (V1_TRACKED's first)."""
    if controller == "" and layout.unified is None:
        from ctop.ebpf.loader import V1_TRACKED

        return next(c for c in V1_TRACKED if c in layout.controllers)
    return controller


def kubelet_pod_parent(daemon: PrivateDockerd, qos: str, uid: str) -> str:
    """The ``--cgroup-parent`` kubelet gives a pod's containers under the daemon's cgroup driver: a cgroupfs path
    (``/kubepods/burstable/pod<uid>``) or a systemd slice name (``kubepods-burstable-pod<uid>.slice``, with the
    uid's dashes as underscores, which systemd nests as ``kubepods.slice/kubepods-burstable.slice/...``)."""
    if daemon.cgroup_driver() == "systemd":
        prefix = "kubepods" if qos == "guaranteed" else f"kubepods-{qos}"
        return f"{prefix}-pod{uid.replace('-', '_')}.slice"
    return f"/kubepods/pod{uid}" if qos == "guaranteed" else f"/kubepods/{qos}/pod{uid}"


def pod_cgroup_path(parent_arg: str) -> str:
    """The cgroup path of a pod whose containers were given ``--cgroup-parent=parent_arg`` (kubelet_pod_parent)."""
    return slice_path(parent_arg) if parent_arg.endswith(".slice") else parent_arg


def slice_path(unit: str) -> str:
    """The cgroup path systemd gives a slice: ``a-b-c.slice`` is ``/a.slice/a-b.slice/a-b-c.slice``."""
    parts = unit.removesuffix(".slice").split("-")
    return "".join("/" + "-".join(parts[:i]) + ".slice" for i in range(1, len(parts) + 1))


def unique(prefix: str = "ctop") -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
