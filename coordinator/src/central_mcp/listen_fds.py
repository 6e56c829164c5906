# SPDX-License-Identifier: Apache-2.0
"""Listening sockets handed over by systemd (socket activation: the role's central-mcp.socket).

The socket unit owns the ports: they stay open while the service restarts (an
upgrade, a new setting, a rollback), so a connection made meanwhile waits in
the kernel's backlog and the next process answers it, instead of being
refused. The protocol is sd_listen_fds(3): when LISTEN_PID is this process,
LISTEN_FDS descriptors from 3 on are listening sockets, named in
LISTEN_FDNAMES (the socket unit's FileDescriptorName=, colon-separated).
A dozen lines of the standard library, not a dependency for them.

Each socket goes to the endpoint it is for: ``mcp``
(CENTRAL_MCP_HOST:CENTRAL_MCP_PORT), ``local`` (CENTRAL_MCP_LOCAL_HOST, same
port, beside TLS) or ``dashboard`` (CENTRAL_MCP_DASHBOARD_HOST and _PORT),
by its name when it has one of these, else by the address it is bound to
(one socket unit may hold them all). One that fits no endpoint stops the
start (calls to it would wait for ever); an endpoint given none binds its
own address, as without systemd.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping, MutableMapping

from central_mcp.settings import ConfigError

FIRST_FD = 3  # SD_LISTEN_FDS_START


class ListenFdsError(ConfigError):
    """systemd handed over something the coordinator cannot serve on (a configuration error: one line)."""


def inherited(env: MutableMapping[str, str] | None = None) -> list[tuple[str, socket.socket]]:
    """The sockets systemd passed to this process, with their names ([] when it passed none).

    The variables are taken out of the environment, so that no child takes the sockets for its own.
    """
    env = os.environ if env is None else env
    pid, count, names = (env.pop(key, "") for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"))
    if pid != str(os.getpid()) or not count.isdigit():
        return []
    labels = names.split(":") if names else []
    found = []
    for index in range(int(count)):
        sock = socket.socket(fileno=FIRST_FD + index)
        sock.set_inheritable(False)
        found.append((labels[index] if index < len(labels) else "", sock))
    return found


def _same(host: str, port: int, address: tuple) -> bool:
    try:
        wanted = ipaddress.ip_address(host.strip("[]"))
        return (wanted, port) == (ipaddress.ip_address(address[0]), address[1])
    except ValueError:  # a host name: only its name can say which socket it is
        return False


def assign(
    sockets: list[tuple[str, socket.socket]], endpoints: Mapping[str, tuple[str, int]]
) -> dict[str, socket.socket]:
    """Each socket to its endpoint (name -> (host, port)), by name, else by the address it is bound to."""
    taken: dict[str, socket.socket] = {}
    for name, sock in sockets:
        if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise ListenFdsError(f"systemd passed a socket {name!r} that is not a TCP stream socket")
        bound = sock.getsockname()
        fits = (
            [name]
            if name in endpoints
            else [key for key, (host, port) in endpoints.items() if _same(host, port, bound)]
        )
        if not fits or fits[0] in taken:
            where = ", ".join(f"{key} {host}:{port}" for key, (host, port) in endpoints.items())
            raise ListenFdsError(
                f"systemd passed a socket on {bound[0]}:{bound[1]} (named {name!r}) that is none of this "
                f"coordinator's addresses ({where}), or a second one for the same: its socket unit's ListenStream= "
                "and the CENTRAL_MCP_*HOST/PORT settings must agree"
            )
        taken[fits[0]] = sock
    return taken
