"""The interactive view rendered to canvases from built Frames: keys, sorting, filtering, tree, width, colours."""

from __future__ import annotations

import queue
import re
import threading
import time
from types import SimpleNamespace

import urwid
from unit.test_ui_frames import GIB, MIB, POD_A, make_frame, make_row, node_rows

from ctop.batch import BatchOptions
from ctop.model.ebpf import RUNQ_SLOTS, EbpfCgroupCounters, ExecRecord, OomKill
from ctop.model.ebpf_rates import EbpfRates
from ctop.model.notices import Notice, NoticeKind
from ctop.ui import detail
from ctop.ui.app import NOT_ROOT, App
from ctop.ui.feed import Feed
from ctop.ui.history import History
from ctop.ui.themes import COLOUR, no_color, palette

SIZE = (80, 24)


def screen(app: App, size: tuple[int, int] = SIZE) -> list[str]:
    return [line.decode("utf-8") for line in app.top.render(size, focus=True).text]


def press(app: App, *keys: str, size: tuple[int, int] = SIZE) -> None:
    for k in keys:
        app.top.keypress(size, k)


def body(app: App, size: tuple[int, int] = SIZE) -> list[str]:
    """The list lines between the header and the status lines, blank ones dropped."""
    return [line.rstrip() for line in screen(app, size)[1:-2] if line.strip()]


def names(app: App) -> list[str]:
    return [line.split()[0] for line in body(app)]


def attrs_of(app: App, text: str, size: tuple[int, int] = SIZE) -> set[str]:
    """Palette names used on the first screen line containing ``text`` over the cells holding it."""
    canvas = app.top.render(size, focus=True)
    for row in canvas.content():
        line = b"".join(run[2] for run in row).decode()
        if text in line:
            out, col = set(), 0
            start = line.index(text)
            for attr, _, chunk in row:
                n = len(chunk.decode())
                if col < start + len(text) and col + n > start:
                    out.add(attr)
                col += n
            return out
    raise AssertionError(f"{text!r} not on screen")


def app_with(rows=None, **kw) -> App:
    app = App(BatchOptions(), 1.0, **kw)
    app.apply_frame(make_frame(rows if rows is not None else node_rows()))
    return app


def test_first_screen_before_any_frame_says_it_is_collecting():
    app = App()
    assert "Collecting the first refresh" in "\n".join(screen(app))


def test_container_view_sorted_by_cpu_then_memory_then_name():
    app = app_with()
    lines = screen(app)
    assert lines[0].startswith("NAME") and "CPU%▼" in lines[0] and "MEM" in lines[0]
    assert names(app) == ["nginx", "redis", "sidecar", "cruncher"]
    press(app, "M")
    assert names(app) == ["cruncher", "nginx", "sidecar", "redis"]
    assert "MEM▼" in screen(app)[0]
    press(app, "N")
    assert names(app) == ["cruncher", "nginx", "redis", "sidecar"]
    press(app, "r")
    assert names(app) == ["sidecar", "redis", "nginx", "cruncher"]
    press(app, "P", "P")  # the same sort key twice reverses
    assert names(app)[-1] == "cruncher" and names(app)[0] == "sidecar"


def test_sort_column_moves_with_angle_brackets():
    app = app_with()
    press(app, ">")
    assert app.sort_key == "cpu_limit_percent" and "%CPULIM▼" in screen(app)[0]
    press(app, "<", "<")
    assert app.sort_key == "qos_class"


def test_clicking_a_header_sorts_by_that_column():
    app = app_with()
    header = screen(app)[0]
    x = header.index("MEM ")
    app.top.mouse_event(SIZE, "mouse press", 1, x + 1, 0, True)
    assert app.sort_key == "memory_working_set_bytes"
    assert names(app)[0] == "cruncher"


def test_filter_narrows_live_and_esc_clears_it():
    app = app_with()
    press(app, "/", "s", "h", "o", "p")
    assert names(app) == ["nginx", "sidecar"]
    assert "Filter: shop" in "\n".join(screen(app))
    press(app, "enter")
    assert "filter 'shop'" in screen(app)[-1]
    press(app, "down")  # keys go to the list again
    assert app.focused_path() == POD_A + "/c2"
    press(app, "esc")
    assert len(names(app)) == 4
    press(app, "/", "z", "z", "z")
    assert "Nothing matches the filter 'zzz'" in "\n".join(screen(app))
    press(app, "esc")
    assert len(names(app)) == 4 and app.screen == "list"


def test_tree_groups_qos_pod_container():
    app = app_with()
    press(app, "t")
    lines = body(app)
    assert [line.split()[0] for line in lines] == ["burstable", "└─web-7d9", "├─nginx", "└─sidecar", "redis",
                                                   "besteffort", "└─batch-x", "└─cruncher"]
    assert attrs_of(app, "besteffort") == {"context"}
    assert "tree" in screen(app)[-1]


def test_views_switch_with_digits_and_v():
    app = app_with()
    press(app, "2")
    assert names(app) == ["web-7d9", "batch-x"]
    press(app, "v")
    assert names(app) == ["burstable", "besteffort"]
    press(app, "4")
    assert names(app) == ["system.slice", "cron.service"]
    press(app, "5")
    assert len(body(app)) == len(node_rows())
    press(app, "1")
    assert "Containers" in screen(app)[-1]


def test_empty_container_view_says_none_were_found():
    app = app_with([make_row("/", "root", memory=GIB), make_row("/system", memory=MIB)])
    assert "No containers found" in "\n".join(screen(app))
    press(app, "5")
    assert names(app) == ["/", "/system"]


def test_every_line_fits_80_columns_and_long_names_get_an_ellipsis():
    long = "very-long-container-name-" * 4 + "END"
    app = app_with([*node_rows(), make_row("/docker/long", "container", name=long, cpu_percent=99.0)])
    lines = screen(app)
    assert all(urwid.calc_width(line, 0, len(line)) == 80 for line in lines)
    first = body(app)[0]
    assert "…" in first and first.split()[0].endswith("END")  # the middle is cut, the end kept
    assert "CPU%" in lines[0] and "%MEMLIM" in lines[0] and "NAMESPACE/POD" not in lines[0]
    wide = screen(app, (280, 24))
    assert "NAMESPACE/POD" in wide[0] and long in "\n".join(wide)


def test_missing_fields_show_a_dash_never_zero():
    app = app_with([make_row("/docker/x", "container", name="x", memory=None, oom_kills=None)])
    header, row = screen(app)[0], body(app)[0]
    cells = dict(zip(header.split(), row.split()))
    assert cells["RQP99"] == "-" and cells["CPU%▼"] == "-" and cells["MEM"] == "-" and cells["OOMK"] == "-"
    rates = EbpfRates(runq_latency_p99_seconds=0.0042)
    app = app_with([make_row("/docker/x", "container", name="x", ebpf_rates=rates, memory=MIB)])
    cells = dict(zip(screen(app)[0].split(), body(app)[0].split()))
    assert cells["RQP99"] == "4.2ms"


def test_escape_sequences_in_names_are_inert():
    evil = "\x1b]0;owned\x07\x1b[2Jevil\x9b31m"
    app = app_with([make_row("/docker/e", "container", name=evil, pod="p\x1b[5m", namespace="n", cpu_percent=1.0)])
    raw = b"".join(app.top.render((200, 24), focus=True).text)
    assert b"\x1b" not in raw and b"\x07" not in raw and "\x9b".encode() not in raw
    assert "?]0;owned??[2Jevil?31m" in raw.decode()
    press(app, "enter")
    detail = b"".join(app.top.render((200, 60), focus=True).text)
    assert b"\x1b" not in detail and b"?]0;owned" in detail


def test_colours_mark_limits_throttling_and_oom_kills():
    app = app_with()
    press(app, "down")  # move the focus off nginx so its cells show their own colours
    assert attrs_of(app, "97.7") == {"crit"}  # nginx at 97.7 % of its memory limit
    assert attrs_of(app, "30.0") == {"crit"}  # throttled 30 %
    assert attrs_of(app, "90.0") == {"warn"}  # 90 % of its CPU limit
    assert "crit" in attrs_of(app, "sidecar")  # OOM-killed
    assert attrs_of(app, "redis") == {"focus"}


def test_no_color_palette_has_no_colours():
    assert no_color({"NO_COLOR": "1"}) and not no_color({"NO_COLOR": ""}) and not no_color({})
    colours = {"black", "dark red", "dark green", "brown", "dark blue", "dark magenta", "dark cyan", "light gray",
               "dark gray", "light red", "light green", "yellow", "light blue", "light magenta", "light cyan",
               "white"}
    for name, fg, bg, mono in palette(plain=True):
        used = set(fg.split(",")) | set(bg.split(","))
        assert not used & colours, name
        assert mono in ("default", *[COLOUR[name][2]])
    coloured = palette(plain=False)
    assert any(set(fg.split(",")) & colours for _, fg, _, _ in coloured)
    urwid.display.raw.Screen().register_palette(palette(plain=True))  # urwid accepts every entry


def test_status_line_shows_notices_not_root_and_ebpf_state():
    app = App(is_root=False)
    no_names = Notice(NoticeKind.NO_CONTAINER_NAMES, "No container names: the Docker daemon does not answer.")
    app.apply_frame(make_frame(node_rows(), notices=(no_names,), ebpf_state="starting"))
    text = "\n".join(screen(app, (200, 24)))
    assert NOT_ROOT in text and "the Docker daemon does not answer" in text and "eBPF is starting" in text
    # The collector's not-root notice is recognised by its kind, whatever it says: the app adds none of its own.
    app = App(is_root=False)
    app.apply_frame(make_frame(node_rows(), notices=(Notice(NoticeKind.NOT_ROOT, "Not root: eBPF needs root."),)))
    text = "\n".join(screen(app, (200, 24)))
    assert NOT_ROOT not in text and "Not root: eBPF needs root." in text
    # A notice that mentions root but is of another kind does not hide the app's own.
    app = App(is_root=False)
    unreadable = Notice(NoticeKind.UNREADABLE_FILE, "Cannot read /x/root/memory.stat: permission denied.")
    app.apply_frame(make_frame(node_rows(), notices=(unreadable,)))
    assert NOT_ROOT in "\n".join(screen(app, (200, 24)))


def test_pause_and_refresh_rate_show_in_the_status_line():
    app = app_with()
    press(app, "p")
    assert "PAUSED" in screen(app)[-1]
    app.apply_frame(make_frame([]))  # a frame that was in flight still shows
    press(app, "p", "+")
    assert "every 0.5s" in screen(app)[-1]
    press(app, "-", "-")
    assert "every 2s" in screen(app)[-1]


def test_help_screen_lists_the_key_table():
    app = app_with()
    press(app, "?")
    text = "\n".join(screen(app, (120, 60)))
    assert "sort by CPU %" in text and "reverse the sort order" in text and "refresh more often" in text
    text = "\n".join(screen(app, (200, 100)))
    assert re.search(r"RQP99 +eBPF: 99th percentile wait for a CPU \(yellow from 5.0ms, red from 50.0ms\)", text)
    assert re.search(r"MEM +working set: .*\(yellow from %MEMLIM 80.0, red from 95.0\)", text)
    text = "\n".join(screen(app, (200, 200)))
    assert text.index("Other columns") < text.index("PSICPU")  # every column is explained, those shown first
    press(app, "esc")
    assert app.screen == "list" and "ctop keys" not in "\n".join(screen(app))


def test_column_picker_hides_and_shows_columns():
    app = app_with()
    press(app, "c")
    assert "Columns" in "\n".join(screen(app))
    toggle(app, "CPU%")
    press(app, "esc")
    assert "CPU%" not in screen(app)[0] and "MEM" in screen(app)[0]
    press(app, "c")
    toggle(app, "CPU%")
    press(app, "esc")
    assert "CPU%" in screen(app)[0]


def toggle(app: App, header: str) -> None:
    listbox = app.top.original_widget.top_w.original_widget.body
    for _ in range(len(listbox.body)):
        if isinstance(listbox.focus, urwid.CheckBox) and listbox.focus.label.startswith(header + " "):
            press(app, " ")
            return
        press(app, "down")
    raise AssertionError(f"no checkbox for {header}")


def test_detail_view_shows_fields_sparklines_histogram_and_inspect():
    buckets = [0] * RUNQ_SLOTS
    buckets[12] = 7  # [4096 ns, 5120 ns)
    counters = EbpfCgroupCounters(cgroup_id=9, runq_buckets=tuple(buckets), runq_count=7)
    rows = [make_row("/docker/d", "container", name="db", memory=100 * MIB, limit=GIB, cpu_percent=float(i),
                     ebpf=counters, ebpf_rates=EbpfRates(forks_per_s=3.0)) for i in range(3)]
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    calls = []

    def inspect(row):
        calls.append((row.path, threading.current_thread().name))
        return {"capabilities": ["CAP_NET_BIND_SERVICE"], "mounts": [{"target": "/data", "source": "/srv"}]}

    app = App(inspect=inspect)
    app.post = inbox.put
    for r in rows:
        app.apply_frame(make_frame([r]))
    press(app, "enter")
    assert app.screen == "detail"
    text = "\n".join(screen(app, (100, 200)))
    assert "db  (/docker/d)" in text and "loading" in text
    assert "▁▅█" in text  # CPU 0, 1, 2 % scaled to their maximum
    assert re.search(r"4.1us - 5.12us +█{30} 7", text)  # [4096 ns, 5120 ns)
    assert re.search(r"FORK/s +3 ", text)
    app.receive(inbox.get(timeout=5))
    text = "\n".join(screen(app, (100, 200)))
    assert "CAP_NET_BIND_SERVICE" in text and "target=/data, source=/srv" in text
    assert calls == [("/docker/d", "ctop-inspect")]  # off the UI thread
    app.apply_frame(make_frame([]))
    assert "no longer exists" in "\n".join(screen(app, (100, 200)))
    press(app, "q")
    assert app.screen == "list" and not app.quit_requested
    press(app, "q")
    assert app.quit_requested


def test_detail_lists_recent_execs_and_oom_kills_of_the_cgroup():
    execs = {"/docker/d": (ExecRecord(42, 1, "sh", "/bin/ls", 0.0),), "/other": (ExecRecord(5, 1, "x", "/x", 0.0),)}
    kills = (OomKill("/docker/d", 77, "hog", 0.0), OomKill("/other", 78, "no", 0.0), OomKill(None, 79, "?", 0.0))
    frame_like = SimpleNamespace(ebpf_execs=execs, ebpf_oom_kills=kills)
    found_execs, found_kills = detail.ebpf_logs(frame_like, "/docker/d")
    assert [e.pid for e in found_execs] == [42] and [k.pid for k in found_kills] == [77]
    assert detail.ebpf_logs(make_frame([]), "/docker/d") == ([], [])  # a frame without eBPF logs
    row = make_row("/docker/d", "container", name="db", memory=MIB, oom_kills=1)
    widgets = detail.build(row, History(), None, False, found_execs, found_kills)
    text = "\n".join(line.decode() for line in urwid.Pile(widgets).render((100,)).text)
    assert "pid=42 ppid=1 comm=sh filename=/bin/ls" in text and "pid=77 comm=hog" in text
    assert "kernel counter: 1" in text and "pid=5" not in text and "pid=78" not in text


def test_a_failing_inspect_is_one_sentence_in_the_detail_view():
    def inspect(row):
        raise OSError(2, "No such file or directory")

    inbox: queue.SimpleQueue = queue.SimpleQueue()
    app = App(inspect=inspect)
    app.post = inbox.put
    app.apply_frame(make_frame([make_row("/docker/d", "container", name="db", memory=MIB)]))
    press(app, "enter")
    app.receive(inbox.get(timeout=5))
    assert "inspect failed: [Errno 2] No such file or directory." in "\n".join(screen(app, (100, 200)))


def test_detail_without_inspect_or_ebpf_shows_dashes():
    app = app_with([make_row("/docker/d", "container", name="db", memory=MIB)])
    press(app, "enter")
    text = "\n".join(line.rstrip() for line in screen(app, (100, 200)))
    assert "rates: -" in text and "OOM kills" in text and "\nInspect\n-" in text


def test_resizing_keeps_the_selection_and_lays_out_again():
    app = app_with()
    press(app, "down", "down")
    selected = app.focused_path()
    for size in ((80, 24), (60, 10), (200, 50), (30, 8)):
        lines = screen(app, size)
        assert len(lines) == size[1] and all(urwid.calc_width(x, 0, len(x)) == size[0] for x in lines)
    assert app.focused_path() == selected
    app.apply_frame(make_frame(node_rows()))
    assert app.focused_path() == selected  # a refresh keeps the selection too


def test_feed_collects_off_the_ui_thread_and_a_hung_source_never_blocks_stop():
    got: queue.SimpleQueue = queue.SimpleQueue()
    threads = []

    def collect():
        threads.append(threading.current_thread().name)
        return make_frame(node_rows())

    feed = Feed(collect, 0.05, got.put)
    feed.start()
    first, second = got.get(timeout=5), got.get(timeout=5)
    feed.set_paused(True)
    time.sleep(0.2)
    while not got.empty():
        got.get()
    time.sleep(0.2)
    assert got.empty()  # paused: nothing collected
    feed.stop()
    assert first[0] == second[0] == "frame" and set(threads) == {"ctop-collect"}

    release = threading.Event()
    hung = Feed(lambda: release.wait(30) and make_frame([]), 1.0, got.put)  # a source that does not answer
    hung.start()
    started = time.monotonic()
    hung.stop()
    assert time.monotonic() - started < 1.0
    release.set()
    time.sleep(0.1)
    assert got.empty()  # a stopped feed posts nothing more


def test_a_failing_collect_reaches_the_status_line():
    got: queue.SimpleQueue = queue.SimpleQueue()

    def collect():
        raise PermissionError(13, "Permission denied", "/sys/fs/cgroup/memory/memory.stat")

    feed = Feed(collect, 5.0, got.put)
    feed.start()
    message = got.get(timeout=5)
    feed.stop()
    app = app_with()
    app.receive(message)
    assert "Refresh failed: [Errno 13] Permission denied: '/sys/fs/cgroup/memory/memory.stat'." in \
        "\n".join(screen(app, (200, 24)))


def test_tree_guides_survive_truncation_of_long_names():
    long = "a-very-long-container-name-that-will-not-fit-" * 2 + "TAIL"
    rows = [*node_rows(), make_row(POD_A + "/c9", "container", name=long, pod="web-7d9", namespace="shop",
                                   qos="burstable", cpu_percent=99.0, memory=MIB)]
    app = app_with(rows)
    press(app, "t")
    line = next(x for x in body(app) if "TAIL" in x)
    assert line.startswith("  ├─a-very") and "…" in line.split()[0] and line.split()[0].endswith("TAIL")


def test_the_top_row_stays_the_top_while_a_chosen_row_is_followed():
    rows = [make_row(f"/c{i}", "container", name=f"c{i}", cpu_percent=float(i)) for i in range(5)]
    app = app_with(rows)
    assert app.focused_path() == "/c4"  # CPU % descending: the busiest first
    reordered = [make_row(f"/c{i}", "container", name=f"c{i}", cpu_percent=float(10 - i)) for i in range(5)]
    app.apply_frame(make_frame(reordered))
    assert app.focused_path() == "/c0"  # the new busiest: the focus stayed at the top, not on /c4 (now last)
    press(app, "down")
    assert app.focused_path() == "/c1"
    app.apply_frame(make_frame(rows))
    assert app.focused_path() == "/c1"  # a row the user moved to is followed to its new place
    press(app, "up", "up", "up")
    assert app.focused_path() == "/c4"  # back at the top
    press(app, "enter")  # its detail: chosen, so followed even from the top
    app.apply_frame(make_frame(reordered))
    assert app.detail_path == "/c4"
    press(app, "esc")
    assert app.focused_path() == "/c4"
