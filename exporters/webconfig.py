"""--web.config.file: TLS and basic auth in the Prometheus exporter-toolkit YAML format."""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version",
            "cipher_suites", "curve_preferences", "prefer_server_cipher_suites"}
TOP_KEYS = {"tls_server_config", "basic_auth_users", "http_server_config"}
TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "RequestClientCert": ssl.CERT_OPTIONAL,
               "RequireAnyClientCert": ssl.CERT_REQUIRED, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}


class WebConfigError(ValueError):
    """The web configuration file is unusable; the message is one sentence."""


@dataclass
class WebConfig:
    """What the HTTP server enforces: an optional TLS context and optional basic-auth users (bcrypt hashes)."""

    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    _verified: set[bytes] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check_password(self, user: str, password: str) -> bool:
        """True when ``password`` matches the bcrypt hash of ``user``; good answers are cached (bcrypt is slow)."""
        import bcrypt

        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(user.encode("utf-8", "surrogatepass") + b"\0"
                             + password.encode("utf-8", "surrogatepass") + b"\0" + hashed).digest()
        with self._lock:
            if any(hmac.compare_digest(key, k) for k in self._verified):
                return True
        try:
            ok = bcrypt.checkpw(password.encode("utf-8", "surrogatepass"), hashed)
        except ValueError:
            return False
        if ok:
            with self._lock:
                self._verified.add(key)
        return ok


def load_web_config(path: str | None) -> WebConfig:
    """Parse and check a web config file; an empty path means plain HTTP without auth."""
    if not path:
        return WebConfig()
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise WebConfigError(f"cannot read web config {path}: {exc.strerror or exc}.") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WebConfigError(f"web config {path} is not valid YAML ({first}).") from None
    if data is None:
        return WebConfig()
    if not isinstance(data, dict):
        raise WebConfigError(f"web config {path} must be a YAML mapping.")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise WebConfigError(f"web config {path} has unknown key {sorted(map(str, unknown))[0]!r}.")
    base = os.path.dirname(os.path.abspath(path))
    config = WebConfig()
    config.users = _users(path, data.get("basic_auth_users"))
    config.tls = _tls(path, base, data.get("tls_server_config"))
    http = data.get("http_server_config") or {}
    if not isinstance(http, dict):
        raise WebConfigError(f"web config {path}: http_server_config must be a mapping.")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise WebConfigError(f"web config {path}: http_server_config.headers must be a mapping.")
    config.headers = {str(k): str(v) for k, v in headers.items()}
    return config


def _users(path: str, raw: Any) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise WebConfigError(f"web config {path}: basic_auth_users must map user names to bcrypt hashes.")
    users: dict[str, bytes] = {}
    for user, hashed in raw.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(f"web config {path}: the password of user {user!s} is not a bcrypt hash.")
        users[str(user)] = hashed.encode("ascii", "replace")
    return users


def _tls(path: str, base: str, raw: Any) -> ssl.SSLContext | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise WebConfigError(f"web config {path}: tls_server_config must be a mapping.")
    unknown = set(raw) - TLS_KEYS
    if unknown:
        raise WebConfigError(f"web config {path}: tls_server_config has unknown key {sorted(unknown)[0]!r}.")
    cert, key = raw.get("cert_file"), raw.get("key_file")
    if not cert or not key:
        raise WebConfigError(f"web config {path}: tls_server_config needs both cert_file and key_file.")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _version(path, raw.get("min_version") or "TLS12")
    if raw.get("max_version"):
        ctx.maximum_version = _version(path, raw["max_version"])
    cert_path, key_path = os.path.join(base, str(cert)), os.path.join(base, str(key))
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise WebConfigError(f"web config {path}: cannot load TLS certificate {cert} and key {key} ({reason}).") \
            from None
    auth = raw.get("client_auth_type") or "NoClientCert"
    if auth not in CLIENT_AUTH:
        raise WebConfigError(f"web config {path}: client_auth_type {auth!r} is not one of {', '.join(CLIENT_AUTH)}.")
    ctx.verify_mode = CLIENT_AUTH[auth]
    ca = raw.get("client_ca_file")
    if ca:
        try:
            ctx.load_verify_locations(os.path.join(base, str(ca)))
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"web config {path}: cannot load client CA {ca} ({exc}).") from None
    elif auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        raise WebConfigError(f"web config {path}: client_auth_type {auth} needs client_ca_file.")
    return ctx


def _version(path: str, name: Any) -> ssl.TLSVersion:
    if name not in TLS_VERSIONS:
        raise WebConfigError(f"web config {path}: TLS version {name!r} is not one of {', '.join(TLS_VERSIONS)}.")
    return TLS_VERSIONS[name]
