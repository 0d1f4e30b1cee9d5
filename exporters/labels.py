"""Label values for exported series: cAdvisor's container labels, made safe, and the filter of exported cgroups."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ctop.model.frame import CgroupRow
from ctop.model.safe_text import inert

# The labels every container series carries, in cAdvisor's order; always present, "" when unknown.
CONTAINER_LABELS = ("id", "name", "image", "container", "pod", "namespace")
# A label value longer than this is cut: label sets stay bounded whatever a runtime reports.
MAX_LABEL_CHARS = 512
# Kinds kept by --containers-only: containers, the pods that own their network, and the root (node totals).
CONTAINERS_ONLY_KINDS = frozenset({"container", "pod", "root"})


class _Memo:
    """clean()'s results for the values of this scrape and the one before: live names hit, churned ones age out.

    (An LRU sized for a big node keeps every churned container's labels until it is full: tens of MB.)
    """

    def __init__(self) -> None:
        self.now: dict[object, str] = {}
        self.before: dict[object, str] = {}

    def next_scrape(self) -> None:
        self.before, self.now = self.now, {}


_memo = _Memo()


def next_scrape() -> None:
    """Called once per scrape (build_families): label values not seen in two scrapes are forgotten."""
    _memo.next_scrape()


def clean(value: object) -> str:
    """clean_value() through the two-scrape memo (the same names come back every scrape)."""
    key = value if type(value) is str else (type(value), value)  # 1 and 1.0 stay apart
    try:
        hit = _memo.now.get(key)
    except TypeError:  # unhashable: nothing to remember
        return clean_value(value)
    if hit is None:
        hit = _memo.before.get(key)
        if hit is None:
            hit = clean_value(value)
        _memo.now[key] = hit
    return hit


def clean_value(value: object) -> str:
    """A label value that always encodes as UTF-8: undecodable bytes (surrogate escapes) become U+FFFD, other
    control characters (ESC, BEL, CR, C1 CSI...) "?". Quotes, backslashes and newlines are left as they are: the
    exposition writer escapes them.
    """
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if len(text) > MAX_LABEL_CHARS:
        text = text[:MAX_LABEL_CHARS]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:  # bytes smuggled in by os.fsdecode: one U+FFFD per undecodable byte
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # other lone surrogates
            raw = text.encode("utf-8", "surrogatepass")
        text = raw.decode("utf-8", "replace")
    return inert(text, keep="\n")


def container_labels(row: CgroupRow) -> tuple[str, str, str, str, str, str]:
    """The cAdvisor label values of one cgroup: id, name, image, container, pod, namespace."""
    ident = row.identity
    return (
        clean(row.sample.path or "/"),
        clean(ident.name),
        clean(ident.image),
        clean(ident.container),
        clean(ident.pod),
        clean(ident.namespace),
    )


@dataclass(frozen=True)
class CgroupFilter:
    """Which cgroups are exported: regexes on the cgroup path (``id``) and an optional kind filter."""

    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None
    containers_only: bool = False

    def accepts(self, row: CgroupRow) -> bool:
        path = row.sample.path or "/"
        if self.containers_only and row.identity.kind not in CONTAINERS_ONLY_KINDS and path != "/":
            return False
        return self.accepts_path(path)

    def accepts_path(self, path: str) -> bool:
        """Whether the include/exclude patterns accept a cgroup path (the kind filter aside)."""
        if self.include is not None and not self.include.search(path):
            return False
        return not (self.exclude is not None and self.exclude.search(path))


def compile_filter(include: str | None, exclude: str | None, containers_only: bool) -> CgroupFilter:
    """Build a filter from flag values; a bad regex raises ValueError with one sentence."""

    def compile_one(flag: str, pattern: str | None) -> re.Pattern[str] | None:
        if not pattern:
            return None
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{flag} is not a valid regular expression ({exc}).") from None

    return CgroupFilter(
        compile_one("--cgroup.include", include), compile_one("--cgroup.exclude", exclude), containers_only
    )
