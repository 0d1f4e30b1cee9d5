"""Metric families as the exporter builds them, and their Prometheus text exposition (format 0.0.4).

Label sets are escaped once per cgroup and reused by every family of that cgroup, which keeps a scrape of
hundreds of containers fast. No sample carries a timestamp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label_value(value: str) -> str:
    """Text-format escaping of a label value: backslash, double quote and line feed."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def label_text(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    """``a="x",b="y"``: the inside of a label set, values escaped."""
    return ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True))


INF = float("inf")


def format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass(slots=True)
class Family:
    """One metric family: exposition name, type, help, and samples as (name suffix, label text, value)."""

    name: str
    kind: str  # counter, gauge, histogram, untyped
    help: str
    samples: list[tuple[str, str, float]] = field(default_factory=list)

    def add(self, labels: str, value: float, suffix: str = "") -> None:
        self.samples.append((suffix, labels, value))


def render(families: list[Family]) -> bytes:
    """The text exposition of ``families`` (families without samples are left out)."""
    out: list[str] = []
    append = out.append
    for fam in families:
        if not fam.samples:
            continue
        help_text = fam.help.replace("\\", "\\\\").replace("\n", "\\n")
        append(f"# HELP {fam.name} {help_text}\n# TYPE {fam.name} {fam.kind}\n")
        name = fam.name
        for suffix, labels, value in fam.samples:
            kind = type(value)
            if kind is int:  # the common cases inline: this loop runs once per sample
                text = str(value)
            elif kind is float and value == value and -INF < value < INF:
                text = repr(value)
            else:
                text = format_value(value)
            append(f"{name}{suffix}{{{labels}}} {text}\n" if labels else f"{name}{suffix} {text}\n")
    return "".join(out).encode("utf-8")
