"""``ctop inspect WHAT``: one container's (or cgroup's) identity, names and kernel facts, as text or JSON.

WHAT is a cgroup path (``/system.slice/cron.service``, or under the cgroup mount), an exact name or an id prefix
of 3+ characters, or else a unique substring of a name (``idle-42`` finds ``ctopsre-idle-42``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import time

import click

from .errors import CtopError
from .model.host import HOST_IDENTITY, HOST_PATH, inside
from .runtimes.fold import INNER
from .runtimes.identify import Identity, identify
from .runtimes.locate import Located, container_cgroups, matches, namespaced_meta, walk_root
from .runtimes.meta import ContainerMeta
from .runtimes.metadata import MetadataService
from .sources import procfs_caps, procfs_mounts, procfs_net, procfs_ns, procfs_procs
from .sources.cgroupfs_layout import detect_layout

CPU_SAMPLE_S = 0.5
CANDIDATES_SHOWN = 8


class Unresolved(CtopError):
    """WHAT names nothing (``missing``), or more than one container: the message says which and what to give."""

    def __init__(self, message: str, missing: bool = True) -> None:
        super().__init__(message)
        self.missing = missing


def cgroup_path(query: str, mounts: list[str]) -> str | None:
    """The cgroup path ``query`` names when it is one (``/docker/...``, or a directory under one of the cgroup
    ``mounts``, the deepest first); None when it is not a path."""
    if not query.startswith("/"):
        return None
    query = os.path.normpath(query)
    # A mount's real path too: systemd links cpu and cpuacct to the co-mounted "cpu,cpuacct" hierarchy.
    mounts = list({*mounts, *(os.path.realpath(m) for m in mounts)})
    for mount in sorted(mounts, key=len, reverse=True):
        mount = os.path.normpath(mount)
        if query == mount:
            return "/"
        if query.startswith(mount.rstrip("/") + "/"):
            return "/" + os.path.relpath(query, mount)
    return query


def _under(mount: str, path: str) -> str:
    return mount if path == "/" else mount.rstrip("/") + path


def names_of(ident: Identity, meta: ContainerMeta | None) -> list[str]:
    """The names a container is known by (Docker name, Kubernetes container, pod and namespace/pod/container)."""
    if meta is None:
        return []
    out = [meta.name, meta.pod, f"{meta.namespace}/{meta.pod}/{meta.container}" if meta.pod else ""]
    if meta.container and meta.container != "POD":
        out.append(meta.container)
    return [n for n in out if n]


def resolve(query: str, root: str, containers: list[tuple[str, Identity, ContainerMeta | None]],
            mounts: list[str] | None = None) -> Located:
    """The one cgroup ``query`` names: a cgroup path (under ``root``, the hierarchy walked; ``mounts`` are every
    cgroup mount a full path may start with), an exact name or id prefix, else a unique name substring.
    Unresolved (with the candidates when several match) otherwise."""
    path = cgroup_path(query, [root, *(mounts or [])])
    if path is not None:
        # The walked hierarchy first, then any other (a cgroup made in some v1 hierarchies only is still one).
        directory = next((d for d in (_under(m, path) for m in [root, *(mounts or [])]) if os.path.isdir(d)), "")
        if not directory:
            raise Unresolved(f"No cgroup {path} under {root}: give a path as ctop shows it (ctop -b lists them).")
        known = next(((i, m) for p, i, m in containers if p == path), None)
        ident, meta = known if known else (identify(path), None)
        return Located(path, directory, ident, meta)
    found = [c for c in containers if matches(query, c[1], c[2])]
    if not found:
        needle = query.lower()
        found = [c for c in containers if any(needle in n.lower() for n in names_of(c[1], c[2]))]
    if len(found) == 1:
        p, ident, meta = found[0]
        return Located(p, root + p, ident, meta)
    if not found:
        raise Unresolved(f"No running container is named {query!r}, has a name containing it or an id starting "
                         "with it")
    shown = ", ".join(f"{(m.name if m and m.name else '') or i.container_id[:12]} ({i.container_id[:12]})"
                      for _, i, m in found[:CANDIDATES_SHOWN])
    more = f" and {len(found) - CANDIDATES_SHOWN} more" if len(found) > CANDIDATES_SHOWN else ""
    raise Unresolved(f"{query!r} matches {len(found)} containers: {shown}{more}; give more of the name or the id.",
                     missing=False)


def container_report(found: Located, proc_root: str = "/proc", cpu_sample_s: float = CPU_SAMPLE_S) -> dict:
    """Everything ctop knows about one container, as JSON-ready data (None where unknown)."""
    # crun under systemd runs the processes in a `container` cgroup inside the scope (folded into its row)
    pids = (procfs_procs.read_pids(os.path.join(found.cgroup_dir, "cgroup.procs"))
            or procfs_procs.read_pids(os.path.join(found.cgroup_dir, INNER, "cgroup.procs")))
    main = found.meta.pid if found.meta and found.meta.pid and found.meta.pid in pids else None
    if main is None and pids:  # the init of the workload's own pid namespace, else the first process
        main = procfs_ns.namespace_init(pids, proc_root) or pids[0]
    report: dict = {
        "cgroup": found.path,
        "identity": dataclasses.asdict(found.identity),
        "metadata": found.meta.as_dict() if found.meta else None,
        "main_pid": main,
    }
    if main is None:
        report.update(namespaces=None, capabilities=None, mounts=None, network=None, writable_layer=None,
                      processes=[])
        return report
    ns = procfs_ns.namespaces(main, proc_root)
    shared = procfs_ns.shared_with_host(ns, procfs_ns.host_namespaces(proc_root))
    report["namespaces"] = {t: {"inode": ns[t], "shared_with_host": shared[t]} for t in procfs_ns.NAMESPACE_TYPES}
    report["capabilities"] = procfs_caps.effective_capabilities(main, proc_root)
    inside = procfs_mounts.mounts_of(main, proc_root)
    host = procfs_mounts.mounts_of(2, proc_root) or procfs_mounts.mounts_of(1, proc_root)
    report["mounts"] = {"count": len(inside), "host_count": len(host),
                        "list": [{"mount_point": m.mount_point, "fstype": m.fstype, "source": m.source}
                                 for m in inside]}
    upper = procfs_mounts.overlay_upper_dir(inside)
    report["writable_layer"] = {"upper_dir": upper,
                                "size_bytes": procfs_mounts.directory_size(upper) if upper else None}
    report["network"] = {"netns": ns.get("net"), "shares_host": shared.get("net"),
                         "interfaces": [d.__dict__ | {"addresses": list(d.addresses)}
                                        for d in procfs_net.net_devices(main, proc_root)]}
    report["processes"] = _processes(pids, proc_root, cpu_sample_s)
    return report


def host_report(workloads: list[str], proc_root: str = "/proc", cpu_sample_s: float = CPU_SAMPLE_S) -> dict:
    """The host row's report: the processes outside every workload cgroup in ``workloads`` (any hierarchy)."""
    pids = [pid for pid in procfs_procs.all_pids(proc_root)
            if not any(inside(path, workloads) for path in procfs_procs.cgroup_paths(pid, proc_root))]
    return {"cgroup": HOST_PATH, "identity": dataclasses.asdict(HOST_IDENTITY), "metadata": None, "main_pid": 1,
            "processes": _processes(pids, proc_root, cpu_sample_s)}


def _processes(pids: list[int], proc_root: str, sample_s: float) -> list[dict]:
    first = {p.pid: p for p in procfs_procs.read_processes(pids, proc_root)}
    if sample_s > 0:
        time.sleep(sample_s)
    out = []
    for p in procfs_procs.read_processes(pids, proc_root):
        before = first.get(p.pid)
        cpu = None
        if before and before.cpu_seconds is not None and p.cpu_seconds is not None and sample_s > 0:
            cpu = round((p.cpu_seconds - before.cpu_seconds) / sample_s * 100, 1)
        out.append({"pid": p.pid, "pid_inside": p.ns_pid, "user": _user(p.uid), "command": p.command, "state": p.state,
                    "threads": p.threads, "cpu_percent": cpu, "cpu_seconds": p.cpu_seconds, "rss_bytes": p.rss_bytes})
    return out


def _user(uid: int | None) -> str | None:
    """The name of ``uid`` on this host (a container's own users may have other names), else the number."""
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def process_lines(processes: list[dict], limit: int) -> list[str]:
    """The busiest ``limit`` processes of a report as table lines under a header: pid, CPU %, RSS, state, threads,
    command line (the detail view shows them)."""
    busiest = sorted(processes, key=lambda p: -(p.get("cpu_percent") or 0.0))
    lines = [f"{'PID':>8} {'USER':<10} {'CPU%':>6} {'RSS':>9} S {'THR':>4}  COMMAND"]
    for p in busiest[:limit]:
        cpu = p.get("cpu_percent")
        rss = p.get("rss_bytes")
        user = str(p.get("user") or "-")[:10]
        lines.append(f"{p.get('pid', '-'):>8} {user:<10} {'-' if cpu is None else f'{cpu:.1f}':>6} "
                     f"{_human_bytes(rss if isinstance(rss, int) else None):>9} {p.get('state') or '-':1} "
                     f"{p.get('threads') or '-':>4}  {p.get('command') or '-'}")
    if len(busiest) > limit:
        lines.append(f"... and {len(busiest) - limit} more (ctop inspect lists them all)")
    return lines


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def render_text(r: dict) -> str:
    meta = r["metadata"] or {}
    ident = r["identity"]
    cid = ident["container_id"] or meta.get("container_id") or ""
    if not cid and not meta:
        lines = [f"Cgroup  {r['cgroup']}  ({ident['kind']}{', ' + ident['detail'] if ident['detail'] else ''})",
                 f"  main pid   {r['main_pid'] or '-'}"]
        return "\n".join(lines + _facts(r))
    lines = [
        f"Container  {meta.get('name') or cid[:12]}  ({meta.get('runtime') or ident['runtime']})",
        f"  id         {cid or '-'}",
        f"  image      {meta.get('image') or '-'}",
        f"  state      {meta.get('state') or '-'}   main pid {r['main_pid'] or '-'}",
        f"  cgroup     {r['cgroup']}",
    ]
    if ident["pod_uid"] or meta.get("pod"):
        lines.append(f"  pod        {meta.get('namespace') or '?'}/{meta.get('pod') or '?'}  container "
                     f"{meta.get('container') or '?'}  QoS {ident['qos_class'] or '-'}  uid {ident['pod_uid']}")
    if meta.get("compose_project"):
        lines.append(f"  compose    {meta['compose_project']}/{meta['compose_service']}")
    return "\n".join(lines + _facts(r))


def _facts(r: dict) -> list[str]:
    """The kernel facts of a report as text lines: namespaces, capabilities, mounts, network, processes."""
    lines: list[str] = []
    if r.get("namespaces"):
        lines.append("Namespaces (inode, * = shared with the host)")
        lines.append("  " + "  ".join(f"{t}:{v['inode']}{'*' if v['shared_with_host'] else ''}"
                                      for t, v in r["namespaces"].items()))
    if r.get("capabilities") is not None:
        lines.append(f"Capabilities (effective, {len(r['capabilities'])})")
        lines.append("  " + (" ".join(r["capabilities"]) or "none"))
    if r.get("mounts"):
        m = r["mounts"]
        lines.append(f"Mounts  {m['count']} inside, {m['host_count']} on the host")
        lines += [f"  {x['mount_point']:<30} {x['fstype']:<10} {x['source']}" for x in m["list"]]
    if r.get("writable_layer") and r["writable_layer"]["upper_dir"]:
        w = r["writable_layer"]
        lines.append(f"Writable layer  {w['upper_dir']}  ({_human_bytes(w['size_bytes'])})")
    if r.get("network"):
        n = r["network"]
        lines.append(f"Network namespace {n['netns']}" + ("  (the host's)" if n["shares_host"] else ""))
        lines.append(f"  {'iface':<12} {'rx bytes':>12} {'rx pkts':>9} {'err':>5} {'drop':>5} "
                     f"{'tx bytes':>12} {'tx pkts':>9} {'err':>5} {'drop':>5}  addresses")
        for d in n["interfaces"]:
            lines.append(f"  {d['name']:<12} {d['rx_bytes']:>12} {d['rx_packets']:>9} {d['rx_errors']:>5} "
                         f"{d['rx_drops']:>5} {d['tx_bytes']:>12} {d['tx_packets']:>9} {d['tx_errors']:>5} "
                         f"{d['tx_drops']:>5}  {' '.join(d['addresses'])}")
    lines.append(f"Processes ({len(r['processes'])})")
    lines.append(f"  {'pid':>8} {'inside':>7} {'user':<10} {'cpu%':>6} {'rss':>10}  command")
    for p in r["processes"]:
        cpu = "-" if p["cpu_percent"] is None else f"{p['cpu_percent']:.1f}"
        user = str(p.get("user") or "-")[:10]
        lines.append(f"  {p['pid']:>8} {p['pid_inside'] or '-':>7} {user:<10} {cpu:>6} "
                     f"{_human_bytes(p['rss_bytes']):>10}  {p['command']}")
    return lines


@click.command("inspect")
@click.argument("name_or_id", metavar="WHAT")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--docker-socket", default=None, metavar="PATH",
              help="Docker Engine API socket (default: /var/run/docker.sock).")
@click.pass_context
def inspect_command(ctx: click.Context, name_or_id: str, as_json: bool, docker_socket: str | None) -> None:
    """Show one container's (or cgroup's) names, namespaces, capabilities, mounts, network and processes.

    WHAT is a name, an id prefix, a unique part of a name, or a cgroup path.

    \b
    Examples:
      ctop inspect web                 by Docker name, Kubernetes container name or namespace/pod/container
      ctop inspect idle-42             by a part of a name that only one container has
      ctop inspect 27d5449bfc9a --json by id prefix, as JSON
      ctop inspect /system.slice/cron.service   any cgroup by its path
    """
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    cgroup_root = obj.get("cgroup_root", "/sys/fs/cgroup")
    proc_root = obj.get("proc_root", "/proc")
    try:
        layout = detect_layout(cgroup_root)
    except CtopError as e:
        raise click.ClickException(str(e)) from e
    root = walk_root(layout)
    service = MetadataService(docker_socket=docker_socket)
    service.start()
    try:
        service.refresh(3.0)
        containers = []
        for path, ident in container_cgroups(layout, plain=True):
            meta = service.lookup(path, ident)
            if ident.kind != "container" and meta is None:  # a plain cgroup: a container if it has namespaces
                meta = namespaced_meta(path, _under(root, path), proc_root)
            if ident.kind == "container" or meta is not None:
                containers.append((path, ident, meta))
        notices = service.notices()
    finally:
        service.close()
    try:
        mounts = [layout.root, *([layout.unified] if layout.unified else []), *layout.controllers.values()]
        found = resolve(name_or_id, root, containers, mounts)
    except Unresolved as e:
        hint = f" ({notices[0].sentence.rstrip('.')})" if notices and e.missing else ""
        text = str(e)
        raise click.ClickException(text + hint + ("" if text.endswith(".") else ".")) from None
    report = container_report(found, proc_root)
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
    else:
        click.echo(render_text(report))
