"""ctop.privileges: which capabilities the exporter keeps, and one-sentence errors for bad --user values."""

from __future__ import annotations

import os
import socket
import tempfile

import pytest

from ctop.privileges import PrivilegeError, capability_mask, needed_capabilities, resolve_target, socket_groups


def test_kept_capabilities_by_kernel():
    assert needed_capabilities(ebpf_loaded=False) == ["CAP_SYS_PTRACE"]
    assert needed_capabilities(True, (6, 18), "2") == ["CAP_SYS_PTRACE"]
    assert needed_capabilities(True, (5, 19), "1") == ["CAP_SYS_PTRACE"]
    assert needed_capabilities(True, (5, 15), "2") == ["CAP_SYS_PTRACE", "CAP_BPF"]
    assert needed_capabilities(True, (5, 4), "1") == ["CAP_SYS_PTRACE", "CAP_SYS_ADMIN"]
    assert needed_capabilities(True, (5, 4), "0") == ["CAP_SYS_PTRACE"]
    assert capability_mask(["CAP_SYS_PTRACE"]) == 0x80000


@pytest.mark.parametrize(("spec", "words"), [
    ("", "names no user"),
    ("no-such-user-ctop-x", "there is no user"),
    ("nobody:no-such-group-ctop-x", "there is no group"),
    ("root", "names root itself"),
    ("0", "names root itself"),
])
def test_bad_user_specs_are_one_sentence(spec, words):
    with pytest.raises(PrivilegeError) as info:
        resolve_target(spec)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_target_takes_primary_group_and_extra_groups():
    target = resolve_target("nobody", [4242, 4242])
    assert target.uid == 65534 and target.groups == (target.gid, 4242)
    assert resolve_target("65534:0").gid == 0


def test_socket_groups_only_for_group_writable_sockets():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.sock")
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(path)
            os.chmod(path, 0o660)
            if os.geteuid() == 0:
                os.chown(path, 0, 4242)
            gid = os.stat(path).st_gid
            assert socket_groups([path, os.path.join(d, "missing")]) == ([gid] if gid else [])
            assert os.geteuid() != 0 or gid == 4242
            os.chmod(path, 0o600)
            assert socket_groups([path]) == []
