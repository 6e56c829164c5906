# SPDX-License-Identifier: Apache-2.0
"""The ListenStream= lines of the coordinator's socket unit, from the addresses its service binds."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError


def listen_streams(endpoints) -> list[str]:
    """``[[host, port], ...]`` -> ``["127.0.0.1:3000", "[fd00::2]:3000", ...]``, one per address literal.

    A host name is left out (systemd's ListenStream= takes addresses only): the service binds it itself,
    as without the socket unit. So is port 0 (an endpoint turned off), and a second entry for the same
    address and port (the coordinator's loopback listener beside a loopback bind).
    """
    streams: list[str] = []
    for entry in endpoints or []:
        try:
            host, port = entry
            port = int(port)
        except (TypeError, ValueError):
            raise AnsibleFilterError(f"listen_streams: {entry!r:.80} is not [host, port]") from None
        try:
            address = ipaddress.ip_address(str(host).strip("[]"))
        except ValueError:
            continue
        stream = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
        if port and stream not in streams:
            streams.append(stream)
    return streams


class FilterModule:
    def filters(self):
        return {"listen_streams": listen_streams}
