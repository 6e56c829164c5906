# SPDX-License-Identifier: Apache-2.0
"""Calls made from inside the VM while something restarts the coordinator: were any refused or failed?

``probing(host, token)`` starts two clients in the VM container, in the
background: one GETs /health, one calls an MCP tool (``whoami``, with an
agent's token), each on a new connection every 50 ms, as a polling agent
would. On leaving the block they stop and report, per client, the calls
answered, refused (nothing listening) and failed (an error status, a cut
connection, an MCP error), and the longest call. Not a test module (no
``test_`` prefix): the scenario's tests import it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections.abc import Iterator
from typing import Any

PROBE = """
import http.client, json, os, sys, threading, time
token, stop_file, out_file = sys.argv[1:4]
counts = {}
CALL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}})
HEADERS = {"Authorization": "Bearer " + token, "Content-Type": "application/json",
           "Accept": "application/json, text/event-stream"}
def probe(kind):
    seen = counts[kind] = {"answered": 0, "refused": 0, "failed": [], "longest_s": 0.0}
    while not os.path.exists(stop_file):
        started = time.monotonic()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", 3000, timeout=30)
            if kind == "health":
                connection.request("GET", "/health")
            else:
                connection.request("POST", "/mcp", CALL, HEADERS)
            answer = connection.getresponse()
            body = answer.read().decode(errors="replace")
            flat = body.replace(" ", "")
            ok = answer.status == 200 and (kind == "health" or '"result"' in flat and '"isError":true' not in flat)
            seen["answered"] += 1
            if not ok:
                seen["failed"].append(f"{answer.status} {body[:120]}")
        except ConnectionRefusedError:
            seen["refused"] += 1
        except (OSError, http.client.HTTPException) as exc:
            seen["failed"].append(repr(exc))
        seen["longest_s"] = max(seen["longest_s"], round(time.monotonic() - started, 2))
        time.sleep(0.05)
threads = [threading.Thread(target=probe, args=(kind,)) for kind in ("health", "mcp")]
for thread in threads:
    thread.start()
open(out_file + ".started", "w").close()
for thread in threads:
    thread.join()
with open(out_file + ".tmp", "w") as out:
    json.dump(counts, out)
os.rename(out_file + ".tmp", out_file)
"""
STOP, OUT = "/run/call-probe.stop", "/run/call-probe.json"


@contextlib.contextmanager
def probing(host: Any, token: str) -> Iterator[dict[str, Any]]:
    """The two clients run for the block; the dict it yields then holds their counts."""
    host.run(f"rm -f {STOP} {OUT} {OUT}.started")
    host.check_output(
        f"setsid nohup python3 -c {shlex.quote(PROBE)} {shlex.quote(token)} {STOP} {OUT} >/dev/null 2>&1 & echo"
    )
    wait(host, f"{OUT}.started", 10)
    time.sleep(1)  # answers before the restart
    seen: dict[str, Any] = {}
    try:
        yield seen
        time.sleep(2)  # and after it
    finally:
        host.run(f"touch {STOP}")
        wait(host, OUT, 40)
        seen.update(json.loads(host.file(OUT).content_string))


def wait(host: Any, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not host.file(path).exists:
        assert time.monotonic() < deadline, f"{path}: the probe did not get there within {timeout:g} s"
        time.sleep(0.2)


def assert_no_call_refused_or_failed(seen: dict[str, Any]) -> None:
    for kind in ("health", "mcp"):
        assert seen[kind]["refused"] == 0 and seen[kind]["failed"] == [], seen[kind]
        assert seen[kind]["answered"] > 10, seen[kind]
