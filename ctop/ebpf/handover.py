"""Passing file descriptors and one JSON message between processes over a unix SOCK_SEQPACKET socket (SCM_RIGHTS).

A hand-over is any number of fd batches (b"F" with up to FDS_PER_MESSAGE fds attached) and then one b"J" message
with the JSON text; the receiver returns the JSON value and the fds in the order they were sent.
"""

from __future__ import annotations

import array
import json
import os
import socket
from collections.abc import Sequence
from typing import Any

FDS_PER_MESSAGE = 200  # the kernel takes at most 253 (SCM_MAX_FD) in one message
MAX_MESSAGE = 1 << 22
SEND_BUFFER = 1 << 21


class HandoverError(Exception):
    """The other side closed the socket before a whole hand-over arrived, or sent something else."""


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of sockets; the second is meant for the child process (inheritable)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in (ours, theirs):  # one message must fit the send buffer (the default is about 200 kB)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    theirs.set_inheritable(True)
    return ours, theirs


def send(sock: socket.socket, value: Any, fds: Sequence[int] = ()) -> None:
    """Send ``fds`` (duplicated into the receiver) and then ``value`` as JSON."""
    for start in range(0, len(fds), FDS_PER_MESSAGE):
        socket.send_fds(sock, [b"F"], list(fds[start:start + FDS_PER_MESSAGE]))
    sock.sendall(b"J" + json.dumps(value).encode())


def _receive_one(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One message and the fds attached to it, close-on-exec (socket.recv_fds would not pass that flag on)."""
    fds = array.array("i")
    room = socket.CMSG_LEN(FDS_PER_MESSAGE * fds.itemsize)
    try:
        data, ancillary, _flags, _addr = sock.recvmsg(MAX_MESSAGE, room, socket.MSG_CMSG_CLOEXEC)
    except ConnectionResetError:  # the sender closed with our message unread: reported once, its own still queued
        data, ancillary, _flags, _addr = sock.recvmsg(MAX_MESSAGE, room, socket.MSG_CMSG_CLOEXEC)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def receive(sock: socket.socket) -> tuple[Any, list[int]]:
    """(the JSON value, the fds received before it); closes the fds again when the hand-over breaks off."""
    fds: list[int] = []
    try:
        while True:
            data, got = _receive_one(sock)
            fds.extend(got)
            if not data:
                raise HandoverError("the other side closed the socket")
            if data[:1] == b"J":
                return json.loads(data[1:]), fds
            if data[:1] != b"F":
                raise HandoverError(f"unexpected message {data[:16]!r}")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
