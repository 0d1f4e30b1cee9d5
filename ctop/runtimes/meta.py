"""ContainerMeta: what a runtime knows about one container or pod, and the Kubernetes label/annotation mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypedDict

# Docker labels dockershim set, and the annotations CRI-O copies into config.json.
K8S_POD_NAME = "io.kubernetes.pod.name"
K8S_POD_NAMESPACE = "io.kubernetes.pod.namespace"
K8S_POD_UID = "io.kubernetes.pod.uid"
K8S_CONTAINER_NAME = "io.kubernetes.container.name"
K8S_DOCKER_TYPE = "io.kubernetes.docker.type"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
PAUSE_CONTAINER_NAME = "POD"


@dataclass(frozen=True)
class ContainerMeta:
    """Names and facts about a container (or, with kind "pod", a pod). Empty string/None = unknown."""

    runtime: str
    container_id: str = ""
    kind: str = "container"
    name: str = ""
    image: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    state: str = ""
    started_at: float | None = None
    pid: int | None = None
    pod: str = ""
    namespace: str = ""
    pod_uid: str = ""
    container: str = ""
    sandbox: bool = False
    compose_project: str = ""
    compose_service: str = ""
    # Where the facts came from: docker-api, containerd-config, crio-config, podman-state, kubelet-logs.
    source: str = ""

    def with_changes(self, **changes: object) -> ContainerMeta:
        return replace(self, **changes)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        return {
            "runtime": self.runtime, "container_id": self.container_id, "kind": self.kind, "name": self.name,
            "image": self.image, "labels": dict(self.labels), "state": self.state, "started_at": self.started_at,
            "pid": self.pid, "pod": self.pod, "namespace": self.namespace, "pod_uid": self.pod_uid,
            "container": self.container, "sandbox": self.sandbox, "compose_project": self.compose_project,
            "compose_service": self.compose_service, "source": self.source,
        }


def clean_str(value: object) -> str:
    """A JSON value that should be a string: the string, else ""."""
    return value if isinstance(value, str) else ""


def clean_labels(value: object) -> dict[str, str]:
    """A JSON object of string labels; non-string keys/values are dropped, anything else gives {}."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


class KubernetesFields(TypedDict):
    """The ContainerMeta fields Kubernetes labels or annotations give."""

    pod: str
    namespace: str
    pod_uid: str
    container: str
    sandbox: bool


def kubernetes_fields(labels: Mapping[str, str]) -> KubernetesFields:
    """pod, namespace, pod_uid, container and sandbox from dockershim labels / CRI-O annotations."""
    container = labels.get(K8S_CONTAINER_NAME, "")
    sandbox = labels.get(K8S_DOCKER_TYPE, "") == "podsandbox" or container == PAUSE_CONTAINER_NAME
    if sandbox and not container:
        container = PAUSE_CONTAINER_NAME
    return {
        "pod": labels.get(K8S_POD_NAME, ""),
        "namespace": labels.get(K8S_POD_NAMESPACE, ""),
        "pod_uid": labels.get(K8S_POD_UID, ""),
        "container": container,
        "sandbox": sandbox,
    }
