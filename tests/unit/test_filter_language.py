"""One filter language: what is typed after / in the interactive view selects what --filter selects, in every view."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner
from support.trees import tree
from unit.test_filters_and_ebpf_rates import ids as cli_ids
from unit.test_ui_frames import POD_A, make_frame, make_row, node_rows
from unit.test_ui_widgets import body, press, screen

from ctop.batch import BatchOptions, select_rows
from ctop.cli import cli
from ctop.errors import CtopError
from ctop.model.filters import RowFilter, parse_filter_text, parse_filters
from ctop.model.frame import CgroupRow
from ctop.ui.app import App

V2 = tree("v2-k8s-systemd")


def with_image(row: CgroupRow, image: str) -> CgroupRow:
    return dataclasses.replace(row, identity=dataclasses.replace(row.identity, image=image))


def rows() -> list[CgroupRow]:
    """The node of the UI tests, its containers with images (busybox twice, one of them outside Kubernetes)."""
    images = {POD_A + "/c1": "nginx:1.25", POD_A + "/c2": "busybox:1.36", "/docker/abc": "docker.io/busybox"}
    return [with_image(r, images.get(r.sample.path, "")) for r in node_rows()]


def typed(app: App, text: str) -> None:
    """Type ``text`` after / and keep it with Enter, as a person does."""
    press(app, "/", *text, "enter")


def listed(app: App) -> set[str]:
    return {d.path for d in app.displayed if not d.context}


def batch_paths(text: str) -> set[str]:
    """What ``ctop -b --filter TEXT`` prints (as paths), on the same frame."""
    options = BatchOptions(row_filter=parse_filters([text]))
    return {r.sample.path for r in select_rows(make_frame(rows()), options)}


@pytest.mark.parametrize("text", ["image=busybox", "IMAGE=BusyBox", "image=busybox namespace=shop", "shop",
                                  "id=/kubepods", "id=/docker kind=container", "sidecar", "qos=burstable web",
                                  "name=redis", "id=", "kind=service", 'id="/system.slice/cron"', "zzz"])
def test_the_text_typed_after_slash_selects_what_batch_filter_selects_in_every_view(text: str) -> None:
    app = App(BatchOptions(), 1.0)
    app.apply_frame(make_frame(rows()))
    press(app, "5")  # all cgroups: every row of the frame, like the batch output
    typed(app, text)
    assert listed(app) == batch_paths(text)
    for view in "1234":  # the other views show the matching rows of their kind
        press(app, view)
        assert listed(app) == {p for p in batch_paths(text) if app.view.kinds is None
                               or app.frame.rows[p].identity.kind in app.view.kinds}  # type: ignore[union-attr]


def test_image_filter_in_the_list_matches_like_the_command_line() -> None:
    app = App(BatchOptions(), 1.0)
    app.apply_frame(make_frame(rows()))
    typed(app, "image=busybox")
    assert sorted(line.split()[0] for line in body(app)) == ["redis", "sidecar"]
    assert "filter 'image=busybox'" in screen(app)[-1]


def test_command_line_filter_reaches_the_interactive_view_in_every_view() -> None:
    app = App(BatchOptions(row_filter=parse_filters(["id=/system.slice"])), 1.0)
    app.apply_frame(make_frame(rows()))
    assert "filter 'id=/system.slice'" in screen(app)[-1]
    press(app, "5")
    assert listed(app) == {"/system.slice", "/system.slice/cron.service"}
    press(app, "4")
    assert listed(app) == {"/system.slice", "/system.slice/cron.service"}
    press(app, "1")
    assert listed(app) == set()
    assert "Nothing matches the filter 'id=/system.slice'" in "\n".join(screen(app))


def test_a_mistake_in_the_typed_filter_is_one_sentence_instead_of_rows() -> None:
    app = App(BatchOptions(), 1.0)
    app.apply_frame(make_frame(rows()))
    press(app, "/", *"colour=red")
    text = "\n".join(screen(app, (120, 24)))
    assert "Unknown filter key 'colour': use one of id, name, kind" in text and listed(app) == set()
    press(app, "esc")
    assert len(listed(app)) == 4 and app.filter_error == ""
    press(app, "/", *'name="unclosed')
    assert "unclosed quote" in "\n".join(screen(app, (120, 24)))


def test_several_terms_in_one_text_are_several_filters() -> None:
    row = make_row("/docker/x", "container", name="web", namespace="shop")
    assert parse_filter_text("name=web namespace=shop") == parse_filters(["name=web", "namespace=shop"])
    assert parse_filter_text("  web   shop ")(row) and not parse_filter_text("web other")(row)
    assert parse_filter_text('name="my app"').terms == (("name", "my app"),)
    assert not parse_filter_text("") and parse_filter_text("") == RowFilter()
    with pytest.raises(CtopError, match="unclosed quote"):
        parse_filter_text("'x")


@pytest.mark.parametrize("text", ["image=busybox", "name='my app' shop", "id=", "kind=container x\\x2dy",
                                  "'a\"b'", "\"it's\""])
def test_a_filter_shown_as_text_parses_back_to_itself(text: str) -> None:
    parsed = parse_filter_text(text)
    assert parse_filter_text(parsed.text) == parsed


def test_one_filter_option_with_spaces_is_the_same_as_repeated_options() -> None:
    assert cli_ids("id=system.slice id=containerd") == cli_ids("id=system.slice", "id=containerd") == [
        "/system.slice/containerd.service"]
    result = CliRunner().invoke(cli, ["-b", "--filter", "name='oops"])
    assert result.exit_code == 2 and "unclosed quote" in result.output and "Traceback" not in result.output


def test_backslashes_are_kept_for_systemd_escaped_paths() -> None:
    row = make_row("/system.slice/dev-disk-by\\x2duuid.swap", "scope")
    assert parse_filter_text("by\\x2duuid")(row) and parse_filter_text("id=disk-by\\x2d")(row)
