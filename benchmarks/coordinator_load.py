# SPDX-License-Identifier: Apache-2.0
"""Load figures of the coordinator (central-mcp), on loopback only.

The server runs as ``python -m central_mcp serve`` pinned to CPU 0; the
clients (the official MCP SDK client, as agents use it) run in this process
pinned to CPU 1, so they do not steal the server's core. Printed:

* time from process start to a good /health;
* coordinator RSS idle, and with 16 MCP sessions open;
* 16 concurrent agents doing claim -> update_task_progress -> complete_task
  on their own tasks for ~10 s: calls/s, p50/p99 latency per call;
* task created (REST POST sent) -> event seen on /api/events: p50/p95 ms,
  idle and during the load.

All of it twice by default, in the same run: over plain HTTP and over
HTTPS as between VMs (a throwaway CA and a certificate for 127.0.0.1 made
here with ``cryptography``; the clients trust that CA alone), then calls/s,
p50, p99 and errors side by side (``--transport plain|tls`` for one).

Needs the coordinator package importable (``pip install -e coordinator``).
Bounded: about 20 s of wall time per transport.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import secrets
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import anyio
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
except ImportError as exc:  # pragma: no cover - a plain message instead of a traceback
    sys.exit(f"coordinator_load: {exc.name} is missing; install the coordinator first: pip install -e coordinator")
# The throwaway CA and certificate for 127.0.0.1 are the tests' own (one maker for every run).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.throwaway_ca import throwaway_tls  # noqa: E402

AGENTS = 16
LOAD_S = 10.0
SSE_SAMPLES = 40
API_TOKEN = secrets.token_urlsafe(24)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_server(
    tmp: Path, tokens: dict[str, str], tls_env: dict[str, str], verify: ssl.SSLContext | bool
) -> tuple[subprocess.Popen[bytes], str, float]:
    agents = [
        {"name": n, "role": "backend", "model": "m", "kind": "claude", "host": "bench", "token_sha256": h}
        for n, h in ((n, hashlib.sha256(t.encode()).hexdigest()) for n, t in tokens.items())
    ]
    (tmp / "agents.json").write_text(json.dumps({"agents": agents}))
    port = free_port()
    env = {
        **os.environ,
        "CENTRAL_MCP_DB": str(tmp / "db" / "central-mcp.db"),
        "CENTRAL_MCP_PORT": str(port),
        "CENTRAL_MCP_AGENTS_FILE": str(tmp / "agents.json"),
        "CENTRAL_MCP_API_TOKEN": API_TOKEN,
        "CENTRAL_MCP_LOG_LEVEL": "warning",
        # The load is the point here: no per-agent rate on notes and progress (0: no limit).
        "CENTRAL_MCP_AGENT_WRITES_PER_MINUTE": "0",
        **tls_env,
    }
    pin = (lambda: os.sched_setaffinity(0, {0})) if hasattr(os, "sched_setaffinity") else None
    started = time.monotonic()
    with open(tmp / "server.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "central_mcp", "serve"], env=env, stdout=log, stderr=log, preexec_fn=pin
        )
    url = f"{'https' if tls_env else 'http'}://127.0.0.1:{port}"
    while time.monotonic() - started < 30:
        if proc.poll() is not None:
            sys.exit(f"coordinator exited: {(tmp / 'server.log').read_text()}")
        with contextlib.suppress(httpx2.HTTPError):
            response = httpx2.get(url + "/health", timeout=1, verify=verify)
            if response.status_code == 200 and response.json()["status"] in ("ok", "degraded"):
                return proc, url, time.monotonic() - started
        time.sleep(0.01)
    proc.kill()
    sys.exit("coordinator did not become healthy in 30 s")


def seed_tasks(db: Path, count: int) -> list[int]:
    """Insert tasks straight into the database (setup, not measured); the service reads them like any other."""
    now = time.time()
    with sqlite3.connect(db, timeout=10) as conn:
        first = conn.execute("SELECT COALESCE(MAX(id), 0) FROM tasks").fetchone()[0] + 1
        conn.executemany(
            "INSERT INTO tasks (id, title, role, created_at, updated_at) VALUES (?, ?, 'backend', ?, ?)",
            [(first + i, f"bench {i}", now, now) for i in range(count)],
        )
    return list(range(first, first + count))


@contextlib.asynccontextmanager
async def session(url: str, token: str, verify: ssl.SSLContext | bool) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60), verify=verify) as http:
        async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


async def sse_latencies(url: str, samples: int, verify: ssl.SSLContext | bool) -> list[float]:
    """Create tasks one by one over REST; time from the POST to the task.created event."""
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    async with httpx2.AsyncClient(timeout=30, headers=headers, verify=verify) as client:
        async with client.stream("GET", url + "/api/events?types=task.created") as stream:
            lines = stream.aiter_lines()
            async for line in lines:  # the stream opens with a "ready" event
                if line == "":
                    break

            async def reader() -> None:
                event = ""
                async for line in lines:
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "task.created":
                        seen[json.loads(line[5:])["id"]] = time.perf_counter()
                        if len(seen) >= samples:
                            return

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                for i in range(samples):
                    t0 = time.perf_counter()
                    response = await client.post(url + "/api/tasks", json={"title": f"sse {i}", "role": "sse"})
                    sent[response.json()["id"]] = t0
                    await anyio.sleep(0.02)
                with anyio.fail_after(10):
                    while len(seen) < samples:
                        await anyio.sleep(0.01)
    return [(seen[i] - sent[i]) * 1000 for i in sent if i in seen]


async def measure(transport: str, seconds: float) -> dict[str, Any]:
    """One coordinator, one transport: every figure of the module docstring."""
    tokens = {f"agent{i:02d}": secrets.token_urlsafe(32) for i in range(AGENTS)}
    with tempfile.TemporaryDirectory(prefix="central-mcp-bench-") as tmpdir:
        tmp = Path(tmpdir)
        tls_env, verify = throwaway_tls(tmp) if transport == "tls" else ({}, True)
        proc, url, ready_s = start_server(tmp, tokens, tls_env, verify)
        try:
            await anyio.sleep(1.0)
            idle_rss = rss_mb(proc.pid)
            sse_idle = await sse_latencies(url, SSE_SAMPLES, verify)
            ids = iter(seed_tasks(tmp / "db" / "central-mcp.db", 20000))
            latencies: list[float] = []
            errors = itertools.count()
            rss_open = 0.0
            opened = anyio.Event()
            go = anyio.Event()
            ready = 0

            async def agent(name: str) -> None:
                nonlocal ready
                async with session(url, tokens[name], verify) as s:
                    ready += 1
                    if ready == AGENTS:
                        opened.set()
                    await go.wait()
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        task_id = next(ids)
                        for tool, args in (
                            ("claim_task", {"taskId": task_id}),
                            ("update_task_progress", {"taskId": task_id, "completionPercent": 50, "notes": "half"}),
                            ("complete_task", {"taskId": task_id, "filesCreated": ["x.py"], "notes": "done"}),
                        ):
                            t0 = time.perf_counter()
                            result = await s.call_tool(tool, args)
                            latencies.append((time.perf_counter() - t0) * 1000)
                            if result.is_error:
                                next(errors)

            load_started = 0.0
            sse_load: list[float] = []
            async with anyio.create_task_group() as tg:
                for name in tokens:
                    tg.start_soon(agent, name)
                with anyio.fail_after(60):
                    await opened.wait()
                await anyio.sleep(0.5)
                rss_open = rss_mb(proc.pid)
                load_started, cpu_before = time.monotonic(), cpu_s(proc.pid)
                go.set()
                await anyio.sleep(2.0)
                sse_load = await sse_latencies(url, SSE_SAMPLES, verify)
            load_s = time.monotonic() - load_started
            server_busy = (cpu_s(proc.pid) - cpu_before) / load_s
            rss_after = rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "transport": transport,
        "ready_s": ready_s,
        "idle_rss": idle_rss,
        "rss_open": rss_open,
        "rss_after": rss_after,
        "calls": len(latencies),
        "load_s": load_s,
        "rate": len(latencies) / load_s,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "server_busy": server_busy,
        "errors": next(errors),
        "sse": {"idle": sse_idle, "under load": sse_load},
    }


def report(r: dict[str, Any]) -> None:
    name = "HTTPS (TLS)" if r["transport"] == "tls" else "plain HTTP"
    print(f"central-mcp load benchmark, {name} (server pinned to CPU 0, {AGENTS} MCP clients on CPU 1, loopback)")
    print(f"  start to good /health:        {r['ready_s'] * 1000:.0f} ms")
    print(f"  RSS idle:                     {r['idle_rss']:.1f} MB")
    print(f"  RSS with {AGENTS} sessions open:    {r['rss_open']:.1f} MB (after the load: {r['rss_after']:.1f} MB)")
    print(f"  claim/progress/complete mix:  {r['calls']} calls in {r['load_s']:.1f} s = {r['rate']:.0f} calls/s")
    print(f"                                p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms")
    print(
        f"                                server CPU {r['server_busy']:.0%} of its core "
        f"(~{r['rate'] / max(r['server_busy'], 0.01):.0f} calls/s per busy core; below 100% the clients are the limit)"
    )
    print(f"                                {r['calls'] // 3} tasks completed, {r['errors']} tool errors")
    for label, values in r["sse"].items():
        print(
            f"  task created -> SSE ({label}): p50 {statistics.median(values):.1f} ms, "
            f"p95 {pct(values, 0.95):.1f} ms ({len(values)} samples)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=("both", "plain", "tls"), default="both", help="default: %(default)s")
    parser.add_argument("--seconds", type=float, default=LOAD_S, help="load phase per transport (default: %(default)s)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    transports = ("plain", "tls") if args.transport == "both" else (args.transport,)
    results = [anyio.run(measure, transport, args.seconds) for transport in transports]
    for result in results:
        report(result)
    if len(results) > 1:
        print(f"side by side ({AGENTS} agents x {args.seconds:g} s each, same run):")
        print(f"  {'':12} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'server CPU':>11}")
        for r in results:
            name = "TLS" if r["transport"] == "tls" else "plain HTTP"
            print(
                f"  {name:12} {r['rate']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['errors']:>7} "
                f"{r['server_busy']:>11.0%}"
            )


if __name__ == "__main__":
    main()
