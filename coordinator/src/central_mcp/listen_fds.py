# SPDX-License-Identifier: Apache-2.0
"""Listening sockets handed over by systemd (socket activation: the role's central-mcp.socket).

The socket unit owns the ports: they stay open while the service restarts (an
upgrade, a new setting, a rollback), so a connection made meanwhile waits in
the kernel's backlog and the next process answers it, instead of being
refused. The protocol is sd_listen_fds(3): when LISTEN_PID is this process,
LISTEN_FDS descriptors from 3 on are listening sockets, named in
LISTEN_FDNAMES (the socket unit's FileDescriptorName=, colon-separated).
A dozen lines of the standard library, not a dependency for them.

Names the coordinator knows: ``mcp`` (CENTRAL_MCP_HOST:CENTRAL_MCP_PORT),
``local`` (plain HTTP on CENTRAL_MCP_LOCAL_HOST beside TLS) and
``dashboard``. One it is not given, it binds itself, as without systemd.
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping

from central_mcp.settings import ConfigError

FIRST_FD = 3  # SD_LISTEN_FDS_START
NAMES = ("mcp", "local", "dashboard")


class ListenFdsError(ConfigError):
    """systemd handed over something the coordinator cannot serve on (a configuration error: one line)."""


def inherited(env: MutableMapping[str, str] | None = None) -> dict[str, socket.socket]:
    """The sockets systemd passed to this process, by name ({} when it passed none).

    The variables are taken out of the environment, so that no child takes the sockets for its own.
    """
    env = os.environ if env is None else env
    pid, count, names = (env.pop(key, "") for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"))
    if pid != str(os.getpid()) or not count.isdigit():
        return {}
    labels = names.split(":") if names else []
    found: dict[str, socket.socket] = {}
    for index in range(int(count)):
        name = labels[index] if index < len(labels) else ""
        sock = socket.socket(fileno=FIRST_FD + index)
        if name not in NAMES or name in found or sock.type != socket.SOCK_STREAM:
            sock.close()
            raise ListenFdsError(
                f"systemd passed a socket named {name!r} (FileDescriptorName=); the coordinator serves one "
                f"listening stream socket for each of {', '.join(NAMES)}"
            )
        sock.set_inheritable(False)
        found[name] = sock
    return found
