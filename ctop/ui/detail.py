"""The detail view of one cgroup: identity, sparklines, every field, eBPF histogram and logs, and `inspect` facts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import urwid

from ..model.fields import FIELDS, FIELDS_BY_KEY, format_value
from ..model.frame import CgroupRow
from .columns import LEVELS
from .history import History
from .text import format_duration, inert
from .widgets import Sparkline

RUNQ_SLOT0_NS = 1024  # slot 0 holds waits below 1024 ns; slot s >= 1 holds [2^(s+9), 2^(s+10)) ns (bpf/ctop_maps.h)
BAR_WIDTH = 30
MAX_LOG_LINES = 10


def _get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``; None when neither exists."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _title(text: str) -> urwid.Widget:
    return urwid.Text(("title", inert(text)))


def _pairs(pairs: Sequence[tuple[str, str, str | None]], key_width: int = 20) -> list[urwid.Widget]:
    out: list[urwid.Widget] = []
    for key, value, level in pairs:
        out.append(urwid.Text([("key", inert(key).ljust(key_width)), " ", (level, inert(value) or "-")]))
    return out


def runq_buckets(hist: Sequence[int]) -> list[tuple[float, float, int]]:
    """(low s, high s, count) of the log2 run-queue histogram, from the first to the last non-empty slot."""
    nonzero = [i for i, c in enumerate(hist) if c]
    if not nonzero:
        return []
    out = []
    for s in range(nonzero[0], nonzero[-1] + 1):
        low = 0 if s == 0 else 2 ** (s + 9)
        high = RUNQ_SLOT0_NS if s == 0 else 2 ** (s + 10)
        out.append((low / 1e9, high / 1e9, int(hist[s])))
    return out


def histogram_lines(hist: Sequence[int] | None) -> list[str]:
    """Text bars of the run-queue latency histogram; a "-" line when there is none."""
    buckets = runq_buckets(hist or [])
    if not buckets:
        return ["-"]
    top = max(c for _, _, c in buckets) or 1
    lines = []
    for low, high, count in buckets:
        bar = "█" * max(1 if count else 0, round(count / top * BAR_WIDTH))
        lines.append(f"{format_duration(low):>7} - {format_duration(high):<7} {bar:<{BAR_WIDTH}} {count}")
    return lines


def _record_line(record: Any, keys: Sequence[str]) -> str:
    values = [f"{k}={inert(v)}" for k in keys if (v := _get(record, k)) not in (None, "")]
    return " ".join(values) or inert(record)


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


def build(row: CgroupRow, history: History, inspected: Any, gone: bool) -> list[urwid.Widget]:
    """The widgets of the detail view for ``row``; ``inspected`` is the inspect dict, an error text, or None."""
    ident = row.identity
    path = row.sample.path
    out: list[urwid.Widget] = [_title(f"{ident.name or path}  ({path})")]
    if gone:
        out.append(urwid.Text(("crit", "This cgroup no longer exists; the values are its last ones.")))
    out.append(urwid.Divider())
    out += _pairs([
        ("kind", ident.kind, None), ("runtime", ident.runtime, None), ("container id", ident.container_id, None),
        ("image", ident.image, None), ("pod", ident.pod, None), ("namespace", ident.namespace, None),
        ("container", ident.container, None), ("QoS class", ident.qos_class, None),
    ])
    if ident.labels:
        out.append(urwid.Text(("key", "labels")))
        out += [urwid.Text("  " + inert(f"{k}={v}")) for k, v in sorted(ident.labels.items())]
    out.append(urwid.Divider())
    cpu_now = format_value(FIELDS_BY_KEY["cpu_percent"], row.cpu_percent)
    mem_now = format_value(FIELDS_BY_KEY["memory_working_set_bytes"], row.sample.working_set_bytes)
    limit = FIELDS_BY_KEY["memory_limit_bytes"].get(row)
    mem_top = float(limit) if limit else None
    cpu_top = row.cpu_limit_cores * 100 if row.cpu_limit_cores else None
    out.append(Sparkline(f"CPU % {cpu_now:>7} ", history.cpu.get(path, ()), cpu_top))
    out.append(Sparkline(f"MEM   {mem_now:>7} ", history.memory.get(path, ()), mem_top))
    out.append(urwid.Divider())
    out.append(_title("Fields"))
    pairs = []
    for f in FIELDS:
        value = f.get(row)
        rule = LEVELS.get(f.key)
        pairs.append((f"{f.header}", format_value(f, value), rule(value) if rule else None))
    out += _pairs(pairs, 10)
    out.append(urwid.Divider())
    out += _ebpf_section(row)
    out.append(urwid.Divider())
    out.append(_title("Inspect"))
    if inspected is None:
        out.append(urwid.Text("-"))
    else:
        out += [urwid.Text(line) for line in _inspect_lines(inspected)]
    return out


def _ebpf_section(row: CgroupRow) -> list[urwid.Widget]:
    out: list[urwid.Widget] = [_title("eBPF")]
    rates = row.ebpf_rates or {}
    if rates:
        out += _pairs([(k, "-" if v is None else f"{v:.4g}", None) for k, v in sorted(rates.items())], 32)
    else:
        out.append(urwid.Text("rates: -"))
    out.append(urwid.Text(("key", "run-queue latency")))
    out += [urwid.Text("  " + line) for line in histogram_lines(_get(row.ebpf, "runq_hist"))]
    out.append(urwid.Text(("key", "recent execs")))
    execs = list(_get(row.ebpf, "recent_execs") or [])[-MAX_LOG_LINES:]
    out += [urwid.Text("  " + _record_line(e, ("pid", "ppid", "comm", "filename"))) for e in execs] or \
        [urwid.Text("  -")]
    out.append(urwid.Text(("key", "OOM kills")))
    ooms = list(_get(row.ebpf, "recent_ooms") or [])[-MAX_LOG_LINES:]
    kills = row.sample.memory_oom_kills
    out.append(urwid.Text(("crit" if kills else None, f"  kernel counter: {'-' if kills is None else kills}")))
    out += [urwid.Text(("crit", "  " + _record_line(o, ("pid", "comm")))) for o in ooms]
    return out
