# SPDX-License-Identifier: Apache-2.0
"""What the scripted model says next, read from the conversation the CLI sends.

Claude Code sends the whole conversation with every request. The script finds
the last tool call and the result the CLI sent back for it and decides the
next step from that alone (never from a per-process counter), so any number
of agents can talk to one stand-in at once and a request can be replayed.

The ``worker`` script is an agent's work loop on the coordinator:

    ToolSearch (load the deferred MCP tools, as a real model must)
    -> whoami -> get_available_tasks -> claim_task(first id)
    -> update_task_progress(50 %) -> complete_task(notes naming the agent)
    -> get_available_tasks -> ... until none is left -> a final text.

When the first prompt names one task (the worker runtime's task prompt:
"You are agent A, ... Your task is #12: ..."), the script works that task
only, as a real model would: it loads the tools it needs, reports progress,
completes the task and ends its turn with a final text. A failed tool call
is answered like a model answers it: retried once, then reported in a final
text (never an HTTP error).

A :class:`Policy`, chosen by the agent's name, lets an agent poll while idle,
stop after some tasks, stall right after a claim (so a test can kill it while
it holds a task), or work quietly for a while before it reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

SERVER = "central-mcp"  # the name the launcher registers the coordinator under
MCP_PREFIX = f"mcp__{SERVER}__"
WORKER_TOOLS = ("whoami", "get_available_tasks", "claim_task", "update_task_progress", "complete_task")
DEFERRED_MARKER = "deferred tools are now available via ToolSearch"
CONNECTING_MARKER = "MCP servers are still connecting"
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_CALLS = 400  # a conversation longer than this is a runaway loop, not work
TASK_PROMPT_RE = re.compile(r"You are agent (?P<agent>[A-Za-z][A-Za-z0-9_-]*)\b.*?Your task is #(?P<task>\d+)", re.S)
TASK_TOOLS = ("update_task_progress", "complete_task")
SHELL_TOOL = "Bash"  # Claude Code's shell tool: how a model edits and commits files
RETRIES = 1  # a failed tool call is tried once more, then reported


class ScriptError(Exception):
    """The request is not one the script can answer; the server turns it into HTTP 400 and records it."""


@dataclass(frozen=True)
class Policy:
    """How one agent behaves beyond the plain work loop.

    ``idle_polls``: how many empty ``get_available_tasks`` answers in a row the
    agent accepts (waiting ``poll_s`` before each new poll) before it stops.
    ``max_tasks``: stop after completing this many (0: no limit).
    ``stall_after_claim``: after a successful claim, answer nothing more (the
    HTTP stream stays open with pings) until the client goes away.
    ``think_s``: pause before every answer, as a real model takes time (so
    that concurrent agents really interleave instead of one taking all).
    ``probe_tool``: right after ``whoami``, call this coordinator tool once (no
    arguments) whatever its answer, e.g. one outside the agent's grant.
    ``quiet_s``: on a task prompt, work this long in silence (no tool call,
    as in a long build) before the first progress report.
    ``complete_task``: on a task prompt, False ends the turn with a text
    after the progress report, without completing the task.
    ``shell``: on a task prompt, after the progress report, run these
    commands one by one with the CLI's shell tool (Bash), as a model edits
    and commits files; ``{task_id}`` and ``{agent}`` in them are filled in.
    """

    idle_polls: int = 0
    poll_s: float = 0.5
    max_tasks: int = 0
    stall_after_claim: bool = False
    think_s: float = 0.0
    probe_tool: str = ""
    quiet_s: float = 0.0
    complete_task: bool = True
    shell: tuple[str, ...] = ()


@dataclass
class ToolCall:
    """One ``tool_use`` block of the assistant and the ``tool_result`` the CLI sent back for it."""

    id: str
    name: str
    input: dict[str, Any]
    answered: bool = False
    is_error: bool = False
    text: str = ""
    references: list[str] = field(default_factory=list)

    @property
    def short(self) -> str:
        """The coordinator's own tool name (``claim_task``) for an MCP tool, else the name itself."""
        return self.name.removeprefix(MCP_PREFIX)

    def json(self) -> Any:
        """The coordinator's answer, which the MCP SDK sends as JSON text.

        The CLI may append its own ``<system-reminder>`` text after it, so only
        the leading JSON document is read.
        """
        try:
            return json.JSONDecoder().raw_decode(self.text.lstrip())[0]
        except ValueError:
            raise ScriptError(f"result of {self.name} is not the coordinator's JSON: {self.text[:300]!r}") from None


@dataclass
class Step:
    """The model's next message: a tool call, a final text, or a stall; ``delay_s`` first."""

    tool: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    stall: bool = False
    delay_s: float = 0.0


def block_text(content: Any) -> str:
    """The text of a tool_result's content (a string, or a list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def listed_after(content: Any, marker: str) -> list[str]:
    """Names the CLI lists one per line after a sentence containing ``marker`` (in any text block)."""
    texts = [content] if isinstance(content, str) else [block_text([b]) for b in content or [] if isinstance(b, dict)]
    names: list[str] = []
    for text in texts:
        _, found, rest = text.partition(marker)
        if not found:
            continue
        for line in rest.split("\n")[1:]:
            if not TOOL_NAME_RE.match(line):
                break
            names.append(line)
    return names


class Conversation:
    """One Messages API request body, read as a conversation: tools offered and loaded, calls and results."""

    def __init__(self, body: dict[str, Any]) -> None:
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise ScriptError("request has no messages")
        self.model = str(body.get("model") or "")
        tools = body.get("tools") or []
        if not isinstance(tools, list) or not all(isinstance(t, dict) and "name" in t for t in tools):
            raise ScriptError("'tools' must be a list of objects with a name")
        self.schemas = {t["name"]: t.get("input_schema") or {} for t in tools}
        deferred = {t["name"] for t in tools if t.get("defer_loading")}
        # Deferred tools are announced by name only, in a system turn, until ToolSearch loads them.
        announced = [n for m in body["messages"] for n in listed_after(m.get("content"), DEFERRED_MARKER)]
        self.offered = [t["name"] for t in tools] + [n for n in dict.fromkeys(announced) if n not in self.schemas]
        # MCP servers still connecting when the turn started: ToolSearch waits for them (the CLI says so).
        self.connecting = [n for m in body["messages"] for n in listed_after(m.get("content"), CONNECTING_MARKER)]
        self.calls: list[ToolCall] = []
        self.first_text = ""
        by_id: dict[str, ToolCall] = {}
        for message in body["messages"]:
            role, content = message.get("role"), message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(blocks, list):
                raise ScriptError(f"message content of role {role!r} is neither text nor a list of blocks")
            for block in blocks:
                kind = block.get("type")
                if role == "user" and kind == "text" and not self.calls:
                    self.first_text += str(block.get("text", "")) + "\n"
                if role == "assistant" and kind == "tool_use":
                    call = ToolCall(block["id"], block["name"], block.get("input") or {})
                    by_id[call.id] = call
                    self.calls.append(call)
                elif role == "user" and kind == "tool_result":
                    call = by_id.get(block.get("tool_use_id", ""))
                    if call is None:
                        raise ScriptError(f"tool_result for unknown tool_use_id {block.get('tool_use_id')!r}")
                    call.answered, call.is_error = True, bool(block.get("is_error"))
                    call.text = block_text(block.get("content"))
                    if isinstance(block.get("content"), list):
                        call.references = [
                            b["tool_name"] for b in block["content"] if b.get("type") == "tool_reference"
                        ]
        referenced = {name for call in self.calls for name in call.references}
        # A deferred tool is callable once a ToolSearch result referenced it (tool search, as the API does it).
        self.loaded = [n for n in self.schemas if n not in deferred or n in referenced]
        self.is_main = "ToolSearch" in self.offered or any(n.startswith(MCP_PREFIX) for n in self.offered)

    @property
    def last(self) -> ToolCall | None:
        """The most recent tool call, which must have its result by now (the CLI sends it before asking again)."""
        if not self.calls:
            return None
        if not self.calls[-1].answered:
            raise ScriptError(f"the CLI asked again without sending the result of {self.calls[-1].name}")
        return self.calls[-1]

    @property
    def task_prompt(self) -> tuple[str, int] | None:
        """(agent, task id) when the conversation started from a worker runtime's task prompt."""
        match = TASK_PROMPT_RE.search(self.first_text)
        return (match["agent"], int(match["task"])) if match else None

    @property
    def agent(self) -> str | None:
        """The agent's name, as the coordinator told it in the answer to ``whoami`` (identity from the token)."""
        if self.task_prompt:
            return self.task_prompt[0]
        for call in self.calls:
            if call.short == "whoami" and call.answered and not call.is_error:
                return str(call.json().get("name"))
        return None

    def completed(self) -> list[int]:
        """Task ids this conversation completed (successful complete_task calls)."""
        done = [c for c in self.calls if c.short == "complete_task" and c.answered and not c.is_error]
        return [c.json()["task"]["id"] for c in done]

    def empty_polls(self) -> int:
        """How many empty get_available_tasks answers in a row end the conversation."""
        count = 0
        for call in reversed(self.calls):
            if call.short != "get_available_tasks" or call.json().get("count"):
                break
            count += 1
        return count

    def load(self, tools: list[str]) -> Step:
        """A ToolSearch for deferred tools by name, as a model loads the MCP tools it needs."""
        return self.call("ToolSearch", {"query": "select:" + ",".join(tools), "max_results": len(tools)})

    def call(self, tool: str, arguments: dict[str, Any], delay_s: float = 0.0, builtin: bool = False) -> Step:
        """A call of ``tool``, checked as a model would: the tool is loaded and the required arguments are there.

        ``tool`` is a coordinator tool, unless ``builtin`` (one of the CLI's own, such as Bash)."""
        name = tool if tool == "ToolSearch" or builtin else MCP_PREFIX + tool
        if name not in self.loaded:
            raise ScriptError(f"tool {name} is not loaded in this request (offered: {self.offered})")
        missing = [k for k in self.schemas[name].get("required", []) if k not in arguments]
        unknown = [k for k in arguments if k not in self.schemas[name].get("properties", {})]
        if missing or unknown:
            raise ScriptError(f"arguments for {name} do not fit its schema: missing {missing}, unknown {unknown}")
        return Step(tool=name, input=arguments, delay_s=delay_s)


def worker(conv: Conversation, policies: dict[str, Policy], default: Policy) -> Step:
    """The next step of an agent's work loop (see the module docstring), after the agent's thinking time."""
    if len(conv.calls) > MAX_CALLS:
        raise ScriptError(f"conversation has {len(conv.calls)} tool calls: a runaway loop")
    agent = conv.agent
    policy = policies.get(agent or "", default)
    step = task_step(conv, agent, policy) if conv.task_prompt else work_step(conv, agent, policy)
    step.delay_s += policy.think_s
    return step


def work_step(conv: Conversation, agent: str | None, policy: Policy) -> Step:
    """The work loop itself: what to call next, from the last tool call and the result the CLI sent back."""
    wanted = [MCP_PREFIX + t for t in (*WORKER_TOOLS, *([policy.probe_tool] if policy.probe_tool else []))]
    last = conv.last
    missing = [n for n in wanted if n not in conv.loaded]
    if missing:
        not_offered = [n for n in missing if n not in conv.offered]
        if not_offered and SERVER not in conv.connecting:
            raise ScriptError(f"the CLI does not offer {not_offered}: is the central-mcp server connected?")
        if last is not None and last.name == "ToolSearch":
            raise ScriptError(f"ToolSearch answered but did not load {missing}: {last.text[:300]!r}")
        return conv.load(missing)
    if last is None or last.name == "ToolSearch":
        return conv.call("whoami", {})
    if last.short == "whoami":
        if last.is_error or not agent:
            raise ScriptError(f"whoami failed: {last.text[:300]!r}")
        if policy.probe_tool and not any(c.short == policy.probe_tool for c in conv.calls):
            return conv.call(policy.probe_tool, {})
        return conv.call("get_available_tasks", {})
    if policy.probe_tool and last.short == policy.probe_tool:
        return conv.call("get_available_tasks", {})  # refused or not: on with the work
    if last.short == "get_available_tasks":
        if last.is_error:
            raise ScriptError(f"get_available_tasks failed: {last.text[:300]!r}")
        tasks = last.json().get("tasks") or []
        if tasks:
            return conv.call("claim_task", {"taskId": tasks[0]["id"]})
        if conv.empty_polls() <= policy.idle_polls:
            return conv.call("get_available_tasks", {}, delay_s=policy.poll_s)
        return finish(conv, agent)
    task_id = last.input.get("taskId")
    if last.short == "claim_task":
        if last.is_error:
            if "not AVAILABLE" in last.text:  # another agent was faster: pick another task
                return conv.call("get_available_tasks", {})
            raise ScriptError(f"claim_task failed: {last.text[:300]!r}")
        if policy.stall_after_claim:
            return Step(stall=True)
        notes = f"agent {agent}: half way through task #{task_id}"
        progress = {"taskId": task_id, "status": "IN_PROGRESS", "completionPercent": 50, "notes": notes}
        return conv.call("update_task_progress", progress)
    if last.short in ("update_task_progress", "complete_task") and last.is_error:
        if "only the claimer" in last.text:  # handed back while we worked on it: start over
            return conv.call("get_available_tasks", {})
        raise ScriptError(f"{last.short} failed: {last.text[:300]!r}")
    if last.short == "update_task_progress":
        notes = f"Done by agent {agent} through its real agent CLI."
        return conv.call("complete_task", {"taskId": task_id, "filesCreated": [], "notes": notes})
    if last.short == "complete_task":
        if policy.max_tasks and len(conv.completed()) >= policy.max_tasks:
            return finish(conv, agent)
        return conv.call("get_available_tasks", {})
    raise ScriptError(f"the worker script has no step after a call of {last.name}")


def task_step(conv: Conversation, agent: str | None, policy: Policy) -> Step:
    """One task, as a real model works it: load the tools, report, complete, end the turn with a text."""
    _, task_id = conv.task_prompt or ("", 0)
    wanted = [MCP_PREFIX + t for t in TASK_TOOLS]
    missing = [n for n in wanted if n not in conv.loaded]
    last = conv.last
    if missing:
        if last is not None and last.name == "ToolSearch":
            return Step(text=f"I could not load the coordinator's tools ({', '.join(missing)}); stopping.")
        return conv.load(missing)
    if policy.stall_after_claim:
        return Step(stall=True)
    if last is not None and last.is_error:
        tries = sum(1 for c in conv.calls if c.name == last.name and c.input == last.input)
        if tries <= RETRIES:
            return conv.call(last.short, last.input, delay_s=0.5)  # once more, as a model would
        return Step(text=f"Agent {agent}: {last.short} for task #{task_id} failed twice: {last.text[:300]}. Stopping.")
    if last is None or last.name == "ToolSearch":
        notes = f"agent {agent}: half way through task #{task_id}"
        progress = {"taskId": task_id, "status": "IN_PROGRESS", "completionPercent": 50, "notes": notes}
        return conv.call("update_task_progress", progress, delay_s=policy.quiet_s)  # silent while it "builds"
    if last.short == "update_task_progress" or last.name == SHELL_TOOL:
        ran = sum(1 for c in conv.calls if c.name == SHELL_TOOL and not c.is_error)
        if ran < len(policy.shell):
            command = policy.shell[ran].format(task_id=task_id, agent=agent)
            return conv.call(SHELL_TOOL, {"command": command, "description": "Work on the task"}, builtin=True)
        if not policy.complete_task:
            return Step(text=f"Agent {agent}: I worked on task #{task_id} but did not finish it. Ending my turn.")
        notes = f"Done by agent {agent} through its real agent CLI (worker runtime)."
        return conv.call("complete_task", {"taskId": task_id, "filesCreated": [], "notes": notes})
    if last.short == "complete_task":
        return Step(text=f"Agent {agent}: task #{task_id} is complete. Ending my turn.")
    raise ScriptError(f"the task script has no step after a call of {last.name}")


def finish(conv: Conversation, agent: str | None) -> Step:
    """The final answer: what this run did, which the CLI prints."""
    done = conv.completed()
    listing = ", ".join(f"#{i}" for i in done) or "none"
    return Step(text=f"Agent {agent}: completed {len(done)} task(s) ({listing}); no open task left. Stopping.")


def hello(conv: Conversation, policies: dict[str, Policy], default: Policy) -> Step:
    """A model that only answers in text: enough to check that the CLI starts and reaches the API."""
    return Step(text=f"Hello from the scripted model ({len(conv.offered)} tools offered).")


SCRIPTS = {"worker": worker, "hello": hello}


def side_answer(body: dict[str, Any]) -> Step:
    """A side request of the CLI (no tools: a title, a summary, a quota check): a short text, as a model would."""
    return Step(text="Agent work loop")
