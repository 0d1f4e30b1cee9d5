"""The interactive view: the urwid main loop, the only owner of widget state; Frames arrive from the Feed thread."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import urwid

from ..batch import BatchOptions
from ..config import Loaded, Settings, SettingsFile, default_path
from ..errors import CtopError
from ..model import fields
from ..model.filters import FILTER_KEYS, RowFilter, parse_filter_text
from ..model.frame import CgroupRow, Frame
from ..model.notices import NOT_ROOT as NOT_ROOT_NOTICE
from ..model.notices import NoticeKind
from ..model.workload import workload_key
from . import detail, keys
from . import replay as replay_text
from .columns import COLUMNS, COLUMNS_BY_KEY, DEFAULT_COLUMNS, NAME, Column, extra_width, legend, sort_column
from .feed import Feed, inspect_async
from .history import History, Series
from .replay import NOT_IN_REPLAY, RecentEvents, ReplayControl
from .table import VIEWS, VIEWS_BY_KEY, DisplayRow, select
from .text import inert
from .themes import no_color, palette
from .widgets import HeaderWidget, Layout, MessageRow, RowWidget, Size

if TYPE_CHECKING:
    from ..history.replay import ReplayState

Inspect = Callable[[CgroupRow], dict]
DELAYS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
NOT_ROOT = NOT_ROOT_NOTICE.sentence
FILTER_HELP = (f"space-separated terms, all must match: {', '.join(k + '=' for k in FILTER_KEYS)}text (a substring of "
               "that field) or plain text (in the name, pod, namespace, container or path); case does not matter.")
EBPF_STARTING = "eBPF is starting: run-queue latency and context switches fill in shortly."


def _nearest_delay(delay: float, step: int) -> float:
    """The next refresh delay from the list, faster (step -1) or slower (step 1) than ``delay``."""
    if step < 0:
        faster = [d for d in DELAYS if d < delay - 1e-9]
        return faster[-1] if faster else delay
    slower = [d for d in DELAYS if d > delay + 1e-9]
    return slower[0] if slower else delay


class Root(urwid.WidgetPlaceholder):
    """The top widget: keys the focused widget leaves unused go to the app's key table."""

    def __init__(self, app: App, widget: urwid.Widget) -> None:
        super().__init__(widget)
        self.app = app

    def render(self, size: Size, focus: bool = False) -> urwid.Canvas:
        if size:
            self.app.set_width(size[0])
        return super().render(size, focus)

    def keypress(self, size: Size, key: str) -> str | None:
        if size:
            self.app.set_width(size[0])
        unused = super().keypress(size, key)
        if unused is None:
            return None
        return None if self.app.handle_key(unused) else unused


class FixedCheckBox(urwid.CheckBox):
    """A ticked box that stays ticked (the name column of the chooser); its keys go on to the app."""

    def __init__(self, label: str) -> None:
        super().__init__(label, state=True)

    def keypress(self, size: Size, key: str) -> str | None:
        return key if key in (" ", "enter") else super().keypress(cast(tuple[int], size), key)

    def mouse_event(self, size: Size, event: str, button: int, col: int, row: int, focus: bool) -> bool:
        return False


class App:
    """All view state and widgets. ``receive`` takes the Feed's messages; ``handle_key`` runs the key table.

    The starting columns, sort, view, filter and tree come from ``store`` (the settings file), except the sort and
    filter the command line gave (``explicit`` holds "order" or "reverse"; a non-empty ``options.row_filter``);
    what the user changes is written back to ``store``. ``replay``: the replay source the view moves (the Frames
    then come from a recording: a banner says so on every screen, and replay keys step and jump).
    """

    def __init__(self, options: BatchOptions | None = None, delay: float = 1.0, *, inspect: Inspect | None = None,
                 is_root: bool = True, plain: bool = False, store: SettingsFile | None = None,
                 explicit: frozenset[str] = frozenset(), replay: ReplayControl | None = None,
                 recorded: Callable[[CgroupRow], Any] | None = None) -> None:
        options = options or BatchOptions()
        self.store = store
        loaded = store.load() if store is not None else Loaded(Settings())
        saved = loaded.settings
        self.settings_notice = loaded.warning
        self._saved = saved
        self.width = 80  # of the terminal, as last rendered
        self.inspect = inspect
        self.recorded = recorded  # a workload's recent values from the node's recorder (called off the UI thread)
        self.recorded_from: dict[str, Any] = {}  # path -> the RecordedSeries its sparklines were backfilled with
        self.is_root = is_root
        self.plain = plain
        self.delay = delay
        self.replay = replay
        self.replay_state: ReplayState | None = None
        self.paused = replay is not None  # a replay opens staying put at its time
        self.recent_events = RecentEvents()
        self.frame: Frame | None = None
        self.error = ""
        self.history = History()
        self.view = VIEWS_BY_KEY.get(saved.view or "", VIEWS_BY_KEY["containers"])
        self.filter_text = ""
        self.row_filter = RowFilter()
        self.filter_error = ""
        self.tree = bool(saved.tree)
        if saved.sort is not None and saved.sort in COLUMNS_BY_KEY and not explicit & {"order", "reverse"}:
            self.sort_key, self.reverse = saved.sort, bool(saved.reverse)
        else:
            self.sort_key, self.reverse = sort_column(options.order).key, options.reverse
        self.screen = "list"  # list, detail, help, columns, filter
        self.detail_path: str | None = None
        self.detail_row: CgroupRow | None = None
        self.inspected: dict[str, Any] = {}
        self.displayed: list[DisplayRow] = []
        self.feed: Feed | None = None
        self.post: Callable[[tuple[Any, ...]], None] = self.receive
        self.on_quit: Callable[[], None] = lambda: None
        self.quit_requested = False
        self.save_error = ""

        self.layout = Layout(DEFAULT_COLUMNS if saved.columns is None else _columns(saved.columns))
        self.header = HeaderWidget(self.layout, self.sort_by_click)
        self.walker: urwid.SimpleFocusListWalker[urwid.AbstractFlowWidget] = urwid.SimpleFocusListWalker(
            [MessageRow("Collecting the first refresh…")])
        self.listbox = urwid.ListBox(self.walker)
        self.status = urwid.Text("", wrap="clip")
        self.notice = urwid.Text("")
        self.filter_edit = urwid.Edit("Filter: ")
        urwid.connect_signal(self.filter_edit, "change", self._filter_changed)
        self.chooser: urwid.SimpleFocusListWalker[urwid.AbstractFlowWidget] = urwid.SimpleFocusListWalker([])
        self.chooser_width = 0
        self.footer = urwid.Pile([self.notice, urwid.AttrMap(self.status, "status")])
        self.banner = urwid.Text("", wrap="clip")
        banner = urwid.AttrMap(self.banner, "replay")
        top: urwid.Widget = self.header if replay is None else urwid.Pile([banner, self.header])
        self.main: urwid.Frame[urwid.ListBox, Any, urwid.Pile] = urwid.Frame(self.listbox, header=top,
                                                                              footer=self.footer)
        self.detail_walker: urwid.SimpleFocusListWalker[urwid.AbstractFlowWidget] = urwid.SimpleFocusListWalker([])
        self.detail_box = urwid.ListBox(self.detail_walker)
        self.detail_frame: urwid.Frame[urwid.ListBox, Any, urwid.Pile] = urwid.Frame(
            self.detail_box, header=None if replay is None else banner, footer=self.footer)
        self.top = Root(self, self.main)
        if options.row_filter:
            self.set_filter(options.row_filter.text)
        elif saved.filter:
            self.set_filter(saved.filter)
            if self.filter_error and not self.settings_notice:
                self.settings_notice = f"The saved filter is not used: {self.filter_error}"
                self.set_filter("")
        self._sync_layout()
        self.refresh()

    # -- settings ----------------------------------------------------------------------------------------------

    def settings(self) -> Settings:
        """The current columns, sort, view, filter and tree, as the settings file keeps them."""
        return Settings(columns=tuple(c.key for c in self.layout.visible), sort=self.sort_key, reverse=self.reverse,
                        view=self.view.key, filter=self.filter_text, tree=self.tree)

    def remember(self, *names: str) -> None:
        """Write the settings ``names`` the user just changed (the others keep what the file said)."""
        now = self.settings()
        wanted = self._saved.with_values(**{n: getattr(now, n) for n in names})
        if wanted == self._saved or self.store is None:
            return
        self._saved = wanted
        self.save_error = self.store.save(wanted)
        self.refresh_status()

    def set_width(self, width: int) -> None:
        """The terminal width changed (or was first known): the column chooser's notes depend on it."""
        self.width = width
        if self.screen == "columns" and width != self.chooser_width:
            self.update_chooser()

    # -- data in -----------------------------------------------------------------------------------------------

    def receive(self, message: tuple[Any, ...]) -> None:
        """A message from the Feed or an inspect thread, on the UI thread."""
        kind = message[0]
        if kind == "frame":
            self.apply_frame(message[1])
        elif kind == "error":
            self.error = inert(message[1])
            self.refresh_status()
        elif kind == "replay":
            self.replay_state = message[1]
            self.paused = not message[1].following
            self.refresh_status()
        elif kind == "recorded":
            series = message[2]
            if hasattr(series, "cpu") and hasattr(series, "memory"):
                self.history.backfill(message[1], series.cpu, series.memory)
                self.recorded_from[message[1]] = series
                if self.screen == "detail" and self.detail_path == message[1]:
                    self.refresh_detail()
        elif kind == "inspect":
            self.inspected[message[1]] = message[2]
            if self.screen == "detail" and self.detail_path == message[1]:
                self.refresh_detail()

    def apply_frame(self, frame: Frame) -> None:
        self.frame = frame
        self.error = ""
        if self.replay is not None:
            self.history = replay_history(frame, self.replay_state)
        else:
            self.history.add(frame)
        if self.replay is None:
            present = {workload_key(row.identity, path) for path, row in frame.rows.items()}
            self.recent_events.add(frame.events, present, frame.snapshot.host.wall_time_s)
        self.refresh()

    # -- drawing -----------------------------------------------------------------------------------------------

    def _sort_column(self) -> Column:
        return COLUMNS_BY_KEY.get(self.sort_key) or sort_column(fields.CPU_PERCENT)

    def _sync_layout(self) -> None:
        col = self._sort_column()
        self.layout.sort_key = col.key
        self.layout.descending = col.descending != self.reverse
        self.header.changed()

    def refresh(self) -> None:
        """Rebuild the list (and the detail view) from the current frame and state, keeping the selection: a row
        the user moved to (or opened) is followed wherever the sort puts it, the top row stays the top (the view opens
        there and watches the leaders, as top does, even while the first rates reorder everything)."""
        col = self._sort_column()
        focused = self.focused_path()
        # (a row whose detail is open was chosen: it is followed even if it was the top one)
        at_top = self.screen != "detail" and (not len(self.walker) or self.walker.get_focus()[1] in (0, None))
        self.displayed = [] if self.filter_error else select(
            self.frame, self.view, self.row_filter, col.sort, col.descending != self.reverse, self.tree)
        widgets: list[urwid.AbstractFlowWidget]
        if self.filter_error:
            widgets = [MessageRow(inert(self.filter_error))]
        elif self.frame is None:
            widgets = [MessageRow("Collecting the first refresh…")]
        elif not self.displayed:
            shown = inert(self.filter_text)
            text = self.view.empty if not self.filter_text else f"Nothing matches the filter '{shown}'."
            widgets = [MessageRow(text)]
        else:
            widgets = [RowWidget(d, self.layout) for d in self.displayed]
        self.walker[:] = widgets
        index = 0 if at_top else next((i for i, d in enumerate(self.displayed) if d.path == focused), 0)
        if widgets:
            self.walker.set_focus(min(index, len(widgets) - 1))
        if self.screen == "detail":
            self.refresh_detail()
        self.refresh_status()

    def focused_path(self) -> str | None:
        widget, _ = self.walker.get_focus() if len(self.walker) else (None, None)
        return widget.path if isinstance(widget, RowWidget) else None

    def notices(self) -> list[str]:
        notices = self.frame.notices if self.frame else ()
        out = [inert(n.sentence) for n in notices]
        if not self.is_root and not any(n.kind is NoticeKind.NOT_ROOT for n in notices):
            out.insert(0, NOT_ROOT)
        if self.frame is not None and self.frame.ebpf_state == "starting":
            out.append(EBPF_STARTING)
        out += [inert(n) for n in (self.settings_notice, self.save_error) if n]
        if self.replay_state is not None:
            out += [inert(p) for p in self.replay_state.problems]
        if self.error:
            out.insert(0, self.error)
        return out

    def refresh_status(self) -> None:
        col = self._sort_column()
        arrow = "▼" if col.descending != self.reverse else "▲"
        parts = ["? help", self.view.title]
        if self.frame is not None:
            total = sum(1 for d in self.displayed if not d.context)
            parts.append(f"{total} rows")
        parts.append(f"sort {col.header}{arrow}")
        if self.tree:
            parts.append("tree")
        if self.filter_text:
            parts.append(f"filter '{inert(self.filter_text)}'")
        if self.replay is not None:
            parts.append(replay_text.status_part(self.replay_state, self.delay))
            self.banner.set_text(replay_text.banner(self.replay_state, time.time()))
        else:
            parts.append("PAUSED" if self.paused else f"every {self.delay:g}s")
        self.status.set_text(" " + " | ".join(parts))
        notes = self.notices()
        self.notice.set_text([("notice", " " + " ".join(notes))] if notes else "")

    def refresh_detail(self) -> None:
        if self.detail_path is None:
            return
        row = self.frame.row(self.detail_path) if self.frame else None
        gone = row is None
        if row is not None:
            self.detail_row = row
        if self.detail_row is None:
            return
        execs, ooms = detail.ebpf_logs(self.frame, self.detail_path)
        timeline, timeline_at = self._timeline(self.detail_row)
        widgets = detail.build(self.detail_row, self.history, self._inspected(), gone, execs, ooms,
                               timeline=timeline, timeline_at=timeline_at, span=self._span(self.detail_row.path))
        focus = self.detail_walker.focus if len(self.detail_walker) else 0
        self.detail_walker[:] = widgets
        if widgets:
            self.detail_walker.set_focus(min(focus or 0, len(widgets) - 1))

    def _timeline(self, row: CgroupRow) -> tuple[list[Any], float | None]:
        """The events of ``row``'s workload: from the recording around the replayed moment, or seen live."""
        if self.replay is None:
            return self.recent_events.for_row(row), None
        state = self.replay_state
        if state is None:
            return [], None
        return replay_text.workload_events(state.events, row), state.time

    def _span(self, path: str) -> str:
        """The time the detail view's sparklines cover, for the line under them."""
        values = len(self.history.cpu.get(path, ()))
        if self.replay is not None:
            return f"{values} recorded samples up to the shown time"
        series = self.recorded_from.get(path)
        if series is None:
            return f"the last {fields.FORMATS['age'](values * self.delay)} (since ctop started)"
        restarts = f", {series.cgroups} cgroups of this workload" if series.cgroups > 1 else ""
        return f"the last {fields.FORMATS['age'](time.time() - series.first_time)} (the node's recorder{restarts})"

    def _inspected(self) -> Any:
        if self.replay is not None:
            return NOT_IN_REPLAY
        if self.detail_path in self.inspected:
            return self.inspected[self.detail_path]
        if self.inspect is None:
            return None
        return {"status": "loading…"}

    # -- actions -----------------------------------------------------------------------------------------------

    def handle_key(self, key: str) -> bool:
        """Run the binding of ``key``; True when it was one."""
        if self.screen == "filter":
            return self._filter_key(key)
        if self.screen in ("help", "columns"):
            if key in ("esc", "q", "enter", "?", "h", "f1") or (self.screen == "columns" and key in ("c", "f2")):
                self.close_overlay()
                return True
            if self.screen == "columns" and key == "s":
                self.sort_by_chosen()
                return True
            return False
        where = "detail" if self.screen == "detail" else "list"
        binding = keys.lookup(key, where, replay=self.replay is not None)
        if binding is None:
            return False
        getattr(self, "do_" + binding.action)(binding.arg)
        return True

    def do_sort_column(self, key: str) -> None:
        if self.sort_key == key:
            self.reverse = not self.reverse
        else:
            self.sort_key = key
            self.reverse = False
        self._sync_layout()
        self.refresh()
        self.remember("sort", "reverse")

    def sort_by_click(self, key: str) -> None:
        self.do_sort_column(key)

    def do_sort_move(self, step: str) -> None:
        keys_ = [c.key for c in self.layout.visible]
        index = keys_.index(self.sort_key) if self.sort_key in keys_ else 0
        self.sort_key = keys_[(index + int(step)) % len(keys_)]
        self.reverse = False
        self._sync_layout()
        self.refresh()
        self.remember("sort", "reverse")

    def do_reverse(self, _: str = "") -> None:
        self.reverse = not self.reverse
        self._sync_layout()
        self.refresh()
        self.remember("reverse")

    def do_filter(self, _: str = "") -> None:
        self.screen = "filter"
        self.filter_edit.set_edit_text(self.filter_text)
        self.filter_edit.set_edit_pos(len(self.filter_text))
        self.footer.contents[0] = (self.filter_edit, self.footer.options())
        self.footer.focus_position = 0
        self.main.focus_position = "footer"

    def set_filter(self, text: str) -> None:
        """Filter the list by ``text``, in the language of ``--filter``; a mistake in it is shown instead of rows."""
        self.filter_text = text
        try:
            self.row_filter, self.filter_error = parse_filter_text(text), ""
        except CtopError as e:
            self.row_filter, self.filter_error = RowFilter(), str(e)

    def _filter_changed(self, _edit: urwid.Edit, text: str) -> None:
        self.set_filter(text)
        self.refresh()

    def _filter_key(self, key: str) -> bool:
        if key not in ("enter", "esc"):
            return False
        if key == "esc":
            self.filter_edit.set_edit_text("")
        self.screen = "list"
        self.footer.contents[0] = (self.notice, self.footer.options())
        self.main.focus_position = "body"
        self.refresh()
        self.remember("filter")
        return True

    def do_tree(self, _: str = "") -> None:
        self.tree = not self.tree
        self.refresh()
        self.remember("tree")

    def do_view(self, key: str) -> None:
        self.view = VIEWS_BY_KEY[key]
        self.refresh()
        self.remember("view")

    def do_view_next(self, _: str = "") -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.refresh()
        self.remember("view")

    def do_columns(self, _: str = "") -> None:
        title = urwid.Text(("title", "Columns: space ticks or unticks, s sorts by the column, Esc closes"))
        boxes: list[urwid.AbstractFlowWidget] = [
            FixedCheckBox("") if col is NAME else  # the name column is always shown
            urwid.CheckBox("", state=col in self.layout.visible, on_state_change=self._toggle_column, user_data=col.key)
            for col in COLUMNS]
        self.chooser[:] = boxes
        self.chooser.set_focus(0)
        self.update_chooser()
        self._overlay(urwid.Frame(urwid.ListBox(self.chooser), header=title), "columns")

    def update_chooser(self) -> None:
        """Each chooser line says what its column is and whether it is on screen at the terminal's width."""
        self.chooser_width = self.width
        visible = self.layout.visible
        shown = {c.key for c, _ in self.layout.fit(self.width)}
        for col, widget in zip(COLUMNS, self.chooser):
            label: list[Any] = [f"{col.header:<14} {col.description}"]
            if col.key == self.sort_key:
                label.append(" (the sort column)")
            if col is NAME:
                label.append(" (always shown)")
            elif col in visible and col.key not in shown:
                more = extra_width(visible, col, self.width)
                label.append(("notice", f" ticked, not shown: needs {more} more columns; widen the terminal or "
                                        "untick another"))
            widget.set_label(label)

    def sort_by_chosen(self) -> None:
        """Sort the list by the column focused in the chooser (shown or not)."""
        _, index = self.chooser.get_focus()
        if index is not None:
            self.do_sort_column(COLUMNS[index].key)
            self.update_chooser()

    def _toggle_column(self, _box: urwid.CheckBox, state: bool, key: str) -> None:
        shown = {c.key for c in self.layout.visible}
        shown = shown | {key} if state else shown - {key}
        self.layout.set_visible(_columns(shown))
        self.header.changed()
        self.refresh()
        self.remember("columns")
        self.update_chooser()

    def do_help(self, _: str = "") -> None:
        lines: list[urwid.AbstractFlowWidget] = [urwid.Text(("title", "ctop keys (Esc closes)")), urwid.Divider()]
        for names, meaning in keys.help_lines(replay=self.replay is not None):
            lines.append(urwid.Text([("key", f"{names:<14}"), " ", meaning]))
        lines += [urwid.Divider(), urwid.Text("Arrows, PgUp/PgDn, Home/End move; a click on a heading sorts."),
                  urwid.Text("Colours: yellow = near a limit or throttled, red = at the limit or OOM-killed."),
                  urwid.Text("Filter (/ and --filter): " + FILTER_HELP)]
        on_screen = [c for c, _ in self.layout.fit(self.width)]
        others = [c for c in COLUMNS if c not in on_screen]
        for title, columns in (("Columns on screen", on_screen),
                               ("Other columns (c shows them; s there sorts by one)", others)):
            lines += [urwid.Divider(), urwid.Text(("title", title))]
            for header, meaning in legend(columns):  # wrapped meanings stay indented under their own
                lines.append(urwid.Columns([(15, urwid.Text(("key", header))), urwid.Text(meaning)]))
        self._overlay(urwid.ListBox(urwid.SimpleFocusListWalker(lines)), "help")

    def _overlay(self, body: urwid.Widget, screen: str) -> None:
        self._under = (self.top.original_widget, self.screen)
        box = urwid.LineBox(body)
        self.top.original_widget = urwid.Overlay(box, self.top.original_widget, "center", ("relative", 90),
                                                 "middle", ("relative", 90))
        self.screen = screen

    def close_overlay(self) -> None:
        widget, screen = self._under
        self.top.original_widget = widget
        self.screen = screen

    def do_detail(self, _: str = "") -> None:
        path = self.focused_path()
        row = self.frame.row(path) if path is not None and self.frame is not None else None
        if path is None or row is None:
            return
        self.detail_path = path
        self.detail_row = row
        self.screen = "detail"
        self.detail_walker[:] = []
        self._move(f"detail:{path}")  # replay: the source sends this cgroup's recorded sparkline values
        if self.inspect is not None and self.replay is None:
            self.inspected.pop(path, None)
            inspect_async(self.inspect, self.detail_row, self.post)
        if self.recorded is not None and self.replay is None and path not in self.recorded_from:
            inspect_async(self.recorded, self.detail_row, self.post, kind="recorded")
        self.refresh_detail()
        self.top.original_widget = self.detail_frame

    def do_back(self, _: str = "") -> None:
        if self.screen == "detail":
            self._move("detail:")
            self.screen = "list"
            self.detail_path = None
            self.detail_row = None
            self.top.original_widget = self.main
            self.refresh()
        elif self.filter_text:
            self.set_filter("")
            self.refresh()
            self.remember("filter")

    def do_pause(self, _: str = "") -> None:
        self.paused = not self.paused
        if self.replay is not None:
            self._move("pause" if self.paused else "follow")
        if self.feed is not None:
            self.feed.set_paused(self.paused)
        self.refresh_status()

    def _move(self, command: str) -> None:
        """Ask the replay source to move; the Feed's thread reads the store and posts the Frame there."""
        if self.replay is None:
            return
        self.replay.request(command)
        if self.feed is not None:
            self.feed.poke()

    def do_replay_step(self, count: str) -> None:
        if self.replay is not None and not self.paused:
            self.paused = True  # a step stays put where it went
            if self.feed is not None:
                self.feed.set_paused(True)
        self._move(f"step:{count}")
        self.refresh_status()

    def do_replay_jump(self, seconds: str) -> None:
        self._move(f"jump:{seconds}")

    def _set_delay(self, delay: float) -> None:
        self.delay = delay
        if self.feed is not None:
            self.feed.set_delay(delay)
        self.refresh_status()

    def do_faster(self, _: str = "") -> None:
        self._set_delay(_nearest_delay(self.delay, -1))

    def do_slower(self, _: str = "") -> None:
        self._set_delay(_nearest_delay(self.delay, 1))

    def do_quit(self, _: str = "") -> None:
        if self.screen == "detail":
            self.do_back()
            return
        self.quit_requested = True
        self.on_quit()


def replay_history(frame: Frame, state: ReplayState | None) -> History:
    """The sparklines' values in replay: the recorded ones of the detail view's cgroup, else the shown frame's."""
    history = History()
    history.add(frame)
    series = state.series if state is not None else None
    if series is not None and series.time == frame.snapshot.host.wall_time_s:
        history.cpu[series.path] = Series(history.length, series.cpu)
        history.memory[series.path] = Series(history.length, series.memory)
    return history


def _columns(keys: Iterable[str]) -> list[Column]:
    """The list columns of these field keys, in the chooser's order; the name column always among them."""
    wanted = set(keys) | {NAME.key}
    return [c for c in COLUMNS if c.key in wanted]


def _raw_screen() -> urwid.display.raw.Screen:
    display = getattr(urwid, "display", None)  # urwid >= 2.4; older releases have urwid.raw_display
    raw = display.raw if display is not None else getattr(urwid, "raw_display")  # noqa: B009
    screen: urwid.display.raw.Screen = raw.Screen()
    return screen


def run_app(collector: Any, options: BatchOptions, delay: float, *, inspect: Inspect | None = None,
            config: str | None = None, explicit: frozenset[str] = frozenset(), replay: Any = None,
            recorded: Callable[[CgroupRow], Any] | None = None) -> None:
    """Run the interactive view until the user quits; collection and ``inspect`` run off the UI thread.

    ``config``: the settings file (default: under $XDG_CONFIG_HOME); ``explicit``: the options the command line
    gave ("order", "reverse"), which win over the saved ones. ``replay``: a replay source (``collect``, ``request``
    and ``post``, as ctop.history.replay.ReplaySource); ``collector`` is then not used.
    """
    plain = no_color()
    store = SettingsFile(config or default_path())
    remote = replay is not None or getattr(collector, "remote", False)  # a recording or a fleet: root is moot
    app = App(options, delay, inspect=inspect, is_root=os.geteuid() == 0 or remote, plain=plain,
              store=store, explicit=explicit, replay=replay, recorded=recorded)
    screen = _raw_screen()
    if plain:
        screen.set_terminal_properties(colors=1)
    loop = urwid.MainLoop(app.top, palette(plain), screen=screen, handle_mouse=True)
    inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()

    def drain(_data: bytes) -> bool:
        while True:
            try:
                app.receive(inbox.get_nowait())
            except queue.Empty:
                return True

    pipe_fd = loop.watch_pipe(drain)

    def post(message: tuple[Any, ...]) -> None:
        inbox.put(message)
        try:
            os.write(pipe_fd, b"!")
        except OSError:  # the loop has ended and closed the pipe
            pass

    def quit_loop() -> None:
        raise urwid.ExitMainLoop()

    app.post = post
    app.on_quit = quit_loop
    if replay is not None:
        replay.post = post  # the source posts its state from the Feed's thread, just before each Frame
        app.feed = Feed(replay.collect, delay, post)
        app.feed.set_paused(True)
        app.feed.poke()  # the first Frame, at the requested time
    else:
        app.feed = Feed(collector.collect, delay, post)
    app.feed.start()
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    finally:
        app.feed.stop()
        loop.remove_watch_pipe(pipe_fd)
