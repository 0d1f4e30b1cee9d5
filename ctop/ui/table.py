"""Which rows the main list shows and in what order: the view (containers, pods, ...), the filter, sort and tree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..model.fields import SortGetter, display_name, sort_rows
from ..model.frame import CgroupRow, Frame
from ..model.groups import compose_path
from .text import inert


@dataclass(frozen=True)
class View:
    """A way to list cgroups: ``kinds`` selects rows by identity kind (None: all); ``tree_kinds`` are the kinds of
    ancestors the tree shows above them (None: every ancestor)."""

    key: str
    title: str
    kinds: frozenset[str] | None
    tree_kinds: frozenset[str] | None
    empty: str
    host: bool = False  # lists the host row (the node outside every container) beside the rows of ``kinds``


VIEWS: tuple[View, ...] = (
    View("containers", "Containers", frozenset({"container"}), frozenset({"node", "qos", "pod", "compose"}),
         "No containers found (container names come from a runtime). Press 5 for all cgroups.", host=True),
    View("pods", "Pods", frozenset({"pod"}), frozenset({"node", "qos"}),
         "No Kubernetes pods found. Press 5 for all cgroups."),
    View("qos", "QoS classes", frozenset({"qos"}), frozenset(), "No Kubernetes QoS classes found."),
    View("units", "systemd units", frozenset({"slice", "service", "scope"}), frozenset({"slice", "service"}),
         "No systemd slices, services or scopes found."),
    View("cgroups", "All cgroups", None, None, "No cgroups could be read."),
    View("nodes", "Nodes", frozenset({"node"}), frozenset(), "No nodes: the fleet view (--prometheus) lists them."),
    View("namespaces", "Namespaces", frozenset({"namespace"}), frozenset(),
         "No Kubernetes namespaces found."),
    View("compose", "Compose projects", frozenset({"compose"}), frozenset(),
         "No Docker Compose projects found (their containers carry com.docker.compose.project labels)."),
)
VIEWS_BY_KEY = {v.key: v for v in VIEWS}


@dataclass(frozen=True)
class DisplayRow:
    """A row as listed: ``depth`` and ``prefix`` (tree guides) in tree mode; ``context`` marks an ancestor shown
    only to place its descendants (it does not match the view or the filter)."""

    row: CgroupRow
    depth: int = 0
    prefix: str = ""
    context: bool = False
    parent: str | None = None  # the path of the shown ancestor in tree mode

    @property
    def path(self) -> str:
        return self.row.sample.path


def in_view(row: CgroupRow, view: View) -> bool:
    return view.kinds is None or row.identity.kind in view.kinds


def parent_path(path: str) -> str | None:
    if path == "/" or not path.startswith("/"):  # the root, or the host row (not a cgroup)
        return None
    return path.rsplit("/", 1)[0] or "/"


def select(frame: Frame | None, view: View, row_filter: Callable[[CgroupRow], bool], key: SortGetter,
           descending: bool, tree: bool) -> list[DisplayRow]:
    """The rows to list, in order: those of the view that pass ``row_filter`` (a RowFilter: the --filter language)."""
    if frame is None:
        return []
    chosen = [r for r in frame.rows.values() if in_view(r, view) and row_filter(r)]
    if view.host and frame.host is not None and row_filter(frame.host):
        chosen.append(frame.host)
    if view.kinds is not None:  # a group row is listed by a view of its kind only
        chosen += [r for r in frame.groups.values() if r.identity.kind in view.kinds and row_filter(r)]
    if not tree:
        return [DisplayRow(r) for r in sort_rows(chosen, key, descending)]
    return _tree(frame.listed(), chosen, view, key, descending)


def _tree(rows: dict[str, CgroupRow], chosen: list[CgroupRow], view: View, key: SortGetter,
          descending: bool) -> list[DisplayRow]:
    """Chosen rows under their nearest shown ancestor; ancestors of the view's tree kinds are shown as context."""
    shown: dict[str, bool] = {r.sample.path: False for r in chosen}  # path -> is context

    def tree_ancestor(path: str) -> str | None:
        project = rows[path].identity.compose_project if path in rows else ""
        if project and view.tree_kinds is not None and "compose" in view.tree_kinds \
                and compose_path(project) in rows and rows[path].identity.kind != "compose":
            return compose_path(project)  # a Compose project's containers under their project
        p = parent_path(path)
        while p is not None:
            r = rows.get(p)
            if r is not None and (p in shown or view.tree_kinds is None or r.identity.kind in view.tree_kinds):
                return p
            p = parent_path(p)
        return None

    pending = list(shown)
    while pending:
        anc = tree_ancestor(pending.pop())
        if anc is not None and anc not in shown:
            shown[anc] = True
            pending.append(anc)
    children: dict[str | None, list[CgroupRow]] = {}
    for path in shown:
        children.setdefault(tree_ancestor(path), []).append(rows[path])
    out: list[DisplayRow] = []

    def walk(parent: str | None, depth: int, guides: str) -> None:
        kids = sort_rows(children.get(parent, []), key, descending)
        for i, r in enumerate(kids):
            last = i == len(kids) - 1
            prefix = "" if depth == 0 else guides + ("└─" if last else "├─")
            out.append(DisplayRow(r, depth, prefix, shown[r.sample.path], parent))
            walk(r.sample.path, depth + 1, "" if depth == 0 else guides + ("  " if last else "│ "))

    walk(None, 0, "")
    return out


def tree_label(row: CgroupRow, parent: str | None) -> str:
    """The name of a row inside the tree: its own name, else its path below the shown parent."""
    if row.identity.name:
        return inert(row.identity.name)
    if row.identity.kind == "qos" and row.identity.qos_class:
        return inert(row.identity.qos_class)
    path = row.sample.path
    if parent and parent != "/" and path.startswith(parent + "/"):
        return inert(path[len(parent) + 1:])
    if parent == "/" and path != "/":
        return inert(path[1:])
    return inert(path)


def label(display: DisplayRow) -> str:
    """The NAME cell of a listed row (tree guides included)."""
    if display.depth == 0:
        return tree_label(display.row, None) if display.row.identity.kind == "qos" else inert(display_name(display.row))
    return display.prefix + tree_label(display.row, display.parent)
