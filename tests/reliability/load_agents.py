# SPDX-License-Identifier: Apache-2.0
"""16 MCP agents against a real coordinator on loopback for a bounded time; prints one JSON line.

Run with the coordinator's venv (coordinator/.venv/bin/python): it starts
``python -m central_mcp serve`` on a free loopback port with a fresh database,
then 16 agents (the official MCP SDK client, one session each, own token)
loop over what agents do all day: get_available_tasks, claim_task,
update_task_progress, complete_task, agent_heartbeat, while a feeder keeps
about 48 tasks open over the REST API (get_available_tasks lists every open
task, so a huge backlog would measure the listing, not the service). Bounded in time
(argv[1] seconds) and in calls (argv[2] per agent). Every tool error, HTTP
error or exception counts as an error, except a claim lost to a faster agent
(counted apart). Every call is timed, claims included.

``tls`` (argv[3]; ``plain`` by default) serves the coordinator over HTTPS as
between VMs: a throwaway CA and a certificate for 127.0.0.1 are made here
with ``cryptography``, and every client (the agents' MCP SDK client, the
feeder) trusts that CA alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the repository's tests package
from tests.throwaway_ca import throwaway_tls  # noqa: E402

AGENTS = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def main(seconds: float, max_calls: int, transport: str = "plain") -> dict:
    tokens = {f"load{i:02d}": secrets.token_urlsafe(32) for i in range(AGENTS)}
    api_token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="central-mcp-load-") as tmpdir:
        tmp = Path(tmpdir)
        agents = [
            {"name": n, "role": "backend", "model": "m", "kind": "claude", "host": "load", "token_sha256": h}
            for n, h in ((n, hashlib.sha256(t.encode()).hexdigest()) for n, t in tokens.items())
        ]
        (tmp / "agents.json").write_text(json.dumps({"agents": agents}))
        port = free_port()
        env = {
            **os.environ,
            "CENTRAL_MCP_DB": str(tmp / "db" / "central-mcp.db"),
            "CENTRAL_MCP_PORT": str(port),
            "CENTRAL_MCP_DASHBOARD_PORT": "0",
            "CENTRAL_MCP_AGENTS_FILE": str(tmp / "agents.json"),
            "CENTRAL_MCP_API_TOKEN": api_token,
            "CENTRAL_MCP_LOG_LEVEL": "warning",
            # The load is the point here: no per-agent rate on notes and progress (0: no limit).
            "CENTRAL_MCP_AGENT_WRITES_PER_MINUTE": "0",
        }
        verify: ssl.SSLContext | bool = True
        if transport == "tls":
            tls_env, verify = throwaway_tls(tmp)
            env.update(tls_env)
        url = f"{'https' if transport == 'tls' else 'http'}://127.0.0.1:{port}"
        with open(tmp / "server.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "central_mcp", "serve"], env=env, stdout=log, stderr=log)
        try:
            for _ in range(600):
                with contextlib.suppress(httpx2.HTTPError):
                    if httpx2.get(url + "/health", timeout=1, verify=verify).status_code == 200:
                        break
                if proc.poll() is not None:
                    raise SystemExit((tmp / "server.log").read_text())
                time.sleep(0.05)
            latencies: list[float] = []
            errors: list[str] = []
            done = {"posted": 0, "completed": 0, "races_lost": 0}
            deadline = time.monotonic() + seconds

            async def feeder() -> None:
                headers = {"Authorization": f"Bearer {api_token}"}
                async with httpx2.AsyncClient(headers=headers, timeout=30, verify=verify) as http:
                    while time.monotonic() < deadline:
                        if done["posted"] - done["completed"] >= 48:
                            await anyio.sleep(0.02)
                            continue
                        answer = await http.post(url + "/api/tasks", json={"title": "load", "role": "backend"})
                        if answer.status_code != 201:
                            errors.append(f"feeder: {answer.status_code} {answer.text}"[:200])
                        done["posted"] += 1

            async def agent(name: str) -> None:
                headers = {"Authorization": f"Bearer {tokens[name]}"}
                timeout = httpx2.Timeout(30, read=60)
                async with httpx2.AsyncClient(headers=headers, timeout=timeout, verify=verify) as http:
                    async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
                        async with ClientSession(read, write) as session:
                            await session.initialize()
                            calls = 0

                            async def call(tool: str, args: dict, race_ok: bool = False):
                                nonlocal calls
                                calls += 1
                                t0 = time.perf_counter()
                                try:
                                    result = await session.call_tool(tool, args)
                                except Exception as exc:  # noqa: BLE001 - every failure is counted
                                    errors.append(f"{name} {tool}: {exc!r}"[:200])
                                    return None
                                latencies.append((time.perf_counter() - t0) * 1000)
                                text = "".join(getattr(c, "text", "") for c in result.content)
                                if result.is_error:
                                    # A claim lost to a faster agent is the coordinator working; anything else counts.
                                    if race_ok and "not AVAILABLE" in text:
                                        done["races_lost"] += 1
                                    else:
                                        errors.append(f"{name} {tool}: {text}"[:200])
                                    return None
                                return json.loads(text) if text.startswith(("{", "[")) else text

                            while time.monotonic() < deadline and calls < max_calls:
                                offered = await call("get_available_tasks", {})
                                tasks = offered.get("tasks", []) if isinstance(offered, dict) else []
                                claimed = None
                                for task in tasks[:3]:  # another agent may win the race: try the next one
                                    if await call("claim_task", {"taskId": task["id"]}, race_ok=True) is not None:
                                        claimed = task["id"]
                                        break
                                if claimed is None:
                                    await call("agent_heartbeat", {})
                                    continue
                                await call("update_task_progress", {"taskId": claimed, "completionPercent": 50})
                                await call("complete_task", {"taskId": claimed, "filesCreated": [], "notes": "ok"})
                                done["completed"] += 1

            started = time.monotonic()
            async with anyio.create_task_group() as group:
                group.start_soon(feeder)
                for name in tokens:
                    group.start_soon(agent, name)
            elapsed = time.monotonic() - started
        finally:
            proc.terminate()
            proc.wait(15)
    return {
        "transport": transport,
        "agents": AGENTS,
        "seconds": round(elapsed, 1),
        "calls": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "p50_ms": round(pct(latencies, 0.5), 1),
        "p90_ms": round(pct(latencies, 0.9), 1),
        "p99_ms": round(pct(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=0.0), 1),
        "calls_per_s": round(len(latencies) / elapsed, 1),
        "tasks_completed": done["completed"],
        "claims_lost_to_another_agent": done["races_lost"],
    }


if __name__ == "__main__":
    mode = sys.argv[3] if len(sys.argv) > 3 else "plain"
    if mode not in ("plain", "tls"):
        sys.exit(f"load_agents.py SECONDS MAX_CALLS [plain|tls]: {mode!r} is neither")
    print(json.dumps(anyio.run(main, float(sys.argv[1]), int(sys.argv[2]), mode)))
