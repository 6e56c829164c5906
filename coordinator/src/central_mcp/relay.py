# SPDX-License-Identifier: Apache-2.0
"""The pane relay: live tmux panes for the dashboard, from one tmux control-mode client.

It runs as the user that owns the agents' tmux server (only that user may
talk to it) and serves a unix socket (mode 0660) that the coordinator's group
can connect to, or, on a VM without the coordinator, a TCP port on the private
network that only a client knowing the relay's token gets past (the challenge
in ``central_mcp.relay_auth``: every connection starts with it when a token is
set, and a TCP relay needs one). A TCP relay given its host's certificate
from the fleet CA (``--tls-cert-file``, ``--tls-key-file``) speaks TLS, and
the challenge runs inside it. The protocol is one JSON object per line in
both directions:

``{"op": "list"}``
    -> ``{"type": "list", "panes": [{"pane", "window_id", "window", "name", "pid", "width", "height", "active",
    "cpu_s", "rss_bytes"}]}`` (CPU seconds and memory of the pane's process tree; null if not visible)
``{"op": "watch", "target": "A"}`` (a window name or a pane id like ``%3``)
    -> ``{"type": "snapshot", "pane", "width", "height", "cursor": [x, y], "data"}`` first, then
    ``{"type": "output", "pane", "data"}`` as the pane prints; a new snapshot whenever the pane is resized;
    ``{"type": "closed", "reason"}`` when the pane or the tmux server goes away.
``{"op": "input", "target": "A", "data": "text"}``
    -> ``{"type": "ok"}``, or an ``error`` unless the relay was started with ``--allow-input``.

Why one control client: ``tmux -C attach -r`` reports the output of every
pane of the session as ``%output`` lines, so any number of viewers of any
number of panes cost one tmux reader, and no shell is started for anyone
(unlike ttyd/gotty). Snapshots are taken by the same client, so tmux orders
them with the output: what came before the ``%begin`` is in the snapshot,
what comes after its ``%end`` is sent live; nothing is lost or doubled.
The control client is read-only and, as a control client, ignores size: it
never resizes the agents' windows.

The dashboard reaches a relay by its address (``unix:PATH`` or ``tcp:HOST:PORT``),
one per VM, and picks it by the agent's host.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import grp
import json
import logging
import os
import secrets
import signal
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from central_mcp import listen_fds, relay_auth, sysinfo
from central_mcp.dashboard import procstat
from central_mcp.dashboard.tmux_control import ControlClient, TmuxError
from central_mcp.relay_auth import Address
from central_mcp.settings import is_loopback

log = logging.getLogger("central_mcp.relay")

DEFAULT_SESSION = "central-mcp-agents"
HISTORY_LINES = 1000  # scrollback included in a snapshot
MAX_VIEWER_BUFFER = 2**20  # bytes queued for one slow viewer before it is dropped (it reconnects for a snapshot)
MAX_LINE = 2**20  # longest request line accepted from a client
# The window name comes last: it is the one free-text field, and ``new-window -n`` keeps tabs and newlines in it
# as they are (only ``rename-window`` escapes them), so a name may hold both.
PANE_FIELDS = ("pane_id", "window_id", "window_index", "pane_pid", "pane_width", "pane_height", "pane_active",
               "window_name")  # fmt: skip


def machine() -> dict[str, int]:
    """This VM's vCPUs and memory, for the dashboard's capacity of each VM (the coordinator sees only its own)."""
    return {"cpus": os.cpu_count() or 1, "memory_bytes": sysinfo.meminfo()["total_bytes"]}


def pane_format(mark: str) -> str:
    """``list-panes -F``: each pane is ``mark`` then its fields, tab-separated, the window name last."""
    return mark + "\t".join(f"#{{{v}}}" for v in PANE_FIELDS)


def parse_panes(out: str, mark: str) -> list[dict[str, Any]]:
    """Panes from ``list-panes -F pane_format(mark)``; a window name cannot shift fields or add a pane.

    ``mark`` is random for each listing, so no name set before it can hold
    it: a record starts only where tmux wrote it. Inside a record, the fixed
    fields come first and the name is all that follows the seventh tab,
    tabs and newlines included.
    """
    if not out.startswith(mark):
        return []
    panes = []
    for record in out[len(mark) :].removesuffix("\n").split("\n" + mark):
        fields = record.split("\t", len(PANE_FIELDS) - 1)
        try:
            pane, window_id, window, pid, width, height, active, name = fields
            panes.append(
                {"pane": pane, "window_id": window_id, "window": int(window), "name": name, "pid": int(pid),
                 "width": int(width), "height": int(height), "active": active == "1"}
            )  # fmt: skip
        except ValueError:
            log.warning("skipping a pane tmux listed in an unexpected form: %r", record[:200])
    return panes


class Viewer:
    """One client connection watching one pane; writes never wait for a slow reader."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pane: str | None = None
        self.live = False  # False until its snapshot is sent: output before it is part of the snapshot

    def send(self, message: dict[str, Any]) -> bool:
        """Queue one message; a viewer whose buffer overflows is closed (False)."""
        if self.writer.is_closing():
            return False
        self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        if self.writer.transport.get_write_buffer_size() > MAX_VIEWER_BUFFER:
            log.warning("dropping a slow viewer of %s", self.pane)
            self.writer.close()
            return False
        return True


class Relay:
    """The socket server, the viewers of each pane and the supervised control client."""

    def __init__(self, listen: Path | Address, session: str = DEFAULT_SESSION, tmux_socket_name: str | None = None,
                 allow_input: bool = False, group: str | None = None,
                 history: int = HISTORY_LINES, token: str | None = None,
                 tls: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.address = listen if isinstance(listen, Address) else Address(path=listen)
        if self.address.tcp and not token:
            raise ValueError(f"a relay on {self.address} is reachable from the network: give it a token")
        if tls is not None and not self.address.tcp:
            raise ValueError(f"a relay on {self.address} is local: TLS is for a TCP relay (--listen)")
        self.tls = tls  # the host's certificate from the fleet CA; the token's challenge runs inside TLS
        self.token = relay_auth.check_token(token, f"relay on {self.address}") if token else None
        self.socket_path = self.address.path
        self.port = self.address.port  # the bound port once serving (port 0 picks a free one)
        # The listening socket systemd passed (socket activation: a relay restart then refuses no viewer).
        self.inherited: socket.socket | None = None
        self.session, self.allow_input = session, allow_input
        self.group, self.history = group, history
        self.tmux = ["tmux"] + (["-L", tmux_socket_name] if tmux_socket_name else [])
        self.viewers: dict[str, set[Viewer]] = {}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.windows: dict[str, str] = {}  # pane id -> window id, for the panes being watched
        self.decoders: dict[str, codecs.IncrementalDecoder] = {}
        self.control: ControlClient | None = None
        self.ready = asyncio.Event()
        self._resnapshots: set[asyncio.Task[None]] = set()  # held so they are not garbage-collected mid-flight

    # -- tmux -------------------------------------------------------------------------

    async def _tmux(self, *args: str) -> str:
        """A one-off tmux command (list, input): not on the control client, so it never delays the stream."""
        proc = await asyncio.create_subprocess_exec(
            *self.tmux, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise TmuxError(err.decode(errors="replace").strip() or f"tmux {args[0]} failed")
        return out.decode(errors="replace")

    async def list_panes(self) -> list[dict[str, Any]]:
        """Every pane of the session, with its process tree's CPU seconds and RSS (we run as their user)."""
        mark = f"<{secrets.token_hex(16)}>"
        panes = parse_panes(await self._tmux("list-panes", "-s", "-t", self.session, "-F", pane_format(mark)), mark)
        usage = procstat.tree_usage(p["pid"] for p in panes)
        for pane in panes:
            pane["cpu_s"], pane["rss_bytes"] = usage.get(pane["pid"], (None, None))
        return panes

    async def resolve(self, target: str) -> str | None:
        """A pane id from a pane id or a window name (that window's active pane); remembers its window."""
        panes = await self.list_panes()
        found = next((p for p in panes if p["pane"] == target or (p["name"] == target and p["active"])), None)
        found = found or next((p for p in panes if p["name"] == target), None)
        if found is None:
            return None
        self.windows[found["pane"]] = found["window_id"]
        return found["pane"]

    async def snapshot(self, pane: str, viewers: Callable[[], list[Viewer]] = list) -> dict[str, Any]:
        """The pane's screen and scrollback with colours, its size and cursor, in stream order.

        The snapshot is sent to ``viewers()`` and they are made live inside
        the reader, at the capture's ``%end``: output after it reaches them,
        output before it is already in the snapshot.
        """
        assert self.control is not None

        def done(blocks: list[list[bytes]]) -> dict[str, Any]:
            info, lines = blocks
            cx, cy, width, height = (int(v) for v in info[0].split())
            self.sizes[pane] = (width, height)
            self.decoders[pane] = codecs.getincrementaldecoder("utf-8")(errors="replace")
            data = b"\r\n".join(lines).decode(errors="replace")
            message = {"type": "snapshot", "pane": pane, "width": width, "height": height, "cursor": [cx, cy]}
            message["data"] = data
            for viewer in viewers():
                if viewer.pane == pane and viewer.send(message):
                    viewer.live = True
            return message

        return await self.control.command(
            f"display-message -p -t {pane} '#{{cursor_x}} #{{cursor_y}} #{{pane_width}} #{{pane_height}}' ; "
            f"capture-pane -p -e -J -S -{self.history} -t {pane}",
            replies=2,
            on_done=done,
        )

    async def _send_snapshot(self, pane: str) -> None:
        """Resend a snapshot to every viewer of ``pane`` (after a resize)."""
        try:
            await self.snapshot(pane, lambda: list(self.viewers.get(pane, ())))
        except (TmuxError, ValueError, IndexError) as exc:
            self._close_pane(pane, f"pane {pane} is gone ({exc})")

    def _on_output(self, pane: str, data: bytes) -> None:
        viewers = self.viewers.get(pane)
        if not viewers:
            return
        decoder = self.decoders.setdefault(pane, codecs.getincrementaldecoder("utf-8")(errors="replace"))
        message = {"type": "output", "pane": pane, "data": decoder.decode(data)}
        for viewer in list(viewers):
            if viewer.live:
                viewer.send(message)

    def _on_layout(self, window: str, sizes: dict[str, tuple[int, int]]) -> None:
        """A window's layout changed (or it closed: no sizes): new snapshots for resized panes, close gone ones.

        A closed pane ends its viewers' streams with ``closed``; the dashboard
        reconnects by window name and so follows a window the launcher recreated.
        """
        for pane in [p for p in self.viewers if self.windows.get(p) == window and p not in sizes]:
            self._close_pane(pane, f"pane {pane} closed")
        for pane, size in sizes.items():
            if pane in self.viewers and self.sizes.get(pane) != size:
                log.debug("pane %s resized to %sx%s: new snapshot", pane, *size)
                self.sizes[pane] = size
                task = asyncio.get_running_loop().create_task(self._send_snapshot(pane))
                self._resnapshots.add(task)
                task.add_done_callback(self._resnapshots.discard)

    def _close_pane(self, pane: str, reason: str) -> None:
        self.windows.pop(pane, None)
        for viewer in self.viewers.pop(pane, set()):
            viewer.send({"type": "closed", "reason": reason})
            viewer.writer.close()

    async def _supervise(self) -> None:
        """Keep one control client attached; re-attach with a back-off when tmux or the session goes away."""
        delay = 0.5
        while True:
            # ready once tmux says the attach worked: not while an attempt fails (no server, no session yet)
            self.control = ControlClient(self.tmux, self.session, self._on_output, self._on_layout, self.ready.set)
            await self.control.start()
            reason = await self.control.run()
            self.ready.clear()
            await self.control.stop()
            for pane in list(self.viewers):
                self._close_pane(pane, reason)
            log.warning("%s; re-attaching to session %s in %.1f s", reason, self.session, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    # -- clients ------------------------------------------------------------------------

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """The challenge: the client's first line must answer it, within a few seconds."""
        assert self.token is not None
        nonce, line = relay_auth.new_challenge()
        writer.write(line)
        try:
            reply = await asyncio.wait_for(reader.readline(), relay_auth.HANDSHAKE_TIMEOUT_S)
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            reply = b""
        if relay_auth.verify(self.token, nonce, reply):
            writer.write(b'{"type":"ok"}\n')
            return True
        peer = writer.get_extra_info("peername") or "a local client"
        log.warning("refused %s: no valid answer to the relay's challenge", peer)
        writer.write(b'{"type":"error","message":"unauthorized: answer the challenge with the relay token"}\n')
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        viewer = Viewer(writer)
        if self.token is not None and not await self._authenticate(reader, writer):
            writer.close()
            return
        try:
            while raw := await reader.readline():
                try:
                    request = json.loads(raw)
                    op = request["op"]
                except (ValueError, KeyError, TypeError):
                    viewer.send({"type": "error", "message": "expected a JSON object with 'op'"})
                    continue
                try:
                    await self._dispatch(viewer, op, request)
                except (TmuxError, TimeoutError, ValueError, IndexError) as exc:
                    if op != "watch":
                        viewer.send({"type": "error", "message": str(exc) or type(exc).__name__})
                        continue
                    viewer.send({"type": "closed", "reason": str(exc) or type(exc).__name__})
                    break  # a watcher that got nothing retries on a new connection
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            if viewer.pane is not None:
                self.viewers.get(viewer.pane, set()).discard(viewer)
            writer.close()

    async def _dispatch(self, viewer: Viewer, op: str, request: dict[str, Any]) -> None:
        if op == "list":
            viewer.send({"type": "list", "panes": await self.list_panes(), "machine": machine()})
        elif op == "watch":
            pane = await self.resolve(str(request.get("target", "")))
            if pane is None:
                raise TmuxError(f"no pane {request.get('target')!r} in {self.session}")
            if viewer.pane is not None:
                self.viewers.get(viewer.pane, set()).discard(viewer)
            viewer.pane, viewer.live = pane, False
            self.viewers.setdefault(pane, set()).add(viewer)
            await asyncio.wait_for(self.ready.wait(), 10)
            await self.snapshot(pane, lambda: [viewer])
        elif op == "input":
            if not self.allow_input:
                viewer.send({"type": "error", "message": "input is disabled: start the relay with --allow-input"})
                return
            pane = await self.resolve(str(request.get("target", "")))
            if pane is None:
                raise TmuxError(f"no pane {request.get('target')!r}")
            await self._tmux("send-keys", "-t", pane, "-l", "--", str(request.get("data", "")))
            viewer.send({"type": "ok"})
        else:
            viewer.send({"type": "error", "message": f"unknown op {op!r}: list, watch or input"})

    async def _listen(self) -> asyncio.Server:
        if self.inherited is not None:  # the socket unit's: it stays open (and in place) across restarts
            sock = self.inherited
            if self.socket_path is None:
                self.port = sock.getsockname()[1]
                return await asyncio.start_server(
                    self._handle, sock=sock, limit=MAX_LINE, ssl=self.tls,
                    ssl_handshake_timeout=relay_auth.HANDSHAKE_TIMEOUT_S if self.tls else None,
                )  # fmt: skip
            return await asyncio.start_unix_server(self._handle, sock=sock, limit=MAX_LINE)
        if self.socket_path is None:
            server = await asyncio.start_server(
                self._handle, self.address.host, self.address.port, limit=MAX_LINE, ssl=self.tls,
                ssl_handshake_timeout=relay_auth.HANDSHAKE_TIMEOUT_S if self.tls else None,
            )  # fmt: skip
            self.port = server.sockets[0].getsockname()[1]
            return server
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        server = await asyncio.start_unix_server(self._handle, path=str(self.socket_path), limit=MAX_LINE)
        os.chmod(self.socket_path, 0o660)
        if self.group:
            os.chown(self.socket_path, -1, grp.getgrnam(self.group).gr_gid)
        return server

    async def serve(self, started: asyncio.Event | None = None) -> None:
        """Listen on the socket (0660, optional group) or the TCP port until cancelled."""
        server = await self._listen()
        supervisor = asyncio.create_task(self._supervise())
        where = self.socket_path or f"{self.address.host}:{self.port}"
        log.info("relay for tmux session %s on %s (input %s, token %s, %s)", self.session, where,
                 "allowed" if self.allow_input else "refused", "required" if self.token else "not set",
                 "TLS" if self.tls else "no TLS")  # fmt: skip
        if self.address.tcp and self.tls is None and not is_loopback(self.address.host):
            log.warning("relay on %s serves plain TCP: terminal contents cross the network unencrypted; give it "
                        "--tls-cert-file and --tls-key-file (a certificate from the fleet CA)", where)  # fmt: skip
        if started is not None:
            started.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
            if self.control is not None:
                await self.control.stop()
            if self.socket_path is not None and self.inherited is None:  # the socket unit's stays
                with contextlib.suppress(FileNotFoundError):
                    self.socket_path.unlink()


def inherited_socket(address: Address) -> socket.socket | None:
    """The one listening socket systemd passed for this relay (its socket unit's), or None: it binds its own.

    It must be where the relay was told to listen (the unit's ListenStream= and --socket/--listen agree).
    """
    sockets = listen_fds.inherited()
    if not sockets:
        return None
    if len(sockets) > 1:
        raise ValueError(f"systemd passed {len(sockets)} sockets; a relay serves one ({address})")
    sock = sockets[0][1]
    bound = sock.getsockname()
    same = bound == str(address.path) if address.path is not None else bound[1] == address.port
    if not same:
        sock.close()
        raise ValueError(f"systemd passed a socket on {bound}, but this relay listens on {address}")
    return sock


def run(listen: Path | Address, session: str, tmux_socket_name: str | None, allow_input: bool, group: str | None,
        log_level: str = "info", token: str | None = None, tls: ssl.SSLContext | None = None) -> int:  # fmt: skip
    """Run the relay until SIGTERM/SIGINT (``central-mcp relay``)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    relay = Relay(listen, session, tmux_socket_name, allow_input, group, token=token, tls=tls)
    try:
        relay.inherited = inherited_socket(relay.address)
    except ValueError as exc:
        log.error("relay: %s (its socket unit's ListenStream= and --socket/--listen must agree)", exc)
        return 2

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await relay.serve()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
