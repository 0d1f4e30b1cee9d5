"""``ctop exporter``: serve cgroup, container and pod metrics to Prometheus (node_exporter-style flags)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socketserver
import sys
import threading
import time
from typing import TYPE_CHECKING

import click

from .collector import DEFAULT_HISTORY_DIR
from .errors import CtopError
from .model.notices import NOT_ROOT

if TYPE_CHECKING:
    from .collector import Collector
    from .exporters.collector import SharedFrames
    from .exporters.labels import CgroupFilter
    from .history.store import StoreWriter

# 9100-9999 (the Prometheus wiki's exporter range) is fully allocated and new exporters are listed from 10001 up;
# 10417 is clear of those and of Kubernetes' own ports (10249-10259).
DEFAULT_LISTEN_ADDRESS = ":10417"
# --user waits this long for the BPF programs to be compiled and attached before switching user.
EBPF_LOAD_TIMEOUT_S = 180.0


def make_collector(cgroup_root: str, proc_root: str, ebpf: bool, docker_socket: str | None,
                   run_as: str | None = None, history_dir: str | None = None) -> Collector:
    """The ctop collector (the exporter never reads the system itself), with its background sources started.

    With ``run_as`` (USER[:GROUP]) the eBPF programs are loaded first, then the process switches user (see
    ctop/privileges.py) while it has a single thread, and only then the container-name thread starts. With
    ``history_dir`` (``--record``) rows carry rates and events too, as a recorder needs.
    """
    from .collector import Collector, CollectorConfig

    config = CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, ebpf=ebpf,
                             docker_socket=docker_socket, bpf_run_stats=ebpf,
                             derive=history_dir is not None,  # the exporter exports counters, never ctop's rates
                             history_dir=history_dir, keep_events=history_dir is not None)
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
@click.option("--record", "record_dir", is_flag=False, flag_value=DEFAULT_HISTORY_DIR, default=None, metavar="[DIR]",
              help=f"Also record the node (as ctop record) into DIR (default {DEFAULT_HISTORY_DIR}) from the same "
                   "collections: one process serves and records.")
@click.option("--record.interval", "record_interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              metavar="SECONDS", help="Seconds between recorded refreshes.")
@click.option("--record.retain", "record_retain", default="7d", show_default=True, metavar="DURATION",
              help="Delete recordings older than this.")
@click.option("--record.max-size", "record_max_size", default="1G", show_default=True, metavar="SIZE",
              help="Keep the store under this size.")
@click.pass_context
def exporter_command(ctx: click.Context, listen_address: str, telemetry_path: str, web_config_file: str,
                     max_connections: int, include: str, exclude: str, containers_only: bool, max_age: float,
                     no_ebpf: bool, docker_socket: str | None, run_as: str | None, cgroup_root: str | None,
                     proc_root: str | None, record_dir: str | None, record_interval: float, record_retain: str,
                     record_max_size: str) -> None:
    """Serve Prometheus metrics: cAdvisor's container names and labels, plus ctop's own ctop_* families.

    \b
    Examples:
      sudo ctop exporter                                 listen on :10417, metrics at /metrics
      sudo ctop exporter --web.listen-address 127.0.0.1:10417 --containers-only
      sudo ctop exporter --web.config.file web.yml       TLS and basic auth (exporter-toolkit format)
      sudo ctop exporter --cgroup.exclude '^/(system|user)\\.slice'
      sudo ctop exporter --user nobody                   drop root once the BPF programs are attached
      sudo ctop exporter --record                        also the flight recorder (ctop events, ctop replay)
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
    writer = None
    try:
        if record_dir is not None:
            writer = open_store(record_dir, record_retain, record_max_size, run_as, docker_socket)
        collector = make_collector(cgroup_root or obj.get("cgroup_root", "/sys/fs/cgroup"),
                                   proc_root or obj.get("proc_root", "/proc"), not no_ebpf, docker_socket, run_as,
                                   history_dir=record_dir)
    except CtopError as exc:
        server.server_close()
        if writer is not None:
            writer.close()
        raise click.ClickException(str(exc)) from None
    frames = SharedFrames(collector.collect, max_age_s=max_age, bpf_stats=collector.ebpf_health)
    if writer is not None:
        start_recording(writer, frames, collector, cgroup_filter, record_interval)
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
        if writer is not None:
            writer.close()


def open_store(directory: str, retain: str, max_size: str, run_as: str | None,
               docker_socket: str | None) -> StoreWriter:
    """The store ``--record`` writes, opened while still root, and handed to the ``--user`` it will write as."""
    from .history.store import StoreError, StoreWriter
    from .history_cmd import parse_duration, parse_size

    writer = StoreWriter(directory, retain_s=parse_duration(retain), max_bytes=parse_size(max_size))
    if run_as and os.geteuid() == 0:
        from .privileges import resolve_target, socket_groups
        from .runtimes.docker_api import DEFAULT_SOCKET

        target = resolve_target(run_as, socket_groups([docker_socket or DEFAULT_SOCKET]))
        try:
            for name in ("", *os.listdir(directory)):
                os.chown(os.path.join(directory, name), target.uid, target.gid)
        except OSError as exc:
            writer.close()
            raise StoreError(f"Cannot hand {directory} to user {target.user} for --record ({exc.strerror}): give "
                             "the exporter CAP_CHOWN, or create the directory owned by that user.") from None
    return writer


def start_recording(writer: StoreWriter, frames: SharedFrames, collector: Collector, cgroup_filter: CgroupFilter,
                    interval: float) -> threading.Thread:
    """A daemon thread recording the latest collection every ``interval`` (scrapes share the same collections)."""
    from .history.recorder import Recorder

    recorder = Recorder(writer, lambda text: click.echo(f"ctop exporter: {text}", err=True), cgroup_filter)

    def run() -> None:
        last = 0
        next_tick = time.monotonic()
        while True:
            try:
                collected = frames.get()
                if collected.frame is not None and collected.generation != last:
                    last = collected.generation
                    recorder.record(collected.frame, collector.take_events())
            except Exception as exc:  # recording must never take the exporter down: say it once, go on
                recorder.tell_once(f"a frame could not be recorded ({exc}); recording goes on.")
            next_tick += interval
            time.sleep(max(0.0, next_tick - time.monotonic()))
            if next_tick < time.monotonic() - interval:  # fell behind: do not catch up
                next_tick = time.monotonic()

    thread = threading.Thread(target=run, name="ctop-record", daemon=True)
    thread.start()
    return thread


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
