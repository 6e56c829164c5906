# SPDX-License-Identifier: Apache-2.0
"""The dashboard in a real browser (headless Debian Chromium driven by Selenium).

A user logs in and sees 4 active agents; a task created on the page moves
from open to done while an agent, through the official MCP client, claims
and completes it; text typed into an agent's tmux pane appears in that
agent's terminal on the page within 1 s. Without a login, the page, the API
and the websocket refuse. A screenshot lands in tests/browser/artifacts/.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any

import httpx2
import pytest
from conftest import AGENTS, ARTIFACTS, SESSION, Fleet, call, mcp_session

pytest.importorskip("selenium", reason="selenium is missing: run with coordinator/.venv/bin/pytest")
pytest.importorskip("central_mcp", reason="the coordinator is missing: run with coordinator/.venv/bin/pytest")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def login(driver: Any, fleet: Fleet, token: str | None = None) -> None:
    driver.get(fleet.url + "/login")
    driver.find_element(By.ID, "token").send_keys(token or fleet.login_token)
    driver.find_element(By.ID, "sign-in").click()


# The page re-renders its tables on every change: read it in one script call, never through stale elements.


def terminal_text(driver: Any, agent: str) -> str:
    """What xterm.js shows for one agent (its DOM rows; xterm uses no-break spaces)."""
    text = driver.execute_script(
        "const rows = document.querySelector(`figure.terminal[data-agent='${arguments[0]}'] .xterm-rows`);"
        "return rows ? rows.textContent : '';",
        agent,
    )
    return text.replace("\xa0", " ")


def column_of(driver: Any, task_id: int) -> str | None:
    return driver.execute_script(
        "const card = document.querySelector(`article.task[data-task='${arguments[0]}']`);"
        "return card ? card.closest('[data-column]').dataset.column : null;",
        task_id,
    )


def rendered(driver: Any) -> bool:
    return bool(driver.execute_script("return document.body && document.body.dataset.rendered === 'true';"))


def agent_rows(driver: Any) -> list[list[str]]:
    """[name, state, row text] of each agent row."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#agents tbody tr.agent')]"
        ".map(r => [r.dataset.agent, r.querySelector('.state').textContent, r.textContent]);"
    )


def text_and_class(driver: Any, selector: str) -> list[str]:
    """[text, class] of the first element matching selector, read at one instant."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return [e.textContent, e.className];", selector
    )


def text_of(driver: Any, selector: str) -> str:
    """The text of the first element matching selector, read in one script (the page re-renders on every event:
    an element found in one WebDriver call may be replaced before the next reads it)."""
    return text_and_class(driver, selector)[0]


def task_id_by_title(driver: Any, title: str) -> int | None:
    return driver.execute_script(
        "const card = [...document.querySelectorAll('article.task')].find(c => c.textContent.includes(arguments[0]));"
        "return card ? Number(card.dataset.task) : null;",
        title,
    )


def wait_column(driver: Any, task_id: int, column: str, timeout: float = 5) -> None:
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: column_of(d, task_id) == column, f"task {task_id} never reached column {column}"
    )


async def connect_all(fleet: Fleet) -> None:
    for name in AGENTS:
        async with mcp_session(fleet, name) as session:
            await call(session, "agent_connect")


async def agent_works(fleet: Fleet, agent: str, step: str, task_id: int) -> Any:
    async with mcp_session(fleet, agent) as session:
        if step == "claim":
            return await call(session, "claim_task", taskId=task_id)
        if step == "progress":
            return await call(session, "update_task_progress", taskId=task_id, status="IN_PROGRESS",
                              completionPercent=50, notes="halfway")  # fmt: skip
        return await call(session, "complete_task", taskId=task_id, filesCreated=["README.md"], notes="done")


def test_no_login_means_login_page_and_refusals(fleet: Fleet, browser: Any) -> None:
    browser.get(fleet.url + "/")
    assert browser.current_url.endswith("/login")
    assert browser.find_element(By.ID, "token").get_attribute("type") == "password"
    status = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch('/api/state', {cache: 'no-store'}).then(r => done(r.status)).catch(e => done(String(e)));"
    )
    assert status == 401
    socket_result = browser.execute_async_script(
        "const done = arguments[0]; let opened = false;"
        "const ws = new WebSocket(`ws://${location.host}/ws/terminal/A`);"
        "ws.onopen = () => { opened = true; };"
        "ws.onclose = (e) => done({opened, code: e.code});"
        "setTimeout(() => done('timeout'), 5000);"
    )
    assert socket_result != "timeout" and socket_result["opened"] is False
    login(browser, fleet, token="not-the-token")
    # The click starts a navigation: wait for the answer page, not the one it replaces.
    WebDriverWait(browser, 10).until(
        lambda driver: "not valid" in " ".join(e.text for e in driver.find_elements(By.CLASS_NAME, "error"))
    )
    assert not browser.get_cookies()


def test_dashboard_end_to_end(fleet: Fleet, browser: Any) -> None:
    asyncio.run(connect_all(fleet))
    started = time.monotonic()
    login(browser, fleet)
    WebDriverWait(browser, 10).until(rendered, "the dashboard never rendered")
    first_render_ms = browser.execute_script(
        "return window.cmcpDashboard.firstRender - performance.getEntriesByType('navigation')[0].startTime;"
    )
    print(f"\nlogin to first complete render: {(time.monotonic() - started) * 1000:.0f} ms "
          f"(page navigation to render {first_render_ms:.0f} ms)")  # fmt: skip

    # 4 agents, all active, with their roles; live process figures from /proc
    rows = agent_rows(browser)
    assert [r[0] for r in rows] == list(AGENTS)
    assert text_of(browser, "#agent-count") == "4 active of 4"
    assert all(r[1] in ("idle", "working") for r in rows), rows
    kinds = browser.execute_script(
        "return [...document.querySelectorAll('#agents tbody tr.agent td.kind')].map(c => c.textContent);"
    )
    assert kinds == ["claude", "claude", "codex", "gemini"], kinds
    assert "e2-standard-4" in text_of(browser, "#fleet-facts")
    # each VM against its own agents and its own price, then the fleet's (D runs on vm2, a Spot VM)
    vms = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#vms tbody tr')]"
        ".map(r => [r.dataset.vm, [...r.cells].map(c => c.textContent)]));"
    )
    assert vms["vm1"][:4] == ["vm1 (coordinator)", "e2-standard-4", "standard", vms["vm1"][3]]
    assert vms["vm1"][3].startswith("3 of ") and vms["vm1"][6] == "$101.43", vms
    assert vms["vm2"][2:7] == ["Spot", "1", "—", "—", "$17.47"] and vms["vm2"][8] == "$17.47", vms
    assert vms["fleet"][3] == "4" and vms["fleet"][6:] == ["$118.90", "$153.14", "$50.42", "$98.86", "$72.45"], vms
    cost = text_of(browser, "#fleet-facts dd[data-fact='Fleet cost']")
    assert cost == "$118.90 / month for 2 VMs ($29.73 per agent)", cost
    assert "prices of 2025-06-01" in text_of(browser, "#price-date")
    # the disk early warning: the Disk fact highlighted, its warning first among the problems
    # (text and class read in one script: the page re-renders on every event, so an element
    # found in one call may be replaced before the next)
    disk_text, disk_class = text_and_class(browser, "#fleet-facts dd[data-fact=Disk]")
    assert "% used" in disk_text and "free of" in disk_text and "warn" in disk_class
    problem_text, problem_class = text_and_class(browser, "#problems li")
    assert "disk-warning" in problem_class
    assert "raise vm_upgrade_disk_size_gb" in problem_text
    assert text_of(browser, "#status") == "degraded"

    # every agent's terminal shows its pane
    for name in AGENTS:
        WebDriverWait(browser, 5, poll_frequency=0.05).until(
            lambda d, n=name: f"agent {n} working" in terminal_text(d, n), f"terminal {name} shows nothing"
        )

    # a task created on the page moves from open to done as agent A works on it
    title = f"Ship the dashboard {secrets.token_hex(3)}"
    browser.find_element(By.ID, "task-title").send_keys(title)
    browser.find_element(By.ID, "task-role").send_keys("ui-velocity")
    browser.find_element(By.ID, "create-task").click()
    task_id = WebDriverWait(browser, 5).until(lambda d: task_id_by_title(d, title), "no task card")
    wait_column(browser, task_id, "AVAILABLE")
    asyncio.run(agent_works(fleet, "A", "claim", task_id))
    wait_column(browser, task_id, "CLAIMED")
    asyncio.run(agent_works(fleet, "A", "progress", task_id))
    wait_column(browser, task_id, "IN_PROGRESS")
    WebDriverWait(browser, 5).until(lambda d: title in agent_rows(d)[0][2], "A's current task not shown")
    asyncio.run(agent_works(fleet, "A", "complete", task_id))
    wait_column(browser, task_id, "COMPLETE")

    # text typed into agent B's pane appears in B's terminal on the page within 1 s
    marker = f"hello-from-tmux-{secrets.token_hex(3)}"
    sent = time.monotonic()
    fleet.tmux("send-keys", "-t", f"{SESSION}:B", "-l", marker)
    WebDriverWait(browser, 1.0, poll_frequency=0.01).until(
        lambda d: marker in terminal_text(d, "B"), "typed text did not reach the page within 1 s"
    )
    print(f"tmux send-keys -> visible in the browser: {(time.monotonic() - sent) * 1000:.0f} ms")
    assert marker not in terminal_text(browser, "A")

    ARTIFACTS.mkdir(exist_ok=True)
    time.sleep(0.3)  # let the last frame paint
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and ".map" not in e["message"]]
    assert not errors, errors


@pytest.mark.parametrize("path", ["/", "/api/state"])
def test_logout_ends_the_session(fleet: Fleet, browser: Any, path: str) -> None:
    login(browser, fleet)
    WebDriverWait(browser, 10).until(rendered, "the dashboard never rendered")
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    WebDriverWait(browser, 5).until(lambda d: d.current_url.endswith("/login"))
    browser.get(fleet.url + path)
    assert browser.current_url.endswith("/login") if path == "/" else "unauthorized" in browser.page_source


def test_a_resized_pane_is_redrawn_at_its_new_size(fleet: Fleet, browser: Any) -> None:
    login(browser, fleet)
    WebDriverWait(browser, 10).until(rendered, "the dashboard never rendered")
    size = "return (v => v ? [v.term.cols, v.term.rows] : null)(window.cmcpDashboard.terminals.get('D'));"
    WebDriverWait(browser, 5).until(lambda d: d.execute_script(size) == [100, 24], "D never showed 100x24")
    fleet.tmux("resize-window", "-t", f"{SESSION}:D", "-x", "70", "-y", "16")
    try:
        WebDriverWait(browser, 5).until(lambda d: d.execute_script(size) == [70, 16], "D was not redrawn at 70x16")
        marker = f"after-resize-{secrets.token_hex(3)}"
        fleet.tmux("send-keys", "-t", f"{SESSION}:D", "-l", marker)
        WebDriverWait(browser, 2).until(lambda d: marker in terminal_text(d, "D"), "no output after the resize")
    finally:
        fleet.tmux("resize-window", "-t", f"{SESSION}:D", "-x", "100", "-y", "24")


def test_a_waiting_agent_stands_out_with_the_question_and_its_last_lines(fleet: Fleet, browser: Any) -> None:
    """What C's runtime reports (a question on its screen) shows under its row, and goes once it is answered."""
    screen = ["Not logged in", "Make auto mode your default permission mode?", "\u276f Yes, set auto mode"]
    question = {"activity": "waiting", "prompt": screen[1], "screen": screen}
    headers = {"Authorization": f"Bearer {fleet.tokens['C']}"}
    answer = httpx2.post(fleet.api_url + "/runtime/heartbeat", json=question, headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()["state"] == "waiting", answer.text
    login(browser, fleet)
    row = "return (r => r ? r.textContent : null)(document.querySelector(\"tr.attention[data-attention='C']\"));"
    text = WebDriverWait(browser, 10).until(lambda d: d.execute_script(row), "no attention row for C")
    assert "C waiting: asks: Make auto mode your default permission mode?" in text and "Not logged in" in text
    assert dict((name, state) for name, state, _ in agent_rows(browser))["C"] == "waiting"
    httpx2.post(fleet.api_url + "/runtime/heartbeat", json={"activity": "idle"}, headers=headers, timeout=10)
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(row) is None, "C's attention row stayed")


def steps_shown(driver: Any, agent: str) -> int:
    """The last step an agent's terminal shows (its loop prints a numbered line every 3 s)."""
    found = re.findall(rf"agent {agent} working, step (\d+)", terminal_text(driver, agent))
    return max(map(int, found), default=0)


def test_the_page_and_its_terminals_come_back_by_themselves_after_restarts(fleet: Fleet, browser: Any) -> None:
    """The coordinator, then the pane relay, restart (each on the sockets it is handed, as on a VM): the page
    is not reloaded, stays signed in, shows new tasks again through its event stream, and every terminal is
    live again with new lines."""
    login(browser, fleet)
    WebDriverWait(browser, 10).until(rendered, "the dashboard never rendered")
    WebDriverWait(browser, 10, poll_frequency=0.05).until(lambda d: all(steps_shown(d, n) for n in AGENTS))
    browser.execute_script("window.cmcpSameDocument = true;")  # gone if the page were reloaded
    back_s = {}
    for name in ("coordinator", "relay"):
        before = {agent: steps_shown(browser, agent) for agent in AGENTS}
        started = time.monotonic()
        fleet.restart(name)
        title = f"After the {name} restart {secrets.token_hex(3)}"
        made = httpx2.post(fleet.api_url + "/api/tasks", json={"title": title}, headers=fleet.api_headers, timeout=30)
        assert made.status_code == 201, made.text
        WebDriverWait(browser, 15, poll_frequency=0.1).until(
            lambda d, t=title: task_id_by_title(d, t) is not None,
            f"the page never showed a task made after the {name} restart",
        )
        WebDriverWait(browser, 15, poll_frequency=0.1).until(
            lambda d, b=before: all(steps_shown(d, a) > b[a] for a in AGENTS),
            f"a terminal shows no new line after the {name} restart",
        )
        back_s[name] = time.monotonic() - started
        assert text_of(browser, "#live") == "● live"
    assert browser.execute_script("return window.cmcpSameDocument === true;"), "the page was reloaded"
    assert browser.current_url.rstrip("/") == fleet.url, browser.current_url  # not sent to the login page
    print("\nlive again without a reload: " + ", ".join(f"{n} restart {s:.1f} s" for n, s in back_s.items()))


def test_a_tasks_branch_shows_on_its_card_and_its_diff_as_text(fleet: Fleet, browser: Any) -> None:
    """What a runtime reports of a task's branch: on the card the branch, commits, diffstat and push; the diff
    in a dialog, as text (a model wrote it: markup in it stays characters)."""
    made = httpx2.post(fleet.api_url + "/api/tasks", json={"title": "Branch me"}, headers=fleet.api_headers)
    task_id = made.json()["id"]
    asyncio.run(agent_works(fleet, "B", "claim", task_id))
    diff = 'diff --git a/page.html b/page.html\n+<img src=x onerror="window.cmcpInjected=1">\n'
    report = {
        "task_id": task_id, "repo": "app", "branch": f"central-mcp/{task_id}-branch-me", "base": "main",
        "base_commit": "a" * 40, "head": "b" * 40, "commit_count": 2,
        "commits": [{"sha": "b" * 40, "subject": "Add the page", "author": "Agent B <b@fleet.invalid>"}],
        "files_changed": 1, "insertions": 1, "deletions": 0, "committed_leftovers": True,
        "pushed": False, "push_error": "remote: permission denied", "diff": diff,
    }  # fmt: skip
    sent = httpx2.post(fleet.api_url + "/runtime/branch", json=report,
                       headers={"Authorization": f"Bearer {fleet.tokens['B']}"})  # fmt: skip
    assert sent.status_code == 200, sent.text
    login(browser, fleet)
    WebDriverWait(browser, 10).until(rendered, "the dashboard never rendered")
    selector = f"article.task[data-task='{task_id}'] .branch"
    WebDriverWait(browser, 10, poll_frequency=0.05).until(
        lambda d: d.execute_script("return !!document.querySelector(arguments[0]);", selector), "no branch line"
    )
    line, _ = text_and_class(browser, selector)
    assert f"central-mcp/{task_id}-branch-me ← main · 2 commits, 1 file +1 −0" in line, line
    assert "uncommitted work committed by the runtime" in line and "not pushed: remote: permission denied" in line
    # Clicked in one script: the board is drawn again on every event, so a button found in one call may be gone
    # by the next.
    browser.execute_script("document.querySelector(arguments[0]).click();", f"{selector} .show-diff")
    WebDriverWait(browser, 10, poll_frequency=0.05).until(
        lambda d: "onerror" in d.find_element(By.ID, "diff-text").text, "the diff never showed"
    )
    assert browser.find_element(By.ID, "diff-text").text == diff.rstrip("\n")
    assert browser.execute_script("return document.querySelectorAll('#diff-text *').length;") == 0
    assert browser.execute_script("return window.cmcpInjected === undefined;")
    assert f"central-mcp/{task_id}-branch-me against main" in browser.find_element(By.ID, "diff-title").text
    browser.find_element(By.ID, "diff-close").click()

    # Pushed at the next attempt: the coordinator opens its pull request, and the card links it.
    pushed = {**report, "pushed": True, "push_error": ""}
    sent = httpx2.post(fleet.api_url + "/runtime/branch", json=pushed,
                       headers={"Authorization": f"Bearer {fleet.tokens['B']}"})  # fmt: skip
    assert sent.status_code == 200, sent.text
    link = WebDriverWait(browser, 10, poll_frequency=0.05).until(
        lambda d: d.execute_script(
            "const a = document.querySelector(arguments[0]);"
            "return a && [a.textContent, a.href, a.target, a.rel, a.closest('.branch').textContent];",
            f"{selector} a",
        ),
        "no pull request link",
    )
    assert link[:4] == ["pull request", "https://github.test/team/app/pull/1", "_blank", "noopener noreferrer"]
    assert " · pushed" in link[4] and "not pushed" not in link[4]
    assert fleet.forge.opened[0]["head"] == f"central-mcp/{task_id}-branch-me"
