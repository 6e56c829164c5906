# SPDX-License-Identifier: Apache-2.0
"""Figures of the dashboard's live terminals, measured in headless Chromium.

A private tmux server (``tmux -L``) holds 8 agent windows; the pane relay and
the coordinator (with its dashboard) run as subprocesses; Debian's chromium,
driven by Selenium through Debian's chromedriver, is signed in. Printed:

* pane output -> shown in the browser, p50/p95 ms, one pane: the pane prints
  ``MARK <wall-clock µs>`` lines; the page notes when each one is in the
  terminal's buffer and a frame has been painted (parse + next animation
  frame), with the browser's own wall clock (same machine);
* CPU of the coordinator (and of the relay) with 8 terminals open while every
  agent pane prints 100 lines a second, as % of one core;
* page load -> first complete render: navigation start to the state rendered
  (agents, board, health), and to every terminal showing its snapshot.

Run with the coordinator's venv (package, MCP SDK, Selenium):
``coordinator/.venv/bin/python benchmarks/dashboard_terminal.py``. Needs tmux,
chromium and chromium-driver. Bounded: about 40 s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - a plain message instead of a traceback
    sys.exit("dashboard_terminal: selenium is missing; run with coordinator/.venv/bin/python")

AGENTS = [chr(ord("A") + i) for i in range(8)]
SESSION = "central-mcp-agents"
MARKS = 150
MARK_GAP_S = 0.04
LOAD_S = 10.0
PAGE_LOADS = 5
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

# Injected into the page: note when each MARK line is in agent A's buffer and painted.
WATCH_MARKS = """
const view = window.cmcpDashboard.terminals.get('A');
window.__marks = {};
view.term.onWriteParsed(() => requestAnimationFrame(() => {
  const shown = performance.timeOrigin + performance.now();
  const buf = view.term.buffer.active;
  for (let i = Math.max(0, buf.length - 40); i < buf.length; i++) {
    const text = buf.getLine(i).translateToString(true);
    const m = /MARK (\\d+)/.exec(text);
    if (m && !(m[1] in window.__marks)) window.__marks[m[1]] = shown;
  }
}));
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.tmp, self.name = tmp, f"cmcp-bench-{secrets.token_hex(4)}"
        self.sock, self.token = tmp / "relay.sock", secrets.token_urlsafe(24)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def tmux(self, *args: str) -> None:
        subprocess.run(["tmux", "-L", self.name, *args], check=True, capture_output=True)

    def start(self) -> None:
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", SESSION, "-n", "Control", "-x", "100", "-y", "24", "sh")
        for name in AGENTS:
            self.tmux("new-window", "-d", "-t", SESSION, "-n", name, "sh")
        specs = [
            {"name": n, "role": "backend", "model": "m", "kind": "claude", "host": "vm1",
             "token_sha256": hashlib.sha256(secrets.token_bytes(16)).hexdigest()}
            for n in AGENTS
        ]  # fmt: skip
        (self.tmp / "agents.json").write_text(json.dumps({"agents": specs}))
        log = open(self.tmp / "log", "ab")  # noqa: SIM115 (open for the processes' lifetime)
        py = [sys.executable, "-m", "central_mcp"]
        self.procs["relay"] = subprocess.Popen(
            [*py, "relay", "--socket", str(self.sock), "--session", SESSION, "--tmux-socket-name", self.name],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        env = {
            **os.environ,
            "CENTRAL_MCP_DB": str(self.tmp / "db" / "central-mcp.db"),
            "CENTRAL_MCP_PORT": str(free_port()),
            "CENTRAL_MCP_AGENTS_FILE": str(self.tmp / "agents.json"),
            "CENTRAL_MCP_DASHBOARD_PORT": str(self.port),
            "CENTRAL_MCP_DASHBOARD_TOKEN": self.token,
            "CENTRAL_MCP_RELAY_SOCKET": str(self.sock),
            "CENTRAL_MCP_LOG_LEVEL": "warning",
        }
        self.procs["coordinator"] = subprocess.Popen([*py, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                if self.sock.exists():
                    return
            time.sleep(0.05)
        raise SystemExit(f"the rig did not start:\n{(self.tmp / 'log').read_text()}")

    def run_in(self, agent: str, code: str) -> None:
        """Replace the pane's program (respawn-pane keeps the pane, so the page's terminal stays)."""
        self.tmux("respawn-pane", "-k", "-t", f"{SESSION}:{agent}", sys.executable, "-c", code)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True)


def browser(profile: Path) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1600,2200", f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def page_loads(driver: Any, rig: Rig) -> tuple[list[float], list[float]]:
    state, terms = [], []
    for _ in range(PAGE_LOADS):
        driver.get(rig.url + "/")
        WebDriverWait(driver, 15, poll_frequency=0.05).until(
            lambda d: d.execute_script("return window.cmcpDashboard && window.cmcpDashboard.terminalsReady !== null")
        )
        first, ready = driver.execute_script(
            "return [window.cmcpDashboard.firstRender, window.cmcpDashboard.terminalsReady];"
        )
        state.append(first)
        terms.append(ready)
    return state, terms


def main() -> int:
    for tool in ("tmux", CHROMIUM, CHROMEDRIVER):
        if shutil.which(tool) is None:
            sys.exit(f"dashboard_terminal: {tool} is missing (apt-get install -y tmux chromium chromium-driver)")
    with tempfile.TemporaryDirectory(prefix="cmcp-bench-") as tmpdir:
        tmp = Path(tmpdir)
        rig = Rig(tmp)
        rig.start()
        driver = browser(tmp / "profile")
        try:
            driver.get(rig.url + "/login")
            driver.find_element(By.ID, "token").send_keys(rig.token)
            driver.find_element(By.ID, "sign-in").click()
            state_ms, terminals_ms = page_loads(driver, rig)

            # 1. one pane: output -> painted in the browser
            driver.execute_script(WATCH_MARKS)
            rig.run_in(
                "A",
                f"import time\nfor i in range({MARKS}):\n"
                f"    print('MARK', time.time_ns() // 1000, flush=True); time.sleep({MARK_GAP_S})\n"
                "time.sleep(3600)",
            )
            time.sleep(MARKS * MARK_GAP_S + 1.5)
            marks = driver.execute_script("return window.__marks;")
            latencies = [shown - int(sent) / 1000 for sent, shown in marks.items()]

            # 2. eight panes at 100 lines/s each, eight terminals open
            flood = (
                "import time\nt = time.monotonic(); i = 0\nwhile True:\n"
                "    i += 1; print(f'step {i:08d} ' + 'x' * 60, flush=True)\n"
                "    t += 0.01; time.sleep(max(0, t - time.monotonic()))"
            )
            for agent in AGENTS:
                rig.run_in(agent, flood)
            time.sleep(1.0)
            pids = {name: proc.pid for name, proc in rig.procs.items()}
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            received_before = driver.execute_script(
                "return [...window.cmcpDashboard.terminals.values()].reduce((n, v) => n + v.received, 0);"
            )
            started = time.monotonic()
            time.sleep(LOAD_S)
            elapsed = time.monotonic() - started
            after = {name: cpu_seconds(pid) for name, pid in pids.items()}
            received = driver.execute_script(
                "return [...window.cmcpDashboard.terminals.values()].reduce((n, v) => n + v.received, 0);"
            )
            cpu = {name: 100 * (after[name] - before[name]) / elapsed for name in pids}
        finally:
            driver.quit()
            rig.stop()

    print(f"dashboard terminals ({os.cpu_count()} CPUs, chromium headless, {len(AGENTS)} agent panes)")
    print(
        f"  pane output -> shown in the browser, one pane ({len(latencies)} of {MARKS} lines): "
        f"p50 {statistics.median(latencies):.1f} ms, p95 {pct(latencies, 0.95):.1f} ms, "
        f"min {min(latencies):.1f} ms, max {max(latencies):.1f} ms"
    )
    print(
        f"  8 terminals open, 8 panes x 100 lines/s for {elapsed:.0f} s: coordinator CPU {cpu['coordinator']:.1f} % "
        f"of one core, relay {cpu['relay']:.1f} %; the page received {(received - received_before) / elapsed:.0f} "
        "terminal messages/s"
    )
    print(
        f"  page load -> first complete render ({PAGE_LOADS} loads): state p50 {statistics.median(state_ms):.0f} ms "
        f"(max {max(state_ms):.0f}), every terminal's snapshot shown p50 {statistics.median(terminals_ms):.0f} ms "
        f"(max {max(terminals_ms):.0f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
