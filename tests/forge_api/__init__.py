# SPDX-License-Identifier: Apache-2.0
"""A stand-in for GitHub's pulls API, its contract read from GitHub's published OpenAPI description.

The description is the ``@octokit/openapi`` npm package (GitHub's
rest-api-description, pinned by the lock in ``npm/``), installed once into
the controller cache. Every request body is validated against the schema
of its operation (``pulls/create``, ``pulls/list``) and every answer is made
from the description's own example, then validated against the answer's
schema before it is sent: a client that passes here speaks GitHub's
documented shapes. Its rough edges are GitHub's: 401 "Bad credentials"
without the token, 404 for an unknown repository, 422 "Validation Failed"
for a head or base branch the repository does not have, for no commits
between them, and for a second pull request of the same head.

The branches come from the test's real git server (``branches``: project ->
{branch: commit}); the pull requests it opened are kept in ``pulls``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

from tests.npm_locks import npm_tree

LOCK = Path(__file__).resolve().parent / "npm"
DOCS = "https://docs.github.com/rest/pulls/pulls"
PULLS = re.compile(r"/repos/(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+)/pulls")


def description() -> dict[str, Any]:
    """GitHub's OpenAPI description of api.github.com, from the pinned npm package."""
    tree = npm_tree(LOCK)
    return json.loads((tree / "node_modules/@octokit/openapi/generated/api.github.com.json").read_text())


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema's null type (jsonschema does not know the keyword)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


class Contract:
    """The pulls operations' schemas and examples, out of the description."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.components = _json_schema(doc["components"])
        self.examples = doc["components"]["examples"]
        path = doc["paths"]["/repos/{owner}/{repo}/pulls"]
        self.create_body = _json_schema(path["post"]["requestBody"]["content"]["application/json"]["schema"])
        assert path["post"]["operationId"] == "pulls/create" and path["get"]["operationId"] == "pulls/list"
        self.list_params = {p.get("name") for p in path["get"]["parameters"]}

    def check(self, value: Any, schema: dict[str, Any]) -> list[str]:
        """What in ``value`` the schema does not allow (empty when it conforms)."""
        validator = jsonschema.Draft4Validator({**schema, "components": self.components})
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"[:300] for e in validator.iter_errors(value)]

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def example(self, name: str) -> Any:
        return copy.deepcopy(self.examples[name]["value"])


class GitHubApi:
    """The state and the rules: repositories with their branches, tokens, pull requests opened."""

    def __init__(self, contract: Contract, token: str, branches: Callable[[str], dict[str, str] | None],
                 web_url: str = "https://github.test") -> None:  # fmt: skip
        self.contract, self.token, self.branches, self.web_url = contract, token, branches, web_url
        self.pulls: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []  # answers that did not conform (the test fails on any)
        self.lock = threading.Lock()

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        url = urlsplit(target)
        self.requests.append({"method": method, "path": url.path, "query": url.query, "body": body.decode()})
        if headers.get("authorization", "") not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, {
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401",
            }
        match = PULLS.fullmatch(url.path)
        if match is None:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}
        project = f"{match['owner']}/{match['repo']}"
        branches = self.branches(project)
        if branches is None:
            return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        with self.lock:
            if method == "POST":
                return self.create(project, branches, body)
            if method == "GET":
                return self.list(project, parse_qs(url.query))
        return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}

    def _invalid(self, *errors: dict[str, Any]) -> tuple[int, Any]:
        return 422, {"message": "Validation Failed", "errors": list(errors), "documentation_url": DOCS, "status": "422"}

    def create(self, project: str, branches: dict[str, str], raw: bytes) -> tuple[int, Any]:
        try:
            fields = json.loads(raw)
        except ValueError:
            return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"}
        problems = self.contract.check(fields, self.contract.create_body)
        if problems:
            return self._invalid(*({"resource": "PullRequest", "code": "invalid", "message": p} for p in problems))
        head = fields["head"].split(":", 1)[-1]
        for name, branch in (("head", head), ("base", fields["base"])):
            if branch not in branches:
                return self._invalid({"resource": "PullRequest", "field": name, "code": "invalid"})
        if branches[head] == branches[fields["base"]]:
            return self._invalid(
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": f"No commits between {fields['base']} and {head}",
                }
            )
        owner = project.split("/")[0]
        if any(p["project"] == project and p["head"]["ref"] == head and p["state"] == "open" for p in self.pulls):
            return self._invalid(
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": f"A pull request already exists for {owner}:{head}.",
                }
            )
        pull = self.contract.example("pull-request")
        number = len(self.pulls) + 1
        api = f"https://api.github.test/repos/{project}/pulls/{number}"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pull.update(
            id=1000 + number, number=number, url=api, html_url=f"{self.web_url}/{project}/pull/{number}",
            state="open", title=fields.get("title", ""), body=fields.get("body"), draft=bool(fields.get("draft")),
            created_at=now, updated_at=now, merged=False, merged_at=None, closed_at=None,
            # a new pull request has no reviewers, assignees, labels or milestone asked for yet
            requested_reviewers=[], requested_teams=[], assignee=None, assignees=[], labels=[], milestone=None,
        )  # fmt: skip
        pull["head"].update(ref=head, sha=branches[head], label=f"{owner}:{head}")
        pull["base"].update(ref=fields["base"], sha=branches[fields["base"]], label=f"{owner}:{fields['base']}")
        self.errors += self.contract.check(pull, self.contract.ref("pull-request"))
        self.pulls.append({**pull, "project": project})
        return 201, pull

    def list(self, project: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        unknown = set(query) - self.contract.list_params
        if unknown:
            self.errors.append(f"pulls/list has no parameter {sorted(unknown)}")
        state = (query.get("state") or ["open"])[0]
        head = (query.get("head") or [""])[0]
        listed = []
        for pull in self.pulls:
            if pull["project"] != project or (state != "all" and pull["state"] != state):
                continue
            if head and head != pull["head"]["label"]:
                continue
            simple = self.contract.example("pull-request-simple-items")[0]
            for key in list(simple):
                if key in pull and key not in ("head", "base"):
                    simple[key] = pull[key]
            simple["head"].update(ref=pull["head"]["ref"], sha=pull["head"]["sha"], label=pull["head"]["label"])
            simple["base"].update(ref=pull["base"]["ref"], sha=pull["base"]["sha"], label=pull["base"]["label"])
            listed.append(simple)
        self.errors += self.contract.check(listed, {"type": "array", "items": self.contract.ref("pull-request-simple")})
        return 200, listed


class GitHubApiServer(ThreadingHTTPServer):
    """The stand-in on 127.0.0.1 (plain HTTP: the coordinator allows it on loopback only)."""

    daemon_threads = True

    def __init__(self, api: GitHubApi) -> None:
        self.api = api
        super().__init__(("127.0.0.1", 0), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> GitHubApiServer:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="github-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: GitHubApiServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, doc = self.server.api.handle(self.command, self.path, headers, body)
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Api-Version-Selected", headers.get("x-github-api-version", "2022-11-28"))
        if status == 201:
            self.send_header("Location", doc["url"])
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer  # noqa: N815 (BaseHTTPRequestHandler's names)

    def log_message(self, *args: Any) -> None:  # the test reads api.requests instead
        return
