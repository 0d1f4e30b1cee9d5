"""Real runtimes without daemons for system tests: podman (private roots), LXC, plain runc, hand-made unshare
containers; a busybox rootfs made offline; cleanup on exit and on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .cgroups import host_layout
from .env import need, need_binary, need_root

PREFIX = "ctoph-rt-"
APPLETS = ("sh", "sleep", "init", "cat", "ps", "true", "mount", "hostname")


def unique(kind: str) -> str:
    return f"{PREFIX}{kind}-{uuid.uuid4().hex[:8]}"


@contextmanager
def cleanup_on_sigterm() -> Iterator[list[Callable[[], None]]]:
    """A list of cleanups (run last first) that run on leaving the block and also when SIGTERM arrives first."""
    cleanups: list[Callable[[], None]] = []

    def run_all() -> None:
        while cleanups:
            try:
                cleanups.pop()()
            except Exception:
                pass

    def on_term(signum: int, frame: object) -> None:
        run_all()
        signal.signal(signal.SIGTERM, previous)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield cleanups
    finally:
        run_all()
        signal.signal(signal.SIGTERM, previous)


def busybox_rootfs(dest: str) -> str:
    """A root filesystem holding busybox-static and its applets (``dest``/rootfs)."""
    busybox = "/bin/busybox"
    need(os.path.exists(busybox), "busybox-static (apt-get install busybox-static)")
    root = os.path.join(dest, "rootfs")
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    return root


@dataclass
class Podman:
    """podman with its own storage, run and tmp roots under ``base`` (a private containers.conf and storage.conf)."""

    base: str
    image: str = ""
    env: dict[str, str] = field(default_factory=dict)
    pod_ids: list[str] = field(default_factory=list)  # their cgroups (left behind by podman) are removed at the end
    running: list[subprocess.Popen] = field(default_factory=list)  # podman commands under way
    cgroup_manager: str = "cgroupfs"

    def setup(self) -> None:
        need_root()
        need_binary("podman")
        # crun, podman's own choice, on pure v2 and v1 hosts; runc on a hybrid host, which crun refuses.
        runtime = "runc" if host_layout().mode == "hybrid" or not shutil.which("crun") else "crun"
        # podman's own choice of cgroup manager too: systemd where it is PID 1 (scopes under machine.slice, a pod a
        # slice), cgroupfs elsewhere (/libpod_parent). On pure v2 under cgroupfs a pod's infra container failed to
        # start with either runtime ("mknod /dev/null: Operation not permitted"; podman 4.3, Debian 12 guest).
        self.cgroup_manager = "systemd" if os.path.isdir("/run/systemd/system") else "cgroupfs"
        need_binary(runtime)
        need_binary("catatonit")
        conf = os.path.join(self.base, "containers.conf")
        with open(conf, "w") as f:
            # ulimits at or below the sandbox's hard limits.
            f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                    f'[engine]\nruntime = "{runtime}"\ntmp_dir = "{self.base}/tmp"\n')
        storage = os.path.join(self.base, "storage.conf")
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{self.graph}"\nrunroot = "{self.run_root}"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": conf, "CONTAINERS_STORAGE_CONF": storage}
        rootfs = busybox_rootfs(self.base)
        self.image = f"localhost/{unique('busybox')}:test"
        tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True).stdout
        self.run("import", "-", self.image, input=tar, timeout=120)

    @property
    def graph(self) -> str:
        return os.path.join(self.base, "root")

    @property
    def run_root(self) -> str:
        return os.path.join(self.base, "run")

    def run(self, *args: str, timeout: float = 120, input: bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["podman", "--root", self.graph, "--runroot", self.run_root, "--tmpdir", os.path.join(self.base, "tmp"),
               "--cgroup-manager", self.cgroup_manager, *args]
        with subprocess.Popen(cmd, env=self.env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            self.running.append(proc)
            try:
                out, err = proc.communicate(input, timeout=timeout)
            finally:
                self.running.remove(proc)
        result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed: {result.stderr.decode(errors='replace')[-2000:]}")
        return result

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.decode().strip()

    def cleanup(self) -> None:
        for proc in list(self.running):  # SIGTERM came during a podman command: let it finish, then remove
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
        listed = self.run("pod", "ls", "-q", "--no-trunc", check=False).stdout.decode().split()
        self.pod_ids += [p for p in listed if p not in self.pod_ids]
        self.run("pod", "rm", "-af", "-t", "0", check=False, timeout=120)
        self.run("rm", "-af", "-t", "0", check=False, timeout=120)
        shutil.rmtree(self.base, ignore_errors=True)
        if self.cgroup_manager == "systemd":  # systemd removes the scopes and pod slices podman asked it for
            return
        remove_empty_parents([f"/libpod_parent/{pod}" for pod in self.pod_ids]
                             + ["/libpod_parent/conmon", "/libpod_parent"])


def remove_empty_parents(paths: list[str]) -> None:
    """rmdir the runtime's parent cgroups in every hierarchy where they are empty (another user's stay)."""
    base = "/sys/fs/cgroup"
    roots = [base] + [os.path.join(base, d) for d in sorted(os.listdir(base)) if os.path.isdir(os.path.join(base, d))]
    for path in paths:
        for root in roots:
            top = root + path
            for d, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):  # the deepest first
                try:
                    os.rmdir(d)
                except OSError:
                    pass


@contextmanager
def podman() -> Iterator[Podman]:
    with cleanup_on_sigterm() as cleanups:
        p = Podman(tempfile.mkdtemp(prefix=PREFIX + "podman-"))
        cleanups.append(lambda: shutil.rmtree(p.base, ignore_errors=True))
        cleanups.append(p.cleanup)
        p.setup()
        yield p


@contextmanager
def lxc_container() -> Iterator[str]:
    """A running LXC container made from the offline busybox template (no network, unconfined); its name."""
    need_root()
    for binary in ("lxc-create", "lxc-start", "lxc-stop", "lxc-destroy"):
        need_binary(binary)
    need(os.path.exists("/usr/share/lxc/templates/lxc-busybox"), "lxc-templates (the busybox template)")
    name = unique("lxc")
    with cleanup_on_sigterm() as cleanups, tempfile.NamedTemporaryFile("w", prefix=PREFIX, suffix=".conf") as conf:
        conf.write("lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n")
        conf.flush()
        cleanups.append(lambda: subprocess.run(["lxc-destroy", "-f", "-n", name], capture_output=True, timeout=60))
        subprocess.run(["lxc-create", "-t", "busybox", "-n", name, "-f", conf.name], capture_output=True,
                       timeout=120, check=True)
        cleanups.append(lambda: subprocess.run(["lxc-stop", "-k", "-n", name], capture_output=True, timeout=60))
        subprocess.run(["lxc-start", "-n", name], capture_output=True, timeout=60, check=True)
        yield name


@contextmanager
def runc_container() -> Iterator[tuple[str, int]]:
    """A running plain runc container (bundle from ``runc spec``, busybox rootfs) in its own cgroup; (id, pid)."""
    import json

    need_root()
    runc = need_binary("runc")
    cid = unique("runc")
    base = tempfile.mkdtemp(prefix=PREFIX + "bundle-")
    with cleanup_on_sigterm() as cleanups:
        cleanups.append(lambda: shutil.rmtree(base, ignore_errors=True))
        busybox_rootfs(base)
        subprocess.run([runc, "spec"], cwd=base, check=True, capture_output=True)
        config_path = os.path.join(base, "config.json")
        with open(config_path) as f:
            config = json.load(f)
        config["process"]["terminal"] = False
        config["process"]["args"] = ["sleep", "600"]
        config["linux"]["cgroupsPath"] = "/" + cid
        with open(config_path, "w") as f:
            json.dump(config, f)
        cleanups.append(lambda: subprocess.run([runc, "delete", "-f", cid], capture_output=True, timeout=30))
        with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out:
            subprocess.run([runc, "run", "-d", cid], cwd=base, stdin=null_in, stdout=null_out, stderr=null_out,
                           check=True, timeout=60)
        state = json.loads(subprocess.run([runc, "state", cid], capture_output=True, check=True).stdout)
        yield cid, int(state["pid"])


@dataclass
class HandMade:
    """An ``unshare --fork --pid --mount-proc --net --uts`` container in cgroups made with mkdir."""

    name: str
    dirs: list[str]
    proc: subprocess.Popen | None = None

    @property
    def path(self) -> str:
        return "/" + self.name


@contextmanager
def unshare_container(hierarchies: list[str]) -> Iterator[HandMade]:
    """The hand-made container in cgroups ``name`` made under each of ``hierarchies`` (mount points)."""
    need_root()
    unshare = need_binary("unshare")
    made = HandMade(unique("ush"), [])
    with cleanup_on_sigterm() as cleanups:
        for root in hierarchies:
            d = os.path.join(root, made.name)
            os.mkdir(d)
            made.dirs.append(d)
            cleanups.append(lambda d=d: _rmdir(d))
        procs = [os.path.join(d, "cgroup.procs") for d in made.dirs]

        def join() -> None:
            for f in procs:
                with open(f, "w") as fh:
                    fh.write("0")

        made.proc = subprocess.Popen([unshare, "--fork", "--pid", "--mount-proc", "--net", "--uts", "sh", "-c",
                                      "while :; do sleep 1; done"], preexec_fn=join, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cleanups.append(lambda: _kill_all(made))
        yield made


def _kill_all(made: HandMade) -> None:
    """SIGKILL every process of the hand-made container's cgroups (by pid), then the unshare process."""
    for d in made.dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if made.proc is not None:
        made.proc.kill()
        made.proc.wait(timeout=10)


def _rmdir(d: str) -> None:
    import time

    for _ in range(50):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
