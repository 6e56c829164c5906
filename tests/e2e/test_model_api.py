# SPDX-License-Identifier: Apache-2.0
"""The scripted model on its own (no CLI, under a second): the wire format, the script, and its loud failures.

The end-to-end tests trust the stand-in to behave like the Messages API and
to fail a run when something unexpected arrives; these tests hold it to that.
Request bodies below have the shape Claude Code 2.1.332 sends (deferred
tools announced in a system turn, loaded by ToolSearch with tool_reference
blocks, results with a trailing system reminder).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.model_api import ModelApi, ModelApiServer, Policy

P = "mcp__central-mcp__"
WORKER = ["whoami", "get_available_tasks", "claim_task", "update_task_progress", "complete_task"]
ANNOUNCE = (
    "<system-reminder>\nThe following deferred tools are now available via ToolSearch. Their schemas are NOT loaded:\n"
    + "\n".join(P + t for t in WORKER)
    + "\n\n</system-reminder>"
)
SCHEMAS = {
    "ToolSearch": {"properties": {"query": {}, "max_results": {}}, "required": ["query"]},
    P + "whoami": {"properties": {}},
    P + "get_available_tasks": {"properties": {"allRoles": {}, "agent": {}}},
    P + "claim_task": {"properties": {"taskId": {}, "agent": {}}, "required": ["taskId"]},
    P + "update_task_progress": {
        "properties": {"taskId": {}, "status": {}, "completionPercent": {}, "notes": {}, "agent": {}},
        "required": ["taskId"],
    },
    P + "complete_task": {"properties": {"taskId": {}, "filesCreated": {}, "notes": {}}, "required": ["taskId"]},
}


@pytest.fixture
def model() -> Iterator[tuple[ModelApi, str]]:
    api = ModelApi("worker", policies={"D": Policy(stall_after_claim=True)})
    server = ModelApiServer(api).start()
    try:
        yield api, server.url
    finally:
        server.stop()


def post(url: str, body: Any, path: str = "/v1/messages?beta=true") -> tuple[int, str]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sse_message(text: str) -> dict[str, Any]:
    """Rebuild the message from the event stream, as the SDK does (deltas appended in order)."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for chunk in text.strip().split("\n\n"):
        name, data = (line.split(": ", 1)[1] for line in chunk.splitlines())
        event = json.loads(data)
        assert event["type"] == name
        if name == "message_start":
            message = event["message"]
        elif name == "content_block_start":
            message["content"].append(event["content_block"])
        elif name == "content_block_delta":
            delta, block = event["delta"], message["content"][event["index"]]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
        elif name == "content_block_stop" and event["index"] in partial:
            message["content"][event["index"]]["input"] = json.loads(partial[event["index"]])
        elif name == "message_delta":
            message["stop_reason"] = event["delta"]["stop_reason"]
    assert name == "message_stop"
    return message


class Conversation:
    """Plays the CLI's side: keeps the messages and sends each tool result back."""

    def __init__(self, url: str, stream: bool = True) -> None:
        self.url, self.stream = url, stream
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": [{"type": "text", "text": "Work the board"}]},
            {"role": "system", "content": [{"type": "text", "text": ANNOUNCE}]},
        ]
        self.loaded: list[str] = ["ToolSearch"]

    def ask(self) -> dict[str, Any]:
        tools = [
            {"name": n, "input_schema": SCHEMAS[n], **({"defer_loading": True} if n != "ToolSearch" else {})}
            for n in self.loaded
        ]
        body = {"model": "m", "max_tokens": 100, "stream": self.stream, "tools": tools, "messages": self.messages}
        status, text = post(self.url, body)
        assert status == 200, text
        message = sse_message(text) if self.stream else json.loads(text)
        self.messages.append({"role": "assistant", "content": message["content"]})
        return message

    def answer(self, result: Any = None, is_error: bool = False, refs: list[str] | None = None) -> None:
        use = self.messages[-1]["content"][-1]
        if refs is not None:
            content: Any = [{"type": "tool_reference", "tool_name": n} for n in refs]
            self.loaded += refs
        else:
            text = result if isinstance(result, str) else json.dumps(result)
            content = text + "\n\n<system-reminder>\nnoise\n</system-reminder>"
        block = {"type": "tool_result", "tool_use_id": use["id"], "content": content, "is_error": is_error}
        self.messages.append({"role": "user", "content": [block]})


def call(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert message["stop_reason"] == "tool_use", message
    block = message["content"][-1]
    return block["name"].removeprefix(P), block["input"]


@pytest.mark.parametrize("stream", [True, False])
def test_worker_loads_the_tools_then_claims_progresses_and_completes(model: tuple[ModelApi, str], stream: bool) -> None:
    api, url = model
    conv = Conversation(url, stream)
    name, args = call(conv.ask())
    assert name == "ToolSearch" and args["query"] == "select:" + ",".join(P + t for t in WORKER)
    conv.answer(refs=[P + t for t in WORKER])
    assert call(conv.ask()) == ("whoami", {})
    conv.answer({"name": "B"})
    assert call(conv.ask())[0] == "get_available_tasks"
    conv.answer({"count": 2, "tasks": [{"id": 7}, {"id": 9}]})
    assert call(conv.ask()) == ("claim_task", {"taskId": 7})
    conv.answer("Error executing tool claim_task: task 7 is CLAIMED by C, not AVAILABLE", is_error=True)
    assert call(conv.ask())[0] == "get_available_tasks"  # someone was faster: look again
    conv.answer({"count": 1, "tasks": [{"id": 9}]})
    assert call(conv.ask()) == ("claim_task", {"taskId": 9})
    conv.answer({"claimed": True, "task": {"id": 9}})
    name, args = call(conv.ask())
    assert name == "update_task_progress" and args["completionPercent"] == 50
    conv.answer({"task": {"id": 9}})
    name, args = call(conv.ask())
    assert name == "complete_task" and args["taskId"] == 9 and "agent B" in args["notes"]
    conv.answer({"completed": True, "task": {"id": 9}})
    conv.ask()
    conv.answer({"count": 0, "tasks": []})
    final = conv.ask()
    assert final["stop_reason"] == "end_turn"
    assert final["content"][0]["text"].startswith("Agent B: completed 1 task(s) (#9)")
    assert api.errors == []
    assert api.requests[-1]["tool_results"][0]["tool"] == P + "get_available_tasks"


def test_stall_after_claim_keeps_the_stream_open(model: tuple[ModelApi, str]) -> None:
    api, url = model
    conv = Conversation(url)
    conv.ask()
    conv.answer(refs=[P + t for t in WORKER])
    conv.ask()
    conv.answer({"name": "D"})
    conv.ask()
    conv.answer({"count": 1, "tasks": [{"id": 3}]})
    conv.ask()
    conv.answer({"claimed": True, "task": {"id": 3}})
    body = {"model": "m", "max_tokens": 9, "stream": True, "messages": conv.messages}
    body["tools"] = [{"name": n, "input_schema": SCHEMAS[n]} for n in conv.loaded]
    request = urllib.request.Request(url + "/v1/messages", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        events = [answer.readline().decode() for _ in range(12)]  # message_start, then pings only (~1.5 s)
    names = [line.split(": ", 1)[1].strip() for line in events if line.startswith("event:")]
    assert names == ["message_start", "ping", "ping", "ping"], events
    assert api.requests[-1]["reply"] == {"stall": True}


def test_side_requests_get_a_short_text(model: tuple[ModelApi, str]) -> None:
    api, url = model
    body = {"model": "claude-haiku-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "title?"}]}
    status, text = post(url, body)
    assert status == 200 and json.loads(text)["content"][0]["type"] == "text"
    assert api.requests[-1]["kind"] == "side" and api.errors == []


HI = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"model": "m", "messages": []}, "no 'max_tokens'"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "no messages"),
        ({"model": "m", "max_tokens": 5, "tools": [{"name": "Bash"}], "messages": HI}, "not understood"),
        ({"model": "m", "max_tokens": 5, "tools": [{"name": "ToolSearch"}], "messages": HI}, "does not offer"),
    ],
)
def test_what_it_does_not_understand_is_a_400_and_an_error(model: tuple[ModelApi, str], body: dict, why: str) -> None:
    api, url = model
    status, text = post(url, body)
    assert status == 400 and json.loads(text)["error"]["type"] == "invalid_request_error"
    assert len(api.errors) == 1 and why in api.errors[0]


def test_unknown_paths_are_404_and_an_error_count_tokens_and_hello_are_answered(model: tuple[ModelApi, str]) -> None:
    api, url = model
    assert post(url, {"model": "m", "messages": []}, "/v1/messages/count_tokens")[0] == 200
    with urllib.request.urlopen(urllib.request.Request(url + "/api/hello", method="HEAD"), timeout=5) as answer:
        assert answer.status == 200
    assert api.errors == []
    status, text = post(url, {}, "/v1/models/anything")
    assert status == 404 and json.loads(text)["error"]["type"] == "not_found_error"
    assert api.errors == ["/v1/models/anything: POST /v1/models/anything is not a path the stand-in knows"]
