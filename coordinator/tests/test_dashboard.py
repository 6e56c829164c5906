# SPDX-License-Identifier: Apache-2.0
"""The dashboard over HTTP and websockets: login, refusals, headers, its JSON, a live terminal.

A real coordinator subprocess serves the dashboard on its own free port, and
a real relay subprocess serves the panes of a private tmux server (``-L``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from conftest import MB, Fleet, Server, free_port, rss_bytes, zeros
from starlette.testclient import TestClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from central_mcp.dashboard import procstat
from central_mcp.dashboard.auth import Sessions
from central_mcp.dashboard.terminals import Metrics, RelaySource, RelayUnavailable
from central_mcp.dashboard.web import build_app
from central_mcp.service import Service
from central_mcp.settings import ConfigError, Settings
from central_mcp.store import Store

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
TOKEN = secrets.token_urlsafe(24)
SESSION = "dash-test"


class Rig:
    """tmux (one window per agent) + relay + coordinator with its dashboard."""

    def __init__(self, tmp: Path, fleet: Fleet, allow_input: bool = False) -> None:
        self.tmux_name = f"cmcp-dash-{secrets.token_hex(4)}"
        self.socket = tmp / "relay.sock"
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", SESSION, "-n", "Control", "-x", "90", "-y", "20", "sh")
        for name in fleet.specs:
            self.tmux("new-window", "-d", "-t", SESSION, "-n", name, "sh")
        self.relay = subprocess.Popen(
            [sys.executable, "-m", "central_mcp", "relay", "--socket", str(self.socket), "--session", SESSION,
             "--tmux-socket-name", self.tmux_name, *(["--allow-input"] if allow_input else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            if self.socket.exists():
                break
            time.sleep(0.05)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = Server(
            tmp,
            fleet,
            CENTRAL_MCP_DASHBOARD_PORT=str(self.port),
            CENTRAL_MCP_DASHBOARD_TOKEN=TOKEN,
            CENTRAL_MCP_RELAY_SOCKET=str(self.socket),
            CENTRAL_MCP_MACHINE_TYPE="e2-standard-4",
            CENTRAL_MCP_MONTHLY_COST="97.09",
            CENTRAL_MCP_DASHBOARD_INPUT="true" if allow_input else "false",
        ).start()
        self._wait_dashboard()

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.tmux_name, *args], check=True, capture_output=True, text=True).stdout

    def _wait_dashboard(self) -> None:
        for _ in range(100):
            try:
                httpx2.get(self.url + "/login", timeout=1)
                return
            except httpx2.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"dashboard did not start:\n{self.server.log.read_text()}")

    def http(self, method: str, path: str, cookie: str | None = None, origin: bool = True, **kw: object):
        headers = {"Origin": self.url} if origin else {}
        if cookie:
            headers["Cookie"] = f"cmcp_session={cookie}"
        return httpx2.request(method, self.url + path, headers=headers, timeout=10, follow_redirects=False, **kw)

    def login(self, token: str = TOKEN) -> str:
        response = httpx2.post(
            self.url + "/login",
            content=f"token={token}",
            headers={"Origin": self.url, "Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        return response.cookies["cmcp_session"]

    def close(self) -> None:
        self.server.stop()
        self.relay.terminate()
        self.relay.wait(5)
        subprocess.run(["tmux", "-L", self.tmux_name, "kill-server"], capture_output=True)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("dash")
    fleet = Fleet(tmp / "agents.json")
    for name in ("A", "B", "C", "D"):
        fleet.add(name, "backend")
    fleet.write()
    rig = Rig(tmp, fleet)
    try:
        yield rig
    finally:
        rig.close()


def test_without_login_everything_refuses(rig: Rig) -> None:
    page = rig.http("GET", "/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    for method, path in (("GET", "/api/state"), ("GET", "/api/events"), ("POST", "/api/tasks")):
        response = rig.http(method, path)
        assert response.status_code == 401, (path, response.status_code)
        assert response.json()["error"] == "unauthorized"
    forged = rig.http("GET", "/api/state", cookie="not-a-session")
    assert forged.status_code == 401


@pytest.mark.anyio
async def test_websocket_refused_without_login(rig: Rig) -> None:
    ws_url = rig.url.replace("http", "ws") + "/ws/terminal/A"
    for headers in ({}, {"Cookie": "cmcp_session=forged"}):
        with pytest.raises(InvalidStatus):
            async with connect(ws_url, origin=rig.url, additional_headers=headers, open_timeout=5):
                pass
    cookie = rig.login()
    with pytest.raises(InvalidStatus):  # a signed-in cookie from another origin
        headers = {"Cookie": f"cmcp_session={cookie}"}
        async with connect(ws_url, origin="http://evil.example", additional_headers=headers):
            pass


def test_login_page_and_headers(rig: Rig) -> None:
    page = rig.http("GET", "/login")
    assert page.status_code == 200 and 'name="token"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    wrong = httpx2.post(rig.url + "/login", content="token=wrong", headers={"Origin": rig.url})
    assert wrong.status_code == 401 and "not valid" in wrong.text and "set-cookie" not in wrong.headers
    cross = httpx2.post(rig.url + "/login", content=f"token={TOKEN}", headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "set-cookie" not in cross.headers


def test_cookie_flags_and_session(rig: Rig) -> None:
    response = httpx2.post(
        rig.url + "/login", content=f"token={TOKEN}", headers={"Origin": rig.url}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie
    sid = response.cookies["cmcp_session"]
    page = rig.http("GET", "/", cookie=sid)
    assert page.status_code == 200 and "dashboard.js" in page.text and "<script>" not in page.text
    assert page.headers["cache-control"] == "no-store"
    state = rig.http("GET", "/api/state", cookie=sid)
    assert state.status_code == 200 and state.headers["cache-control"] == "no-store"
    doc = state.json()
    assert [a["name"] for a in doc["agents"]] == ["A", "B", "C", "D"]
    assert doc["fleet"]["machine_type"] == "e2-standard-4" and doc["fleet"]["monthly_cost"] == 97.09
    assert doc["fleet"]["cost_per_agent"] == round(97.09 / 4, 2)
    disk = doc["fleet"]["disk"]
    assert disk["warn_percent"] == 85 and disk["total_bytes"] > 0 and disk["used_percent"] is not None
    assert (disk["warning"] is None) is (disk["used_percent"] < 85)
    assert doc["fleet"]["database"]["total_bytes"] > 0 and doc["fleet"]["database"]["retention_days"] == 30
    assert doc["input"] is False
    out = rig.http("POST", "/logout", cookie=sid)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    assert rig.http("GET", "/api/state", cookie=sid).status_code == 401


def test_process_figures_come_from_proc(rig: Rig) -> None:
    sid = rig.login()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        agents = rig.http("GET", "/api/state", cookie=sid).json()["agents"]
        if agents and all(a["cpu_percent"] is not None for a in agents):
            break
        time.sleep(0.5)
    assert [a["name"] for a in agents] == ["A", "B", "C", "D"], agents
    for agent in agents:
        assert agent["terminal"] is True and agent["rss_bytes"] > 0, agent
        assert agent["cpu_percent"] is not None and agent["cpu_percent"] >= 0, agent


def test_create_task_same_origin_only(rig: Rig) -> None:
    sid = rig.login()
    body = {"title": "from the page", "role": "backend", "priority": 2}
    cross = httpx2.post(
        rig.url + "/api/tasks", json=body, headers={"Cookie": f"cmcp_session={sid}", "Origin": "http://evil.example"}
    )
    assert cross.status_code == 403
    created = rig.http("POST", "/api/tasks", cookie=sid, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "AVAILABLE" and created.json()["created_by"] == "dashboard"
    bad = rig.http("POST", "/api/tasks", cookie=sid, json={"title": ""})
    assert bad.status_code == 400


@pytest.mark.anyio
async def test_terminal_streams_a_pane(rig: Rig) -> None:
    sid = rig.login()
    ws_url = rig.url.replace("http", "ws") + "/ws/terminal/B"
    async with connect(ws_url, origin=rig.url, additional_headers={"Cookie": f"cmcp_session={sid}"}) as ws:
        hello = json.loads(await ws.recv())
        assert hello == {"type": "hello", "agent": "B", "input": False}
        snapshot = json.loads(await ws.recv())
        assert snapshot["type"] == "snapshot" and snapshot["width"] == 90
        rig.tmux("send-keys", "-t", f"{SESSION}:B", "echo streamed-$((20+3))", "Enter")
        seen = ""
        deadline = time.monotonic() + 5
        while "streamed-23" not in seen and time.monotonic() < deadline:
            seen += json.loads(await ws.recv()).get("data", "")
        assert "streamed-23" in seen
        await ws.send(json.dumps({"type": "input", "data": "echo typed\r"}))  # ignored: input is off
    assert "echo typed" not in rig.tmux("capture-pane", "-p", "-t", f"{SESSION}:B")
    with pytest.raises(InvalidStatus):  # not an agent of the fleet
        async with connect(rig.url.replace("http", "ws") + "/ws/terminal/Control", origin=rig.url,
                           additional_headers={"Cookie": f"cmcp_session={sid}"}):  # fmt: skip
            pass


def test_a_huge_login_body_is_refused_unread(rig: Rig) -> None:
    """`curl --data-binary @/dev/zero` at the login form: 413 at once, and the coordinator does not grow."""
    assert rig.server.proc is not None
    before = rss_bytes(rig.server.proc.pid)
    response = httpx2.post(rig.url + "/login", content=zeros(50 * MB), headers={"Origin": rig.url}, timeout=30)
    assert response.status_code == 413 and "larger than 4096 bytes, the limit of POST /login" in response.text
    assert rss_bytes(rig.server.proc.pid) - before < 20 * MB
    assert rig.login()  # and it still lets people in


@pytest.mark.anyio
async def test_a_sessions_streams_are_bounded_and_end_at_logout(rig: Rig) -> None:
    sid = rig.login()
    cookie = {"Cookie": f"cmcp_session={sid}"}
    ws_url = rig.url.replace("http", "ws") + "/ws/terminal/"

    async def drain(ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    async with httpx2.AsyncClient(headers=cookie, timeout=httpx2.Timeout(10, read=30)) as http:
        streams = [await http.send(http.build_request("GET", rig.url + "/api/events"), stream=True) for _ in range(8)]
        assert [s.status_code for s in streams] == [200] * 8
        ninth = await http.get(rig.url + "/api/events")
        assert ninth.status_code == 429 and "8 requests to GET /api/events" in ninth.json()["message"]
        terminals = [await connect(ws_url + "A", origin=rig.url, additional_headers=cookie) for _ in range(4)]
        with pytest.raises(InvalidStatus) as fifth:
            await connect(ws_url + "A", origin=rig.url, additional_headers=cookie)
        assert fifth.value.response.status_code == 429
        terminals.append(await connect(ws_url + "B", origin=rig.url, additional_headers=cookie))  # per agent

        assert (await http.post(rig.url + "/logout", headers={"Origin": rig.url})).status_code == 303
        with anyio.fail_after(10):  # every stream and terminal of the session ends
            for response in streams:
                async for _ in response.aiter_lines():
                    pass
            for ws in terminals:
                await drain(ws)
        assert all(ws.close_code == 1000 for ws in terminals)
        assert (await http.get(rig.url + "/api/events")).status_code == 401


def test_the_session_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    settings = Settings.from_env({"CENTRAL_MCP_DB": str(tmp_path / "c.db"), "CENTRAL_MCP_DASHBOARD_TOKEN": TOKEN})
    svc = Service(settings)
    svc.open()
    source = RelaySource(tmp_path / "relay.sock")
    app = build_app(svc, Metrics(source), source)
    try:
        for base, secure in (("https://127.0.0.1", True), ("http://127.0.0.1", False)):
            client = TestClient(app, base_url=base, follow_redirects=False)
            login = client.post("/login", content=f"token={TOKEN}", headers={"Origin": base})
            logout = client.post("/logout", headers={"Origin": base})
            assert login.status_code == logout.status_code == 303
            assert ("; Secure" in login.headers["set-cookie"]) is secure, login.headers["set-cookie"]
            assert ("; Secure" in logout.headers["set-cookie"]) is secure
    finally:
        svc.close()


def test_settings_for_the_dashboard(tmp_path: Path) -> None:
    base = {"CENTRAL_MCP_DB": str(tmp_path / "db.sqlite")}
    settings = Settings.from_env(base)
    assert (settings.dashboard_host, settings.dashboard_port, settings.dashboard_input) == ("127.0.0.1", 8000, False)
    assert Settings.from_env({**base, "CENTRAL_MCP_API_TOKEN": "t"}).dashboard_login_token == "t"
    exposed = Settings.from_env({**base, "CENTRAL_MCP_DASHBOARD_HOST": "0.0.0.0"})
    with pytest.raises(ConfigError, match="CENTRAL_MCP_DASHBOARD_TOKEN"):
        exposed.check_exposure()
    with pytest.raises(ConfigError, match="its own port"):
        Settings.from_env({**base, "CENTRAL_MCP_DASHBOARD_PORT": "3000"})
    with pytest.raises(ConfigError, match="MONTHLY_COST"):
        Settings.from_env({**base, "CENTRAL_MCP_MONTHLY_COST": "cheap"})


@pytest.mark.anyio
async def test_typing_when_both_the_dashboard_and_the_relay_allow_it(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "agents.json")
    fleet.add("A")
    fleet.write()
    rig = Rig(tmp_path, fleet, allow_input=True)
    try:
        sid = rig.login()
        ws_url = rig.url.replace("http", "ws") + "/ws/terminal/A"
        async with connect(ws_url, origin=rig.url, additional_headers={"Cookie": f"cmcp_session={sid}"}) as ws:
            assert json.loads(await ws.recv())["input"] is True
            assert json.loads(await ws.recv())["type"] == "snapshot"
            await ws.send(json.dumps({"type": "input", "data": "echo typed-$((3*3))\r"}))
            seen = ""
            deadline = time.monotonic() + 5
            while "typed-9" not in seen and time.monotonic() < deadline:
                seen += json.loads(await ws.recv()).get("data", "")
        assert "typed-9" in rig.tmux("capture-pane", "-p", "-t", f"{SESSION}:A")
    finally:
        rig.close()


def test_process_tree_figures_or_none(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & wait"])
    try:
        time.sleep(0.1)
        usage = procstat.tree_usage([proc.pid, 2**22 + 12345])
        assert list(usage) == [proc.pid]  # an invisible (here: absent) process is left out, not guessed
        cpu_s, rss = usage[proc.pid]
        assert cpu_s >= 0 and rss > 0
        assert procstat.tree_usage([proc.pid], proc=tmp_path) == {}  # like ProtectProc=invisible
    finally:
        proc.kill()
        proc.wait()
    rate = procstat.CpuRate()
    assert rate.percent("A", 10.0, now=100.0) is None  # a rate needs two readings
    assert rate.percent("A", 10.5, now=101.0) == 50.0
    rate.keep([])
    assert rate.percent("A", 11.0, now=102.0) is None


@pytest.mark.anyio
async def test_relay_unavailable_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(RelayUnavailable, match="is central-mcp-relay running"):
        await RelaySource(tmp_path / "missing.sock").list_panes()


def test_sessions_outlive_a_restart_and_the_database_holds_no_session_id(tmp_path: Path) -> None:
    """What the next process knows from the store: the session (pages stay signed in across a restart), but
    nothing that signs anyone in; a logout ends it for every process, and a new login token ends them all."""
    store = Store(tmp_path / "c.db", tmp_path / "backups").open()
    store.migrate()
    first = Sessions("login-token", store=store)
    kept, gone = first.login("login-token"), first.login("login-token")
    assert kept and gone and first.login("wrong") is None
    first.logout(gone)

    after_restart = Sessions("login-token", store=store)
    assert after_restart.valid(kept) and not after_restart.valid(gone) and not after_restart.valid("forged")
    rows = [tuple(row) for row in store.query("SELECT key, expires_at FROM dashboard_sessions")]
    assert len(rows) == 1 and kept not in rows[0][0]
    assert not Sessions("a-new-login-token", store=store).valid(kept)

    expired = Sessions("login-token", ttl_s=-1, store=store)
    assert not expired.valid(expired.login("login-token"))
    store.close()
