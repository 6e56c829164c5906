# SPDX-License-Identifier: Apache-2.0
"""The pane relay against a real tmux server on a private socket (``tmux -L``)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from central_mcp.dashboard.tmux_control import layout_sizes, unescape
from central_mcp.relay import Relay, parse_panes

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
SESSION = "relay-test"


class Tmux:
    """A private tmux server with windows A and B running a plain shell."""

    def __init__(self) -> None:
        self.name = f"cmcp-test-{secrets.token_hex(4)}"

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.name, *args], check=True, capture_output=True, text=True).stdout

    def start(self) -> Tmux:
        self("-f", "/dev/null", "new-session", "-d", "-s", SESSION, "-n", "Control", "-x", "100", "-y", "30", "sh")
        for name in ("A", "B"):
            self("new-window", "-d", "-t", SESSION, "-n", name, "sh")
        return self

    def control_clients(self) -> int:
        return sum("control-mode" in line for line in self("list-clients", "-F", "#{client_flags}").splitlines())


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    server = Tmux().start()
    try:
        yield server
    finally:
        subprocess.run(["tmux", "-L", server.name, "kill-server"], capture_output=True)


class Client:
    """One connection to the relay, reading its JSON lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.seen = ""

    async def send(self, **request: Any) -> None:
        self.writer.write(json.dumps(request).encode() + b"\n")
        await self.writer.drain()

    async def next(self, timeout: float = 5) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        assert line, "relay closed the connection"
        message = json.loads(line)
        if message["type"] in ("output", "snapshot"):
            self.seen += message["data"]
        return message

    async def until(self, text: str, timeout: float = 5) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in self.seen:
            await self.next(max(0.01, deadline - loop.time()))


@pytest.fixture
async def relay(tmp_path: Path, tmux: Tmux) -> AsyncIterator[Relay]:
    yield await _start(tmp_path, tmux, allow_input=False)


async def _start(tmp_path: Path, tmux: Tmux, allow_input: bool) -> Relay:
    relay = Relay(tmp_path / "relay.sock", SESSION, tmux.name, allow_input=allow_input)
    started = asyncio.Event()
    relay.task = asyncio.get_running_loop().create_task(relay.serve(started))  # type: ignore[attr-defined]
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(relay.ready.wait(), 5)
    return relay


async def _stop(relay: Relay) -> None:
    relay.task.cancel()  # type: ignore[attr-defined]
    await asyncio.gather(relay.task, return_exceptions=True)  # type: ignore[attr-defined]


async def connect(relay: Relay) -> Client:
    return Client(*await asyncio.open_unix_connection(str(relay.socket_path)))


def test_unescape_and_layout() -> None:
    assert unescape(rb"a\015\012\134b") == b"a\r\n\\b"
    assert layout_sizes("a1de,60x20,0,0,1") == {"%1": (60, 20)}
    assert layout_sizes("bb62,159x48,0,0{79x48,0,0,79,79x48,80,0[79x24,80,0,80,79x23,80,25,81]}") == {
        "%79": (79, 48),
        "%80": (79, 24),
        "%81": (79, 23),
    }


@pytest.mark.anyio
async def test_list_and_socket_mode(relay: Relay) -> None:
    try:
        assert stat.S_IMODE(relay.socket_path.stat().st_mode) == 0o660
        client = await connect(relay)
        await client.send(op="list")
        reply = await client.next()
        names = [p["name"] for p in reply["panes"]]
        assert names == ["Control", "A", "B"]
        assert all(p["pid"] > 0 and p["width"] == 100 for p in reply["panes"])
        assert all(p["cpu_s"] >= 0 and p["rss_bytes"] > 0 for p in reply["panes"])  # the relay sees its own user
    finally:
        await _stop(relay)


@pytest.mark.anyio
async def test_two_viewers_share_one_control_client(relay: Relay, tmux: Tmux) -> None:
    try:
        tmux("send-keys", "-t", f"{SESSION}:A", "echo before-$((40+2))", "Enter")
        await asyncio.sleep(0.3)
        one, two = await connect(relay), await connect(relay)
        for client in (one, two):
            await client.send(op="watch", target="A")
            snap = await client.next()
            assert snap["type"] == "snapshot" and snap["width"] == 100 and snap["height"] == 30
            assert "before-42" in snap["data"]
            assert len(snap["cursor"]) == 2
        tmux("send-keys", "-t", f"{SESSION}:A", "echo live-$((6*7))", "Enter")
        await asyncio.gather(one.until("live-42"), two.until("live-42"))
        assert tmux.control_clients() == 1
        # output of another pane does not reach viewers of A
        tmux("send-keys", "-t", f"{SESSION}:B", "echo other-$((1+1))", "Enter")
        tmux("send-keys", "-t", f"{SESSION}:A", "echo marker-$((2+2))", "Enter")
        await one.until("marker-4")
        assert "other-2" not in one.seen
    finally:
        await _stop(relay)


@pytest.mark.anyio
async def test_resize_sends_a_new_snapshot(relay: Relay, tmux: Tmux) -> None:
    try:
        client = await connect(relay)
        await client.send(op="watch", target="B")
        assert (await client.next())["width"] == 100
        tmux("resize-window", "-t", f"{SESSION}:B", "-x", "60", "-y", "20")
        for _ in range(50):
            message = await client.next()
            if message["type"] == "snapshot":
                assert (message["width"], message["height"]) == (60, 20)
                break
        else:
            pytest.fail("no snapshot after the resize")
    finally:
        await _stop(relay)


@pytest.mark.anyio
async def test_closed_window_ends_the_stream_and_a_new_one_is_found_by_name(relay: Relay, tmux: Tmux) -> None:
    try:
        client = await connect(relay)
        await client.send(op="watch", target="B")
        first = await client.next()
        tmux("kill-window", "-t", f"{SESSION}:B")
        for _ in range(50):
            message = await client.next()
            if message["type"] == "closed":
                break
        else:
            pytest.fail("no 'closed' after the window went away")
        tmux("new-window", "-d", "-t", SESSION, "-n", "B", "sh")
        again = await connect(relay)
        await again.send(op="watch", target="B")
        second = await again.next()
        assert second["type"] == "snapshot" and second["pane"] != first["pane"]
    finally:
        await _stop(relay)


@pytest.mark.anyio
async def test_input_refused_unless_allowed(tmp_path: Path, tmux: Tmux) -> None:
    relay = await _start(tmp_path, tmux, allow_input=False)
    try:
        client = await connect(relay)
        await client.send(op="input", target="A", data="echo typed")
        reply = await client.next()
        assert reply["type"] == "error" and "--allow-input" in reply["message"]
        assert "echo typed" not in tmux("capture-pane", "-p", "-t", f"{SESSION}:A")
    finally:
        await _stop(relay)
    relay = await _start(tmp_path, tmux, allow_input=True)
    try:
        client = await connect(relay)
        await client.send(op="input", target="A", data="echo typed-in")
        assert (await client.next())["type"] == "ok"
        assert "echo typed-in" in tmux("capture-pane", "-p", "-t", f"{SESSION}:A")
    finally:
        await _stop(relay)


@pytest.mark.anyio
async def test_unknown_pane_and_bad_request(relay: Relay) -> None:
    try:
        client = await connect(relay)
        await client.send(op="watch", target="nope")
        assert (await client.next())["type"] == "closed"
        assert await client.reader.readline() == b""  # and the connection ends: the watcher retries
        client = await connect(relay)
        client.writer.write(b"not json\n")
        assert (await client.next())["type"] == "error"
    finally:
        await _stop(relay)


# Window names that try to shift the listing's fields or add a pane: a fake record in the listing's old order
# (name fourth) and in its current one (name last), after a tab and a newline.
FAKE_OLD = "%99\t@99\t9\tFake\t1\t80\t24\t1"
FAKE_NEW = "%98\t@98\t8\t1\t80\t24\t1\tFake"
HOSTILE_NAMES = [f"x\ty\n{FAKE_OLD}", f"n\tm\n{FAKE_NEW}\n", "tab\tonly", "\n"]


@pytest.mark.anyio
async def test_a_tab_or_newline_in_a_window_name_cannot_shift_fields_or_add_a_pane(relay: Relay, tmux: Tmux) -> None:
    try:
        for name in HOSTILE_NAMES:  # new-window -n keeps tabs and newlines as they are
            tmux("new-window", "-d", "-t", SESSION, "-n", name, "sh")
        # rename-window stores them escaped (tmux 3.3a: a backslash and t/n): a plain name, whatever it holds
        tmux("rename-window", "-t", f"{SESSION}:B", f"b\tc\n{FAKE_NEW}")
        renamed = tmux("display-message", "-p", "-t", f"{SESSION}:2", "#{window_name}").removesuffix("\n")
        assert "\t" not in renamed and "\n" not in renamed and "Fake" in renamed
        real = tmux("list-panes", "-s", "-t", SESSION, "-F", "#{pane_id}").split()
        client = await connect(relay)
        await client.send(op="list")
        reply = await client.next()
        assert reply["type"] == "list"
        assert [p["name"] for p in reply["panes"]] == ["Control", "A", renamed, *HOSTILE_NAMES]
        assert [p["pane"] for p in reply["panes"]] == real  # no fake pane, none lost
        assert all(p["pid"] > 0 and p["width"] == 100 and p["height"] == 30 for p in reply["panes"])
        # a hostile name still finds its own pane, and its fake window's name finds none
        await client.send(op="watch", target=HOSTILE_NAMES[0])
        assert (await client.next())["pane"] == real[3]
        other = await connect(relay)
        await other.send(op="watch", target="Fake")
        assert (await other.next())["type"] == "closed"
    finally:
        await _stop(relay)


def test_parse_panes_skips_what_it_cannot_read() -> None:
    mark = "<m>"
    out = f"{mark}%1\t@1\t0\t10\t80\t24\t1\tA\n{mark}garbage\n{mark}%2\t@2\t1\t11\t80\t24\t0\tB\tC\n"
    assert [(p["pane"], p["name"]) for p in parse_panes(out, mark)] == [("%1", "A"), ("%2", "B\tC")]
    assert parse_panes("", mark) == [] and parse_panes("%1\t@1\t0\t10\t80\t24\t1\tA\n", mark) == []


@pytest.mark.anyio
async def test_a_relay_on_a_socket_systemd_holds_keeps_it_in_place_and_a_viewer_waits_through_a_restart(
    tmp_path: Path, tmux: Tmux
) -> None:
    """Socket activation (central-mcp-relay.socket): the relay serves on the socket it is given, leaves it in
    place when it stops, and a viewer that connects while no relay runs is answered by the next one."""
    path = tmp_path / "relay.sock"
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # what systemd holds
    held.bind(str(path))
    held.listen(64)

    async def started() -> Relay:
        relay = Relay(path, SESSION, tmux.name, allow_input=False)
        relay.inherited = held.dup()  # the new process's copy of systemd's socket
        serving = asyncio.Event()
        relay.task = asyncio.get_running_loop().create_task(relay.serve(serving))  # type: ignore[attr-defined]
        await asyncio.wait_for(serving.wait(), 5)
        return relay

    try:
        first = await started()
        await _stop(first)
        assert path.is_socket(), "the relay removed the socket the socket unit holds"
        viewer = Client(*await asyncio.open_unix_connection(str(path)))  # no relay runs: it waits, not refused
        await viewer.send(op="list")
        second = await started()
        try:
            answer = await viewer.next(10)
            assert answer["type"] == "list" and {p["name"] for p in answer["panes"]} >= {"A", "B"}, answer
        finally:
            viewer.writer.close()
            await _stop(second)
    finally:
        held.close()


@pytest.mark.anyio
async def test_a_relay_without_its_tmux_server_starts_none_and_attaches_once_the_session_starts(tmp_path: Path) -> None:
    """The relay waits for the session's server: its control client never starts one (it would hand the server,
    and so every window, the relay's own process restrictions), and it attaches once the session runs."""
    tmux = Tmux()
    # where tmux makes the server's socket, as soon as a client starts a server
    socket_path = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / tmux.name
    relay = Relay(tmp_path / "relay.sock", SESSION, tmux.name, allow_input=False)
    said_ready: list[float] = []  # each time the relay says it is ready, however briefly
    set_ready = relay.ready.set
    relay.ready.set = lambda: (said_ready.append(time.monotonic()), set_ready())[1]  # type: ignore[method-assign]
    started = asyncio.Event()
    relay.task = asyncio.get_running_loop().create_task(relay.serve(started))  # type: ignore[attr-defined]
    try:
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(1.0)  # two attempts to attach, at least
        assert said_ready == [], "the relay said it was ready while its attach failed"
        assert not socket_path.exists(), "the relay's control client started a tmux server"
        tmux.start()
        for _ in range(150):  # its back-off between attempts is at most 10 s
            if tmux.control_clients() == 1:
                break
            await asyncio.sleep(0.1)
        assert tmux.control_clients() == 1
        await asyncio.wait_for(relay.ready.wait(), 5)  # and now it is ready
    finally:
        await _stop(relay)
        subprocess.run(["tmux", "-L", tmux.name, "kill-server"], capture_output=True)
