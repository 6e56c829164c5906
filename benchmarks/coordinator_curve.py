# SPDX-License-Identifier: Apache-2.0
"""The coordinator's curve: latency, CPU and memory as the fleet grows, one MCP call per agent every 10 s.

For each fleet size (``--agents 100,500,1000,2000,4000``), a fresh coordinator
(``python -m central_mcp serve``, pinned to CPU 0) with that many agents in its
agents file, each with its own token; this process (pinned to CPU 1) opens one
MCP session per agent (``initialize``, its own keep-alive connection, as a CLI
holds it), then every agent calls ``get_available_tasks`` once every
``--interval-s`` (10 s) and, on a connection of its own as the worker runtime
does, posts a heartbeat every ``--heartbeat-s`` (5 s, the runtime's default;
0 for none), each at a random phase, for ``--seconds``. Printed per size:

* MCP calls asked per second and served per second, p50 and p99 latency;
  heartbeats per second and their p99; errors of either;
* the server's CPU (share of its one core) during the calls;
* its RSS idle, with every session open, and per open session.

A size whose calls cannot keep up shows it as served < asked and a p99 of
seconds: that is the limit. The clients speak MCP on the wire
(``mcp_wire.py``): the SDK's client, and even an ``httpx`` one, cost the client
core more CPU than the calls cost the server, so they measured the clients.
The runtimes' heartbeats go out the same way. The client core's CPU
and how late its own event loop ran (client lag p99) are printed too, so a
client that is the bottleneck is not mistaken for the server.

Then, in the same run (``--mix-seconds``, 0 to skip), the claim -> progress ->
complete mix of 16 agents calling as fast as they can against the coordinator,
and its cheapest call (a heartbeat over MCP, what every call costs at least),
next to 16 clients calling a no-op tool of the bare SDK served the same way
(``bare_mcp_server.py``, stateless with JSON answers, pinned to CPU 0 too), and
the mix's calls on the bare SDK with a token check and no work behind them (what
the SDK alone spends on their arguments and answers): calls/s, p99 and CPU per
call of each, and the ratios to the no-op. Needs the coordinator's venv:
``coordinator/.venv/bin/python benchmarks/coordinator_curve.py`` (about a minute
per size).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import anyio
    import httptools  # noqa: F401 - mcp_wire parses the answers with it
except ImportError as exc:  # pragma: no cover - a plain message instead of a traceback
    sys.exit(f"coordinator_curve: {exc.name} is missing; run it with the coordinator's venv")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coordinator_load import cpu_s, free_port, pct, rss_mb, seed_tasks, start_server  # noqa: E402
from mcp_wire import HttpConnection, WireError, WireSession  # noqa: E402

# The clients on uvloop too (the coordinator's own loop, installed with it): thousands of agents' calls and
# heartbeats from one core cost the client less than the server otherwise.
LOOP = {"use_uvloop": True}
OPEN_AT_ONCE = 50  # sessions opened concurrently while the fleet connects
MIX_AGENTS = 16


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def loop_lags(seconds: float, tick: float = 0.05) -> list[float]:
    """How late this process's event loop wakes a sleeper, for ``seconds``: a busy client delays every answer."""
    lags = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        asked = time.perf_counter()
        await anyio.sleep(tick)
        lags.append(time.perf_counter() - asked - tick)
    return lags


SCREEN = [
    f"line {i} of what the agent's window shows, as the runtime reads it with tmux capture-pane" for i in range(20)
]


async def every(period: float, seconds: float, call: Callable[[], Awaitable[Any]], latencies: list[float]) -> int:
    """``call`` once every ``period`` from a random phase for ``seconds``; its latencies; how many failed."""
    errors = 0
    await anyio.sleep(random.uniform(0, period))  # each agent at its own phase
    deadline = time.monotonic() + seconds - period / 2  # seconds / period calls, not one more for a timer early
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            await call()
        except Exception:  # a refused, failed or timed-out call counts, the agent goes on
            errors += 1
        latencies.append(time.perf_counter() - started)
        await anyio.sleep(max(0.0, period - (time.perf_counter() - started)))
    return errors


async def one_size(agents: int, seconds: float, interval_s: float, heartbeat_s: float) -> dict:
    tokens = {f"agent{i:05d}": secrets.token_urlsafe(32) for i in range(agents)}
    with tempfile.TemporaryDirectory(prefix="central-mcp-curve-") as tmpdir:
        proc, url, _ = start_server(Path(tmpdir), tokens, {}, True)
        try:
            await anyio.sleep(1.0)
            idle_rss = rss_mb(proc.pid)
            latencies: list[float] = []
            beats: list[float] = []
            errors = 0
            opened = 0
            all_open, go = anyio.Event(), anyio.Event()
            gate = anyio.Semaphore(OPEN_AT_ONCE)

            async def agent(name: str) -> None:
                """The CLI's MCP session, and beside it the runtime's heartbeats on a connection of its own."""
                nonlocal opened, errors
                async with gate:
                    s = await WireSession(url, tokens[name]).__aenter__()
                runtime = HttpConnection(url)
                auth = {"Authorization": f"Bearer {tokens[name]}", "Content-Type": "application/json"}

                async def beat() -> None:
                    report = {"activity": "working", "task_id": None, "output_age_s": 2.5, "screen": SCREEN}
                    status, _, body = await runtime.post("/runtime/heartbeat", report, auth)
                    if status != 200:
                        raise WireError(f"heartbeat: HTTP {status} {body[:200]!r}")

                async def calls() -> None:
                    nonlocal errors
                    failed = await every(interval_s, seconds, lambda: s.call("get_available_tasks", {}), latencies)
                    errors += failed  # not `errors += await ...`: that reads errors before the await, and loses counts

                async def heartbeats() -> None:
                    nonlocal errors
                    failed = await every(heartbeat_s, seconds, beat, beats)
                    errors += failed

                try:
                    opened += 1
                    if opened == agents:
                        all_open.set()
                    await go.wait()
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(calls)
                        if heartbeat_s > 0:
                            tg.start_soon(heartbeats)
                finally:
                    await s.__aexit__(None, None, None)
                    await runtime.close()

            async with anyio.create_task_group() as tg:
                for name in tokens:
                    tg.start_soon(agent, name)
                with anyio.fail_after(60 + agents / 10):
                    await all_open.wait()
                await anyio.sleep(1.0)
                gc.freeze()  # thousands of open clients: a full collection of them would stall every answer here
                gc.disable()
                open_rss = rss_mb(proc.pid)
                cpu_before, client_before, began = cpu_s(proc.pid), time.process_time(), time.monotonic()
                go.set()
                lags = await loop_lags(seconds + max(interval_s, heartbeat_s))
                took = time.monotonic() - began
                server_cpu = (cpu_s(proc.pid) - cpu_before) / took
                client_cpu = (time.process_time() - client_before) / took
        finally:
            gc.enable()
            gc.unfreeze()  # this size's clients are garbage now: the next size starts clean
            stop(proc)
    # served: each agent calls for `seconds` from its own phase, so a fleet that keeps up serves agents / interval
    return {
        "agents": agents, "asked": agents / interval_s, "served": len(latencies) / seconds,
        "beats": len(beats) / seconds, "beat_p99_ms": pct(beats, 0.99) * 1000 if beats else float("nan"),
        "p50_ms": pct(latencies, 0.5) * 1000 if latencies else float("nan"),
        "p99_ms": pct(latencies, 0.99) * 1000 if latencies else float("nan"),
        "errors": errors, "server_cpu": server_cpu, "client_cpu": client_cpu, "client_lag_ms": pct(lags, 0.99) * 1000,
        "idle_rss": idle_rss, "open_rss": open_rss, "per_session_kb": (open_rss - idle_rss) * 1024 / agents,
    }  # fmt: skip


Call = Callable[[str, dict[str, Any]], Awaitable[None]]  # one timed MCP call of a client


async def flat_out(
    url: str, tokens: list[str], pid: int, seconds: float, step: Callable[[Call], Awaitable[None]]
) -> dict[str, Any]:
    """Every client runs ``step`` again and again for ``seconds``: calls/s, p50/p99 per call, errors, server CPU."""
    latencies: list[float] = []
    errors = 0

    async def client(token: str) -> None:
        async with WireSession(url, token) as s:

            async def call(tool: str, arguments: dict[str, Any]) -> None:
                nonlocal errors
                started = time.perf_counter()
                try:
                    await s.call(tool, arguments)
                except Exception:  # counted; the client goes on
                    errors += 1
                latencies.append(time.perf_counter() - started)

            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await step(call)

    cpu_before, began = cpu_s(pid), time.monotonic()
    async with anyio.create_task_group() as tg:
        for token in tokens:
            tg.start_soon(client, token)
    took = time.monotonic() - began
    return {
        "rate": len(latencies) / took, "p50_ms": pct(latencies, 0.5) * 1000, "p99_ms": pct(latencies, 0.99) * 1000,
        "errors": errors, "server_cpu": (cpu_s(pid) - cpu_before) / took,
    }  # fmt: skip


async def claim_progress_complete(call: Call, ids: Iterator[int]) -> None:
    """The mix: claim the next task, report progress on it, complete it."""
    task_id = next(ids)
    await call("claim_task", {"taskId": task_id})
    await call("update_task_progress", {"taskId": task_id, "completionPercent": 50, "notes": "half"})
    await call("complete_task", {"taskId": task_id, "filesCreated": ["x.py"], "notes": "done"})


async def bare_sdk(seconds: float, step: Callable[[Call], Awaitable[None]], token: str | None = None) -> dict[str, Any]:
    """``step`` against the bare SDK (``bare_mcp_server.py``, on CPU 0 as the coordinator was), 16 clients."""
    port = free_port()
    pin = (lambda: os.sched_setaffinity(0, {0})) if hasattr(os, "sched_setaffinity") else None
    command = [sys.executable, str(Path(__file__).with_name("bare_mcp_server.py")), str(port)]
    command += ["--token", token] if token else []
    bare = subprocess.Popen(command, preexec_fn=pin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # listening yet? (a GET of /mcp would open an event stream)
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            await anyio.sleep(0.05)
        await anyio.sleep(1.0)
        return await flat_out(f"http://127.0.0.1:{port}", [token or "unused"] * MIX_AGENTS, bare.pid, seconds, step)
    finally:
        stop(bare)


async def mix_vs_bare(seconds: float) -> dict[str, dict[str, Any]]:
    """The coordinator's heartbeat and claim/progress/complete mix, then the bare SDK's, with the same clients.

    The heartbeat (over MCP, with 100,000 open tasks on the board: it tells the agent how many are open) is the
    coordinator's cheapest call: what is left of it beside the no-op is what every call passes (authentication,
    the limits, the activity hook). The bare SDK answers its no-op, then the mix's calls with a token check and
    nothing behind them: what the SDK alone spends on the mix's arguments and answers.
    """
    tokens = {f"agent{i:02d}": secrets.token_urlsafe(32) for i in range(MIX_AGENTS)}
    with tempfile.TemporaryDirectory(prefix="central-mcp-mix-") as tmpdir:
        proc, url, _ = start_server(Path(tmpdir), tokens, {}, True)
        try:
            ids = iter(seed_tasks(Path(tmpdir) / "db" / "central-mcp.db", 100_000))

            async def heartbeat(call: Call) -> None:
                await call("agent_heartbeat", {})

            await anyio.sleep(1.0)
            beat = await flat_out(url, list(tokens.values()), proc.pid, seconds, heartbeat)
            await anyio.sleep(1.0)
            mix = await flat_out(
                url, list(tokens.values()), proc.pid, seconds, lambda c: claim_progress_complete(c, ids)
            )
        finally:
            stop(proc)

    async def noop(call: Call) -> None:
        await call("noop", {})

    sdk = await bare_sdk(seconds, noop)
    counter = itertools.count(1)
    sdk_mix = await bare_sdk(seconds, lambda c: claim_progress_complete(c, counter), secrets.token_urlsafe(32))
    return {"mix": mix, "beat": beat, "sdk": sdk, "sdk_mix": sdk_mix}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="100,500,1000,2000,4000", help="fleet sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long each agent calls")
    parser.add_argument("--interval-s", type=float, default=10.0, help="one call per agent this often")
    parser.add_argument("--heartbeat-s", type=float, default=5.0, help="the runtime's heartbeat (0: none)")
    parser.add_argument("--mix-seconds", type=float, default=15.0, help="the mix and the no-op, each (0: skip)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})  # the clients on CPU 1, the server alone on CPU 0
    beating = f" and a runtime heartbeat every {args.heartbeat_s:g} s" if args.heartbeat_s > 0 else ""
    print(f"per agent: one MCP call (get_available_tasks) every {args.interval_s:g} s{beating}, "
          f"for {args.seconds:g} s; the coordinator on one core")  # fmt: skip
    print("agents  MCP calls/s asked  served   p50 ms   p99 ms  beats/s  beat p99 ms  errors  server CPU  client CPU  "
          "client lag p99  RSS idle  RSS open  KB/session")  # fmt: skip
    for agents in (int(word) for word in args.agents.split(",")):
        r = anyio.run(one_size, agents, args.seconds, args.interval_s, args.heartbeat_s, backend_options=LOOP)
        print(f"{r['agents']:>6}  {r['asked']:>17.0f}  {r['served']:>6.1f}  {r['p50_ms']:>7.1f}  {r['p99_ms']:>7.1f}  "
              f"{r['beats']:>7.1f}  {r['beat_p99_ms']:>11.1f}  {r['errors']:>6}  {r['server_cpu']:>9.0%}  "
              f"{r['client_cpu']:>10.0%}  {r['client_lag_ms']:>11.1f} ms  {r['idle_rss']:>6.0f} MB  "
              f"{r['open_rss']:>6.0f} MB  {r['per_session_kb']:>10.1f}", flush=True)  # fmt: skip
    if args.mix_seconds <= 0:
        return
    r = anyio.run(mix_vs_bare, args.mix_seconds, backend_options=LOOP)
    print(f"\n{MIX_AGENTS} clients calling as fast as they can for {args.mix_seconds:g} s, each server on one core:")
    print("                                             calls/s   p50 ms   p99 ms  errors  server CPU  CPU ms/call")
    rows = (("coordinator claim/progress/complete", r["mix"]), ("coordinator heartbeat (its cheapest)", r["beat"]),
            ("bare SDK no-op (stateless, JSON)", r["sdk"]),
            ("bare SDK, the mix's calls, no work, a token", r["sdk_mix"]))  # fmt: skip
    for label, row in rows:
        print(f"  {label:<43}  {row['rate']:>7.0f}  {row['p50_ms']:>7.1f}  {row['p99_ms']:>7.1f}  {row['errors']:>6}  "
              f"{row['server_cpu']:>9.0%}  {row['server_cpu'] / row['rate'] * 1000:>11.2f}")  # fmt: skip
    for label, row in (("mix", r["mix"]), ("heartbeat", r["beat"]), ("bare SDK's mix", r["sdk_mix"])):
        rate, p99 = row["rate"] / r["sdk"]["rate"], row["p99_ms"] / r["sdk"]["p99_ms"]
        print(f"  {label} / no-op: {rate:.2f}x the calls/s, {p99:.2f}x the p99")


if __name__ == "__main__":
    main()
