# SPDX-License-Identifier: Apache-2.0
"""Run inside VM 2 with the system Python: VM 1's coordinator as a client without any token sees it.

Prints the HTTP status of POST /mcp, GET /api/agents and GET /health.

    podman exec -i VM python3 - URL < this file
"""

import json
import sys
import urllib.error
import urllib.request


def status(url: str, data: bytes | None = None) -> int:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


base = sys.argv[1]
print(json.dumps({"mcp": status(base + "/mcp", b"{}"), "api": status(base + "/api/agents"),
                  "health": status(base + "/health")}))  # fmt: skip
