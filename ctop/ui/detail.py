"""The detail view of one cgroup: identity, sparklines, every field, eBPF histogram and logs, and `inspect` facts."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import urwid

from ..inspect_cmd import process_lines
from ..model import fields
from ..model.culprits import CulpritRates
from ..model.ebpf import RUNQ_BUCKET_LOWER_SECONDS, RUNQ_BUCKET_UPPER_SECONDS
from ..model.ebpf_rates import EBPF_KEYS
from ..model.events import EXEC_EVENTS, Event
from ..model.fields import JSON_FIELDS, Field, format_value
from ..model.frame import CgroupRow, Frame
from .history import History
from .replay import ago
from .text import inert
from .widgets import Sparkline

BAR_WIDTH = 30
# Text fields the identity block at the top already shows.
SHOWN = frozenset({fields.NAME, fields.KIND, fields.RUNTIME, fields.CONTAINER_ID, fields.IMAGE, fields.POD,
                   fields.NAMESPACE, fields.CONTAINER, fields.QOS_CLASS})
EBPF_FIELDS: tuple[Field, ...] = tuple(f for f in JSON_FIELDS if f.key in EBPF_KEYS and f is not fields.PREEMPTED_BY)
MAX_LOG_LINES = 10
# The first lines of the detail view, a line each: CPU beside its limit and throttling, memory beside its limit, what
# happened to the workload, pressure and waiting for a CPU.
NOW_FIELDS: tuple[tuple[Field, ...], ...] = (
    (fields.CPU_PERCENT, fields.CPU_LIMIT_CORES, fields.CPU_LIMIT_PERCENT, fields.THROTTLED_PERCENT_AVG,
     fields.THROTTLED_SECONDS_PER_S, fields.THROTTLED_PERCENT),
    (fields.MEMORY_WORKING_SET_BYTES, fields.MEMORY_LIMIT_BYTES, fields.MEMORY_LIMIT_PERCENT, fields.MEMORY_RSS_BYTES,
     fields.MEMORY_CACHE_BYTES, fields.MEMORY_SWAP_BYTES, fields.MEMORY_FAILCNT),
    (fields.MEMORY_OOM_KILLS, fields.OOM_KILL_AGE_SECONDS, fields.RESTARTS, fields.MEMORY_MAJOR_FAULTS_PER_S,
     fields.PIDS, fields.PIDS_MAX),
    (fields.PSI_CPU_SOME_AVG10, fields.PSI_MEMORY_SOME_AVG10, fields.PSI_IO_SOME_AVG10,
     fields.RUNQ_LATENCY_P99_SECONDS, fields.RUNQ_WAIT_SECONDS_PER_S),
)


def _get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``; None when neither exists."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _title(text: str) -> urwid.Widget:
    return urwid.Text(("title", inert(text)))


def _pairs(pairs: Sequence[tuple[str, str, str | None]], key_width: int = 20) -> list[urwid.AbstractFlowWidget]:
    out: list[urwid.AbstractFlowWidget] = []
    for key, value, level in pairs:
        out.append(urwid.Text([("key", inert(key).ljust(key_width)), " ", (level, inert(value) or "-")]))
    return out


def _grid(pairs: Sequence[tuple[str, str, str | None]], key_width: int, value_width: int) -> urwid.Widget:
    """Key/value cells in as many columns as the width allows (the detail view must fit 80x24 too)."""
    cells = [urwid.Text([("key", inert(k).ljust(key_width)), " ", (level, inert(v) or "-")], wrap="clip")
             for k, v, level in pairs]
    return urwid.GridFlow(cells, key_width + 1 + value_width, 2, 0, "left")


def runq_buckets(hist: Sequence[int]) -> list[tuple[float, float, int]]:
    """(low s, high s, count) of the log2 run-queue histogram, from the first to the last non-empty bucket."""
    nonzero = [i for i, c in enumerate(hist) if c and i < len(RUNQ_BUCKET_UPPER_SECONDS)]
    if not nonzero:
        return []
    return [(RUNQ_BUCKET_LOWER_SECONDS[s], RUNQ_BUCKET_UPPER_SECONDS[s], int(hist[s]))
            for s in range(nonzero[0], nonzero[-1] + 1)]


def bucket_bound(seconds: float) -> str:
    """A histogram bound to three significant digits (2.05us, 131us, 1.05ms), so that close bounds stay apart."""
    if seconds <= 0:
        return "0"
    for scale, unit in ((1e-9, "ns"), (1e-6, "us"), (1e-3, "ms")):
        if seconds < scale * 1000:
            return f"{seconds / scale:.3g}{unit}"
    return f"{seconds:.3g}s"


def bucket_label(low: float, high: float, last: bool = False) -> str:
    """What a run-queue bucket holds, from its bounds: "0 - 2.05us", "2.05us - 4.1us"; the last takes all longer."""
    if last:
        return f">= {bucket_bound(low)}"
    return f"{bucket_bound(low)} - {bucket_bound(high)}"


def histogram_lines(hist: Sequence[int] | None) -> list[str]:
    """Text bars of the run-queue latency histogram, labelled by the bucket bounds; a "-" line when there is none."""
    buckets = runq_buckets(hist or [])
    if not buckets:
        return ["-"]
    top = max(c for _, _, c in buckets) or 1
    last = RUNQ_BUCKET_UPPER_SECONDS[-1]
    labels = [bucket_label(low, high, high == last) for low, high, _ in buckets]
    width = max(len(label) for label in labels)
    lines = []
    for label, (_, _, count) in zip(labels, buckets):
        bar = "█" * max(1 if count else 0, round(count / top * BAR_WIDTH))
        lines.append(f"{label:>{width}} {bar:<{BAR_WIDTH}} {count}")
    return lines


def _record_line(record: Any, keys: Sequence[str]) -> str:
    values = [f"{k}={inert(v)}" for k in keys if (v := _get(record, k)) not in (None, "")]
    return " ".join(values) or inert(record)


def _when(record: Any) -> str:
    stamp = _get(record, "unix_time")
    return time.strftime("%H:%M:%S ", time.localtime(stamp)) if isinstance(stamp, (int, float)) else ""


def _inspect_lines(value: Any, indent: int = 0) -> list[str]:
    """A nested dict/list from ``inspect`` as indented text lines."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, (Mapping, list, tuple)) and v:
                lines.append(f"{pad}{inert(k)}:")
                lines.extend(_inspect_lines(v, indent + 1))
            else:
                lines.append(f"{pad}{inert(k)}: {_scalar(v)}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, Mapping):
                lines.append(pad + "- " + ", ".join(f"{inert(k)}={_scalar(v)}" for k, v in item.items()))
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return lines


def _scalar(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    return inert(value)


def ebpf_logs(frame: Frame | None, path: str) -> tuple[list[Any], list[Any]]:
    """Recent execs and OOM kills of ``path`` when the frame carries eBPF logs (``ebpf_execs``: path -> records,
    ``ebpf_oom_kills``: records with a ``cgroup`` path); empty lists otherwise."""
    execs = getattr(frame, "ebpf_execs", None) or {}
    kills = getattr(frame, "ebpf_oom_kills", None) or ()
    return list(execs.get(path, ())), [k for k in kills if _get(k, "cgroup") == path]


def sparkline_axis(history: History, path: str, cpu_top: float | None, mem_top: float | None, span: str) -> str:
    """What the sparklines show: their scale (the limit, or the highest value) and the time they cover."""
    cpu = [v for v in history.cpu.get(path, ()) if v is not None]
    memory = [v for v in history.memory.get(path, ()) if v is not None]
    cpu_scale = f"{cpu_top:.0f} % (limit)" if cpu_top else f"{max(cpu, default=0):.1f} % (max)"
    mem_scale = (format_value(fields.MEMORY_LIMIT_BYTES, mem_top) + " (limit)" if mem_top
                 else format_value(fields.MEMORY_WORKING_SET_BYTES, max(memory, default=0)) + " (max)")
    return f"      top: CPU {cpu_scale}, MEM {mem_scale}; {span or 'since ctop started'} → now"


def build(row: CgroupRow, history: History, inspected: Any, gone: bool, execs: Sequence[Any] = (),
          ooms: Sequence[Any] = (), timeline: Sequence[Event] | None = None,
          timeline_at: float | None = None, span: str = "") -> list[urwid.AbstractFlowWidget]:
    """The widgets of the detail view for ``row``; ``inspected`` is the inspect dict, an error text, or None;
    ``execs`` and ``ooms`` are the recent eBPF exec and OOM-kill records of this cgroup; ``timeline`` the events
    of its workload (None: no timeline section), around the replayed moment ``timeline_at`` (None: live); ``span``
    says what time the sparklines cover."""
    ident = row.identity
    path = row.sample.path
    out: list[urwid.AbstractFlowWidget] = [_title(f"{ident.name or path}  ({path})")]
    if gone:
        out.append(urwid.Text(("crit", "This cgroup no longer exists; the values are its last ones.")))
    # First what an incident needs: the figures beside their limits, their recent past, who competes for the CPU.
    out += [_grid([(f.header, format_value(f, f.get(row)), fields.level(f, row)) for f in group], 9, 9)
            for group in NOW_FIELDS]
    cpu_now = format_value(fields.CPU_PERCENT, row.cpu_percent)
    mem_now = format_value(fields.MEMORY_WORKING_SET_BYTES, row.sample.working_set_bytes)
    limit = fields.MEMORY_LIMIT_BYTES.get(row)
    mem_top = float(limit) if isinstance(limit, (int, float)) and limit else None
    cpu_top = row.cpu_limit_cores * 100 if row.cpu_limit_cores else None
    out.append(Sparkline(f"CPU % {cpu_now:>7} ", history.cpu.get(path, ()), cpu_top))
    out.append(Sparkline(f"MEM   {mem_now:>7} ", history.memory.get(path, ()), mem_top))
    out.append(urwid.Text(("key", sparkline_axis(history, path, cpu_top, mem_top, span))))
    out += _culprit_section(row)
    if timeline is not None:
        out.append(urwid.Divider())
        out += timeline_section(timeline, timeline_at)
    out.append(urwid.Divider())
    out += processes_section(inspected)
    out.append(urwid.Divider())
    out.append(_grid([
        ("kind", ident.kind, None), ("runtime", ident.runtime, None), ("container id", ident.container_id[:12], None),
        ("image", ident.image, None), ("pod", ident.pod, None), ("namespace", ident.namespace, None),
        ("container", ident.container, None), ("QoS class", ident.qos_class, None),
    ], 12, 24))
    if ident.labels:
        out.append(urwid.Text(("key", "labels")))
        out += [urwid.Text("  " + inert(f"{k}={v}")) for k, v in sorted(ident.labels.items())]
    out.append(urwid.Divider())
    out += _ebpf_section(row, execs, ooms)
    out.append(urwid.Divider())
    out.append(_title("Inspect"))
    if inspected is None:
        out.append(urwid.Text("-"))
    else:
        facts = {k: v for k, v in inspected.items() if k != "processes"} if isinstance(inspected, Mapping) \
            else inspected
        out += [urwid.Text(line) for line in _inspect_lines(facts)]
    out.append(urwid.Divider())
    out.append(_title("Fields"))
    texts = [(f.header, format_value(f, f.get(row)), None) for f in JSON_FIELDS if f.unit == "" and f not in SHOWN]
    numbers = [(f.header, format_value(f, f.get(row)), fields.level(f, row)) for f in JSON_FIELDS if f.unit != ""]
    out += _pairs(texts, 10)
    out.append(_grid(numbers, 9, 9))
    return out


MAX_PROCESSES = 15


def processes_section(inspected: Any) -> list[urwid.AbstractFlowWidget]:
    """The cgroup's processes (from ``inspect``), busiest first: pid, CPU %, RSS, state, threads, command line."""
    out: list[urwid.AbstractFlowWidget] = [_title("Processes")]
    processes = inspected.get("processes") if isinstance(inspected, Mapping) else None
    if not isinstance(processes, list):
        out.append(urwid.Text("  " + ("loading…" if inspected is None or isinstance(inspected, Mapping)
                                       else inert(inspected))))
        return out
    if not processes:
        out.append(urwid.Text("  - none directly in this cgroup"))
        return out
    lines = process_lines(processes, MAX_PROCESSES)
    out.append(urwid.Text(("key", "  " + lines[0])))
    out += [urwid.Text("  " + inert(line)) for line in lines[1:]]
    return out


def _ebpf_section(row: CgroupRow, execs: Sequence[Any], ooms: Sequence[Any]) -> list[urwid.AbstractFlowWidget]:
    out: list[urwid.AbstractFlowWidget] = [_title("eBPF")]
    if row.ebpf_rates is not None:
        pairs = [(f.header, format_value(f, f.get(row)), fields.level(f, row)) for f in EBPF_FIELDS]
        out.append(_grid(pairs, 9, 8))
    else:
        out.append(urwid.Text("rates: -"))
    out.append(urwid.Text(("key", "run-queue latency")))
    out += [urwid.Text("  " + line) for line in histogram_lines(_get(row.ebpf, "runq_buckets"))]
    out.append(urwid.Text(("key", "recent execs")))
    out += [urwid.Text("  " + _when(e) + _record_line(e, ("pid", "ppid", "comm", "args", "filename")))
            for e in list(execs)[-MAX_LOG_LINES:]] or [urwid.Text("  -")]
    out.append(urwid.Text(("key", "OOM kills")))
    kills = row.sample.memory_oom_kills
    out.append(urwid.Text(("crit" if kills else None, f"  kernel counter: {'-' if kills is None else kills}")))
    out += [urwid.Text(("crit", "  " + _when(o) + _record_line(o, ("pid", "comm"))))
            for o in list(ooms)[-MAX_LOG_LINES:]]
    return out


TIMELINE_BEFORE = 15  # events shown before the moment (live: now), and after it in replay
TIMELINE_AFTER = 8
EVENT_LEVEL = {"oom_kill": "crit", "restart": "warn", "stop": "warn", "throttling": "warn", "runq_latency": "warn",
               "exec_storm": "warn", "limit_change": "warn"}


def _offset(seconds: float) -> str:
    """A signed short offset: "-2m10s", "+45s", "0s"."""
    text = ago(abs(seconds))
    return text if text == "0s" else ("-" if seconds < 0 else "+") + text


def _figure(key: str, value: object) -> str:
    if isinstance(value, Mapping) and "old" in value and "new" in value:
        return f"{key} {_figure_value(key, value['old'])} -> {_figure_value(key, value['new'])}"
    if isinstance(value, Mapping):
        return " ".join(_figure(k, v) for k, v in value.items())
    return f"{key}={_figure_value(key, value)}"


def _figure_value(key: str, value: object) -> str:
    if value is None:
        return "none"
    if key.endswith("_bytes") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_value(fields.MEMORY_LIMIT_BYTES, value)
    return inert(value)


def event_line(event: Event, reference: float) -> str:
    """One timeline line: "14:05:03  -2m10s  oom_kill          pid=4242 comm=leak working_set_bytes=64.0M"."""
    skip = {"name", "id"} | (set() if event.type in ("restart", "start") else {"restarts"})
    figures = " ".join(_figure(k, v) for k, v in event.figures.items() if k not in skip)
    when = time.strftime("%H:%M:%S", time.localtime(event.time))
    return f"  {when} {_offset(event.time - reference):>8}  {inert(event.type):<17} {figures}".rstrip()


def timeline_section(events: Sequence[Event], at: float | None) -> list[urwid.AbstractFlowWidget]:
    """The workload's timeline: restarts, OOM kills, limit changes and episodes with their times; in replay
    (``at`` given) the events around the replayed moment with a line marking it, live the latest ones."""
    reference = time.time() if at is None else at
    title = "Timeline (recorded, within an hour of this moment)" if at is not None else \
        "Timeline (what this ctop saw since it started)"
    out: list[urwid.AbstractFlowWidget] = [_title(title)]
    events = [e for e in events if e.type not in EXEC_EVENTS]  # listed under "recent execs"
    before = [e for e in events if at is None or e.time <= at][-TIMELINE_BEFORE:]
    after = [e for e in events if at is not None and e.time > at][:TIMELINE_AFTER]
    if not before and not after:
        out.append(urwid.Text("  - no start, stop, restart, OOM kill, limit change or episode"))
    out += [urwid.Text((EVENT_LEVEL.get(e.type), event_line(e, reference))) for e in before]
    if at is not None:
        out.append(urwid.Text(("replay", f"  {time.strftime('%H:%M:%S', time.localtime(at))}  <- the replayed moment")))
    out += [urwid.Text((EVENT_LEVEL.get(e.type), event_line(e, reference))) for e in after]
    return out


MAX_CULPRITS_SHOWN = 5


def culprit_line(rates: CulpritRates | None) -> str:
    """``preempted by: batch1 62 %, batch2 30 %, host 8 %`` (the largest shares, the rest as "others"); "-" when
    nothing preempted the cgroup's tasks or eBPF is off."""
    shares = rates.shares() if rates else []
    if not shares:
        return "preempted by: -"
    shown = [f"{inert(name)} {share:.0f} %" for name, share in shares[:MAX_CULPRITS_SHOWN]]
    rest = sum(share for _, share in shares[MAX_CULPRITS_SHOWN:])
    if rest:
        shown.append(f"others {rest:.0f} %")
    return "preempted by: " + ", ".join(shown)


def _culprit_section(row: CgroupRow) -> list[urwid.AbstractFlowWidget]:
    """Who preempted this cgroup's tasks in the last refresh, ranked (eBPF)."""
    rates = row.ebpf_rates.preempted_by if row.ebpf_rates is not None else None
    total = sum(rates.values()) if rates else 0.0
    text = culprit_line(rates) + (f"  ({total:.0f}/s)" if total else "")
    return [urwid.Text([("key", "Culprits  "), text])]
