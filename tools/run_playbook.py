#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Run a playbook through ansible-runner with a progress view a person can follow.

One line per task and host (play, task N of M, host, result, elapsed); a
failed task's message in full; the complete Ansible output in a log file
whose path is printed at the end. M comes from the previous run of the same
playbook and inventory (kept in .cache/), since Ansible cannot know it in
advance (conditions, loops, roles); the first run shows N only.
    python tools/run_playbook.py site.yml -i inventories/local [-e KEY=VALUE] [-e @FILE] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import ansible_runner
import yaml

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"
MARK = {
    "runner_on_ok": "ok",
    "runner_on_failed": "FAILED",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "UNREACHABLE",
}


class Progress:
    """Turns runner events into progress lines, and the Ansible output into the log."""

    def __init__(self, log, expected: int | None) -> None:
        self.log, self.expected, self.started = log, expected, time.monotonic()
        self.play, self.plays, self.tasks = "", 0, 0
        self.failures: list[str] = []

    def __call__(self, event: dict) -> bool:
        if event.get("stdout"):
            self.log.write(event["stdout"] + "\n")
        data, kind = event.get("event_data", {}), event.get("event")
        if kind == "playbook_on_play_start":
            self.plays += 1
            self.play = data.get("play", "")
            self.say(f"play {self.plays}: {self.play}")
        elif kind == "playbook_on_task_start":
            self.tasks += 1
        elif kind in MARK:
            res = data.get("res", {})
            state = "changed" if kind == "runner_on_ok" and res.get("changed") else MARK[kind]
            of = f" of ~{self.expected}" if self.expected else ""
            self.say(f"  task {self.tasks}{of}  {data.get('host')}  {state:<8} {data.get('task')}")
            if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
                message = " ".join(str(part) for part in (res.get("msg", ""), res.get("stderr", "")[-800:]) if part)
                items = [str(i.get("msg", "")) for i in res.get("results", []) if i.get("failed")]
                self.failures.append(f"{data.get('host')}: {data.get('task')}: {' | '.join([str(message), *items])}")
                print(f"      {self.failures[-1]}", flush=True)
        return True

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("playbook")
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("-e", "--extra-var", action="append", default=[], metavar="KEY=VALUE|@FILE")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--diff", action="store_true")
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    counts_file = CACHE / "task-counts.json"
    counts = json.loads(counts_file.read_text()) if counts_file.exists() else {}
    key = f"{args.playbook}|{Path(args.inventory).resolve()}|{'check' if args.check else 'run'}"
    log_path = CACHE / f"{Path(args.playbook).stem}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    extravars: dict = {}
    for item in args.extra_var:  # as ansible-playbook's -e: KEY=VALUE, or @FILE (YAML)
        if item.startswith("@"):
            extravars.update(yaml.safe_load(Path(item[1:]).read_text()) or {})
        else:
            key, _, value = item.partition("=")
            extravars[key] = value
    cmdline = " ".join(flag for flag, on in (("--check", args.check), ("--diff", args.diff)) if on) or None
    with open(log_path, "w", encoding="utf-8") as log, tempfile.TemporaryDirectory(prefix="run-playbook-") as data:
        progress = Progress(log, counts.get(key))
        result = ansible_runner.run(
            private_data_dir=data,
            project_dir=str(REPO),
            playbook=str((REPO / args.playbook).resolve()),
            inventory=str(Path(args.inventory).resolve()),
            extravars=extravars,
            cmdline=cmdline,
            envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
            event_handler=progress,
            quiet=True,
        )
        stats = result.stats or {}
    if result.rc == 0:  # a failed run stops early: its count would mislead the next one
        counts[key] = progress.tasks
        counts_file.write_text(json.dumps(counts, indent=1))
    hosts = sorted({host for numbers in stats.values() if isinstance(numbers, dict) for host in numbers})
    for host in hosts:
        numbers = {key: value.get(host, 0) for key, value in stats.items() if isinstance(value, dict)}
        print(f"  {host}: ok={numbers.get('ok', 0)} changed={numbers.get('changed', 0)} "
              f"failed={numbers.get('failures', 0)} unreachable={numbers.get('dark', 0)}")  # fmt: skip
    progress.say(f"{args.playbook} {'finished' if result.rc == 0 else 'FAILED'}; the full Ansible output: {log_path}")
    return result.rc


if __name__ == "__main__":
    sys.exit(main())
