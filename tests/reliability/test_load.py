# SPDX-License-Identifier: Apache-2.0
"""16 agents call the coordinator for a bounded time on loopback, over plain HTTP then TLS: no errors.

The load runs in the coordinator's own venv (it has the MCP SDK and
cryptography) against a coordinator process on this machine
(load_agents.py), for the minute the issue asks for, once over plain HTTP
and once over HTTPS with a throwaway CA, in the same run so the two figures
compare (RELIABILITY_LOAD_S=N for a shorter run while writing tests).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import HERE, REPO, note, record

PYTHON = REPO / "coordinator" / ".venv" / "bin" / "python"
SECONDS = float(os.environ.get("RELIABILITY_LOAD_S", "60"))
MAX_CALLS_PER_AGENT = 20000  # bounded in count as well as in time


def run_load(transport: str) -> dict:
    done = subprocess.run(
        [str(PYTHON), str(HERE / "load_agents.py"), str(SECONDS), str(MAX_CALLS_PER_AGENT), transport],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def figures(result: dict) -> str:
    return (
        f"{result['calls']} calls ({result['calls_per_s']}/s), {result['errors']} errors, p50 {result['p50_ms']} ms, "
        f"p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms"
    )


def test_16_agents_for_a_bounded_time_without_errors_plain_and_tls():
    if not PYTHON.exists():
        pytest.skip("coordinator/.venv is missing: run `make setup`")
    results = {transport: run_load(transport) for transport in ("plain", "tls")}
    plain, tls = results["plain"], results["tls"]
    print(f"{'':6} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, result in (("plain", plain), ("TLS", tls)):
        row = (result["calls_per_s"], result["p50_ms"], result["p99_ms"], result["errors"])
        print(f"{name:6} {row[0]:>8} {row[1]:>8} {row[2]:>8} {row[3]:>7}")
    record(
        "load",
        f"{plain['agents']} agents x {SECONDS:g} s, plain HTTP: {figures(plain)}; TLS: {figures(tls)}",
    )
    for name, result in (("plain HTTP", plain), ("TLS", tls)):
        note(
            f"Load ({name}): {result['tasks_completed']} tasks claimed, progressed and completed by 16 agents in "
            f"{SECONDS:g} s; {result['claims_lost_to_another_agent']} claims lost to a faster agent (not errors)"
        )
    for result in (plain, tls):
        assert result["errors"] == 0, (result["transport"], result["error_samples"])
        assert result["calls"] > 0, result["transport"]
