"""``ctop exporter``: serve cgroup, container and pod metrics to Prometheus (node_exporter-style flags)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socketserver
import sys
import threading
from typing import TYPE_CHECKING

import click

from .errors import CtopError
from .model.notices import NOT_ROOT

if TYPE_CHECKING:
    from .collector import Collector

# 9100-9999 (the Prometheus wiki's exporter range) is fully allocated and new exporters are listed from 10001 up;
# 10417 is clear of those and of Kubernetes' own ports (10249-10259).
DEFAULT_LISTEN_ADDRESS = ":10417"
# --user waits this long for the BPF programs to be compiled and attached before switching user.
EBPF_LOAD_TIMEOUT_S = 180.0


def make_collector(cgroup_root: str, proc_root: str, ebpf: bool, docker_socket: str | None,
                   run_as: str | None = None) -> Collector:
    """The ctop collector (the exporter never reads the system itself), with its background sources started.

    With ``run_as`` (USER[:GROUP]) the eBPF programs are loaded first, then the process switches user (see
    ctop/privileges.py) while it has a single thread, and only then the container-name thread starts.
    """
    from .collector import Collector, CollectorConfig

    config = CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, ebpf=ebpf,
                             docker_socket=docker_socket, bpf_run_stats=ebpf,
                             derive=False)  # the exporter exports counters, never ctop's rates
    if run_as:
        collector = Collector(dataclasses.replace(config, containers=False))
        _load_then_drop(collector, run_as, docker_socket)
        collector.config = config
    else:
        collector = Collector(config)
    collector.start()
    return collector


def _load_then_drop(collector: Collector, run_as: str, docker_socket: str | None) -> None:
    """Start eBPF alone, wait until its programs are attached, then become ``run_as`` (raises CtopError)."""
    from .privileges import drop_privileges, needed_capabilities, resolve_target, socket_groups
    from .runtimes.docker_api import DEFAULT_SOCKET

    target = resolve_target(run_as, socket_groups([docker_socket or DEFAULT_SOCKET]))
    if os.geteuid() != 0:
        drop_privileges(target, [])  # raises the "needs root" sentence
    collector.start()
    ebpf = collector.ebpf
    loaded = False
    if ebpf is not None:
        status = ebpf.wait_ready(EBPF_LOAD_TIMEOUT_S)
        if status.state == "starting":
            raise CtopError(f"eBPF programs were not loaded within {EBPF_LOAD_TIMEOUT_S:.0f} s, so privileges "
                            "cannot be dropped safely: retry, or add --no-ebpf.")
        loaded = status.state == "ready"
    drop_privileges(target, needed_capabilities(ebpf_loaded=loaded))
    click.echo(f"ctop exporter: running as user {target.user} (uid {target.uid}, groups "
               f"{','.join(map(str, target.groups))}) after loading eBPF", err=True)


@click.command("exporter", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--web.listen-address", "listen_address", default=DEFAULT_LISTEN_ADDRESS, show_default=True,
              metavar="HOST:PORT", help="Address to listen on (':PORT' for every interface).")
@click.option("--web.telemetry-path", "telemetry_path", default="/metrics", show_default=True, metavar="PATH",
              help="Path under which to expose metrics.")
@click.option("--web.config.file", "web_config_file", default="", metavar="FILE",
              help="exporter-toolkit web config (YAML) enabling TLS and/or basic auth.")
@click.option("--web.max-connections", "max_connections", type=click.IntRange(min=1), default=128,
              show_default=True, help="Connections served at once; more are closed straight away.")
@click.option("--cgroup.include", "include", default="", metavar="REGEX",
              help="Export only cgroups whose path (the id label) matches this regular expression.")
@click.option("--cgroup.exclude", "exclude", default="", metavar="REGEX",
              help="Do not export cgroups whose path matches this regular expression.")
@click.option("--containers-only", is_flag=True,
              help="Export only containers, the pods that hold them, and the root cgroup.")
@click.option("--collector.max-age", "max_age", type=click.FloatRange(min=0), default=1.0, show_default=True,
              metavar="SECONDS", help="Scrapes within this many seconds of a collection reuse it.")
@click.option("--no-ebpf", is_flag=True, help="Do not load eBPF programs (no ctop_runqueue_*, ctop_context_* ...).")
@click.option("--docker.socket", "docker_socket", default=None, metavar="PATH",
              help="Docker Engine API socket used for container names (default: the standard one).")
@click.option("--user", "run_as", default=None, metavar="USER[:GROUP]",
              help="After loading eBPF, switch to this user, keeping only the capabilities still needed.")
@click.option("--cgroup-root", default=None, metavar="DIR", help="Where the cgroup hierarchies are mounted.")
@click.option("--proc-root", default=None, metavar="DIR", help="Where procfs is mounted.")
@click.pass_context
def exporter_command(ctx: click.Context, listen_address: str, telemetry_path: str, web_config_file: str,
                     max_connections: int, include: str, exclude: str, containers_only: bool, max_age: float,
                     no_ebpf: bool, docker_socket: str | None, run_as: str | None, cgroup_root: str | None,
                     proc_root: str | None) -> None:
    """Serve Prometheus metrics: cAdvisor's container names and labels, plus ctop's own ctop_* families.

    \b
    Examples:
      sudo ctop exporter                                 listen on :10417, metrics at /metrics
      sudo ctop exporter --web.listen-address 127.0.0.1:10417 --containers-only
      sudo ctop exporter --web.config.file web.yml       TLS and basic auth (exporter-toolkit format)
      sudo ctop exporter --cgroup.exclude '^/(system|user)\\.slice'
      sudo ctop exporter --user nobody                   drop root once the BPF programs are attached
    """
    from ctop.exporters.collector import FrameCollector, SharedFrames
    from ctop.exporters.exposition import Exposition
    from ctop.exporters.labels import compile_filter
    from ctop.exporters.server import ListenError, make_server
    from ctop.exporters.webconfig import WebConfigError, load_web_config

    if not telemetry_path.startswith("/") or telemetry_path in ("/", "/healthz"):
        raise click.BadParameter("must start with '/' and differ from '/' and '/healthz'.",
                                 param_hint="--web.telemetry-path")
    try:
        cgroup_filter = compile_filter(include, exclude, containers_only)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        web_config = load_web_config(web_config_file)
    except WebConfigError as exc:
        raise click.UsageError(str(exc)) from None
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    try:
        server = make_server(listen_address, None, web_config, telemetry_path, max_connections)
    except (ListenError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        collector = make_collector(cgroup_root or obj.get("cgroup_root", "/sys/fs/cgroup"),
                                   proc_root or obj.get("proc_root", "/proc"), not no_ebpf, docker_socket, run_as)
    except CtopError as exc:
        server.server_close()
        raise click.ClickException(str(exc)) from None
    frames = SharedFrames(collector.collect, max_age_s=max_age, bpf_stats=collector.ebpf_health)
    server.exposition = Exposition(FrameCollector(frames, cgroup_filter))
    scheme = "https" if web_config.tls else "http"
    host, port = server.server_address[:2]
    click.echo(f"ctop exporter listening on {scheme}://{host}:{port}{telemetry_path}", err=True)
    if not no_ebpf and not run_as and os.geteuid() != 0:
        click.echo(f"ctop exporter: {NOT_ROOT.sentence}", err=True)
    try:
        _serve(server)
    finally:
        collector.close()


def _serve(server: socketserver.BaseServer) -> None:
    """Serve until SIGTERM or SIGINT, then close the listening socket."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
    thread.start()
    while not stop.wait(1.0):
        if not thread.is_alive():
            break
    server.shutdown()
    server.server_close()
    sys.stdout.flush()


def main() -> None:
    """Run the command on its own (``python -m ctop.exporter_cmd``), with ctop's error handling."""
    try:
        exporter_command(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)


if __name__ == "__main__":
    main()
