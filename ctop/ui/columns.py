"""The columns of the main list: which fields of the shared table they show, their priority and colour rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..model.fields import FIELDS_BY_KEY, ORDERS, Field, display_name, format_value
from ..model.frame import CgroupRow
from .text import inert

# Keys of the eBPF rates the collector puts in CgroupRow.ebpf_rates (fields of the shared table).
RUNQ_P99 = "runq_latency_p99_seconds"
CSW_VOLUNTARY = "ctx_switches_voluntary_per_s"
CSW_INVOLUNTARY = "ctx_switches_involuntary_per_s"


def field(key: str) -> Field:
    return FIELDS_BY_KEY[key]


Level = str | None  # None, "warn" or "crit": the palette entries of a cell that needs attention


def _threshold(warn: float, crit: float) -> Callable[[Any], Level]:
    def level(value: Any) -> Level:
        if value is None:
            return None
        return "crit" if value >= crit else "warn" if value >= warn else None
    return level


# Colour rules keyed by field key: near a limit, throttled, OOM-killed, waiting for a CPU.
LEVELS: dict[str, Callable[[Any], Level]] = {
    "cpu_limit_percent": _threshold(80.0, 95.0),
    "throttled_percent": _threshold(5.0, 25.0),
    "memory_limit_percent": _threshold(80.0, 95.0),
    "memory_oom_kills": _threshold(1, 1),
    RUNQ_P99: _threshold(0.005, 0.050),
}


@dataclass(frozen=True)
class Column:
    """One column of the main list.

    ``priority``: lower is kept longer when the terminal is narrow (0 is never dropped). ``sort`` gives the sort
    key (None sorts last) and ``descending`` its natural direction. ``hotkey`` sorts by this column.
    """

    key: str
    header: str
    width: int
    priority: int
    text: Callable[[CgroupRow], str]
    sort: Callable[[CgroupRow], Any]
    descending: bool = True
    level: Callable[[CgroupRow], Level] = lambda row: None
    align: str = "right"
    description: str = ""
    hotkey: str = ""


def field_column(key: str, priority: int, hotkey: str = "", width: int | None = None,
                 order: str | None = None, level_key: str | None = None) -> Column:
    """A column showing one shared field; ``order`` names a shared sort order, ``level_key`` a colour rule."""
    f = field(key)
    rule = LEVELS.get(level_key or key)
    level_field = field(level_key) if level_key else f
    sort = ORDERS[order][0] if order else f.get
    return Column(
        key=key, header=f.header, width=max(width or f.width, len(f.header) + 1), priority=priority,
        text=lambda row: inert(format_value(f, f.get(row))), sort=sort,
        level=(lambda row: rule(level_field.get(row))) if rule else (lambda row: None),
        align="left" if f.unit == "" else "right", description=f.description, hotkey=hotkey,
    )


def _pod_text(row: CgroupRow) -> str:
    ident = row.identity
    if not ident.pod and not ident.namespace:
        return "-"
    return inert(f"{ident.namespace or '-'}/{ident.pod or '-'}")


def _csw(row: CgroupRow) -> float | None:
    return None if row.ebpf_rates is None else row.ebpf_rates.ctx_switches_per_s


def _name_level(row: CgroupRow) -> Level:
    ebpf_kills = row.ebpf_rates.oom_kills if row.ebpf_rates is not None else None
    return "crit" if row.sample.memory_oom_kills or ebpf_kills else None


NAME = Column("name", "NAME", 12, 0, lambda row: inert(display_name(row)), display_name, descending=False,
              level=_name_level, align="left", description="container, unit or pod name; the cgroup path when unknown",
              hotkey="N")

COLUMNS: tuple[Column, ...] = (
    NAME,
    Column("pod", "NAMESPACE/POD", 20, 6, _pod_text, lambda r: (r.identity.namespace, r.identity.pod) if
           (r.identity.pod or r.identity.namespace) else None, descending=False, align="left",
           description="Kubernetes namespace and pod"),
    field_column("qos_class", 7, width=10),
    field_column("cpu_percent", 0, "P", width=6, order="cpu"),
    field_column("cpu_limit_percent", 3, "L", order="limit"),
    field_column("throttled_percent", 2, "T", width=5, order="throttle"),
    field_column("memory_working_set_bytes", 0, "M", width=7, order="memory", level_key="memory_limit_percent"),
    field_column("memory_limit_bytes", 4, width=7),
    field_column("memory_limit_percent", 1),
    field_column(RUNQ_P99, 3, "Q", width=7),
    Column("csw", "CSW/s", 6, 6, lambda r: format_value(field(CSW_VOLUNTARY), _csw(r)), _csw,
           description="context switches per second (voluntary + involuntary), from eBPF"),
    field_column("net_rx_bytes_per_s", 5, order="net"),
    field_column("net_tx_bytes_per_s", 5),
    field_column("io_read_bytes_per_s", 4, "I", order="io"),
    field_column("io_write_bytes_per_s", 4),
    field_column("pids", 2, width=5, order="pids"),
    field_column("memory_oom_kills", 1, "K", width=4),
)

COLUMNS_BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}

# The sort orders of ``ctop --order`` and the column each starts on.
ORDER_COLUMNS = {"cpu": "cpu_percent", "memory": "memory_working_set_bytes", "io": "io_read_bytes_per_s",
                 "pids": "pids", "throttle": "throttled_percent", "limit": "cpu_limit_percent",
                 "net": "net_rx_bytes_per_s", "name": "name", "path": "name"}


def fit_columns(visible: list[Column], width: int, name_min: int = 20) -> list[tuple[Column, int]]:
    """The columns that fit ``width`` with their widths: low-priority ones dropped first, NAME takes the rest."""
    kept = list(visible)

    def needed(cols: list[Column]) -> int:
        return sum(c.width for c in cols if c is not NAME) + max(0, len(cols) - 1)

    name_want = name_min if NAME in kept else 0
    while needed(kept) + name_want > width:
        droppable = [c for c in kept if c.priority > 0]
        if not droppable:
            break
        worst = max(droppable, key=lambda c: (c.priority, kept.index(c)))
        kept.remove(worst)
    rest = max(1, width - needed(kept))
    return [(c, rest if c is NAME else c.width) for c in kept]
