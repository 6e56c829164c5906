# SPDX-License-Identifier: Apache-2.0
"""Run the site's playbooks from tests through ansible-runner (the API AWX uses).

Tests read what happened from runner events (stats, which tasks changed or
failed and with what message), never from ansible-playbook's text output.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import ansible_runner

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class PlaybookRun:
    status: str
    rc: int
    stats: dict
    changed: list[tuple[str, str]]  # (host, task name)
    failed: list[tuple[str, str, str]]  # (host, task name, message)
    results: list[tuple[str, str, dict]]  # (host, task name, module result) of every task that ran
    skipped: list[tuple[str, str]]  # (host, task name)
    durations: list[tuple[str, str, float]]  # (host, task name, seconds) of every task that ran
    stdout: str

    def changed_count(self, host: str) -> int:
        return self.stats.get("changed", {}).get(host, 0)

    def recap(self, host: str) -> dict[str, int]:
        """The play recap of one host: ok, changed, failures, skipped, ... as counts."""
        return {key: counts.get(host, 0) for key, counts in self.stats.items() if isinstance(counts, dict)}


def run_playbook(
    inventory: str | os.PathLike,
    playbook: str = "playbooks/site.yml",
    extravars: dict | None = None,
    check: bool = False,
    diff: bool = False,
    tags: str | None = None,
) -> PlaybookRun:
    """Run a playbook of this repository against an inventory; return its outcome."""
    data_dir = tempfile.mkdtemp(prefix="central-mcp-runner-")
    cmdline = " ".join(flag for flag, on in (("--check", check), ("--diff", diff)) if on)
    try:
        result = ansible_runner.run(
            private_data_dir=data_dir,
            project_dir=str(REPO),
            playbook=str(REPO / playbook),
            inventory=str(Path(inventory).resolve()),
            extravars=extravars or {},
            cmdline=cmdline or None,
            tags=tags,
            envvars={
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                "ANSIBLE_COLLECTIONS_PATH": f"{REPO / 'collections'}:{Path.home() / '.ansible/collections'}",
                "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            },
            quiet=True,
        )
        changed, failed, results, skipped, durations = [], [], [], [], []
        for event in result.events:
            data = event.get("event_data", {})
            if event["event"] in ("runner_on_ok", "runner_on_failed") and "duration" in data:
                durations.append((data.get("host"), data.get("task"), float(data["duration"])))
            if event["event"] == "runner_on_skipped":
                skipped.append((data.get("host"), data.get("task")))
            if event["event"] == "runner_on_ok":
                results.append((data.get("host"), data.get("task"), data.get("res", {})))
            if event["event"] == "runner_on_ok" and data.get("res", {}).get("changed"):
                changed.append((data.get("host"), data.get("task")))
            elif event["event"] in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
                res = data.get("res", {})
                # A loop's message is "One or more items failed": the items say what.
                items = [str(item.get("msg", "")) for item in res.get("results", []) if item.get("failed")]
                failed.append((data.get("host"), data.get("task"), " | ".join([str(res.get("msg", "")), *items])))
        stdout = result.stdout.read()
        return PlaybookRun(
            result.status, result.rc, result.stats or {}, changed, failed, results, skipped, durations, stdout
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
