# SPDX-License-Identifier: Apache-2.0
"""The coordinator's curve: latency, CPU and memory as the fleet grows, one call per agent every 10 s.

For each fleet size (``--agents 100,500,1000,2000,4000``), a fresh coordinator
(``python -m central_mcp serve``, pinned to CPU 0) with that many agents in its
agents file, each with its own token; this process (pinned to CPU 1) opens one
MCP session per agent with the official SDK client, as a CLI holds it, then
every agent calls ``get_available_tasks`` once every ``--interval-s`` (10 s, at a
random phase) for ``--seconds``. Printed per size:

* calls asked per second and served per second, p50 and p99 latency, errors;
* the server's CPU (share of its one core) during the calls;
* its RSS idle, with every session open, and per open session.

A size whose calls cannot keep up shows it as served < asked and a p99 of
seconds: that is the limit. The client side is one Python process; its own
CPU is printed too, so a client that is the bottleneck is not mistaken for
the server. Needs the coordinator's venv: ``coordinator/.venv/bin/python
benchmarks/coordinator_curve.py`` (about a minute per size).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import anyio
except ImportError as exc:  # pragma: no cover - a plain message instead of a traceback
    sys.exit(f"coordinator_curve: {exc.name} is missing; run it with the coordinator's venv")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coordinator_load import cpu_s, pct, rss_mb, session, start_server  # noqa: E402

OPEN_AT_ONCE = 50  # sessions opened concurrently while the fleet connects


async def one_size(agents: int, seconds: float, interval_s: float) -> dict:
    tokens = {f"agent{i:05d}": secrets.token_urlsafe(32) for i in range(agents)}
    with tempfile.TemporaryDirectory(prefix="central-mcp-curve-") as tmpdir:
        proc, url, _ = start_server(Path(tmpdir), tokens, {}, True)
        try:
            await anyio.sleep(1.0)
            idle_rss = rss_mb(proc.pid)
            latencies: list[float] = []
            errors = 0
            opened = 0
            all_open, go = anyio.Event(), anyio.Event()
            gate = anyio.Semaphore(OPEN_AT_ONCE)

            async def agent(name: str) -> None:
                nonlocal opened, errors
                async with gate:
                    context = session(url, tokens[name], True)
                    s = await context.__aenter__()
                try:
                    opened += 1
                    if opened == agents:
                        all_open.set()
                    await go.wait()
                    await anyio.sleep(random.uniform(0, interval_s))  # each agent at its own phase
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        started = time.perf_counter()
                        try:
                            result = await s.call_tool("get_available_tasks", {})
                            errors += bool(result.is_error)
                        except Exception:  # a refused or timed-out call counts, the agent goes on
                            errors += 1
                        latencies.append(time.perf_counter() - started)
                        await anyio.sleep(max(0.0, interval_s - (time.perf_counter() - started)))
                finally:
                    with contextlib.suppress(Exception):  # closing thousands of sessions at once is not measured
                        await context.__aexit__(None, None, None)

            async with anyio.create_task_group() as tg:
                for name in tokens:
                    tg.start_soon(agent, name)
                with anyio.fail_after(60 + agents / 10):
                    await all_open.wait()
                await anyio.sleep(1.0)
                open_rss = rss_mb(proc.pid)
                cpu_before, client_before, began = cpu_s(proc.pid), time.process_time(), time.monotonic()
                go.set()
                await anyio.sleep(seconds + interval_s)
                took = time.monotonic() - began
                server_cpu = (cpu_s(proc.pid) - cpu_before) / took
                client_cpu = (time.process_time() - client_before) / took
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    # served: each agent calls for `seconds` from its own phase, so a fleet that keeps up serves agents / interval
    return {
        "agents": agents, "asked": agents / interval_s, "served": len(latencies) / seconds,
        "p50_ms": pct(latencies, 0.5) * 1000 if latencies else float("nan"),
        "p99_ms": pct(latencies, 0.99) * 1000 if latencies else float("nan"),
        "errors": errors, "server_cpu": server_cpu, "client_cpu": client_cpu,
        "idle_rss": idle_rss, "open_rss": open_rss, "per_session_kb": (open_rss - idle_rss) * 1024 / agents,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="100,500,1000,2000,4000", help="fleet sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long each agent calls")
    parser.add_argument("--interval-s", type=float, default=10.0, help="one call per agent this often")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})  # the clients on CPU 1, the server alone on CPU 0
    print(f"one get_available_tasks per agent every {args.interval_s:g} s for {args.seconds:g} s; "
          "the coordinator on one core")  # fmt: skip
    print("agents  asked/s  served/s   p50 ms   p99 ms  errors  server CPU  client CPU  RSS idle  RSS open  KB/session")
    for agents in (int(word) for word in args.agents.split(",")):
        r = anyio.run(one_size, agents, args.seconds, args.interval_s)
        print(f"{r['agents']:>6}  {r['asked']:>7.0f}  {r['served']:>8.1f}  {r['p50_ms']:>7.1f}  {r['p99_ms']:>7.1f}  "
              f"{r['errors']:>6}  {r['server_cpu']:>9.0%}  {r['client_cpu']:>10.0%}  {r['idle_rss']:>6.0f} MB  "
              f"{r['open_rss']:>6.0f} MB  {r['per_session_kb']:>10.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
