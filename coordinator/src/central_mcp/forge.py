# SPDX-License-Identifier: Apache-2.0
"""Pull requests for pushed task branches: GitHub's pulls API or GitLab's merge requests.

The coordinator holds the forge token, never the agents: it comes from
``CENTRAL_MCP_FORGE_FILE`` (a systemd credential, see ``settings``). When a
runtime reports a branch that was pushed with commits, of a repository the
forge file names, the coordinator opens a pull request from the branch into
its base and records its URL in the task's branch record, or why there is
none. Opening is idempotent: when the forge says one is already open for
the branch (an earlier attempt, a restart in between), that one's URL is
taken. Network failures, 429 and 5xx answers are tried again with a pause;
any other refusal (bad token, no such repository, branch unknown) is
recorded as the reason at once. Nothing here ever closes, merges or pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx2

from central_mcp.branches import Branches
from central_mcp.settings import ForgeSpec

log = logging.getLogger(__name__)

TIMEOUT_S = 15.0
RETRIES = 3  # after the first try, for failures that may pass (network, 429, 5xx)
PAUSE_S = 2.0  # before the first retry; one more each time
GITHUB_API_VERSION = "2022-11-28"  # the REST API version the requests and answers here follow


class ForgeError(Exception):
    """The forge did not open the pull request; ``transient`` when trying again may help."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def _refusal(forge: str, answer: httpx2.Response) -> ForgeError:
    """The forge's own words for a refusal (its JSON ``message`` and errors), bounded."""
    try:
        doc = answer.json()
    except ValueError:
        doc = {}
    words: list[str] = []
    if isinstance(doc, dict):
        message = doc.get("message") or doc.get("error")
        words += message if isinstance(message, list) else [str(message)] if message else []
        for error in doc.get("errors") or []:
            if isinstance(error, dict):
                words.append(str(error.get("message") or f"{error.get('field', '')} {error.get('code', '')}".strip()))
            else:
                words.append(str(error))
    said = "; ".join(w for w in words if w) or answer.text[:200] or answer.reason_phrase
    transient = answer.status_code == 429 or answer.status_code >= 500
    return ForgeError(f"{forge} answered {answer.status_code}: {said}"[:1000], transient=transient)


def _first_cause(exc: BaseException) -> str:
    """An HTTP client error with what caused it at the bottom (refused, no such host, timed out), said once."""
    said, seen = str(exc) or type(exc).__name__, {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        exc, cause = cause, cause.__cause__ or cause.__context__
    bottom = str(exc) or type(exc).__name__
    return said if bottom == said or bottom in said else f"{said} ({bottom})"


class GitHub:
    """POST /repos/{owner}/{repo}/pulls; on "already exists", the open one from GET .../pulls?head=owner:branch."""

    name = "GitHub"

    def __init__(self, spec: ForgeSpec) -> None:
        self.api = spec.api_url.rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {spec.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": GITHUB_API_VERSION,
        }

    async def open(self, client: httpx2.AsyncClient, project: str, head: str, base: str, title: str, body: str) -> str:
        url = f"{self.api}/repos/{project}/pulls"
        answer = await client.post(
            url, headers=self.headers, json={"title": title, "head": head, "base": base, "body": body}
        )
        if answer.status_code == 201:
            return str(answer.json()["html_url"])
        if answer.status_code == 422 and "already exists" in answer.text:
            owner = project.split("/", 1)[0]
            listed = await client.get(url, headers=self.headers, params={"head": f"{owner}:{head}", "state": "open"})
            if listed.status_code == 200 and listed.json():
                return str(listed.json()[0]["html_url"])
        raise _refusal(self.name, answer)


class GitLab:
    """POST /projects/{id}/merge_requests; on 409 (one is open for the branch), that one from GET ...?source_branch=."""

    name = "GitLab"

    def __init__(self, spec: ForgeSpec) -> None:
        self.api = spec.api_url.rstrip("/")
        self.headers = {"PRIVATE-TOKEN": spec.token}

    async def open(self, client: httpx2.AsyncClient, project: str, head: str, base: str, title: str, body: str) -> str:
        url = f"{self.api}/projects/{quote(project, safe='')}/merge_requests"
        fields = {"source_branch": head, "target_branch": base, "title": title, "description": body}
        answer = await client.post(url, headers=self.headers, json=fields)
        if answer.status_code == 201:
            return str(answer.json()["web_url"])
        if answer.status_code == 409:
            query = {"source_branch": head, "target_branch": base, "state": "opened"}
            listed = await client.get(url, headers=self.headers, params=query)
            if listed.status_code == 200 and listed.json():
                return str(listed.json()[0]["web_url"])
        raise _refusal(self.name, answer)


def description(task: dict[str, Any], record: dict[str, Any]) -> str:
    """The pull request's text: the task, who worked it, what changed, and the runtime's commit if it made one."""
    lines = [
        f"Task #{task['id']} of the Central-MCP board, worked by agent {record['agent']}: "
        f"{record['commit_count']} commit(s), {record['files_changed']} file(s) changed, "
        f"+{record['insertions']} -{record['deletions']}."
    ]
    if record.get("committed_leftovers"):
        lines.append(
            "The agent left changes uncommitted; its runtime committed them (the last commit) so that none is lost."
        )
    if task.get("description"):
        lines += ["", str(task["description"])[:20000]]
    return "\n".join(lines)


class PullRequests:
    """Opens the pull requests of reported branches, one at a time, in a task of its own (see the module)."""

    def __init__(self, branches: Branches, spec: ForgeSpec, task_of: Callable[[int], dict[str, Any]],
                 published: Callable[[int], None]) -> None:  # fmt: skip
        self.branches, self.spec, self.task_of, self.published = branches, spec, task_of, published
        self.forge = GitHub(spec) if spec.kind == "github" else GitLab(spec)
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def wants(self, record: dict[str, Any]) -> bool:
        """True when this branch gets a pull request: pushed, with commits, of a repository the forge file names."""
        return bool(record["pushed"] and record["commit_count"] > 0 and self.spec.project(record["repo"]))

    def want(self, task_id: int) -> None:
        self.queue.put_nowait(task_id)

    def start(self) -> None:
        for task_id in self.branches.pr_pending():  # asked for before a stop, not yet answered
            self.want(task_id)
        self._task = asyncio.create_task(self._run(), name="central-mcp-pull-requests")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with httpx2.AsyncClient(timeout=TIMEOUT_S) as client:
            while True:
                task_id = await self.queue.get()
                try:
                    await self.branches.store.durable()  # the pushed branch's record is on disk
                    await self.open(client, task_id)
                except Exception:  # one bad record must not end the others' pull requests
                    log.exception("task #%d: opening its pull request failed", task_id)

    async def open(self, client: httpx2.AsyncClient, task_id: int) -> None:
        record = self.branches.record(task_id)
        if record is None or record.get("pr_state") != "opening":
            return
        project = self.spec.project(record["repo"]) or ""
        task = self.task_of(task_id)
        for attempt in range(RETRIES + 1):
            try:
                url = await self.forge.open(
                    client,
                    project,
                    record["branch"],
                    record["base"],
                    f"{task['title']} (task #{task_id})"[:250],
                    description(task, record),
                )
            except (ForgeError, httpx2.HTTPError) as exc:
                transient = not isinstance(exc, ForgeError) or exc.transient
                if transient and attempt < RETRIES:
                    await asyncio.sleep(PAUSE_S * (attempt + 1))
                    continue
                why = str(exc) if isinstance(exc, ForgeError) else f"{self.forge.name} unreachable: {_first_cause(exc)}"
                log.warning("task #%d: no pull request for %s: %s", task_id, record["branch"], why)
                self.branches.set_pr(task_id, record["head"], error=why[:1000])
                break
            log.info("task #%d: pull request %s", task_id, url)
            self.branches.set_pr(task_id, record["head"], url=url)
            break
        self.published(task_id)
