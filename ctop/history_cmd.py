"""``ctop record``, ``ctop events`` and ``ctop replay``: the flight recorder's commands."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from .errors import CtopError
from .model.fields import Field

if TYPE_CHECKING:
    pass

DEFAULT_DIR = "/var/lib/ctop/history"
_SIZES = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str) -> int:
    """Bytes from "500M", "1G", "1073741824"; raises click.BadParameter."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in _SIZES and t[-1:] else ""
    try:
        value = float(t[: len(t) - len(unit)]) * _SIZES[unit]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a size: use for example 500M or 1G.") from None
    if value <= 0:
        raise click.BadParameter("the size must be positive, for example 1G.")
    return int(value)


def parse_duration(text: str) -> float:
    """Seconds from "7d", "36h", "90m"; raises click.BadParameter."""
    from .history.when import BadTime, parse_when

    try:
        seconds = 1e9 - parse_when(text.removesuffix(" ago"), 1e9)
    except BadTime:
        raise click.BadParameter(f"'{text}' is not a duration: use for example 36h or 7d.") from None
    if seconds <= 0:
        raise click.BadParameter(f"'{text}' is not a duration: use for example 36h or 7d.")
    return seconds


def _order(ctx: click.Context, param: click.Parameter, value: str) -> Field:
    """``--order`` exactly as the main command reads it."""
    from .cli import _order as order_of

    return order_of(ctx, param, value)


def _reader(directory: str) -> Any:
    from .history.store import StoreError, StoreReader

    try:
        return StoreReader(directory)
    except StoreError as e:
        raise click.ClickException(str(e)) from None


def _when(text: str, now: float, flag: str) -> float:
    from .history.when import BadTime, parse_when

    try:
        return parse_when(text, now)
    except BadTime as e:
        raise click.BadParameter(str(e), param_hint=flag) from None


@click.command("record")
@click.option("--dir", "directory", default=DEFAULT_DIR, show_default=True, metavar="DIR",
              help="Store directory (created if missing).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between recorded refreshes.")
@click.option("--retain", default="7d", show_default=True, metavar="DURATION",
              help="Delete recordings older than this (e.g. 36h, 7d).")
@click.option("--max-size", default="1G", show_default=True, metavar="SIZE",
              help="Keep the store under this size, deleting the oldest hours first (e.g. 500M, 1G).")
@click.option("--cgroup.include", "include", default="", metavar="REGEX",
              help="Record only cgroups whose path matches (as ctop exporter).")
@click.option("--cgroup.exclude", "exclude", default="", metavar="REGEX",
              help="Do not record cgroups whose path matches (as ctop exporter).")
@click.option("--containers-only", is_flag=True,
              help="Record only containers, the pods that hold them, and the root cgroup (as ctop exporter).")
@click.option("--no-ebpf", is_flag=True, help="Do not load the eBPF programs.")
@click.option("--no-containers", is_flag=True, help="Do not ask container runtimes for names.")
@click.pass_obj
def record_command(obj: dict[str, Any], directory: str, interval: float, retain: str, max_size: str,
                   include: str, exclude: str, containers_only: bool, no_ebpf: bool, no_containers: bool) -> None:
    """Record every cgroup's counters, names and events until stopped (the flight recorder).

    \b
    Examples:
      sudo ctop record                              1 s samples into /var/lib/ctop/history, 7 days, 1 GiB
      sudo ctop record --retain 2d --max-size 300M
      ctop events --since 1h                        what happened in the last hour
      ctop replay --at '10m ago'                    the view as it was ten minutes ago
    """
    from .collector import Collector, CollectorConfig
    from .exporters.labels import compile_filter
    from .history.recorder import Recorder
    from .history.store import StoreWriter

    retain_s, max_bytes = parse_duration(retain), parse_size(max_size)
    try:
        row_filter = compile_filter(include, exclude, containers_only)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    live = os.path.realpath(obj["cgroup_root"]) == "/sys/fs/cgroup" and os.path.realpath(obj["proc_root"]) == "/proc"
    writer = StoreWriter(directory, retain_s=retain_s, max_bytes=max_bytes)
    collector = Collector(CollectorConfig(cgroup_root=obj["cgroup_root"], proc_root=obj["proc_root"],
                                          containers=live and not no_containers, ebpf=live and not no_ebpf,
                                          docker_socket=obj.get("docker_socket"), history_dir=directory,
                                          keep_events=True))
    told: set[str] = set()

    def tell(text: str) -> None:
        if text not in told:
            told.add(text)
            click.echo(f"ctop record: {text}", err=True)

    recorder = Recorder(writer, tell, row_filter)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    collector.start()
    click.echo(f"ctop record: recording every {interval:g} s into {directory} (Ctrl-C stops).", err=True)
    try:
        next_tick = time.monotonic()
        while not stop.is_set():
            frame = collector.collect()
            for notice in frame.notices:
                tell(notice.sentence)
            recorder.record(frame, collector.take_events())
            next_tick += interval
            stop.wait(max(0.0, next_tick - time.monotonic()))
            if next_tick < time.monotonic() - interval:  # fell behind (suspended, overloaded): do not catch up
                next_tick = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        collector.close()
        writer.close()


@click.command("events")
@click.option("--dir", "directory", default=DEFAULT_DIR, show_default=True, metavar="DIR", help="Store directory.")
@click.option("--since", default="1h", show_default=True, metavar="WHEN",
              help='From when: "10m", "2h ago", "yesterday 14:05", ISO time or epoch seconds.')
@click.option("--until", "until", default="now", show_default=True, metavar="WHEN", help="Up to when.")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Only these event types (start, stop, restart, oom_kill, limit_change, throttling, "
                   "runq_latency, exec_storm and their *_end; exec, exec_more); repeat for more.")
@click.option("--workload", default="", metavar="TEXT",
              help="Only workloads whose key, name or cgroup path contains TEXT.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("-f", "--follow", is_flag=True,
              help="Then keep printing events as the recorder writes them, until interrupted (Ctrl-C).")
@click.option("--poll", type=click.FloatRange(min=0.1), default=1.0, show_default=True, metavar="SECONDS",
              help="With --follow: how often to look for new events.")
def events_command(directory: str, since: str, until: str, types: tuple[str, ...], workload: str,
                   as_json: bool, follow: bool, poll: float) -> None:
    """Print what the recorder saw happen: restarts, OOM kills, limit changes, throttling, ..."""
    now = time.time()
    if follow and until != "now":
        raise click.BadParameter("--follow prints events up to now and on; leave out --until.", param_hint="--until")
    start, end = _when(since, now, "--since"), _when(until, now, "--until")
    reader = _reader(directory)
    text = workload.lower()

    def wanted(event: Any) -> bool:
        name = str(event.figures.get("name", ""))
        if types and event.type not in types:
            return False
        return not text or any(text in str(v).lower() for v in (event.workload, name, event.figures.get("id")))

    try:
        seen: set[tuple[float, str, str]] = set()  # the events printed at the latest time printed
        while True:
            for event in reader.events(start, end):
                key = (event.time, event.type, event.workload)
                if key in seen or not wanted(event):
                    continue
                if event.time > start:
                    start, seen = event.time, set()
                seen.add(key)
                click.echo(_event_line(event, as_json))
            for problem in reader.problems:
                click.echo(f"ctop events: {problem}", err=True)
            reader.problems.clear()
            if not follow:
                break
            sys.stdout.flush()
            time.sleep(poll)
            end = time.time()
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()


def _event_line(event: Any, as_json: bool) -> str:
    """One event as ``ctop events`` prints it: a JSON object, or a line of text."""
    name = str(event.figures.get("name", ""))
    if as_json:
        return json.dumps({"time": round(event.time, 3), "type": event.type, "workload": event.workload,
                           **event.figures, "name": name}, default=str)
    stamp = dt.datetime.fromtimestamp(event.time).strftime("%Y-%m-%d %H:%M:%S")
    figures = " ".join(f"{k}={v}" for k, v in event.figures.items() if k not in ("name", "id"))
    return f"{stamp}  {event.type:<17} {name}  {figures}"


def _interactive(directory: str, at: float, options: Any, explicit: frozenset[str]) -> None:
    """The interactive view over the store, opened at ``at``."""
    from .history.replay import open_replay
    from .history.store import StoreError

    try:
        source, _ = open_replay(directory, at)
    except StoreError as e:
        raise click.ClickException(str(e)) from None
    try:
        if not sys.stdout.isatty():
            raise click.UsageError("The interactive replay needs a terminal: use 'ctop replay -b --from WHEN --to "
                                   "WHEN' to print the recorded rows.")
        try:
            from .ui.app import run_app
        except ImportError:
            raise click.ClickException("The interactive view is not installed in this build: use 'ctop replay -b'.") \
                from None
        run_app(None, options, 1.0, explicit=explicit, replay=source)
    finally:
        source.reader.close()


@click.command("replay")
@click.option("--dir", "directory", default=DEFAULT_DIR, show_default=True, metavar="DIR", help="Store directory.")
@click.option("--at", "at", default=None, metavar="WHEN", help="Open the view at this time (default: 5m ago).")
@click.option("-b", "--batch", is_flag=True, help="Print the recorded refreshes from --from to --to.")
@click.option("--from", "from_", default="5m", show_default=True, metavar="WHEN", help="Batch: first refresh.")
@click.option("--to", "to", default="now", show_default=True, metavar="WHEN", help="Batch: last refresh.")
@click.option("--json", "as_json", is_flag=True, help="Batch: one JSON array of rows per refresh.")
@click.option("--csv", "as_csv", is_flag=True, help="Batch: CSV with a header line.")
@click.option("--order", default="cpu", show_default=True, callback=_order, metavar="ORDER",
              help="Sort rows by this column (as ctop --order).")
@click.option("-r", "--reverse", is_flag=True, help="Reverse the sort order.")
@click.option("--filter", "filters", multiple=True, metavar="EXPR", help="Show only matching rows (as ctop --filter).")
def replay_command(directory: str, at: str | None, batch: bool, from_: str, to: str, as_json: bool, as_csv: bool,
                   order: Field, reverse: bool, filters: tuple[str, ...]) -> None:
    """Show what the recorder stored as the live view showed it: the same rows, rates and names.

    \b
    Without -b, the interactive view opens at --at under a REPLAY banner:
      [ ]  one sample back / forward      { }  one minute back / forward
      b f  ten minutes back / forward     p    follow in real time / stay put
    Views, filters, sorting and the detail view (with the workload's timeline)
    work as they do live.

    \b
    Examples:
      ctop replay --at '10m ago'
      ctop replay --at 'yesterday 14:05' --dir /var/lib/ctop/history
      ctop replay -b --from 14:00 --to 14:05 --json
    """
    from .batch import BatchOptions, render_csv, render_json, render_text
    from .history.frames import replayed_frame
    from .model.filters import parse_filters

    if as_json and as_csv:
        raise click.UsageError("--json and --csv cannot be used together: choose one output format.")
    try:
        row_filter = parse_filters(filters)
    except CtopError as e:
        raise click.UsageError(str(e)) from None
    now = time.time()
    output = "json" if as_json else "csv" if as_csv else "text"
    options = BatchOptions(order=order, reverse=reverse, output=output, row_filter=row_filter)
    if not (batch or as_json or as_csv):
        ctx = click.get_current_context()
        given = {p for p in ctx.params if ctx.get_parameter_source(p) is click.core.ParameterSource.COMMANDLINE}
        _interactive(directory, _when(at or "5m", now, "--at"), options, frozenset({"order", "reverse"} & given))
        return
    start, end = _when(from_, now, "--from"), _when(to, now, "--to")
    reader = _reader(directory)
    try:
        before, _ = reader.neighbours(start)
        previous = None
        count = 0
        for recorded in reader.frames(before if before is not None else start, end):
            if recorded.host.wall_time_s >= start and previous is not None:
                frame = replayed_frame(recorded, previous)
                if output == "json":
                    click.echo(render_json(frame, options))
                elif output == "csv":
                    click.echo(render_csv(frame, options, header=count == 0))
                else:
                    stamp = dt.datetime.fromtimestamp(recorded.host.wall_time_s).strftime("%Y-%m-%d %H:%M:%S")
                    click.echo(f"--- {stamp} (recorded)\n{render_text(frame, options)}\n")
                count += 1
            previous = recorded
        for problem in reader.problems:
            click.echo(f"ctop replay: {problem}", err=True)
        if count == 0:
            span = reader.time_range()
            where = "it is empty" if span is None else "it holds " + " to ".join(
                dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") for t in span)
            click.echo(f"ctop replay: nothing recorded in {directory} between those times; {where}.", err=True)
            sys.exit(1)
    finally:
        reader.close()
