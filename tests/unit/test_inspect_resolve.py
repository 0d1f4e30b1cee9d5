"""``ctop inspect WHAT``: a unique part of a name, an id prefix or any cgroup path; several matches are one message."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from support.trees import tree

from ctop.cli import cli
from ctop.inspect_cmd import Unresolved, cgroup_path, resolve
from ctop.runtimes.identify import identify
from ctop.runtimes.meta import ContainerMeta

V2 = tree("v2-k8s-systemd")
IDS = {name: (c * 64) for name, c in (("ctopsre-idle-42", "a"), ("ctopsre-idle-7", "b"), ("web", "c"),
                                      ("webhook", "d"))}


@pytest.fixture
def node(tmp_path):
    """A cgroup hierarchy with four Docker containers and a service; their names as the runtime gives them."""
    containers = []
    for name, cid in IDS.items():
        path = f"/docker/{cid}"
        (tmp_path / "docker" / cid).mkdir(parents=True)
        containers.append((path, identify(path), ContainerMeta(runtime="docker", container_id=cid, name=name)))
    (tmp_path / "system.slice" / "cron.service").mkdir(parents=True)
    return str(tmp_path), containers


def test_a_unique_part_of_a_name_finds_the_container(node) -> None:
    root, containers = node
    assert resolve("idle-42", root, containers).meta.name == "ctopsre-idle-42"  # type: ignore[union-attr]
    assert resolve("IDLE-7", root, containers).identity.container_id == IDS["ctopsre-idle-7"]


def test_an_exact_name_wins_over_names_that_contain_it(node) -> None:
    root, containers = node
    assert resolve("web", root, containers).meta.name == "web"  # type: ignore[union-attr]
    assert resolve("hook", root, containers).meta.name == "webhook"  # type: ignore[union-attr]


def test_an_id_prefix_finds_the_container(node) -> None:
    root, containers = node
    found = resolve("ddd", root, containers)
    assert found.path == f"/docker/{IDS['webhook']}" and found.cgroup_dir == f"{root}/docker/{IDS['webhook']}"


def test_an_ambiguous_part_lists_the_candidates_in_one_message(node) -> None:
    root, containers = node
    with pytest.raises(Unresolved) as e:
        resolve("idle", root, containers)
    message = str(e.value)
    assert message == ("'idle' matches 2 containers: ctopsre-idle-42 (aaaaaaaaaaaa), ctopsre-idle-7 (bbbbbbbbbbbb); "
                       "give more of the name or the id.")
    assert "\n" not in message and not e.value.missing


def test_nothing_matching_says_so(node) -> None:
    root, containers = node
    with pytest.raises(Unresolved) as e:
        resolve("nginx", root, containers)
    assert e.value.missing and "No running container is named 'nginx'" in str(e.value)


def test_any_cgroup_path_relative_or_under_a_mount(node) -> None:
    root, containers = node
    service = resolve("/system.slice/cron.service", root, containers)
    assert service.path == "/system.slice/cron.service" and service.identity.kind == "service" and service.meta is None
    assert resolve(f"{root}/system.slice/cron.service/", root, containers).path == "/system.slice/cron.service"
    assert resolve(f"/docker/{IDS['web']}", root, containers).meta.name == "web"  # type: ignore[union-attr]
    assert resolve("/", root, containers).path == "/"
    with pytest.raises(Unresolved, match=r"No cgroup /system\.slice/gone\.service under "):
        resolve("/system.slice/gone.service", root, containers)


def test_a_full_path_under_another_controller_mount_is_its_cgroup_path() -> None:
    mounts = ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup"]
    assert cgroup_path("/sys/fs/cgroup/cpu,cpuacct/docker/x", mounts) == "/docker/x"
    assert cgroup_path("/sys/fs/cgroup/memory", mounts) == "/"
    assert cgroup_path("/docker/x", mounts) == "/docker/x"
    assert cgroup_path("docker", mounts) is None


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--cgroup-root", V2[0], "--proc-root", V2[1], "inspect", *args,
                                      "--docker-socket", "/nonexistent.sock"])
    return result.exit_code, result.output


def test_inspect_a_systemd_service_by_its_cgroup_path_from_the_command_line() -> None:
    code, out = run("/system.slice/kubelet.service")
    assert code == 0, out
    assert out.startswith("Cgroup  /system.slice/kubelet.service  (service, kubelet.service)")
    code, out = run("/system.slice/kubelet.service", "--json")
    assert code == 0 and json.loads(out)["cgroup"] == "/system.slice/kubelet.service"
    code, out = run("/system.slice/nothing.service")
    assert code == 1 and out.startswith("Error: No cgroup /system.slice/nothing.service under ")
    assert "Traceback" not in out


def test_inspect_by_id_prefix_from_the_command_line() -> None:
    code, out = run("6a1d0b3e")
    assert code == 0, out
    assert "cri-containerd-6a1d0b3e8f4c" in out


def test_a_full_path_through_a_co_mounted_hierarchy_is_its_cgroup_path(tmp_path) -> None:
    both = tmp_path / "cpu,cpuacct"  # systemd's v1 mounts: cpu and cpuacct are links to the co-mounted hierarchy
    (both / "ctoph" / "x").mkdir(parents=True)
    for name in ("cpu", "cpuacct"):
        (tmp_path / name).symlink_to("cpu,cpuacct")
    mounts = [str(tmp_path / "cpu"), str(tmp_path / "cpuacct"), str(tmp_path)]  # as the layout names them
    assert cgroup_path(str(both / "ctoph" / "x"), mounts) == "/ctoph/x"
    assert cgroup_path(str(tmp_path / "cpuacct" / "ctoph" / "x"), mounts) == "/ctoph/x"
    assert cgroup_path(str(both), mounts) == "/"
