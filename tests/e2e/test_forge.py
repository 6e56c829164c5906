# SPDX-License-Identifier: Apache-2.0
"""The coordinator's forge clients against stand-ins of the forges' pull-request APIs, over real HTTP.

GitHub's stand-in takes its contract from GitHub's published OpenAPI
description (tests/forge_api): the requests the coordinator sends are
validated against it, and its answers are made from it. GitLab publishes no
such package; its stand-in here follows the merge requests API's documented
fields and answers (POST and GET /projects/:id/merge_requests, 201, 409
for a second open one, 401 without the token).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx2
import pytest
from central_mcp.forge import ForgeError, GitHub, GitLab
from central_mcp.settings import ForgeSpec

from tests.forge_api import Contract, GitHubApi, GitHubApiServer

pytestmark = pytest.mark.e2e
TOKEN = "ghp_" + "e2e" * 12
BRANCHES = {"team/app": {"main": "a" * 40, "central-mcp/1-add-a-page": "b" * 40, "central-mcp/2-nothing": "a" * 40}}


@pytest.fixture
def github(contract: Contract) -> Iterator[GitHubApiServer]:
    server = GitHubApiServer(GitHubApi(contract, TOKEN, BRANCHES.get)).start()
    try:
        yield server
    finally:
        server.stop()
        assert server.api.errors == []  # every answer conformed to GitHub's schemas


def open_pr(forge: GitHub | GitLab, project: str, head: str, base: str = "main") -> str:
    async def run() -> str:
        async with httpx2.AsyncClient(timeout=5) as client:
            return await forge.open(client, project, head, base, "Add a page (task #1)", "Task #1 of the board")

    return asyncio.run(run())


def test_github_opens_the_pull_request_with_the_right_head_and_base(github: GitHubApiServer) -> None:
    forge = GitHub(ForgeSpec("github", github.url, TOKEN))
    url = open_pr(forge, "team/app", "central-mcp/1-add-a-page")
    assert url == "https://github.test/team/app/pull/1"
    (pull,) = github.api.pulls
    assert (pull["head"]["ref"], pull["head"]["sha"], pull["base"]["ref"]) == (
        "central-mcp/1-add-a-page",
        "b" * 40,
        "main",
    )
    assert (pull["title"], pull["body"], pull["state"]) == ("Add a page (task #1)", "Task #1 of the board", "open")
    (request,) = github.api.requests
    sent = json.loads(request["body"])
    assert sent == {"title": pull["title"], "head": "central-mcp/1-add-a-page", "base": "main", "body": pull["body"]}


def test_github_a_second_time_takes_the_open_one_instead_of_failing(github: GitHubApiServer) -> None:
    forge = GitHub(ForgeSpec("github", github.url, TOKEN))
    first = open_pr(forge, "team/app", "central-mcp/1-add-a-page")
    assert open_pr(forge, "team/app", "central-mcp/1-add-a-page") == first
    assert len(github.api.pulls) == 1
    assert github.api.requests[-1]["query"] == "head=team%3Acentral-mcp%2F1-add-a-page&state=open"


@pytest.mark.parametrize(
    ("token", "project", "head", "said"),
    [
        ("ghp_wrong_token", "team/app", "central-mcp/1-add-a-page", "GitHub answered 401: Bad credentials"),
        (TOKEN, "team/other", "central-mcp/1-add-a-page", "GitHub answered 404: Not Found"),
        (TOKEN, "team/app", "central-mcp/9-never-pushed", "GitHub answered 422: Validation Failed; head invalid"),
        (TOKEN, "team/app", "central-mcp/2-nothing", "No commits between main and central-mcp/2-nothing"),
    ],
)
def test_github_refusals_say_why_in_the_forges_words(
    github: GitHubApiServer, token: str, project: str, head: str, said: str
) -> None:
    with pytest.raises(ForgeError) as caught:
        open_pr(GitHub(ForgeSpec("github", github.url, token)), project, head)
    assert said in str(caught.value) and not caught.value.transient
    assert TOKEN not in str(caught.value) and github.api.pulls == []


class GitLabApi(BaseHTTPRequestHandler):
    """GitLab's merge requests API as documented: PRIVATE-TOKEN, the project's path URL-encoded as its id."""

    merge_requests: list[dict[str, Any]] = []

    def _answer(self, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> str | None:
        if self.headers.get("PRIVATE-TOKEN") != TOKEN:
            self._answer(401, {"message": "401 Unauthorized"})
            return None
        path = urlsplit(self.path).path
        prefix, _, rest = path.partition("/api/v4/projects/")
        project, _, tail = rest.partition("/")
        if prefix or tail != "merge_requests" or "/" in project:  # the id is one URL-encoded segment
            self._answer(404, {"message": "404 Not found"})
            return None
        return unquote(project)

    def do_POST(self) -> None:  # noqa: N802 (BaseHTTPRequestHandler's names)
        project = self._route()
        if project is None:
            return
        fields = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mine = [
            m for m in self.merge_requests if m["source_branch"] == fields["source_branch"] and m["state"] == "opened"
        ]
        if mine:
            self._answer(
                409,
                {"message": [f"Another open merge request already exists for this source branch: !{mine[0]['iid']}"]},
            )
            return
        iid = len(self.merge_requests) + 1
        mr = {
            "iid": iid,
            "state": "opened",
            "web_url": f"https://gitlab.test/{project}/-/merge_requests/{iid}",
            **fields,
        }
        self.merge_requests.append(mr)
        self._answer(201, mr)

    def do_GET(self) -> None:  # noqa: N802
        if self._route() is None:
            return
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        self._answer(200, [m for m in self.merge_requests if all(m.get(k) == v for k, v in query.items())])

    def log_message(self, *args: Any) -> None:
        return


def test_gitlab_opens_a_merge_request_once_and_takes_the_open_one_after() -> None:
    GitLabApi.merge_requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), GitLabApi)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        api = f"http://127.0.0.1:{server.server_address[1]}/api/v4"
        forge = GitLab(ForgeSpec("gitlab", api, TOKEN))
        url = open_pr(forge, "team/backend/app", "central-mcp/1-add-a-page")
        assert url == "https://gitlab.test/team/backend/app/-/merge_requests/1"
        assert open_pr(forge, "team/backend/app", "central-mcp/1-add-a-page") == url
        (mr,) = GitLabApi.merge_requests
        assert (mr["source_branch"], mr["target_branch"], mr["title"]) == (
            "central-mcp/1-add-a-page", "main", "Add a page (task #1)",
        )  # fmt: skip
        with pytest.raises(ForgeError, match="GitLab answered 401: 401 Unauthorized"):
            open_pr(GitLab(ForgeSpec("gitlab", api, "glpat-wrong-token")), "team/backend/app", "central-mcp/3-x")
    finally:
        server.shutdown()
        server.server_close()
