# SPDX-License-Identifier: Apache-2.0
"""Tasks through the real agent CLI: 4 Claude Code agents, 8 tasks, one agent killed mid-task.

The flow of ``tests/e2e`` with figures instead of assertions: the real
``claude`` binary (2.1.332, configured as the launcher configures it,
interactive in tmux with a first prompt), a real coordinator, and the
scripted model from ``tests/model_api`` (0.1 s of "thinking" per step, so
the time measured is the fleet's: CLI, MCP, coordinator). Printed:

* tasks created / completed / claimed twice (goal 8 / 8 / 0);
* time from task creation (REST) to COMPLETE through the CLI: p50, p95;
* CLI start-up (launch to the first get_available_tasks), memory per CLI;
* task hand-back after an agent's CLI dies with SIGKILL (OFFLINE_S = 5 s):
  kill -> AVAILABLE again, kill -> COMPLETE by another agent.

Run with the coordinator's venv: ``coordinator/.venv/bin/python
benchmarks/real_cli_tasks.py``. Bounded: about 25 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.e2e.fleet import AGENTS, TIMING, Fleet, Unavailable, claude_binary  # noqa: E402
from tests.e2e.scenarios import handback_flow, percentile, work_flow  # noqa: E402


def memory_mb(pid: int) -> tuple[float, float]:
    """RSS and PSS of one process: the CLI's 400 MB binary is mapped by every agent, PSS shares it out."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0]) / 1024
    return fields["Rss"], fields["Pss"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="real-cli-") as tmp:
        root = Path(tmp)
        try:
            claude = claude_binary(root)
            fleet = Fleet(root / "fleet", claude, AGENTS, **TIMING)
        except Unavailable as exc:
            print(f"real_cli_tasks: skipped: {exc}")
            return 0
        fleet.start()
        try:
            began = time.monotonic()
            work = work_flow(fleet, n_tasks=args.tasks)
            memory = [memory_mb(fleet.pane_pid(name)) for name in fleet.names]
            handback = handback_flow(fleet, victim="D", rescuer="A", offline_s=TIMING["offline_s"])
            wall = time.monotonic() - began
        finally:
            fleet.close()
    claims = Counter(t["id"] for t in work.tasks for e in t["events"] if e["kind"] == "claimed")
    completed = sum(t["state"] == "COMPLETE" for t in work.tasks)
    twice = sum(n > 1 for n in claims.values())
    ok = completed == args.tasks and twice == 0
    races = sum(
        1 for e in fleet.requests() for r in e.get("tool_results", []) if r["is_error"] and "not AVAILABLE" in r["text"]
    )
    print(f"Tasks through the real Claude Code CLI ({len(AGENTS)} agents, claude 2.1.332, scripted model)")
    print(
        f"  tasks created / completed / claimed twice: {args.tasks} / {completed} / {twice} "
        f"(goal {args.tasks} / {args.tasks} / 0: {'ok' if ok else 'MISSED'}); lost claim races: {races}"
    )
    print(f"  done by: {dict(sorted(Counter(t['claimed_by'] for t in work.tasks).items()))}")
    print(
        f"  creation -> COMPLETE: p50 {percentile(work.latencies_s, 0.5):.2f} s, "
        f"p95 {percentile(work.latencies_s, 0.95):.2f} s; all {args.tasks} COMPLETE after {work.total_s:.2f} s"
    )
    rss, pss = [m[0] for m in memory], [m[1] for m in memory]
    print(f"  {len(AGENTS)} interactive CLIs started to their first task poll: {work.start_s:.1f} s")
    print(
        f"  memory per CLI: RSS {min(rss):.0f}-{max(rss):.0f} MB, PSS {min(pss):.0f}-{max(pss):.0f} MB "
        f"(all {len(AGENTS)}: PSS {sum(pss):.0f} MB)"
    )
    print(
        f"  hand-back (OFFLINE_S {TIMING['offline_s']:g} s): kill -> AVAILABLE {handback.handback_s:.2f} s, "
        f"kill -> COMPLETE by {handback.task['claimed_by']} {handback.recovery_s:.2f} s"
    )
    print(f"  wall time {wall:.1f} s; scripted-model errors: {len(fleet.model.errors)}")
    return 0 if ok and not fleet.model.errors else 1


if __name__ == "__main__":
    sys.exit(main())
