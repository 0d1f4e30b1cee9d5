"""The ``ctop`` command line (click): builds the configuration and hands it to the view or subcommand."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import click
from click.core import ParameterSource

from . import __version__, allocator
from .batch import BatchOptions, new_notices, render
from .collector import DEFAULT_HISTORY_DIR, Collector, CollectorConfig
from .errors import CtopError
from .exporter_cmd import exporter_command
from .fleet.command import OPTION_NAMES as FLEET_OPTIONS
from .fleet.command import fleet_options
from .history_cmd import events_command, record_command, replay_command
from .inspect_cmd import inspect_command
from .model.fields import FIELDS, ORDER_ALIASES, TIME_DESCRIPTION, TIME_KEY, Field, sort_field
from .model.filters import FILTER_KEYS, parse_filters
from .model.notices import Notice

COMMANDLINE = ParameterSource.COMMANDLINE
ORDER_HELP = ", ".join(sorted(ORDER_ALIASES))
EBPF_WAIT_S = 5.0  # batch mode waits this long at most for eBPF, so that the first printed rows carry its fields


def _order(_ctx: click.Context, _param: click.Parameter, value: str) -> Field:
    """The field ``--order`` names: an alias or any sortable field key; anything else is one sentence."""
    try:
        return sort_field(value)
    except KeyError:
        raise click.BadParameter(f"'{value}' is not one of {ORDER_HELP}, or a sortable field key listed by "
                                 "'ctop fields'.") from None


def _collector(config: CollectorConfig) -> Collector:
    try:
        return Collector(config)
    except CtopError as e:
        raise click.ClickException(str(e)) from None


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-b", "--batch", is_flag=True, help="Print refreshes to stdout instead of the interactive view.")
@click.option("-n", "--iterations", type=click.IntRange(min=1), default=None,
              help="Stop after this many refreshes (batch mode; default: run until interrupted).")
@click.option("-d", "--delay", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between refreshes (with --prometheus the default is the server's scrape interval).")
@click.option("--order", default="cpu", show_default=True, callback=_order, metavar="ORDER",
              help=f"Sort rows by this column: {ORDER_HELP}, or any sortable key of 'ctop fields'.")
@click.option("-r", "--reverse", is_flag=True, help="Reverse the sort order.")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Show cgroups at most this deep (0 = the root only; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Batch mode: one JSON array of rows per refresh, one per line.")
@click.option("--csv", "as_csv", is_flag=True, help="Batch mode: CSV with a header line and every field.")
@click.option("--cgroup-root", default="/sys/fs/cgroup", show_default=True, metavar="DIR",
              help="Where the cgroup hierarchies are mounted (or a recorded tree).")
@click.option("--proc-root", default="/proc", show_default=True, metavar="DIR", help="Where procfs is mounted.")
@click.option("--filter", "filters", multiple=True, metavar="EXPR",
              help=f"Show only matching rows: {', '.join(k + '=' for k in FILTER_KEYS)} (substring, "
                   "case-insensitive) or plain text; space-separated terms or repeated options must all match "
                   "(the same language as / in the interactive view).")
@click.option("--config", "config", default=None, metavar="FILE",
              help="The interactive view's settings file (columns, sort, view, filter), read at start and written "
                   "when they change (default: $XDG_CONFIG_HOME/ctop/config.ini, else ~/.config/ctop/config.ini).")
@click.option("--no-ebpf", is_flag=True, help="Do not load the eBPF programs (their fields show as no data).")
@click.option("--ebpf-wait", type=click.FloatRange(min=0), default=EBPF_WAIT_S, show_default=True, metavar="SECONDS",
              help="Batch mode: wait this long at most for eBPF before the first refresh (0: do not wait).")
@click.option("--no-containers", is_flag=True, help="Do not ask container runtimes for names.")
@click.option("--docker-socket", default=None, metavar="PATH",
              help="Docker Engine API socket (default: /var/run/docker.sock).")
@click.option("--history", "history_dir", default=DEFAULT_HISTORY_DIR, show_default=True, metavar="DIR",
              help="A recorder's store (ctop record): restart counts and OOM kills of the last 7 days carry over "
                   "from it; ignored when missing.")
@fleet_options
@click.version_option(__version__, "-V", "--version", prog_name="ctop")
@click.pass_context
def cli(ctx: click.Context, batch: bool, iterations: int | None, delay: float, order: Field, reverse: bool,
        depth: int | None, as_json: bool, as_csv: bool, cgroup_root: str, proc_root: str, filters: tuple[str, ...],
        config: str | None, no_ebpf: bool, ebpf_wait: float, no_containers: bool, docker_socket: str | None,
        history_dir: str, **fleet: Any) -> None:
    """Live CPU, memory, IO and limits of every cgroup, container and pod on this node.

    \b
    Examples:
      sudo ctop                        the interactive view
      ctop -b -n 1                     one table (after one refresh interval) and exit
      ctop -b -n 5 -d 2 --order memory five tables two seconds apart, biggest memory first
      ctop -b --json -n 1 | jq .       one JSON array of rows (stable keys for scripts)
      ctop doctor                      what ctop needs here and what is missing
      ctop --prometheus http://prom:9090  the same view for a whole fleet
    """
    ctx.obj = {"cgroup_root": cgroup_root, "proc_root": proc_root, "docker_socket": docker_socket}
    if ctx.invoked_subcommand is not None:
        return
    if as_json and as_csv:
        raise click.UsageError("--json and --csv cannot be used together: choose one output format.")
    output = "json" if as_json else "csv" if as_csv else "text"
    if (as_json or as_csv) and not batch:
        batch = True
    try:
        row_filter = parse_filters(filters)
    except CtopError as e:
        raise click.UsageError(str(e)) from None
    options = BatchOptions(order=order, reverse=reverse, max_depth=depth, output=output, row_filter=row_filter)
    given = {p for p in ctx.params if ctx.get_parameter_source(p) is COMMANDLINE}
    if fleet["prometheus"]:  # the fleet view: ctop/fleet reads a Prometheus server instead of this node
        from .fleet.command import run_fleet

        run_fleet(fleet, options, batch, iterations, delay if "delay" in given else None, config,
                  frozenset({"order", "reverse"} & given))
        return
    if given & set(FLEET_OPTIONS):
        raise click.UsageError("--at and the --prometheus-* options need --prometheus URL (this node's recordings: "
                               "'ctop replay --at WHEN').")
    # eBPF and runtime names describe the live host: off when reading a recorded tree.
    live = os.path.realpath(cgroup_root) == "/sys/fs/cgroup" and os.path.realpath(proc_root) == "/proc"
    collector = _collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, max_depth=depth,
                                           containers=live and not no_containers, docker_socket=docker_socket,
                                           ebpf=live and not no_ebpf, history_dir=history_dir or None))
    collector.start()
    try:
        if batch:
            run_batch(collector, options, iterations, delay, ebpf_wait)
        else:
            given = {"order", "reverse"} & {p for p in ctx.params if ctx.get_parameter_source(p) is COMMANDLINE}
            run_interactive(collector, options, delay, config, frozenset(given))
    finally:
        collector.close()


def run_batch(collector: Collector, options: BatchOptions, iterations: int | None, delay: float,
              ebpf_wait_s: float = EBPF_WAIT_S) -> None:
    """Print a refresh every ``delay`` seconds; the first after one interval so that every row has rates.

    As root, while eBPF is still loading, the first refresh waits for it (up to ``ebpf_wait_s``) and starts again
    from a reading with eBPF counters, so that eBPF rates are there from the first printed row; it says once if it
    gives up. (Without root eBPF cannot load: nothing to wait for.)
    """
    collector.collect()
    if ebpf_wait_s > 0 and os.geteuid() == 0 and collector.ebpf_state() == "starting":
        if collector.wait_ebpf(ebpf_wait_s) == "ready":
            collector.collect()
        elif collector.ebpf_state() == "starting":
            click.echo(f"ctop: eBPF was still loading after {ebpf_wait_s:g} s: its fields are null until it is "
                       "ready.", err=True)
    count = 0
    told: set[Notice] = set()
    while iterations is None or count < iterations:
        time.sleep(delay)
        frame = collector.collect()
        for notice in new_notices(frame, told):  # what is missing (not root, no runtime): once each
            click.echo(f"ctop: {notice.sentence}", err=True)
        click.echo(render(frame, options, first=count == 0))
        sys.stdout.flush()
        count += 1


def run_interactive(collector: Collector, options: BatchOptions, delay: float, config: str | None = None,
                    explicit: frozenset[str] = frozenset()) -> None:
    """The urwid view; falls back to batch text when stdout is not a terminal."""
    if not sys.stdout.isatty():
        run_batch(collector, options, None, delay)
        return
    try:
        from .ui.app import run_app
    except ImportError:
        raise click.ClickException("The interactive view is not installed in this build: use 'ctop -b'.") from None
    run_app(collector, options, delay, inspect=collector.inspect, config=config, explicit=explicit,
            recorded=collector.recorded_history)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON array.")
@click.pass_obj
def doctor(obj: dict[str, str], as_json: bool) -> None:
    """Check what ctop needs on this node; exit 1 if ctop cannot run at all."""
    from .doctor import can_run, run_checks

    checks = run_checks(obj["cgroup_root"], obj["proc_root"])
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks]))
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        width = max((len(c.name) for c in checks), default=0)
        for c in checks:
            click.echo(f"[{marks[c.status]}] {c.name:<{width}} {c.message}")
    if not can_run(checks):
        sys.exit(1)


def _field_notes(f: Field) -> str:
    """What else there is to know about a field, in brackets after its meaning; empty when nothing."""
    notes = []
    if not f.in_json:
        notes.append("interactive list only")
    if f.order:
        notes.append(f"--order {f.order}")
    if f.hotkey:
        notes.append(f"key {f.hotkey}")
    if not f.sortable:
        notes.append("not a sort key")
    if f.metric:
        notes.append(f"metric {f.metric}")
    return f"  [{'; '.join(notes)}]" if notes else ""


def _field_record(f: Field) -> dict[str, object]:
    return {"key": f.key, "header": f.header, "unit": f.unit, "description": f.description, "json": f.in_json,
            "sortable": f.sortable, "descending": f.sorts_descending, "order": f.order or None,
            "hotkey": f.hotkey or None, "list_column": f.listable, "shown_by_default": f.place is not None,
            "batch_column": f.batch is not None, "metric": f.metric or None}


# The refresh's time, first in every JSON row and CSV line, listed first by ``ctop fields``.
TIME_RECORD: dict[str, object] = {
    "key": TIME_KEY, "header": "TIME", "unit": "seconds", "description": TIME_DESCRIPTION, "json": True,
    "sortable": False, "descending": False, "order": None, "hotkey": None, "list_column": False,
    "shown_by_default": False, "batch_column": False, "metric": None}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print every field and all its properties as a JSON array.")
def fields(as_json: bool) -> None:
    """List every field: its JSON/CSV key, table header, unit and meaning, then how to sort by it and the
    exporter metric that carries it. The JSON/CSV keys come first, in their order."""
    if as_json:
        click.echo(json.dumps([TIME_RECORD, *(_field_record(f) for f in FIELDS)]))
        return
    click.echo(f"{TIME_KEY:<28} {'TIME':<9} {'seconds':<12} {TIME_DESCRIPTION}  [not a sort key]")
    for f in sorted(FIELDS, key=lambda f: not f.in_json):
        click.echo(f"{f.key:<28} {f.header:<9} {f.unit or 'text':<12} {f.description}{_field_notes(f)}")


cli.add_command(inspect_command)
cli.add_command(exporter_command)
cli.add_command(record_command)
cli.add_command(events_command)
cli.add_command(replay_command)


def main() -> None:
    """Entry point: user errors end in one sentence, never a stack trace."""
    allocator.settle()  # before any thread starts
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except CtopError as e:
        click.echo(f"ctop: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (ctop -b | head): stop quietly.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        finally:
            sys.exit(0)

