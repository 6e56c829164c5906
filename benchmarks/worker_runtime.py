# SPDX-License-Identifier: Apache-2.0
"""Worker mode: the runtime owns the work loop. The figures issue #19 names, from real processes.

Four workers as the launcher runs them (one runtime process for them all, a
tmux window each, the real Claude Code CLI started per task in it, a real coordinator, the scripted
model playing a model that works its task and ends its turn), with the
coordinator's DEFAULT liveness timing (heartbeat 5 s, offline after three
missed beats, liveness loop 5 s). Printed:

* task created while every worker waits -> claimed: p50, p95 (goal p95 < 1 s);
* model requests while the workers wait, per idle agent-hour (goal 0);
* kill -9 of a CLI -> its task AVAILABLE again (goal <= 10 s), and of the
  host's runtime (no heartbeats: offline) -> AVAILABLE again (goal <= 30 s);
* management memory per agent beyond its CLI: its share of the runtime (one
  agent-runtime process for all the workers) and of the tmux server, plus
  the ``sleep`` in its window between tasks, as PSS (goal < 5 MB); then with
  the pane relay and the Control window's view too (one process each per
  VM), started here on the same tmux session, spread over these 4 agents
  and over a VM of 8.

Run with the coordinator's venv: ``coordinator/.venv/bin/python
benchmarks/worker_runtime.py``. About two minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from real_cli_tasks import memory_mb  # noqa: E402 (beside this script: RSS and PSS of one process)

from tests.e2e.fleet import Fleet, Unavailable, claude_binary  # noqa: E402
from tests.e2e.scenarios import percentile  # noqa: E402
from tests.e2e.worker_scenarios import idle_then_tasks, kill_flow  # noqa: E402
from tests.e2e.workers import start_worker, wait_idle  # noqa: E402

WORKERS = {"A": "backend", "B": "frontend", "C": "backend", "D": "integration"}


def tmux_server_pid(fleet: Fleet) -> int:
    return int(fleet.tmux("display-message", "-p", "#{pid}").strip())


def per_vm_processes(fleet: Fleet, root: Path) -> dict[str, tuple[float, float]]:
    """RSS and PSS of the two other processes each VM runs once, as the launcher runs them, on this
    fleet's tmux server: the pane relay (from the coordinator's venv) and the Control window's view."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8", "TMUX": f"{fleet.tmux_socket},0,0"}
    relay = [str(REPO / "coordinator/.venv/bin/central-mcp"), "relay", "--socket", str(root / "relay.sock")]
    control = ["/usr/bin/python3", str(REPO / "plugins/module_utils/agent_probe.py"), "--session", "e2e"]
    procs = {
        "pane relay": subprocess.Popen([*relay, "--session", "e2e"], env=env, stdout=subprocess.DEVNULL),
        "Control window": subprocess.Popen([*control, "--watch", "5"], env=env, stdout=subprocess.DEVNULL),
    }
    try:
        time.sleep(5)  # both up, the relay attached to the session, the view drawn at least once
        return {name: memory_mb(proc.pid) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one task per worker")
    parser.add_argument("--idle-s", type=float, default=30.0, help="seconds the workers wait with no task")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="worker-runtime-") as tmp:
        root = Path(tmp)
        try:
            claude = claude_binary(root)
            fleet = Fleet(root / "fleet", claude, WORKERS)  # the coordinator's default timing
        except Unavailable as exc:
            print(f"worker_runtime: skipped: {exc}")
            return 0
        fleet.start()
        try:
            for name in WORKERS:
                start_worker(fleet, name)
            wait_idle(fleet, list(WORKERS), 60)
            idlers = [memory_mb(fleet.pane_pid(name)) for name in WORKERS]  # each window's sleep
            runtime = memory_mb(fleet.runtime.pid)
            server = memory_mb(tmux_server_pid(fleet))
            per_vm = per_vm_processes(fleet, root)
            idle = idle_then_tasks(fleet, list(WORKERS), rounds=args.rounds, idle_s=args.idle_s, gap_s=0.3)
            cli_kill = kill_flow(fleet, runtime=False)
            window_kill = kill_flow(fleet, runtime=True)
        finally:
            fleet.close()
    n = len(WORKERS)
    tasks = len(idle.tasks)
    done = sum(t["state"] == "COMPLETE" for t in idle.tasks)
    twice = sum(1 for t in idle.tasks if sum(e["kind"] == "claimed" for e in t["events"]) > 1)
    per_hour = idle.model_requests_while_idle / (n * idle.idle_s / 3600)
    p50, p95 = percentile(idle.claim_latencies_s, 0.5), percentile(idle.claim_latencies_s, 0.95)
    idle_pss = sum(p for _, p in idlers) / n
    by = dict(Counter(t["claimed_by"] for t in idle.tasks))
    verdict = "goal p95 < 1 s: " + ("ok" if p95 < 1 else "MISSED")
    print(f"Worker runtime ({n} workers, claude 2.1.332, scripted model, default heartbeat 5 s)")
    print(f"  tasks created / COMPLETE / claimed twice: {tasks} / {done} / {twice}; by {by}")
    print(f"  task created while idle -> claimed: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms ({verdict})")
    print(
        f"  model requests while idle: {idle.model_requests_while_idle} in {n} x {idle.idle_s:g} s"
        f" = {per_hour:.0f} per idle agent-hour (goal 0)"
    )
    print(
        f"  kill -9 of a CLI -> task AVAILABLE: {cli_kill.back_s:.1f} s (goal <= 10 s), done by {cli_kill.completed_by}"
    )
    print(
        f"  kill -9 of the runtime -> task AVAILABLE: {window_kill.back_s:.1f} s (goal <= 30 s),"
        f" done by {window_kill.completed_by}"
    )
    print(
        f"  runtime (agent-runtime, one for the {n} workers): RSS {runtime[0]:.1f} MB, PSS {runtime[1]:.1f} MB,"
        f" {runtime[1] / n:.1f} MB PSS per agent"
    )
    print(f"  a worker's window between tasks (sleep): PSS {idle_pss:.2f} MB")
    print(f"  tmux server: RSS {server[0]:.1f} MB, PSS {server[1]:.1f} MB, {server[1] / n:.1f} MB PSS per agent")
    total = runtime[1] / n + idle_pss + server[1] / n
    print(
        f"  management memory per agent beyond its CLI (shares of runtime and tmux, its sleep): {total:.1f} MB"
        " (goal < 5 MB)"
    )
    for name, (rss, pss) in per_vm.items():
        print(f"  {name} (one per VM): RSS {rss:.1f} MB, PSS {pss:.1f} MB")
    shared = runtime[1] + server[1] + sum(pss for _, pss in per_vm.values())
    print(
        f"  with the relay and the Control window too: {shared / n + idle_pss:.1f} MB per agent here,"
        f" {shared / 8 + idle_pss:.1f} MB on a VM of 8 agents (goal < 5 MB)"
    )
    return 0 if done == tasks and twice == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
