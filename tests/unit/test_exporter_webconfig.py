"""--web.config.file parsing (exporter-toolkit format), listen addresses, and the command's flags and errors."""

from __future__ import annotations

import os
import ssl

import bcrypt
import pytest
from click.testing import CliRunner
from ctop.exporters.server import parse_listen_address
from ctop.exporters.webconfig import WebConfigError, load_web_config
from support.prometheus import make_self_signed_cert

from ctop.exporter_cmd import DEFAULT_LISTEN_ADDRESS, exporter_command


def write(tmp_path, text: str) -> str:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return str(path)


def test_empty_or_absent_config_is_plain_http_without_auth(tmp_path):
    for config in (load_web_config(""), load_web_config(write(tmp_path, ""))):
        assert config.tls is None and config.users == {}


def test_tls_and_users(tmp_path):
    cert, key = make_self_signed_cert(str(tmp_path))
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    path = write(tmp_path, f"tls_server_config:\n  cert_file: {os.path.basename(cert)}\n  key_file: {key}\n"
                           f"  min_version: TLS13\nbasic_auth_users:\n  alice: '{hashed}'\n"
                           "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    config = load_web_config(path)
    assert isinstance(config.tls, ssl.SSLContext)
    assert config.tls.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.headers == {"X-Frame-Options": "deny"}
    assert config.check_password("alice", "pw")
    assert config.check_password("alice", "pw")  # cached the second time
    assert not config.check_password("alice", "wrong")
    assert not config.check_password("bob", "pw")
    # Go's bcrypt writes $2y$ / $2a$ prefixes: they verify too.
    config.users["carol"] = hashed.replace("$2b$", "$2y$", 1).encode()
    assert config.check_password("carol", "pw")


@pytest.mark.parametrize(("text", "message"), [
    ("tls_server_config: [", "not valid YAML"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("basic_auth_users:\n  admin: plaintext\n", "not a bcrypt hash"),
    ("basic_auth_users: [a]\n", "must map user names"),
    ("tls_server_config:\n  cert_file: a.crt\n", "needs both cert_file and key_file"),
    ("tls_server_config:\n  cert_file: /none.crt\n  key_file: /none.key\n", "cannot load TLS certificate"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  bogus: 1\n", "unknown key 'bogus'"),
    ("tls_config:\n  cert_file: a\n", "unknown key 'tls_config'"),
])
def test_bad_configs_are_one_sentence(tmp_path, text, message):
    with pytest.raises(WebConfigError) as err:
        load_web_config(write(tmp_path, text))
    assert message in str(err.value)
    assert "\n" not in str(err.value) and str(err.value).endswith(".")


def test_missing_file(tmp_path):
    with pytest.raises(WebConfigError, match="cannot read web config"):
        load_web_config(str(tmp_path / "nope.yml"))


def test_listen_addresses():
    assert parse_listen_address(":10417") == ("0.0.0.0", 10417)
    assert parse_listen_address("127.0.0.1:9") == ("127.0.0.1", 9)
    assert parse_listen_address("[::1]:10417") == ("::1", 10417)
    for bad in ("nonsense", "host:port", "1.2.3.4:70000"):
        with pytest.raises(ValueError):
            parse_listen_address(bad)
    assert DEFAULT_LISTEN_ADDRESS == ":10417"


def test_help_and_flag_errors():
    runner = CliRunner()
    result = runner.invoke(exporter_command, ["--help"])
    assert result.exit_code == 0
    for flag in ("--web.listen-address", "--web.telemetry-path", "--web.config.file", "--cgroup.include",
                 "--cgroup.exclude", "--containers-only", "10417"):
        assert flag in result.output
    result = runner.invoke(exporter_command, ["--cgroup.exclude", "[unclosed"])
    assert result.exit_code == 2 and "not a valid regular expression" in result.output
    result = runner.invoke(exporter_command, ["--web.telemetry-path", "metrics"])
    assert result.exit_code == 2 and "must start with '/'" in result.output
