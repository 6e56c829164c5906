# SPDX-License-Identifier: Apache-2.0
"""Start a process as systemd starts a socket-activated service (sd_listen_fds), for the tests' fleets.

The test holds the listening sockets, as a socket unit does (central-mcp.socket,
central-mcp-relay.socket): they stay open while the process stops and the
next one starts, so a connection made meanwhile waits in the backlog and is
answered by the next process instead of being refused. ``popen`` hands them
over as systemd does: descriptors 3, 4, ... in order, LISTEN_FDS, and
LISTEN_PID naming the started process itself (a small exec shim keeps its pid).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from typing import Any

SHIM = """
import fcntl, os, sys
moved = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 100) for fd in sys.argv[1].split(",")]
for index, fd in enumerate(moved):
    os.dup2(fd, 3 + index)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(moved)))
os.execv(sys.argv[2], sys.argv[2:])
"""


def tcp_listener(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    return socket.create_server((host, port), backlog=4096)


def unix_listener(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(512)
    return sock


def popen(argv: list[str], sockets: list[socket.socket], **kwargs: Any) -> subprocess.Popen[Any]:
    """``argv`` started with ``sockets`` as its inherited listening sockets (the caller keeps its own copies)."""
    fds = [sock.fileno() for sock in sockets]
    program = shutil.which(argv[0]) or argv[0]  # execv takes a path
    shim = [sys.executable, "-c", SHIM, ",".join(map(str, fds)), program, *argv[1:]]
    return subprocess.Popen(shim, pass_fds=fds, **kwargs)
