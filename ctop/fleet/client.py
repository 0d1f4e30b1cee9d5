"""A small client of the Prometheus HTTP API (instant queries, scrape interval), whose every failure is one sentence."""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import CtopError

DEFAULT_TIMEOUT_S = 10.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class FleetError(CtopError):
    """The Prometheus server could not answer a query; the message is one sentence."""


class Series(NamedTuple):
    """One element of an instant vector: its labels and value (NaN and infinities as given); a tuple, as answers
    hold tens of thousands of them."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Answer:
    """The result of one instant query, and the warnings the server added (partial data)."""

    series: tuple[Series, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClientConfig:
    """Where the server is and how to reach it, named as Prometheus' own clients name it."""

    url: str
    basic_auth_user: str | None = None
    basic_auth_password_file: str | None = None
    bearer_token_file: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' as given to --prometheus-header; ValueError with one sentence otherwise."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        raise ValueError(f"'{text}' is not a header: write it as 'Name: value'.")
    return name.strip(), value.strip()


def parse_duration_s(text: str) -> float | None:
    """Seconds of a Prometheus duration ("15s", "1m30s"); None when it is not one."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _read_secret(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise FleetError(f"Cannot read the {what} {path}: {e.strerror or e}.") from None


class PrometheusClient:
    """Instant queries against one Prometheus-compatible server; ``queries`` counts the queries sent."""

    def __init__(self, config: ClientConfig) -> None:
        url = config.url.rstrip("/")
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise FleetError(f"'{config.url}' is not a Prometheus URL: give one like http://prometheus:9090.")
        self.config = config
        self.base = url
        self.queries = 0
        self._headers = {"Accept": "application/json", "User-Agent": "ctop-fleet"}
        self._headers.update(config.headers)
        if config.basic_auth_user is not None:
            password = ("" if config.basic_auth_password_file is None
                        else _read_secret(config.basic_auth_password_file, "basic auth password file"))
            token = base64.b64encode(f"{config.basic_auth_user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        if config.bearer_token_file is not None:
            self._headers["Authorization"] = "Bearer " + _read_secret(config.bearer_token_file, "bearer token file")
        self._context: ssl.SSLContext | None = None
        if parsed.scheme == "https":
            try:
                self._context = ssl.create_default_context(cafile=config.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise FleetError(f"Cannot use the CA file {config.ca_file}: {e}.") from None
            if config.insecure:
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE

    def query(self, expr: str, at: float | None = None) -> Answer:
        """The instant vector of ``expr`` now, or at Unix time ``at``."""
        self.queries += 1
        return _vector(self.base, *self._get("/api/v1/query", _query_params(expr, at), "query"))

    def query_all(self, exprs: Sequence[str], at: float | None = None, workers: int = 3,
                  each: Callable[[int, Answer], None] | None = None) -> list[Answer]:
        """The instant vectors of ``exprs`` now, or at Unix time ``at``: ``workers`` threads send them and wait for
        the server (which evaluates them in parallel), while this thread reads and decodes each answer as it comes
        (one thread holding the interpreter at a time: decoding in the waiting threads slowed their reads down) and
        gives it to ``each`` with its index. On failure, FleetError for the first failing query in ``exprs``' order."""
        params = [_query_params(e, at) for e in exprs]
        self.queries += len(exprs)
        out: list[Answer | FleetError | None] = [None] * len(exprs)
        with ThreadPoolExecutor(max(1, min(workers, len(exprs))), thread_name_prefix="ctop-fleet") as pool:
            pending = {pool.submit(self._open, "/api/v1/query", p, "query"): i for i, p in enumerate(params)}
            for future in as_completed(pending):
                i = pending[future]
                try:  # (every answer is read, so that no connection is left open)
                    out[i] = answer = _vector(self.base, *self._read(future.result(), "query"))
                    if each is not None and not any(isinstance(a, FleetError) for a in out):
                        each(i, answer)
                except FleetError as e:
                    out[i] = e
        for outcome in out:
            if isinstance(outcome, FleetError):
                raise outcome
        return [a for a in out if isinstance(a, Answer)]

    def scrape_interval_s(self) -> float | None:
        """The scrape interval the server uses (the smallest of its active targets'), None when it does not say."""
        try:
            data, _ = self._get("/api/v1/targets", {"state": "active"}, "targets")
        except FleetError:
            data = None
        found: list[float] = []
        if isinstance(data, dict):
            for target in data.get("activeTargets") or []:
                seconds = parse_duration_s(str(target.get("scrapeInterval", ""))) if isinstance(target, dict) else None
                if seconds:
                    found.append(seconds)
        if found:
            return min(found)
        try:
            data, _ = self._get("/api/v1/status/config", {}, "configuration")
        except FleetError:
            return None
        text = data.get("yaml", "") if isinstance(data, dict) else ""
        match = re.search(r"^\s*scrape_interval:\s*(\S+)", str(text), re.M)
        return parse_duration_s(match.group(1)) if match else None

    def _get(self, path: str, params: Mapping[str, str], what: str) -> tuple[object, tuple[str, ...]]:
        """The ``data`` of an API answer and its warnings; FleetError (one sentence) on any failure."""
        return self._read(self._open(path, params, what), what)

    def _open(self, path: str, params: Mapping[str, str], what: str) -> http.client.HTTPResponse:
        """The server's answer to a GET, its body not yet read; FleetError (one sentence) on any failure."""
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        request = urllib.request.Request(url, headers=self._headers)
        try:
            return urllib.request.urlopen(request, timeout=self.config.timeout_s, context=self._context)
        except urllib.error.HTTPError as e:
            body = _body(e)
            if e.code in (401, 403):
                raise FleetError(f"{self.base} refused the {what} with HTTP {e.code} "
                                 f"({'unauthorized' if e.code == 401 else 'forbidden'}): check "
                                 "--prometheus-basic-auth-user/--prometheus-bearer-token-file.") from None
            error = _error_text(body)
            if b'"errorType":"timeout"' in body.replace(b" ", b"") or "timed out" in error:
                raise FleetError(f"{self.base} timed out evaluating the {what}: {error or 'timeout'}.") from None
            if e.code in (400, 422) and error:
                raise FleetError(f"{self.base} rejected the {what}: {error}.") from None
            raise FleetError(f"{self.base} answered the {what} with HTTP {e.code}"
                             + (f": {error}." if error else ".")) from None
        except TimeoutError:
            raise FleetError(f"{self.base} did not answer the {what} within {self.config.timeout_s:g} s.") from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, TimeoutError):
                raise FleetError(f"{self.base} did not answer the {what} within {self.config.timeout_s:g} s.") \
                    from None
            if isinstance(reason, ssl.SSLError):
                raise FleetError(f"TLS with {self.base} failed ({_reason(reason)}): give --prometheus-ca-file, or "
                                 "--prometheus-insecure to skip the check.") from None
            raise FleetError(f"Cannot reach Prometheus at {self.base}: {_reason(reason)}.") from None
        except (OSError, ValueError, http.client.HTTPException) as e:  # a connection reset, a malformed status line
            raise FleetError(f"Cannot reach Prometheus at {self.base}: {_reason(e)}.") from None

    def _read(self, response: http.client.HTTPResponse, what: str) -> tuple[object, tuple[str, ...]]:
        """The ``data`` and warnings of an answer whose headers came (``_open``); FleetError on any failure."""
        try:
            with response:
                body = response.read()
        except TimeoutError:
            raise FleetError(f"{self.base} did not answer the {what} within {self.config.timeout_s:g} s.") from None
        except (OSError, ValueError, http.client.HTTPException) as e:  # a connection reset mid-answer
            raise FleetError(f"Cannot reach Prometheus at {self.base}: {_reason(e)}.") from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise FleetError(f"{self.base} answered the {what} with something that is not the Prometheus API's "
                             "JSON.") from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            said = answer.get("error") if isinstance(answer, dict) else None
            raise FleetError(f"{self.base} rejected the {what}: {said or 'no success status'}.")
        warnings = answer.get("warnings") or []
        return answer.get("data"), tuple(str(w) for w in warnings) if isinstance(warnings, list) else ()


def _query_params(expr: str, at: float | None) -> dict[str, str]:
    """The parameters of an instant query of ``expr`` now, or at Unix time ``at``."""
    return {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}


def _vector(base: str, data: object, warnings: tuple[str, ...]) -> Answer:
    """The Answer of an instant query's ``data``; FleetError when it is not an instant vector of samples."""
    if not isinstance(data, dict) or data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise FleetError(f"{base} answered a query with something other than an instant vector.")
    try:  # the labels as JSON gave them (keys are strings; frames.py reads the values with str())
        out = tuple([Series(item["metric"], float(item["value"][1])) for item in data["result"]
                     if type(item["metric"]) is dict or _malformed()])
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise FleetError(f"{base} answered a query with a malformed sample.") from None
    return Answer(out, warnings)


def _malformed() -> bool:
    raise TypeError("not a label set")


def _body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read()
    except OSError:
        return b""


def _error_text(body: bytes) -> str:
    """The ``error`` of a Prometheus error answer, on one line; "" when there is none."""
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    text = answer.get("error", "") if isinstance(answer, dict) else ""
    return " ".join(str(text).split()).rstrip(".")


def _reason(reason: object) -> str:
    text = getattr(reason, "strerror", None) or str(reason)
    return " ".join(str(text).split()).rstrip(".") or type(reason).__name__
