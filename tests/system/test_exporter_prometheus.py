"""A real Prometheus scrapes a real `ctop exporter` while kubelet-shaped test cgroups run real processes.

Checks: the values Prometheus stores agree with the cgroup files; every dashboard panel query and every recording
rule returns data. With Docker pods and eBPF the exporter provides every input and every query must have data;
on bare test cgroups (no runtime names, no pod network namespaces) the queries that need those are passed over.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path

import pytest
import yaml
from support.cgroups import cpu_usage_ns
from support.dockerd import IMAGE, dockerd, kubelet_pod_parent, pod_cgroup_path, unique  # noqa: F401
from support.env import need, need_binary, need_root
from support.prometheus import running_exporter, running_prometheus

pytestmark = pytest.mark.system

ASSETS = Path(str(resources.files("ctop.exporters")))
POD_UID = "0f6c3a52-7d1e-4c2b-9a51-3e8d2f1b6a70"
CID = "c" * 64
BE_UID = "5b1e9d7a-2c44-4f0e-8e13-7a9c6d5e4f21"
BE_CID = "d" * 64
MEM_LIMIT = 64 * 2**20
BUSY_THEN_HOLD = (
    "import time\n"
    "end = time.time() + 1.5\n"
    "while time.time() < end: pass\n"
    "hold = bytearray(24 * 2**20)\n"
    "for i in range(0, len(hold), 4096): hold[i] = 1\n"
    "open('{ready}', 'w').close()\n"
    "time.sleep(600)\n"
)


def panel_queries() -> list[tuple[str, str]]:
    dash = json.loads((ASSETS / "grafana-dashboard.json").read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] if p["type"] != "row" for t in p["targets"]]


def substitute(expr: str) -> str:
    expr = expr.replace("$__rate_interval", "10s")
    return re.sub(r"\$(job|instance|namespace|pod|container)\b", ".*", expr)


def requirements(expr: str) -> set[str]:
    needs = set()
    if re.search(r'(image|container|pod)!=""', expr):
        needs.add("container and pod names from a runtime")
    if "container_network_" in expr:
        needs.add("network counters of pod network namespaces")
    if re.search(r"ctop_(runqueue|context|preemptions|forks|execs|exits|oom_kills)", expr):
        needs.add("eBPF counters")
    if "ctop_bpf_" in expr:
        needs.add("eBPF program cost and map fill from the collector")
    return needs


def expand(expr: str, rule_exprs: dict[str, str]) -> str:
    """A rule's expression with the recording rules it uses spelled out (their inputs count as its inputs)."""
    for _ in range(5):
        for record, body in rule_exprs.items():
            if record in expr and body != expr:
                expr = expr.replace(record, f"({body})")
    return expr


def provided(exposition: str) -> set[str]:
    have = set()
    if re.search(r'^container_memory_usage_bytes\{[^}]*image="[^"]+', exposition, re.M):
        have.add("container and pod names from a runtime")
    if "\ncontainer_network_receive_bytes_total{" in exposition:
        have.add("network counters of pod network namespaces")
    if "\nctop_ebpf_enabled 1" in exposition:
        have.add("eBPF counters")
    if "\nctop_bpf_map_fill_ratio{" in exposition and "\nctop_bpf_program_run_seconds_per_event{" in exposition:
        have.add("eBPF program cost and map fill from the collector")
    return have


def read_keyed(directory: str, name: str) -> dict[str, int]:
    with open(os.path.join(directory, name)) as f:
        return {k: int(v) for k, v in (line.split() for line in f if line.strip())}


def value(prom, expr: str) -> float:
    result = prom.query(expr)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def load_rules(tmp: str) -> tuple[dict, str]:
    """rules.yml evaluated every second (as shipped: every 30 s)."""
    rules = yaml.safe_load((ASSETS / "rules.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
    path = os.path.join(tmp, "rules.yml")
    with open(path, "w") as f:
        yaml.safe_dump(rules, f)
    return rules, path


ALL_INPUTS = {"container and pod names from a runtime", "network counters of pod network namespaces", "eBPF counters",
              "eBPF program cost and map fill from the collector"}


def assert_queries_return_data(prom, exposition: str, rules: dict, require_all: bool) -> None:
    """Every panel query and recording rule has data; with ``require_all`` the exposition must provide every input
    (runtime names, pod network, eBPF counters, eBPF cost and map fill), else queries lacking an input pass over.
    """
    have = provided(exposition)
    if require_all:
        assert have == ALL_INPUTS, f"the exporter does not provide: {sorted(ALL_INPUTS - have)}"
    empty: list[str] = []
    rule_exprs = {r["record"]: r["expr"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    checks = [(f"panel {title!r}", expr) for title, expr in panel_queries()]
    checks += [(f"rule {record}", record) for record in rule_exprs]
    for what, expr in checks:
        needs = requirements(expand(rule_exprs.get(expr, expr), rule_exprs)) - have
        if not needs and not prom.query(substitute(expr)):
            empty.append(f"{what}: {expr}")
    assert empty == [], "queries without data although the exporter provides their inputs:\n" + "\n".join(empty)


def test_values_in_prometheus_agree_with_the_cgroup_files(test_cgroup):
    need_root()
    need_binary("prometheus")
    base = test_cgroup
    app = base.child(f"kubepods/burstable/pod{POD_UID}/{CID}")
    besteffort = base.child(f"kubepods/besteffort/pod{BE_UID}/{BE_CID}")
    app.limit_cpu(50000, 100000)
    app.limit_memory(MEM_LIMIT)
    with tempfile.TemporaryDirectory(prefix="ctop-prom-test-") as tmp:
        ready = [os.path.join(tmp, f"ready-{i}") for i in range(2)]
        for cg, flag in ((app, ready[0]), (besteffort, ready[1])):
            cg.spawn([sys.executable, "-c", BUSY_THEN_HOLD.format(ready=flag)])
        rules, rules_path = load_rules(tmp)

        include = f"--cgroup.include=^(/|{re.escape(base.path)}(/.*)?)$"
        with (running_exporter(include, "--no-ebpf") as exp,
              running_prometheus(exp.address, rule_files=(rules_path,)) as prom):
            deadline = time.monotonic() + 30
            while not all(os.path.exists(r) for r in ready) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert all(os.path.exists(r) for r in ready), "the test workloads did not start"
            time.sleep(12)  # a few scrapes after the busy phase: rates over 10 s have data
            up = prom.wait_for('up{job="ctop"} == 1', timeout=30)
            assert up, prom.targets()

            # Values agree with the cgroup files (the workloads are idle now: CPU is constant).
            app_id = f'id="{app.path}"'
            cpu_file_s = cpu_usage_ns(app.layout, app.path) / 1e9
            assert cpu_file_s > 0.3
            assert value(prom, f'container_cpu_usage_seconds_total{{{app_id},cpu="total"}}') == \
                pytest.approx(cpu_file_s, abs=0.02)
            working_set = app.kernel_working_set()
            assert working_set > 20 * 2**20
            assert value(prom, f"container_memory_working_set_bytes{{{app_id}}}") == \
                pytest.approx(working_set, rel=0.05)
            assert value(prom, f"container_spec_memory_limit_bytes{{{app_id}}}") == MEM_LIMIT
            assert value(prom, f'container_spec_memory_limit_bytes{{id="{besteffort.path}"}}') == 0
            assert value(prom, f"container_spec_cpu_quota{{{app_id}}}") == 50000
            # How often a 0.5-CPU busy loop is throttled depends on how busy the machine is (it may never reach its
            # quota): the exported counters must equal the file's, whatever they are.
            stat = read_keyed(app.dir("cpu"), "cpu.stat")
            assert stat["nr_periods"] > 0
            assert value(prom, f"container_cpu_cfs_periods_total{{{app_id}}}") == stat["nr_periods"]
            assert value(prom, f"container_cpu_cfs_throttled_periods_total{{{app_id}}}") == stat["nr_throttled"]
            assert prom.query(f'container_cpu_cfs_periods_total{{id="{besteffort.path}"}}') == []
            assert value(prom, "machine_cpu_cores") == os.cpu_count()
            # honor_labels: the exporter's own labels are kept, never renamed to exported_*.
            series = prom.api("series", **{"match[]": f"container_memory_usage_bytes{{{app_id}}}"})
            assert series and not any(k.startswith("exported_") for k in series[0])

            # No runtime names these cgroups: the queries that need names are covered by the Docker test below.
            assert_queries_return_data(prom, exp.scrape(), rules, require_all=False)


def disk_of(path: str) -> str:
    """/dev/<disk> holding ``path`` (the whole disk: v1 blkio throttling applies to disks, not partitions)."""
    st = os.stat(path)
    sys_dev = os.path.realpath(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if os.path.exists(os.path.join(sys_dev, "partition")):
        sys_dev = os.path.dirname(sys_dev)
    return "/dev/" + os.path.basename(sys_dev)


def _k8s_labels(pod: str, ns: str, uid: str, container: str) -> list[str]:
    labels = {"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid,
              "io.kubernetes.container.name": container,
              "io.kubernetes.docker.type": "podsandbox" if container == "POD" else "container"}
    return [arg for k, v in labels.items() for arg in ("--label", f"{k}={v}")]


def test_dashboard_with_docker_pods_of_all_qos_classes(dockerd):  # noqa: F811
    """Pods as dockershim made them (sandbox + app, kubelet cgroup parents) on a private dockerd, with eBPF."""
    need_root()
    need_binary("prometheus")
    # Direct IO (v1 blkio does not charge buffered writes to the writer's cgroup), then CPU: the guaranteed app
    # keeps spinning under its 0.2 CPU limit so that its CFS periods and throttling keep counting.
    io = ("dd if=/dev/zero of=/tmp/f bs=1M count=8 oflag=direct 2>/dev/null; "
          "dd if=/tmp/f of=/dev/null bs=1M iflag=direct 2>/dev/null; ")
    spin_forever = io + "while :; do :; done"
    spin_then_sleep = io + "end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do :; done; sleep 600"
    # On this kernel v1 blkio counts a cgroup's IO only when it has a throttle rule for the disk: set a high one.
    disk = disk_of(dockerd.base)
    need(os.path.exists(disk), f"the block device {disk} under the Docker data root")
    io_rules = [f"--device-read-bps={disk}:1gb", f"--device-write-bps={disk}:1gb"]
    pods = []
    for qos, limits, workload in (
            ("guaranteed", ["--memory=64m", "--cpus=0.2"], spin_forever),
            ("burstable", ["--memory=128m"], spin_then_sleep),
            ("besteffort", [], spin_then_sleep)):
        uid = str(uuid.uuid4())
        pod, ns = unique("web"), f"shop-{qos}"
        cgroup_parent = kubelet_pod_parent(dockerd, qos, uid)  # a .slice under the systemd cgroup driver
        dockerd.cgroup_parents.append(pod_cgroup_path(cgroup_parent))
        sandbox = dockerd.out("run", "-d", "--name", f"k8s_POD_{pod}_{ns}_{uid}_0", "--network", dockerd.network,
                              f"--cgroup-parent={cgroup_parent}", *_k8s_labels(pod, ns, uid, "POD"),
                              IMAGE, "sleep", "600")
        app = dockerd.out("run", "-d", "--name", f"k8s_app_{pod}_{ns}_{uid}_0", "--network", f"container:{sandbox}",
                          f"--cgroup-parent={cgroup_parent}", *limits, *io_rules, *_k8s_labels(pod, ns, uid, "app"),
                          IMAGE, "sh", "-c", workload)
        pods.append((pod, ns, qos, sandbox, app))
    try:
        with tempfile.TemporaryDirectory(prefix="ctop-prom-test-") as tmp:
            rules, rules_path = load_rules(tmp)
            include = r"--cgroup.include=^(/|/kubepods(\.slice)?(/.*)?)$"
            with (running_exporter(include, f"--docker.socket={dockerd.socket}") as exp,
                  running_prometheus(exp.address, rule_files=(rules_path,)) as prom):
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:  # names come from the runtime, eBPF loads in the background
                    text = exp.scrape()
                    if '\nctop_ebpf_enabled 1\n' in text and all(f'pod="{p[0]}"' in text for p in pods):
                        break
                    time.sleep(1)
                time.sleep(15)  # workloads done; rates over 10 s and rules have data
                text = exp.scrape()
                for pod, ns, qos, sandbox, _app in pods:
                    info = [line for line in text.splitlines()
                            if line.startswith("ctop_container_info{") and f'pod="{pod}"' in line
                            and 'container="app"' in line]
                    assert len(info) == 1 and f'qos_class="{qos}"' in info[0] and f'namespace="{ns}"' in info[0], \
                        info
                    owners = {line.split('id="')[1].split('"')[0] for line in text.splitlines()
                              if line.startswith("container_network_receive_bytes_total{") and f'pod="{pod}"' in line}
                    assert len(owners) == 1 and sandbox in next(iter(owners)), owners  # the sandbox only
                limit = value(prom, f'container_spec_memory_limit_bytes{{pod="{pods[0][0]}",container="app"}}')
                assert limit == 64 * 2**20
                assert value(prom, f'container_spec_cpu_quota{{pod="{pods[0][0]}",container="app"}}') == 20000
                assert_queries_return_data(prom, text, rules, require_all=True)
    finally:
        for *_, sandbox, app in pods:
            dockerd.run("rm", "-f", app, sandbox, check=False)
