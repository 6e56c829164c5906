# SPDX-License-Identifier: Apache-2.0
"""Run inside VM 2 with the system Python: VM 1's coordinator as a client without any token sees it.

Prints the HTTP status of POST /mcp, GET /api/agents and GET /health over TLS,
trusting the fleet CA only (CA_FILE); and what a client that does not trust
that CA, or speaks plain HTTP, gets.

    podman exec -i VM python3 - HOST:PORT CA_FILE < this file
"""

import json
import ssl
import sys
import urllib.error
import urllib.request


def status(url: str, data: bytes | None = None, context: ssl.SSLContext | None = None) -> int | str:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=10, context=context).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        return type(getattr(exc, "reason", exc)).__name__


address, ca_file = sys.argv[1], sys.argv[2]
fleet = ssl.create_default_context(cafile=ca_file)
base = f"https://{address}"
print(json.dumps({
    "mcp": status(base + "/mcp", b"{}", fleet), "api": status(base + "/api/agents", context=fleet),
    "health": status(base + "/health", context=fleet),
    "without_the_ca": status(base + "/health", context=ssl.create_default_context()),
    "plain_http": status(f"http://{address}/health"),
}))  # fmt: skip
