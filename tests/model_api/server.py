# SPDX-License-Identifier: Apache-2.0
"""HTTP front of the scripted model: the Messages API paths Claude Code uses, and an admin API.

Answered like the real API:
  POST /v1/messages[?beta=true]           streaming (SSE) or plain JSON, from the script
  POST /v1/messages/count_tokens          a rough count (characters / 4)
  HEAD|GET /api/hello                     the CLI's connectivity check at start-up: 200
  POST /v1/responses                      Codex (OpenAI Responses API, SSE), see wire.py
  POST /v1beta/models/M:streamGenerateContent?alt=sse   Gemini CLI (SSE), see wire.py
Anything else is answered 404 (as the real API would) *and* recorded as an
error; a request the script does not understand is answered 400 and recorded.
Tests assert that ``errors`` is empty, so a surprise never passes silently.

Admin API (bind to 127.0.0.1): ``GET /_model/requests``, ``GET /_model/errors``.

Each messages request is recorded (in memory and, with ``log_path``, as one
JSON line): the model, the tools offered and loaded, the tool results the
CLI sent back since the model's last turn, the agent (from ``whoami``), and
the answer given.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import wire
from .script import SCRIPTS, Conversation, Policy, ScriptError, Step, side_answer

STALL_MAX_S = 300.0  # a stalled answer ends by itself after this long (the test kills its client long before)
PING_S = 0.5


class ModelApi:
    """The script, the agents' policies and what tests read back (requests, errors)."""

    def __init__(
        self,
        script: str = "worker",
        log_path: str | Path | None = None,
        default: Policy | None = None,
        policies: dict[str, Policy] | None = None,
    ) -> None:
        if script not in SCRIPTS:
            raise ValueError(f"unknown script {script!r}; known: {', '.join(SCRIPTS)}")
        self.script = script
        self.default = default or Policy()
        self.policies: dict[str, Policy] = dict(policies or {})
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.log_path = Path(log_path) if log_path else None
        self._seq = 0

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Keep a request (with a sequence number and time) in memory and in the JSONL log."""
        with self.lock:
            self._seq += 1
            entry = {"seq": self._seq, "t": time.time(), **entry}
            self.requests.append(entry)
            if entry.get("error"):
                self.errors.append(f"{entry.get('path')}: {entry['error']}")
            if self.log_path:
                with self.log_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry, default=str) + "\n")
        if entry.get("error"):
            print(f"model api: ERROR {entry.get('path')}: {entry['error']}", file=sys.stderr, flush=True)
        return entry

    def answer(self, body: Any, headers: Any, entry: dict[str, Any]) -> Step:
        """The script's step for one messages request; fills ``entry`` (what to record) as far as it understood."""
        key = headers.get("x-api-key") or ""
        entry.update(kind="messages", session=headers.get("x-claude-code-session-id"), api_key_tail=key[-4:] or None)
        if not isinstance(body, dict):
            raise ScriptError("request body is not a JSON object")
        for key in ("model", "messages", "max_tokens"):
            if key not in body:
                raise ScriptError(f"request has no {key!r}")
        conv = Conversation(body)
        entry.update(model=conv.model, stream=bool(body.get("stream")), tools_offered=conv.offered)
        entry.update(tools_loaded=conv.loaded, main=conv.is_main)
        if not conv.is_main:
            if conv.offered:
                raise ScriptError(f"a request with tools but none of the agent's ({conv.offered}) is not understood")
            entry["kind"] = "side"
            return side_answer(body)
        # The results the CLI sent back since the model's last turn: what the coordinator answered.
        fresh = [c for c in conv.calls if c.answered and c.id in self._last_turn_ids(body)]
        entry["tool_results"] = [
            {"tool": c.name, "tool_use_id": c.id, "is_error": c.is_error, "text": c.text[:4000], "refs": c.references}
            for c in fresh
        ]
        entry["agent"] = conv.agent
        return SCRIPTS[self.script](conv, self.policies, self.default)

    def answer_other(self, conv: Conversation, wire_name: str, key: str, entry: dict[str, Any]) -> Step:
        """The script's step for a Codex or Gemini request, read into ``conv`` by wire.py."""
        entry.update(kind=wire_name, api_key_tail=key[-4:] or None, model=conv.model, tools_offered=conv.offered)
        entry.update(tools_loaded=conv.loaded, main=conv.is_main)
        if not conv.is_main:
            entry["kind"] = "side"  # a title, a summary, a routing question: a short text
            return Step(text="Agent work loop")
        last = conv.calls[-1] if conv.calls and conv.calls[-1].answered else None
        entry["tool_results"] = (
            [{"tool": last.name, "tool_use_id": last.id, "is_error": last.is_error, "text": last.text[:4000]}]
            if last
            else []
        )
        entry["agent"] = conv.agent
        return SCRIPTS[self.script](conv, self.policies, self.default)

    @staticmethod
    def _last_turn_ids(body: dict[str, Any]) -> set[str]:
        """tool_use ids of the assistant's last message (its results are the new ones in this request)."""
        for message in reversed(body["messages"]):
            if message.get("role") == "assistant" and isinstance(message.get("content"), list):
                return {b.get("id", "") for b in message["content"] if b.get("type") == "tool_use"}
        return set()


def message_blocks(step: Step) -> tuple[list[dict[str, Any]], str]:
    """The content blocks and stop_reason of a step's message."""
    if step.tool:
        block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": step.tool, "input": step.input}
        return [block], "tool_use"
    return [{"type": "text", "text": step.text}], "end_turn"


def _record_reply(api: Any, entry: dict[str, Any], step: Any) -> bool:
    """Record the script's answer to one request (whatever its wire format); False when the
    server closes during the step's delay, so nothing more is sent."""
    entry["reply"] = {"tool": step.tool, "input": step.input} if step.tool else {"text": step.text}
    if step.stall:
        entry["reply"] = {"stall": True}
    api.record(entry)
    return not (step.delay_s and api.closing.wait(step.delay_s))


class Handler(BaseHTTPRequestHandler):
    """One request; the server's ``api`` holds the script and the records."""

    protocol_version = "HTTP/1.1"
    server: ModelApiServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def _read(self) -> tuple[bytes, Any]:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return raw, json.loads(raw) if raw else None
        except ValueError:
            return raw, None

    def _json(self, status: int, doc: Any, head: bool = False) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _error(self, status: int, kind: str, message: str) -> None:
        self._json(status, {"type": "error", "error": {"type": kind, "message": message}})

    def _dispatch(self) -> None:
        api = self.server.api
        path = urlsplit(self.path).path
        raw, body = self._read()
        if self.command in ("HEAD", "GET") and path == "/api/hello":
            api.record({"kind": "startup", "method": self.command, "path": self.path})
            self._json(200, {}, head=self.command == "HEAD")
        elif self.command == "GET" and path == "/_model/requests":
            with api.lock:
                self._json(200, {"requests": list(api.requests)})
        elif self.command == "GET" and path == "/_model/errors":
            with api.lock:
                self._json(200, {"errors": list(api.errors)})
        elif self.command == "POST" and path == "/v1/messages/count_tokens":
            api.record({"kind": "count_tokens", "path": self.path})
            self._json(200, {"input_tokens": max(1, len(raw) // 4)})
        elif self.command == "POST" and path == "/v1/messages":
            self._messages(body)
        elif self.command == "POST" and path == "/v1/responses":
            self._other("responses", body, lambda: wire.codex_conversation(body))
        elif self.command == "POST" and path.startswith("/v1beta/models/") and path.endswith(":streamGenerateContent"):
            model = path.removeprefix("/v1beta/models/").removesuffix(":streamGenerateContent")
            self._other("gemini", body, lambda: wire.gemini_conversation(body, model))
        else:
            message = f"{self.command} {self.path} is not a path the stand-in knows"
            api.record({"kind": "unknown", "method": self.command, "path": self.path, "error": message})
            self._error(404, "not_found_error", message)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _messages(self, body: Any) -> None:
        api = self.server.api
        entry: dict[str, Any] = {"path": self.path}
        try:
            step = api.answer(body, self.headers, entry)
        except (ScriptError, KeyError, TypeError, AttributeError, ValueError) as exc:
            if not isinstance(exc, ScriptError):  # a request shape the script did not expect: show where
                traceback.print_exc()
            entry["messages"] = len(body.get("messages") or []) if isinstance(body, dict) else None
            api.record({**entry, "error": f"{type(exc).__name__}: {exc}"})
            self._error(400, "invalid_request_error", f"scripted model: {exc}")
            return
        if not _record_reply(api, entry, step):
            return
        model = body.get("model", "")
        blocks, stop_reason = message_blocks(step)
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": max(1, len(json.dumps(body)) // 4), "output_tokens": 1},
        }
        if not body.get("stream"):
            self._json(200, {**message, "content": blocks, "stop_reason": stop_reason})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self._event("message_start", {"type": "message_start", "message": message})
            self._event("ping", {"type": "ping"})
            if step.stall:
                self._stall()
                return
            for index, block in enumerate(blocks):
                self._block(index, block)
            delta = {"stop_reason": stop_reason, "stop_sequence": None}
            self._event("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 8}})
            self._event("message_stop", {"type": "message_stop"})
        except (BrokenPipeError, ConnectionResetError):
            api.record({"kind": "disconnect", "path": self.path, "session": entry.get("session")})

    def _other(self, wire_name: str, body: Any, read: Any) -> None:
        """A Codex or Gemini request: the script's step, streamed in that CLI's SSE format."""
        api = self.server.api
        entry: dict[str, Any] = {"path": self.path}
        key = self.headers.get("x-goog-api-key") or self.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            conv = read()
            step = api.answer_other(conv, wire_name, key, entry)
        except (ScriptError, KeyError, TypeError, AttributeError, ValueError) as exc:
            if not isinstance(exc, ScriptError):
                traceback.print_exc()
            api.record({**entry, "kind": wire_name, "error": f"{type(exc).__name__}: {exc}"})
            self._json(400, {"error": {"code": 400, "message": f"scripted model: {exc}", "status": "INVALID_ARGUMENT"}})
            return
        if not _record_reply(api, entry, step):
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        size = len(json.dumps(body))
        try:
            if step.stall:  # nothing but the open stream until the client goes away
                while not api.closing.wait(PING_S):
                    self.wfile.write(b": ping\n\n")
                    self.wfile.flush()
                return
            if wire_name == "responses":
                for name, data in wire.codex_events(step, conv.model, size):
                    self._event(name, data)
            else:
                self.wfile.write(f"data: {json.dumps(wire.gemini_chunk(step, conv.model, size))}\r\n\r\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            api.record({"kind": "disconnect", "path": self.path})

    def _event(self, name: str, data: dict[str, Any]) -> None:
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def _block(self, index: int, block: dict[str, Any]) -> None:
        """One content block as the API streams it: start, deltas in two pieces, stop."""
        start = {"type": "text", "text": ""} if block["type"] == "text" else {**block, "input": {}}
        self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        if block["type"] == "text":
            text = block["text"]
            pieces = [text[: len(text) // 2], text[len(text) // 2 :]]
            deltas = [{"type": "text_delta", "text": p} for p in pieces if p]
        else:
            arguments = json.dumps(block["input"])
            pieces = [arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces if p]
        for delta in deltas:
            self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _stall(self) -> None:
        """Say nothing more (pings only) until the client goes away, the server closes, or STALL_MAX_S."""
        api = self.server.api
        deadline = time.monotonic() + STALL_MAX_S
        while time.monotonic() < deadline and not api.closing.wait(PING_S):
            self._event("ping", {"type": "ping"})  # raises once the client is gone
        message = "scripted model: stall ended without the client going away"
        self._event("error", {"type": "error", "error": {"type": "overloaded_error", "message": message}})


class ModelApiServer(ThreadingHTTPServer):
    """The stand-in on a loopback port (0 picks a free one); ``url`` is what ANTHROPIC_BASE_URL gets."""

    daemon_threads = True

    def __init__(self, api: ModelApi, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        super().__init__((host, port), Handler)
        self.api = api
        self.verbose = verbose
        self.url = f"http://{host}:{self.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> ModelApiServer:
        """Serve in a background thread (for tests in the same process)."""
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="model-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.api.closing.set()
        self.shutdown()
        self.server_close()
