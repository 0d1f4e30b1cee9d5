"""Key bindings as data: which keys run which action, where, and what the help screen says about them."""

from __future__ import annotations

from dataclasses import dataclass

from .columns import COLUMNS


@dataclass(frozen=True)
class Binding:
    """``keys`` (urwid key names) run ``action`` with ``arg`` in the ``where`` screen ("list", "detail", "any")."""

    keys: tuple[str, ...]
    action: str
    help: str
    arg: str = ""
    where: str = "list"
    replay: bool = False  # only in `ctop replay` (and only listed there)


# The sort hotkeys come from the field table (Field.hotkey), in the order of the list's columns.
SORT_BINDINGS: tuple[Binding, ...] = tuple(
    Binding((c.field.hotkey,), "sort_column", f"sort by {c.field.long_name or c.header}", c.key)
    for c in COLUMNS if c.field.hotkey)

BINDINGS: tuple[Binding, ...] = (
    *SORT_BINDINGS,
    Binding(("<", ","), "sort_move", "sort by the column to the left", "-1"),
    Binding((">", "."), "sort_move", "sort by the column to the right", "1"),
    Binding(("r", "R"), "reverse", "reverse the sort order"),
    Binding(("/",), "filter", "filter as --filter does: key=text terms or plain text (Enter keeps it, Esc clears)"),
    Binding(("t",), "tree", "tree: QoS > pod > container, project > container, slice > service, or the cgroup "
            "path tree"),
    Binding(("v",), "view_next",
            "next view: containers, pods, QoS classes, systemd units, all cgroups, nodes, namespaces, Compose "
            "projects"),
    Binding(("1",), "view", "containers", "containers"),
    Binding(("2",), "view", "pods", "pods"),
    Binding(("3",), "view", "QoS classes", "qos"),
    Binding(("4",), "view", "systemd units", "units"),
    Binding(("5",), "view", "all cgroups", "cgroups"),
    Binding(("6",), "view", "nodes (fleet view)", "nodes"),
    Binding(("7",), "view", "namespaces", "namespaces"),
    Binding(("8",), "view", "Docker Compose projects", "compose"),
    Binding(("c", "f2"), "columns", "choose the columns to show"),
    Binding(("enter",), "detail", "details of the selected row"),
    Binding(("esc",), "back", "back (clears the filter in the list)", where="any"),
    Binding(("p", " "), "pause", "pause or resume refreshing (replay: stay put or follow in real time)", where="any"),
    Binding(("[",), "replay_step", "replay: one sample back (and stay put)", "-1", where="any", replay=True),
    Binding(("]",), "replay_step", "replay: one sample forward (and stay put)", "1", where="any", replay=True),
    Binding(("{",), "replay_jump", "replay: one minute back", "-60", where="any", replay=True),
    Binding(("}",), "replay_jump", "replay: one minute forward", "60", where="any", replay=True),
    Binding(("b",), "replay_jump", "replay: ten minutes back", "-600", where="any", replay=True),
    Binding(("f",), "replay_jump", "replay: ten minutes forward", "600", where="any", replay=True),
    Binding(("+", "="), "faster", "refresh more often", where="any"),
    Binding(("-", "_"), "slower", "refresh less often", where="any"),
    Binding(("?", "h", "f1"), "help", "this help", where="any"),
    Binding(("q",), "quit", "quit (from a detail view: back)", where="any"),
)


def lookup(key: str, where: str, replay: bool = False) -> Binding | None:
    """The binding of ``key`` in screen ``where``; a screen's own bindings win over "any"; replay keys only in
    replay."""
    fallback = None
    for b in BINDINGS:
        if key in b.keys and (replay or not b.replay):
            if b.where == where:
                return b
            if b.where == "any":
                fallback = b
    return fallback


def help_lines(replay: bool = False) -> list[tuple[str, str]]:
    """(keys, meaning) for the help screen, in table order; the replay keys only in replay."""
    names = {" ": "space", "enter": "Enter", "esc": "Esc", "f1": "F1", "f2": "F2"}
    return [(" ".join(names.get(k, k) for k in b.keys), b.help) for b in BINDINGS if replay or not b.replay]
