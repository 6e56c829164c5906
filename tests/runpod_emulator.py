# SPDX-License-Identifier: Apache-2.0
"""A local stand-in for RunPod's REST API v2 (pods), for the runpod inventory plugin and runpod_pod.

RunPod cannot be reached from the test bed. This server keeps real state and
answers as RunPod's v2 API documents it, rough edges included:

* ``GET /v2/pods`` answers ``{"pods": [...]}``: no filters, no pages;
* a pod goes PROVISIONING -> STARTING -> RUNNING over configurable times;
  ``stop`` makes it EXITED (``cost`` 0, ``runtime`` null, ``ssh.direct`` null:
  no address while stopped), ``start`` brings it back with a *new* public
  port for 22/tcp, as a pod that starts again does;
* ``POST /v2/pods/{id}/action`` refuses an action its status does not allow
  (or a stop of a locked pod) with 409 (RUNNING: stop, restart, terminate; EXITED and ERROR: start,
  terminate; PROVISIONING and STARTING: stop, terminate), an unknown action or
  an extra field with 422; ``terminate`` and ``DELETE`` answer 204, and the pod
  is gone (404 after);
* errors are RFC 9457 problem documents (``application/problem+json``:
  title, status, detail, errors); a missing or wrong bearer key is 401;
* every authenticated answer carries ``RateLimit`` headers, and ``fail_next``
  injects 429 (with ``Retry-After``) or 5xx answers.

``on_state(pod, status)`` is called at each change, so a test can mirror a
pod onto a container (start, stop, wipe its disk). Nothing outside tests/
may import it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ALLOWED = {
    "RUNNING": ("stop", "restart", "terminate"),
    "EXITED": ("start", "terminate"),
    "ERROR": ("start", "terminate"),
    "PROVISIONING": ("stop", "terminate"),
    "STARTING": ("stop", "terminate"),
}
TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity",
          429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip
CREATE_FIELDS = {"name", "image", "args", "disk", "ports", "env", "registry", "cloud", "dataCenterIds",
                 "globalNetworking", "gpu", "cpu", "mounts", "startSsh", "startJupyter", "templateId"}  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Problem(Exception):
    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


class RunPod:
    """The account's pods and the rules they follow."""

    def __init__(self, api_key: str, boot_s: float = 0.2, price: float = 0.44, ip: str = "127.0.0.1") -> None:
        self.api_key = api_key
        self.boot_s = boot_s  # PROVISIONING/STARTING -> RUNNING
        self.price = price  # US dollars an hour while running
        self.ip = ip
        self.pods: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self.failures: list[tuple[int, int | None, str | None]] = []  # answers to give instead of the next ones
        self.on_state: Callable[[dict[str, Any], str], None] | None = None
        self._ports = itertools.count(40022)
        self._port_for: Callable[[dict[str, Any]], int] | None = None

    # -- what a test does ----------------------------------------------------------

    def add_pod(self, name: str, status: str = "RUNNING", gpu: str | None = "NVIDIA GeForce RTX 4090", **extra) -> str:
        pod_id = secrets.token_hex(7)
        pod = self._new(pod_id, {"name": name, "image": "localhost/central-mcp-pod:bookworm", "ports": ["22/tcp"],
                                 "gpu": {"id": gpu, "count": 1} if gpu else None, **extra})  # fmt: skip
        with self.lock:
            self.pods[pod_id] = pod
            self._set(pod, status)
        return pod_id

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None, method: str | None = None) -> None:
        """Answer ``status`` instead of the next ``count`` requests (of ``method`` only, when given)."""
        self.failures += [(status, retry_after, method)] * count

    def port_for(self, choose: Callable[[dict[str, Any]], int]) -> None:
        """Where a pod's 22/tcp is published at its next starts (default: a new port each start)."""
        self._port_for = choose

    # -- the pods' life --------------------------------------------------------------

    def _new(self, pod_id: str, body: dict[str, Any]) -> dict[str, Any]:
        gpu = body.get("gpu")
        proxy_user = f"{pod_id}-{secrets.token_hex(4)}"  # RunPod's proxy routes by this name, not a user of the pod
        return {
            "id": pod_id, "name": body["name"], "status": "PROVISIONING", "actions": [], "image": body.get("image"),
            "args": body.get("args", ""), "disk": body.get("disk", 20), "ports": body.get("ports", []),
            "env": body.get("env", {}), "registry": body.get("registry"),
            "mounts": body.get("mounts") or {"persistent": {"size": 20, "path": "/workspace"}},
            **({"gpu": {"id": gpu["id"], "count": gpu.get("count", 1)}} if gpu else {}),
            "cloud": body.get("cloud", "SECURE"), "dataCenterId": "US-KS-2", "cudaVersion": "12.8" if gpu else None,
            "ssh": {"proxy": {"host": "ssh.runpod.io", "port": 22, "username": proxy_user,
                              "command": f"ssh {proxy_user}@ssh.runpod.io"}, "direct": None},
            "template": None, "cost": 0.0, "locked": False, "globalNetworking": {"enabled": False}, "runtime": None,
            "createdAt": _now(), "startedAt": None, "_up_at": 0.0,
        }  # fmt: skip

    def _set(self, pod: dict[str, Any], status: str) -> None:
        pod["status"] = status
        pod["actions"] = list(ALLOWED.get(status, ()))
        if status in ("PROVISIONING", "STARTING"):
            pod["_up_at"] = time.monotonic() + self.boot_s
            pod["cost"] = self.price
        if status == "RUNNING":
            pod["startedAt"] = _now()
            port = self._port_for(pod) if self._port_for else next(self._ports)
            exposed = "22/tcp" in pod["ports"]
            published = [{"private": 22, "public": port, "type": "tcp", "ip": self.ip}] if exposed else []
            pod["runtime"] = {"uptime": 0, "ports": published}
            pod["ssh"]["direct"] = (
                {"host": self.ip, "port": port, "username": "root", "command": f"ssh root@{self.ip} -p {port}"}
                if exposed
                else None
            )
            pod["cost"] = self.price
        if status in ("EXITED", "ERROR"):
            pod["runtime"], pod["ssh"]["direct"], pod["cost"] = None, None, 0.0
        if self.on_state is not None:
            self.on_state(pod, status)

    def _tick(self) -> None:
        """Booting pods whose time has come are RUNNING."""
        for pod in self.pods.values():
            if pod["status"] in ("PROVISIONING", "STARTING") and time.monotonic() >= pod["_up_at"]:
                self._set(pod, "RUNNING")

    @staticmethod
    def view(pod: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in pod.items() if not k.startswith("_")}

    # -- the API ---------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        with self.lock:
            self._tick()
            parts = path.split("?")[0].strip("/").split("/")
            if parts[:2] != ["v2", "pods"]:
                raise Problem(404, "resource not found")
            if len(parts) == 2 and method == "GET":
                return 200, {"pods": [self.view(p) for p in self.pods.values()]}
            if len(parts) == 2 and method == "POST":
                return 201, self.view(self._create(body))
            pod = self.pods.get(parts[2]) if len(parts) >= 3 else None
            if pod is None:
                raise Problem(404, "pod not found")
            if len(parts) == 3 and method == "GET":
                return 200, self.view(pod)
            if len(parts) == 3 and method == "DELETE":
                return self._action(pod, "terminate")
            if len(parts) == 4 and parts[3] == "action" and method == "POST":
                if not isinstance(body, dict) or set(body) != {"action"} or body["action"] not in (
                    "start", "stop", "restart", "terminate"
                ):  # fmt: skip
                    raise Problem(422, "Request validation failed.", [f"$: invalid action request {body!r}"])
                return self._action(pod, body["action"])
            raise Problem(404, "resource not found")

    def _create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Problem(422, "Request validation failed.", ["$: expected an object"])
        extra = sorted(set(body) - CREATE_FIELDS)
        if extra:
            raise Problem(422, "Request validation failed.", [f"$: additional properties {extra} not allowed"])
        if not body.get("name") or not (body.get("image") or body.get("templateId")):
            raise Problem(422, "Request validation failed.", ["$: name and image are required"])
        if bool(body.get("gpu")) == bool(body.get("cpu")):
            raise Problem(400, "exactly one of gpu or cpu must be given")
        pod = self._new(secrets.token_hex(7), body)
        self.pods[pod["id"]] = pod
        self._set(pod, "PROVISIONING")
        return pod

    def _action(self, pod: dict[str, Any], action: str) -> tuple[int, Any]:
        if action not in ALLOWED.get(pod["status"], ()):
            raise Problem(409, f"action {action} is not valid for a pod that is {pod['status']}")
        if pod["locked"] and action in ("stop", "restart"):  # RunPod gives no code for it: 409, as for a state
            raise Problem(409, f"pod {pod['id']} is locked: unlock it to {action} it")
        if action == "terminate":
            self._set(pod, "TERMINATED")
            del self.pods[pod["id"]]
            return 204, None
        if action == "stop":
            self._set(pod, "EXITED")
        elif action == "start":
            self._set(pod, "STARTING")
        else:  # restart: the container again, same port
            pod["runtime"]["uptime"] = 0
        return 200, self.view(pod)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        return

    def _answer(self, status: int, doc: Any, headers: dict[str, str] | None = None, problem: bool = False) -> None:
        raw = json.dumps(doc).encode() if doc is not None else b""
        self.send_response(status)
        kind = "application/problem+json" if problem else "application/json"
        for key, value in {**({"Content-Type": kind} if raw else {}), **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _serve(self, method: str) -> None:
        api = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with api.lock:
            api.requests.append((method, self.path))
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") != api.api_key:
            detail = "missing bearer token" if not auth else "invalid bearer token"
            self._answer(401, {"title": "Unauthorized", "status": 401, "detail": detail}, problem=True)
            return
        limits = {"RateLimit": '"minute";r=59;t=60', "RateLimit-Policy": '"minute";q=60;w=60'}
        with api.lock:
            due = [i for i, (_, _, only) in enumerate(api.failures) if only in (None, method)]
            failure = api.failures.pop(due[0]) if due else None
        if failure is not None:
            status, retry_after, _ = failure
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            detail = "rate limit exceeded for the minute window" if status == 429 else "transient upstream failure"
            self._answer(status, {"title": TITLES.get(status, "Error"), "status": status, "detail": detail},
                         {**limits, **extra}, problem=True)  # fmt: skip
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._answer(400, {"title": "Bad Request", "status": 400, "detail": "request body is not JSON"},
                         limits, problem=True)  # fmt: skip
            return
        try:
            status, doc = api.handle(method, self.path, body)
        except Problem as exc:
            doc = {"title": TITLES.get(exc.status, "Error"), "status": exc.status, "detail": exc.detail}
            if exc.errors:
                doc["errors"] = exc.errors
            self._answer(exc.status, doc, limits, problem=True)
            return
        self._answer(status, doc, limits)

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: RunPod) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api


@contextlib.contextmanager
def start(api_key: str = "rp-test-key", **options: Any) -> Iterator[tuple[RunPod, str]]:
    """The stand-in on a free loopback port: ``(api, url)``; ``url`` goes in RUNPOD_API_URL."""
    api = RunPod(api_key, **options)
    server = _Server(api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
