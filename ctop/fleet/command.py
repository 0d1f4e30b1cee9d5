"""``ctop --prometheus URL``: the fleet view's options, and the interactive and batch views over a FleetSource."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..batch import BatchOptions, new_notices, render
from ..model.notices import Notice
from .client import DEFAULT_TIMEOUT_S, ClientConfig, FleetError, PrometheusClient, parse_header
from .source import FleetSource

F = TypeVar("F", bound=Callable[..., Any])
OPTION_NAMES = ("prometheus", "prometheus_selector", "prometheus_basic_auth_user",
                "prometheus_basic_auth_password_file", "prometheus_bearer_token_file", "prometheus_ca_file",
                "prometheus_header", "prometheus_insecure", "prometheus_timeout", "at")


def fleet_options(command: F) -> F:
    """The fleet view's options, added to the main command as one group."""
    options = (
        click.option("--prometheus", default=None, metavar="URL",
                     help="Show a whole fleet from a Prometheus-compatible server (Prometheus, Thanos, Mimir, "
                          "VictoriaMetrics) scraping cAdvisor or ctop exporter, instead of this node."),
        click.option("--prometheus-selector", default="", metavar="MATCHERS",
                     help="Fleet view: label matchers added to every query, e.g. 'cluster=\"prod\"'."),
        click.option("--prometheus-basic-auth-user", default=None, metavar="USER", help="Fleet view: basic auth user."),
        click.option("--prometheus-basic-auth-password-file", default=None, metavar="FILE",
                     help="Fleet view: file holding the basic auth password."),
        click.option("--prometheus-bearer-token-file", default=None, metavar="FILE",
                     help="Fleet view: file holding a bearer token."),
        click.option("--prometheus-ca-file", default=None, metavar="FILE",
                     help="Fleet view: CA certificate(s) to verify an https server with."),
        click.option("--prometheus-header", multiple=True, metavar="'NAME: VALUE'",
                     help="Fleet view: an extra HTTP header on every request (repeat for more)."),
        click.option("--prometheus-insecure", is_flag=True, help="Fleet view: do not verify the server's certificate."),
        click.option("--prometheus-timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT_S,
                     show_default=True, metavar="SECONDS", help="Fleet view: seconds to wait for each answer."),
        click.option("--at", default=None, metavar="WHEN",
                     help="Fleet view: show the fleet as it was then (\"10m ago\", \"14:05\", ISO, epoch); the "
                          "replay keys [ ] { } b f p move in time."),
    )
    for option in reversed(options):
        command = option(command)
    return command


def source_from(values: dict[str, Any], now: float) -> FleetSource:
    """A FleetSource from the options' values; click.BadParameter or ClickException (one sentence) otherwise."""
    from ..history.when import BadTime, parse_when

    headers = {}
    for text in values["prometheus_header"]:
        try:
            name, value = parse_header(text)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--prometheus-header") from None
        headers[name] = value
    at = None
    if values["at"] is not None:
        try:
            at = parse_when(values["at"], now)
        except BadTime as e:
            raise click.BadParameter(str(e), param_hint="--at") from None
    config = ClientConfig(url=values["prometheus"], basic_auth_user=values["prometheus_basic_auth_user"],
                          basic_auth_password_file=values["prometheus_basic_auth_password_file"],
                          bearer_token_file=values["prometheus_bearer_token_file"],
                          ca_file=values["prometheus_ca_file"], insecure=values["prometheus_insecure"],
                          headers=headers, timeout_s=values["prometheus_timeout"])
    try:
        client = PrometheusClient(config)
        interval = client.scrape_interval_s()
    except FleetError as e:
        raise click.ClickException(str(e)) from None
    return FleetSource(client, values["prometheus_selector"], interval, at)


def run_fleet(values: dict[str, Any], options: BatchOptions, batch: bool, iterations: int | None,
              delay: float | None, config: str | None, explicit: frozenset[str]) -> None:
    """The fleet view: interactive, or batch (also when stdout is not a terminal); ``delay`` None: the scrape
    interval."""
    source = source_from(values, time.time())
    every = delay if delay is not None else source.scrape_interval_s
    if batch or not sys.stdout.isatty():
        run_fleet_batch(source, options, iterations, every)
        return
    try:
        from ..ui.app import run_app
    except ImportError:
        raise click.ClickException("The interactive view is not installed in this build: use 'ctop -b'.") from None
    if source.replaying:
        run_app(None, options, every, config=config, explicit=explicit, replay=source)
    else:
        run_app(source, options, every, config=config, explicit=explicit)


def run_fleet_batch(source: FleetSource, options: BatchOptions, iterations: int | None, delay: float) -> None:
    """Print a refresh every ``delay`` seconds, the first at once (PromQL has the rates already); with --at, the
    refreshes from that time on, ``delay`` apart. A first refresh that fails ends it (a wrong URL, a refused
    credential); a later failure is one sentence on stderr and is tried again."""
    count = failures = 0
    told: set[Notice] = set()
    start = source.position
    while iterations is None or count < iterations:
        at = None if start is None else start + count * delay
        if at is None and (count or failures):
            time.sleep(delay)
        elif at is not None and (at > time.time() or failures):
            time.sleep(max(delay if failures else 0.0, at - time.time()))
        try:
            frame = source.frame_at(at)
        except FleetError as e:
            if count == 0:
                raise click.ClickException(str(e)) from None
            failures += 1
            click.echo(f"ctop: {e}", err=True)
            if failures >= 10:
                raise click.ClickException("Giving up: the Prometheus server failed ten times in a row.") from None
            continue
        failures = 0
        for notice in new_notices(frame, told):  # what is missing (not root, no runtime): once each
            click.echo(f"ctop: {notice.sentence}", err=True)
        click.echo(render(frame, options, first=count == 0))
        sys.stdout.flush()
        count += 1
