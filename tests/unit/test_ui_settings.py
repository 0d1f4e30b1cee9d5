"""The settings file (columns, sort, view, filter, tree): where it is, what a bad one does, a restart keeps them."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from support.trees import tree
from unit.test_filter_language import rows
from unit.test_ui_frames import make_frame
from unit.test_ui_widgets import press, screen, toggle

from ctop import cli as cli_module
from ctop.batch import BatchOptions
from ctop.config import Settings, SettingsFile, default_path, load, render, save
from ctop.model import fields
from ctop.model.filters import parse_filters
from ctop.ui.app import App
from ctop.ui.columns import DEFAULT_COLUMNS

V2 = tree("v2-k8s-systemd")


def started(path: str, options: BatchOptions | None = None, explicit: frozenset[str] = frozenset()) -> App:
    app = App(options or BatchOptions(), 1.0, store=SettingsFile(path), explicit=explicit)
    app.apply_frame(make_frame(rows()))
    return app


def test_the_file_is_under_xdg_config_home_else_dot_config() -> None:
    assert default_path({"XDG_CONFIG_HOME": "/x/conf", "HOME": "/home/a"}) == "/x/conf/ctop/config.ini"
    assert default_path({"HOME": "/home/a"}) == "/home/a/.config/ctop/config.ini"
    assert default_path({"XDG_CONFIG_HOME": "relative", "HOME": "/home/a"}) == "/home/a/.config/ctop/config.ini"


def test_settings_changed_in_the_view_survive_a_restart(tmp_path) -> None:
    path = str(tmp_path / "conf" / "ctop" / "config.ini")
    app = started(path)
    assert not os.path.exists(path)  # nothing changed yet: nothing written
    press(app, "5", "M", "t", "/", *"image=busybox", "enter")
    press(app, "c")
    toggle(app, "CPU%")
    toggle(app, "EXEC/s")
    press(app, "esc")
    with open(path) as f:
        text = f.read()
    assert "view = cgroups" in text and "sort = memory_working_set_bytes" in text and "filter = image=busybox" in text
    again = started(path)
    assert again.view.key == "cgroups" and again.sort_key == "memory_working_set_bytes" and again.tree
    assert again.filter_text == "image=busybox" and again.displayed
    shown = [c.key for c in again.layout.visible]
    assert "execs_per_s" in shown and "cpu_percent" not in shown
    assert screen(again)[0] == screen(app)[0] and screen(again)[-1] == screen(app)[-1]


def test_the_command_line_sort_and_filter_win_and_are_not_written_unless_changed(tmp_path) -> None:
    path = str(tmp_path / "config.ini")
    save(path, Settings(sort="pids", reverse=True, filter="shop", view="pods"))
    app = started(path, BatchOptions(order=fields.MEMORY_WORKING_SET_BYTES,
                                     row_filter=parse_filters(["kind=container"])), frozenset({"order"}))
    assert app.sort_key == "memory_working_set_bytes" and not app.reverse and app.filter_text == "kind=container"
    assert app.view.key == "pods"  # not given on the command line: the saved one
    press(app, "2")
    assert load(path).settings == Settings(sort="pids", reverse=True, filter="shop", view="pods")
    press(app, "3")
    assert load(path).settings.view == "qos" and load(path).settings.filter == "shop"


@pytest.mark.parametrize("content, says", [
    ("this is not ini\n", "cannot be parsed"),
    ("[list]\ncolumns = a\ncolumns = b\n", "cannot be parsed"),
    (b"[list]\nview = \xff\n", "cannot be parsed"),
])
def test_a_malformed_file_is_one_sentence_the_defaults_and_left_as_it_is(tmp_path, content, says) -> None:
    path = tmp_path / "config.ini"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    app = started(str(path))
    status = " ".join(line.strip() for line in screen(app, (300, 24)))
    assert says in status and str(path) in status and "starting with the default settings" in status
    assert [c.key for c in app.layout.visible] == [c.key for c in DEFAULT_COLUMNS] and app.view.key == "containers"
    press(app, "5", "M")
    assert path.read_bytes() == (content if isinstance(content, bytes) else content.encode())


def test_an_unreadable_file_is_one_sentence(tmp_path) -> None:
    loaded = load(str(tmp_path))  # a directory
    assert loaded.warning.startswith(f"Cannot read the settings file {tmp_path} (") and not loaded.writable
    assert loaded.settings == Settings()


def test_unknown_keys_are_ignored_and_stale_columns_dropped(tmp_path) -> None:
    path = tmp_path / "config.ini"
    path.write_text("[list]\ncolumns = display_name gone_field cpu_percent name psi_io_some_avg10\n"
                    "sort = gone_field\ncolour = red\nview = nowhere\n[other]\nx = 1\n")
    loaded = load(str(path))
    assert loaded.warning == ""
    assert loaded.settings.columns == ("display_name", "cpu_percent", "psi_io_some_avg10")  # "name" is not a column
    assert loaded.settings.sort is None
    app = started(str(path))
    assert [c.key for c in app.layout.visible] == ["display_name", "cpu_percent", "psi_io_some_avg10"]
    assert app.view.key == "containers" and app.sort_key == "cpu_percent"


def test_a_bad_value_keeps_its_default_and_says_so(tmp_path) -> None:
    path = tmp_path / "config.ini"
    path.write_text("[list]\nreverse = maybe\nview = pods\nfilter = colour=red\n")
    loaded = load(str(path))
    assert loaded.warning == (f"In the settings file {path}, 'reverse' should be true or false: using the default "
                              "for it.")
    assert loaded.settings == Settings(view="pods", filter="colour=red")
    app = started(str(path))
    assert app.view.key == "pods" and not app.reverse
    assert "reverse' should be true or false" in " ".join(line.strip() for line in screen(app, (300, 24)))
    clean = tmp_path / "clean.ini"
    clean.write_text("[list]\nfilter = colour=red\n")
    app = started(str(clean))
    assert app.filter_text == "" and "The saved filter is not used: Unknown filter key 'colour'" in "\n".join(
        screen(app, (300, 24))[-2:])


def test_written_text_reads_back_the_same(tmp_path) -> None:
    settings = Settings(columns=("display_name", "execs_per_s"), sort="execs_per_s", reverse=False, view="units",
                        filter="name='my app' id=/a:b;c#d %x", tree=True)
    path = str(tmp_path / "deep" / "er" / "config.ini")
    assert save(path, settings) == ""
    assert load(path).settings == settings
    assert "[list]" in render(Settings()) and " = " not in render(Settings())


def test_a_file_that_cannot_be_written_is_one_sentence_in_the_status_line(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    app = started(str(blocker / "ctop" / "config.ini"))  # a directory under a plain file cannot exist
    press(app, "5")
    status = " ".join(line.strip() for line in screen(app, (300, 24)))
    assert f"Cannot save the settings to {blocker}/ctop/config.ini (" in status and "until ctop exits" in status


def test_config_option_reaches_the_interactive_view(monkeypatch, tmp_path) -> None:
    seen = {}

    def fake(collector, options, delay, config=None, explicit=frozenset()):
        seen.update(config=config, explicit=explicit, order=options.order.key)

    monkeypatch.setattr(cli_module, "run_interactive", fake)
    args = ["--cgroup-root", V2[0], "--proc-root", V2[1], "--config", str(tmp_path / "c.ini")]
    result = CliRunner().invoke(cli_module.cli, [*args, "--order", "pids"])
    assert result.exit_code == 0, result.output
    assert seen == {"config": str(tmp_path / "c.ini"), "explicit": frozenset({"order"}), "order": "pids"}
    result = CliRunner().invoke(cli_module.cli, args)
    assert seen["explicit"] == frozenset() and seen["order"] == "cpu_percent"
    assert "--config FILE" in CliRunner().invoke(cli_module.cli, ["--help"]).output
