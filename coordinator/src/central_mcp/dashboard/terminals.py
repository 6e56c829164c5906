# SPDX-License-Identifier: Apache-2.0
"""Terminals and process figures of the agents, from the pane relay.

The coordinator runs as its own user and cannot talk to the agents' tmux
server; the relay (``central_mcp.relay``, run as the tmux owner) can, and
serves the panes on a unix socket. Each browser terminal is one websocket
here and one relay connection behind it; the relay fans one tmux reader out
to all of them. A :class:`RelaySource` is one relay address: this VM's unix
socket, or another VM's TCP port (which asks for its token first, see
``central_mcp.relay_auth``; over TLS when ``CENTRAL_MCP_RELAY_CA_FILE`` names
the fleet CA). :class:`Relays` picks the source by the
agent's host, as the agents file names it.

CPU and RAM of an agent are those of its pane's process tree, read from
/proc by the relay (which runs as the agents' user and so sees them even
when the hardened coordinator cannot), else by the coordinator itself; what
nobody can see is ``None`` (the page shows "—"), never a guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from central_mcp import relay_auth
from central_mcp.dashboard import procstat
from central_mcp.relay_auth import Address

log = logging.getLogger(__name__)

RELAY_TIMEOUT_S = 5.0


class RelayUnavailable(ConnectionError):
    """The relay socket cannot be reached; the message says where and what to check."""


class RelaySource:
    """One pane relay, reached by its unix socket path or TCP address (then always with its token).

    With ``tls`` (a client context trusting the fleet CA alone), a TCP relay is reached over TLS and
    must show a certificate naming the host of its address; the token's challenge then runs inside it.
    """

    def __init__(
        self, where: Path | Address, token: str = "", host: str = "", tls: ssl.SSLContext | None = None
    ) -> None:
        self.where = where if isinstance(where, Address) else Address(path=where)
        self.token, self.host = token, host
        self.tls = tls if self.where.tcp else None
        # The relay's VM as its last list told it: {cpus, memory_bytes}; None until then (or from an older relay).
        self.machine: dict[str, int] | None = None

    @property
    def address(self) -> str:
        return str(self.where)

    @property
    def local(self) -> bool:
        """On this VM: its pids can be read in our own /proc."""
        return not self.where.tcp

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.where.path is not None:
            return await asyncio.open_unix_connection(str(self.where.path), limit=2**22)
        # With TLS, the certificate must name self.where.host (server_hostname defaults to it; IPs are matched too).
        return await asyncio.open_connection(self.where.host, self.where.port, limit=2**22, ssl=self.tls)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection past the relay's challenge, when it has a token."""
        try:
            reader, writer = await asyncio.wait_for(self._open(), RELAY_TIMEOUT_S)
        except ssl.SSLCertVerificationError as exc:
            raise RelayUnavailable(
                f"terminal relay at {self.address} refused: its TLS certificate does not verify against "
                f"CENTRAL_MCP_RELAY_CA_FILE ({exc.verify_message}): it must come from the fleet CA and name "
                f"{self.where.host}"
            ) from None
        except ssl.SSLError as exc:
            raise RelayUnavailable(
                f"terminal relay at {self.address}: no TLS handshake ({exc.reason or exc}): is that relay "
                "started with --tls-cert-file and --tls-key-file?"
            ) from None
        except (OSError, TimeoutError) as exc:
            hint = (
                "is central-mcp-relay running on that VM, and its port open to this one?"
                if self.where.tcp
                else "is central-mcp-relay running, and is the coordinator's user in the socket's group?"
            )
            raise RelayUnavailable(
                f"terminal relay not reachable at {self.address} ({exc.__class__.__name__}): {hint}"
            ) from None
        if not self.token:
            return reader, writer
        try:
            writer.write(relay_auth.answer(self.token, await asyncio.wait_for(reader.readline(), RELAY_TIMEOUT_S)))
            reply = json.loads(await asyncio.wait_for(reader.readline(), RELAY_TIMEOUT_S) or b"{}")
        except (OSError, TimeoutError, ValueError) as exc:
            writer.close()
            hint = (
                " (if that relay serves TLS, set CENTRAL_MCP_RELAY_CA_FILE)" if self.where.tcp and not self.tls else ""
            )
            raise RelayUnavailable(f"terminal relay at {self.address}: no handshake ({exc!r}){hint}") from None
        if reply.get("type") != "ok":
            writer.close()
            raise RelayUnavailable(
                f"terminal relay at {self.address} refused the coordinator: {reply.get('message', reply)} "
                "(is the relay token in the coordinator's relays file the one that VM's relay has?)"
            )
        return reader, writer

    async def list_panes(self) -> list[dict[str, Any]]:
        """The relay's ``list``: every pane of the session with its window name and process id."""
        reader, writer = await self.connect()
        try:
            writer.write(b'{"op": "list"}\n')
            reply = json.loads(await asyncio.wait_for(reader.readline(), RELAY_TIMEOUT_S) or b"{}")
        except (OSError, TimeoutError, ValueError) as exc:
            raise RelayUnavailable(f"terminal relay at {self.address} did not answer: {exc}") from None
        finally:
            writer.close()
        if reply.get("type") != "list":
            return []
        machine = reply.get("machine")
        self.machine = machine if isinstance(machine, dict) else None
        return reply.get("panes", [])


class Relays:
    """This VM's relay and other VMs' relays by host: which one shows an agent's terminal."""

    def __init__(self, local: RelaySource, remote: Iterable[RelaySource] = ()) -> None:
        self.local = local
        self.remote = {source.host: source for source in remote}

    @property
    def sources(self) -> list[RelaySource]:
        return [self.local, *self.remote.values()]

    @property
    def address(self) -> str:
        return ", ".join(source.address for source in self.sources)

    def for_host(self, host: str) -> RelaySource:
        """The relay of the agent's host; this VM's own for any host without a relay of its own."""
        return self.remote.get(host, self.local)


class Metrics:
    """The latest pane list and per-agent figures of every relay, refreshed by one task for all browsers."""

    def __init__(self, source: RelaySource | Relays, interval_s: float = 5.0) -> None:
        self.relays = source if isinstance(source, Relays) else Relays(source)
        self.source = self.relays.local
        self.interval_s = interval_s
        self.rates = procstat.CpuRate()
        self.agents: dict[str, dict[str, Any]] = {}
        self.error: str | None = None
        self.taken_at: float | None = None
        self.changed = asyncio.Event()
        # Told every reading, {name: {cpu_percent, rss_bytes}}: the usage kept for sizing (central_mcp.usage).
        self.on_figures: Callable[[dict[str, dict[str, Any]]], None] | None = None

    async def refresh(self) -> None:
        """Ask every relay at once; one that cannot be reached costs only its own VM's terminals."""
        sources = self.relays.sources
        results = await asyncio.gather(*(source.list_panes() for source in sources), return_exceptions=True)
        errors, panes = [], []
        for source, result in zip(sources, results, strict=True):
            if isinstance(result, RelayUnavailable):
                errors.append(str(result))
                continue
            if isinstance(result, BaseException):
                raise result
            panes += [{**p, "local": source.local} for p in result if p.get("active", True)]
        error = "; ".join(errors) or None
        if error and error != self.error:
            log.warning("%s", error)
        self.error = error
        self.agents = self._figures(panes)
        self.taken_at = time.time()
        if self.on_figures is not None:
            self.on_figures(self.agents)
        self.changed.set()
        self.changed = asyncio.Event()

    def _figures(self, panes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """name -> pid, CPU share and RSS; the relay's readings first, our own /proc for what it did not send.

        Only a pane of this VM can be looked up in our own /proc: another VM's
        pid numbers mean other processes here.
        """
        missing = [int(p["pid"]) for p in panes if p.get("cpu_s") is None and p.get("local", True)]
        own = procstat.tree_usage(missing) if missing else {}
        figures: dict[str, dict[str, Any]] = {}
        for pane in panes:
            pid = int(pane["pid"])
            if pane.get("cpu_s") is not None:
                cpu_s, rss = pane["cpu_s"], pane.get("rss_bytes")
            else:
                cpu_s, rss = own.get(pid, (None, None)) if pane.get("local", True) else (None, None)
            percent = None if cpu_s is None else self.rates.percent((pane["name"], pid), cpu_s)
            figures[pane["name"]] = {"pid": pid, "terminal": True, "cpu_percent": percent, "rss_bytes": rss}
        self.rates.keep((p["name"], int(p["pid"])) for p in panes)
        return figures

    async def run(self) -> None:
        """Refresh every ``interval_s``; after a first reading of a pane, again in 1 s (a rate needs two)."""
        while True:
            with contextlib.suppress(Exception):
                await self.refresh()
            unrated = any(a["cpu_percent"] is None and a["rss_bytes"] is not None for a in self.agents.values())
            await asyncio.sleep(min(1.0, self.interval_s) if unrated else self.interval_s)

    def view(self) -> dict[str, Any]:
        machines = {source.host: source.machine for source in self.relays.remote.values() if source.machine}
        return {"agents": self.agents, "relay_error": self.error, "taken_at": self.taken_at, "machines": machines}


async def terminal_session(
    websocket: WebSocket,
    source: RelaySource,
    agent: str,
    allow_input: bool,
    until: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Pump one pane between the relay and an accepted websocket until either side ends, or ``until()`` returns.

    Relay lines go to the browser unchanged (they are already JSON); from
    the browser only ``{"type": "input", "data"}`` is read, and only passed
    on when typing is enabled on the dashboard (the relay decides as well).
    ``until`` is the login session's end: a terminal closes at logout.
    """
    try:
        await websocket.send_text(json.dumps({"type": "hello", "agent": agent, "input": allow_input}))
        reader, writer = await source.connect()
    except RelayUnavailable as exc:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.send_text(json.dumps({"type": "closed", "reason": str(exc)}))
            await websocket.close(1011)
        return
    except WebSocketDisconnect:
        return
    writer.write(json.dumps({"op": "watch", "target": agent}).encode() + b"\n")

    async def relay_to_browser() -> None:
        while line := await reader.readline():
            await websocket.send_text(line.decode(errors="replace").rstrip("\n"))

    async def browser_to_relay() -> None:
        while True:
            raw = await websocket.receive_text()
            if not allow_input:
                continue
            with contextlib.suppress(ValueError, TypeError, KeyError):
                message = json.loads(raw)
                if message.get("type") == "input" and isinstance(message.get("data"), str):
                    writer.write(json.dumps({"op": "input", "target": agent, "data": message["data"]}).encode())
                    writer.write(b"\n")

    tasks = [asyncio.create_task(relay_to_browser()), asyncio.create_task(browser_to_relay())]
    if until is not None:
        tasks.append(asyncio.ensure_future(until()))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError):
                await task
        writer.close()
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):  # the browser may be gone already
            await websocket.close(1000)
