# SPDX-License-Identifier: Apache-2.0
"""The two other wire formats, as far as the Codex and Gemini CLIs need them.

Each request is read into the same :class:`~.script.Conversation` the worker
script understands (tool names in the canonical ``mcp__central-mcp__<tool>``
form), and the script's :class:`~.script.Step` is written back in the CLI's
own streaming format:

- OpenAI Responses API (Codex, ``wire_api = "responses"``): ``POST
  /v1/responses`` with ``input`` items (``function_call`` /
  ``function_call_output``); MCP tools are offered inside a ``namespace`` tool
  named ``mcp__<server>`` (``-`` becomes ``_``), and a call names that
  namespace. Answered as SSE ``response.created``, ``response.output_item.done``,
  ``response.completed``.
- Gemini API (Gemini CLI): ``POST /v1beta/models/<model>:streamGenerateContent?alt=sse``
  with ``contents`` (``functionCall`` / ``functionResponse`` parts); MCP tools
  are ``functionDeclarations`` named ``mcp_<server>_<tool>``. Answered as SSE
  ``data:`` chunks of ``GenerateContentResponse``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .script import MCP_PREFIX, SERVER, Conversation, ScriptError, Step, ToolCall

CODEX_NAMESPACE = "mcp__" + SERVER.replace("-", "_")
GEMINI_PREFIX = f"mcp_{SERVER}_"


def _output_text(output: Any) -> str:
    """A function_call_output's output: a string, or content items with text."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(str(i.get("text", "")) for i in output if isinstance(i, dict))
    if isinstance(output, dict):
        return str(output.get("content") or output.get("text") or json.dumps(output))
    return ""


class _Translated(Conversation):
    """A Conversation filled from another wire format (no ToolSearch: every offered tool is loaded)."""

    def __init__(  # noqa: D107
        self, model: str, schemas: dict[str, dict[str, Any]], calls: list[ToolCall], first_text: str = ""
    ) -> None:
        self.model = model
        self.first_text = first_text  # what the user said before the first tool call (a task prompt?)
        self.schemas = schemas
        self.offered = list(schemas)
        self.loaded = list(schemas)
        self.connecting: list[str] = []
        self.calls = calls
        self.is_main = any(n.startswith(MCP_PREFIX) for n in self.offered)


# ------------------------------------------------------------------ Responses API (Codex)
def codex_conversation(body: Any) -> Conversation:
    """Read a Responses API request body the way the worker script reads a Messages API one."""
    if not isinstance(body, dict) or not isinstance(body.get("input"), list):
        raise ScriptError("responses request has no 'input' list")
    schemas: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools") or []:
        if tool.get("type") == "namespace" and tool.get("name") == CODEX_NAMESPACE:
            for inner in tool.get("tools") or []:
                schemas[MCP_PREFIX + inner["name"]] = inner.get("parameters") or {}
        elif tool.get("type") == "function" and tool.get("name"):
            schemas[tool["name"]] = tool.get("parameters") or {}
    calls: list[ToolCall] = []
    by_id: dict[str, ToolCall] = {}
    first_text = ""
    for item in body["input"]:
        kind = item.get("type")
        if kind == "message" and item.get("role") == "user" and not calls:
            first_text += _output_text(item.get("content")) + "\n"
        elif kind == "function_call":
            name = item.get("name", "")
            if item.get("namespace") == CODEX_NAMESPACE:
                name = MCP_PREFIX + name
            try:
                arguments = json.loads(item.get("arguments") or "{}")
            except ValueError:
                raise ScriptError(f"function_call {name} has arguments that are not JSON") from None
            call = ToolCall(item.get("call_id", ""), name, arguments)
            by_id[call.id] = call
            calls.append(call)
        elif kind == "function_call_output":
            call = by_id.get(item.get("call_id", ""))
            if call is None:
                raise ScriptError(f"function_call_output for unknown call_id {item.get('call_id')!r}")
            output = item.get("output")
            # Codex puts "Wall time: 0.02 seconds\nOutput:\n" before what the MCP server answered.
            text = _output_text(output)
            head, found, rest = text.partition("Output:\n")
            call.answered, call.text = True, rest if found and head.startswith("Wall time:") else text
            # Codex marks a failed MCP call in the output object, or sends the error text itself.
            call.is_error = bool(isinstance(output, dict) and output.get("success") is False)
            if not call.is_error and call.text.lstrip()[:1] not in ("{", "["):
                call.is_error = True  # the coordinator answers JSON; anything else is an error text
    return _Translated(str(body.get("model") or ""), schemas, calls, first_text)


def codex_item(step: Step) -> dict[str, Any]:
    """The output item for a step: a function call naming the MCP namespace, or an assistant message."""
    if step.tool:
        name, namespace = step.tool, None
        if name.startswith(MCP_PREFIX):
            name, namespace = name.removeprefix(MCP_PREFIX), CODEX_NAMESPACE
        item = {
            "type": "function_call",
            "id": f"fc_{uuid.uuid4().hex[:24]}",
            "call_id": f"call_{uuid.uuid4().hex[:24]}",
            "name": name,
            "arguments": json.dumps(step.input),
            "status": "completed",
        }
        return {**item, "namespace": namespace} if namespace else item
    content = [{"type": "output_text", "text": step.text, "annotations": []}]
    return {"type": "message", "id": f"msg_{uuid.uuid4().hex[:24]}", "role": "assistant", "content": content}


def codex_events(step: Step, model: str, body_size: int) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events of one streamed response (name, data)."""
    response_id = f"resp_{uuid.uuid4().hex[:24]}"
    item = codex_item(step)
    usage = {
        "input_tokens": max(1, body_size // 4),
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 8,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": max(1, body_size // 4) + 8,
    }
    base = {"id": response_id, "object": "response", "model": model}
    events = [
        ("response.created", {"type": "response.created", "response": {**base, "status": "in_progress"}}),
        ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item}),
    ]
    if not step.tool:
        delta = {"type": "response.output_text.delta", "item_id": item["id"], "output_index": 0, "delta": step.text}
        events.append(("response.output_text.delta", {**delta, "content_index": 0}))
    events += [
        ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
        (
            "response.completed",
            {"type": "response.completed", "response": {**base, "status": "completed", "usage": usage}},
        ),
    ]
    return events


# ------------------------------------------------------------------ Gemini API
def gemini_conversation(body: Any, model: str) -> Conversation:
    """Read a generateContent request body the way the worker script reads a Messages API one."""
    if not isinstance(body, dict) or not isinstance(body.get("contents"), list):
        raise ScriptError("generateContent request has no 'contents' list")

    def canonical(name: str) -> str:
        return MCP_PREFIX + name.removeprefix(GEMINI_PREFIX) if name.startswith(GEMINI_PREFIX) else name

    schemas = {
        canonical(f["name"]): f.get("parametersJsonSchema") or f.get("parameters") or {}
        for tool in body.get("tools") or []
        for f in tool.get("functionDeclarations") or []
    }
    calls: list[ToolCall] = []
    first_text = ""
    for content in body["contents"]:
        for part in content.get("parts") or []:
            if content.get("role") == "user" and isinstance(part.get("text"), str) and not calls:
                first_text += part["text"] + "\n"
            elif "functionCall" in part:
                fc = part["functionCall"]
                calls.append(ToolCall(fc.get("id") or "", canonical(fc.get("name", "")), fc.get("args") or {}))
            elif "functionResponse" in part:
                fr = part["functionResponse"]
                # Results pair with the oldest unanswered call of that name (ids are optional in this API).
                name = canonical(fr.get("name", ""))
                call = next((c for c in calls if not c.answered and c.name == name), None)
                if call is None:
                    raise ScriptError(f"functionResponse for {name} without a functionCall")
                response = fr.get("response") or {}
                call.answered = True
                call.is_error = "error" in response
                text = _gemini_text(response.get("error") if call.is_error else response).strip()
                # The CLI wraps what an MCP server said in <untrusted_context> (for the model's safety).
                call.text = text.removeprefix("<untrusted_context>").removesuffix("</untrusted_context>").strip()
                if not call.is_error and call.text[:1] not in ("{", "["):
                    call.is_error = True  # the coordinator answers JSON; anything else is an error text
    return _Translated(model, schemas, calls, first_text)


def _gemini_text(value: Any) -> str:
    """The text of a functionResponse: the CLI wraps the MCP result (``output``, or content parts)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("output", "content", "message"):
            if key in value:
                return _gemini_text(value[key])
        return json.dumps(value)
    if isinstance(value, list):
        return "".join(_gemini_text(v.get("text", v) if isinstance(v, dict) else v) for v in value)
    return str(value)


def gemini_chunk(step: Step, model: str, body_size: int) -> dict[str, Any]:
    """One GenerateContentResponse holding the whole step (a function call, or text)."""
    if step.tool:
        name = step.tool
        if name.startswith(MCP_PREFIX):
            name = GEMINI_PREFIX + name.removeprefix(MCP_PREFIX)
        part: dict[str, Any] = {"functionCall": {"name": name, "args": step.input}}
    else:
        part = {"text": step.text}
    prompt = max(1, body_size // 4)
    return {
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": 8, "totalTokenCount": prompt + 8},
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:24],
    }
