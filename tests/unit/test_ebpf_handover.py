"""File descriptors handed from another process over a unix socket stay usable after that process exits."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

from ctop.ebpf import handover

# A child that opens pipes, writes a line into each, hands the read ends over with a JSON message and exits.
SENDER = """
import os, socket, sys
from ctop.ebpf import handover
count = int(sys.argv[1])
sock = socket.socket(fileno=int(sys.argv[2]))
fds = []
for i in range(count):
    r, w = os.pipe()
    os.write(w, b"pipe %d" % i)
    os.close(w)
    fds.append(r)
handover.send(sock, {"pipes": count}, fds)
"""


def _run(code: str, *args: str) -> tuple[object, list[int]]:
    ours, theirs = handover.pair()
    with ours, theirs:
        proc = subprocess.Popen([sys.executable, "-c", code, *args, str(theirs.fileno())],
                                pass_fds=(theirs.fileno(),))
        theirs.close()
        try:
            return handover.receive(ours)
        finally:
            assert proc.wait(60) == 0


@pytest.mark.parametrize("count", [0, 3, handover.FDS_PER_MESSAGE + 5])
def test_fds_arrive_in_order_and_work_after_the_sender_exited(count: int) -> None:
    value, fds = _run(SENDER, str(count))
    try:
        assert value == {"pipes": count} and len(fds) == count
        assert [os.read(fd, 64) for fd in fds] == [b"pipe %d" % i for i in range(count)]
        assert all(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC for fd in fds)  # never leak into other programs
    finally:
        for fd in fds:
            os.close(fd)


def test_a_sender_that_leaves_without_the_message_gives_handover_error_and_no_fds() -> None:
    before = set(os.listdir("/proc/self/fd"))
    code = ("import os, socket, sys\nfrom ctop.ebpf import handover\n"
            "sock = socket.socket(fileno=int(sys.argv[1]))\n"
            "r, w = os.pipe()\nsocket.send_fds(sock, [b'F'], [r, w])\n")
    with pytest.raises(handover.HandoverError):
        _run(code)
    assert set(os.listdir("/proc/self/fd")) == before  # the two fds that did arrive were closed again


def test_the_answer_of_a_sender_that_never_read_the_request_still_arrives() -> None:
    ours, theirs = handover.pair()
    with ours, theirs:
        handover.send(ours, {"request": 1})  # left unread: the kernel reports a reset before the queued answer
        code = ("import socket, sys\nfrom ctop.ebpf import handover\n"
                "handover.send(socket.socket(fileno=int(sys.argv[1])), {'answer': 2})\n")
        subprocess.run([sys.executable, "-c", code, str(theirs.fileno())], pass_fds=(theirs.fileno(),), check=True)
        theirs.close()
        assert handover.receive(ours) == ({"answer": 2}, [])


def test_a_message_larger_than_the_default_socket_buffer_goes_through() -> None:
    code = ("import socket, sys\nfrom ctop.ebpf import handover\n"
            "sock = socket.socket(fileno=int(sys.argv[1]))\n"
            "request, _fds = handover.receive(sock)\n"
            "handover.send(sock, {'length': len(request['text'])})\n")
    ours, theirs = handover.pair()
    with ours, theirs:
        proc = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno())], pass_fds=(theirs.fileno(),))
        theirs.close()
        handover.send(ours, {"text": "x" * 500_000})  # a program text of 500 kB
        assert handover.receive(ours) == ({"length": 500_000}, [])
        assert proc.wait(60) == 0
