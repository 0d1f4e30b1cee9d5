"""podman's own state without podman: its storage roots (storage.conf, rootless homes) and its state database.

podman keeps names, images and pods in ``<graph root>/libpod/bolt_state.db`` (bbolt, podman 4) or ``db.sql``
(SQLite, podman 4.8+); containers/storage keeps each container's OCI bundle under
``<run root>/<driver>-containers/<id>/userdata/config.json``.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..sources.readfile import read_bytes
from . import boltdb
from .docker_meta import parse_docker_time
from .meta import clean_labels, clean_str

SYSTEM_STORAGE_CONFS = ("/etc/containers/storage.conf", "/usr/share/containers/storage.conf")
DEFAULT_GRAPH_ROOT = "/var/lib/containers/storage"
DEFAULT_RUN_ROOT = "/run/containers/storage"
# A rootless podman's cgroups sit under its user's systemd instance: user.slice/user-<uid>.slice/user@<uid>.service.
_USER_SERVICE = re.compile(r"user@(\d+)\.service")


@dataclass(frozen=True)
class StorageRoot:
    """Where one containers/storage instance keeps images and containers (graph) and runtime state (run)."""

    graph: str
    run: str


@dataclass(frozen=True)
class PodmanContainer:
    """One container as podman's state database knows it."""

    name: str = ""
    image: str = ""
    pod_id: str = ""
    created: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodmanState:
    """Containers and pods (id -> name) of one podman state database; infra container ids by pod id."""

    containers: dict[str, PodmanContainer] = field(default_factory=dict)
    pods: dict[str, str] = field(default_factory=dict)
    infra: dict[str, str] = field(default_factory=dict)


def storage_conf_roots(path: str) -> StorageRoot | None:
    """The graphroot and runroot a storage.conf sets (either may default); None when it sets neither."""
    data = read_bytes(path)
    if data is None:
        return None
    storage = storage_table(data.decode("utf-8", "replace"))
    graph, run = clean_str(storage.get("graphroot")), clean_str(storage.get("runroot"))
    if not graph and not run:
        return None
    return StorageRoot(graph or DEFAULT_GRAPH_ROOT, run or DEFAULT_RUN_ROOT)


def storage_table(text: str) -> dict[str, str]:
    """The string keys of the ``[storage]`` table of a storage.conf (TOML; only `key = "value"` lines matter)."""
    out: dict[str, str] = {}
    table = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line.startswith("["):
            table = line.strip("[] ")
            continue
        key, sep, value = line.partition("=")
        value = value.strip()
        if table == "storage" and sep and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            out[key.strip()] = value[1:-1]
    return out


def system_roots(host: str = "/", env: Mapping[str, str] | None = None) -> list[StorageRoot]:
    """Rootful storage roots: those of $CONTAINERS_STORAGE_CONF and the system storage.conf, then the defaults."""
    env = os.environ if env is None else env
    roots: list[StorageRoot] = []
    confs = [env["CONTAINERS_STORAGE_CONF"]] if env.get("CONTAINERS_STORAGE_CONF") else []
    for conf in confs + [_under(host, c) for c in SYSTEM_STORAGE_CONFS]:
        found = storage_conf_roots(conf)
        if found is not None:
            roots.append(StorageRoot(_under(host, found.graph), _under(host, found.run)))
            break
    roots.append(StorageRoot(_under(host, DEFAULT_GRAPH_ROOT), _under(host, DEFAULT_RUN_ROOT)))
    roots.append(StorageRoot(_under(host, DEFAULT_GRAPH_ROOT), _under(host, "/var/run/containers/storage")))
    return _unique(roots)


def rootless_uid(path: str) -> int | None:
    """The uid whose systemd user instance holds the cgroup ``path`` (rootless podman), else None."""
    m = _USER_SERVICE.search(path)
    return int(m.group(1)) if m else None


def user_roots(uid: int, host: str = "/") -> list[StorageRoot]:
    """A rootless user's storage roots: their ~/.config/containers/storage.conf, else the defaults."""
    try:
        home = pwd.getpwuid(uid).pw_dir if host == "/" else f"/home/{uid}"
    except KeyError:
        return []
    default = StorageRoot(_under(host, os.path.join(home, ".local/share/containers/storage")),
                          _under(host, f"/run/user/{uid}/containers"))
    found = storage_conf_roots(_under(host, os.path.join(home, ".config/containers/storage.conf")))
    if found is None:
        return [default]
    graph = found.graph if found.graph != DEFAULT_GRAPH_ROOT else default.graph
    run = found.run if found.run != DEFAULT_RUN_ROOT else default.run
    return _unique([StorageRoot(_under(host, graph), _under(host, run)), default])


def read_state(graph_root: str) -> PodmanState:
    """The podman state under ``graph_root`` (bbolt, else SQLite); empty when there is none or it is unreadable."""
    bolt = os.path.join(graph_root, "libpod", "bolt_state.db")
    if os.path.exists(bolt):
        return _bolt_state(bolt)
    sql = os.path.join(graph_root, "db.sql")
    if os.path.exists(sql):
        return _sqlite_state(sql)
    return PodmanState()


def _bolt_state(path: str) -> PodmanState:
    containers = {k.decode("utf-8", "replace"): _container(v.get(b"config"))
                  for k, v in boltdb.read_values(path, (b"ctr",), (b"config",)).items()}
    pods, infra = {}, {}
    for k, v in boltdb.read_values(path, (b"pod",), (b"config", b"state")).items():
        pod_id = k.decode("utf-8", "replace")
        pods[pod_id] = clean_str(_json(v.get(b"config")).get("name"))
        infra[pod_id] = clean_str(_json(v.get(b"state")).get("InfraContainerID"))
    return PodmanState(containers, pods, {p: i for p, i in infra.items() if i})


def _sqlite_state(path: str) -> PodmanState:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
    except sqlite3.Error:
        return PodmanState()
    try:
        containers = {str(cid): _container(cfg) for cid, cfg in db.execute("SELECT ID, JSON FROM ContainerConfig")}
        pods, infra = {}, {}
        for pid, cfg, state in db.execute(
                "SELECT PodConfig.ID, PodConfig.JSON, PodState.JSON FROM PodConfig "
                "LEFT JOIN PodState ON PodState.ID = PodConfig.ID"):
            pods[str(pid)] = clean_str(_json(cfg).get("name"))
            infra_id = clean_str(_json(state).get("InfraContainerID"))
            if infra_id:
                infra[str(pid)] = infra_id
        return PodmanState(containers, pods, infra)
    except sqlite3.Error:
        return PodmanState()
    finally:
        db.close()


def _container(config: object) -> PodmanContainer:
    c = _json(config)
    return PodmanContainer(name=clean_str(c.get("name")), image=clean_str(c.get("rootfsImageName")),
                           pod_id=clean_str(c.get("pod")), created=parse_docker_time(c.get("createdTime")),
                           labels=clean_labels(c.get("labels")))


def _json(value: object) -> dict:
    """A JSON object from bytes or str; {} otherwise."""
    if isinstance(value, (bytes, str)):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {}
    return value if isinstance(value, dict) else {}


def _under(host: str, path: str) -> str:
    return path if host == "/" else os.path.join(host, path.lstrip("/"))


def _unique(roots: list[StorageRoot]) -> list[StorageRoot]:
    seen: set[StorageRoot] = set()
    return [r for r in roots if not (r in seen or seen.add(r))]  # type: ignore[func-returns-value]
