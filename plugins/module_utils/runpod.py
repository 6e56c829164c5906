# SPDX-License-Identifier: Apache-2.0
"""RunPod's REST API (v2) for the runpod inventory plugin and the runpod_pod module.

What both need, in one place: the bearer key, requests retried where RunPod
asks clients to retry (429 with ``Retry-After``, 5xx) within one deadline,
RunPod's errors (RFC 9457 problem documents) turned into one sentence that
says what to do, and a pod read for Ansible: its direct SSH address (the
public IP and the port mapped to 22/tcp, which change when a pod starts
again), its state and its price per hour.

The API: ``GET /v2/pods`` answers ``{"pods": [...]}`` (no filters, no pages:
names are matched here), ``GET /v2/pods/{id}`` one pod, ``POST /v2/pods``
creates one (201, PROVISIONING), ``POST /v2/pods/{id}/action`` with
``{"action": "start" | "stop" | "restart" | "terminate"}`` changes its state
(409 when the pod's ``actions`` do not allow it). A pod's ``ssh.direct`` is
null unless it runs with 22/tcp exposed; its ``cost`` is US dollars per hour
(0 while it is stopped). HTTP goes through Ansible's own ``open_url`` (no
library to install on the controller).
"""

from __future__ import annotations

import json
import time
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url

DEFAULT_URL = "https://api.runpod.io"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ACTIONS = ("start", "stop", "restart", "terminate")
# Statuses a pod passes through on its way to RUNNING, and the one it rests in when stopped.
BOOTING = ("PROVISIONING", "STARTING")
STOPPED = ("EXITED",)


class RunPodError(Exception):
    """An API call failed; ``status`` is the HTTP status (0: no answer), the message says what to do."""

    def __init__(self, message, status=0):
        super().__init__(message)
        self.status = status


def _advice(status):
    if status == 401:
        return "check the API key (RUNPOD_API_KEY, or api_key): RunPod did not accept it"
    if status == 403:
        return "the API key is valid but may not do this: give it read and write access to pods"
    if status == 404:
        return "no such pod on this account (deleted, or another account's key)"
    if status == 409:
        return "the pod's state does not allow it now: wait for it to settle, or check that it is not locked"
    if status == 429:
        return "RunPod's rate limit: try again later"
    return "see RunPod's status page, then try again"


class RunPodApi:
    """A RunPod account, by its API key; every call counts against ``timeout`` seconds from its start."""

    def __init__(self, api_key, url=DEFAULT_URL, timeout=60.0, sleep=time.sleep, clock=time.monotonic):
        if not api_key:
            raise RunPodError(
                "no RunPod API key: set RUNPOD_API_KEY in the environment (or api_key, from Vault); "
                "create one in RunPod's console under Settings > API Keys"
            )
        self.api_key = api_key
        self.url = (url or DEFAULT_URL).rstrip("/")
        self.timeout = float(timeout)
        self._sleep = sleep
        self._clock = clock

    def request(self, method, path, body=None, retry_unsure=True):
        """One call, retried on 429 and 5xx until it answers or the time is up; the JSON answer (None for 204).

        ``retry_unsure=False`` (a create): only a 429, which RunPod did not act on, is tried again; a 5xx or a
        lost answer may have made the pod, and a second try would make a second one.
        """
        deadline = self._clock() + self.timeout
        attempt = 0
        while True:
            attempt += 1
            left = deadline - self._clock()
            try:
                answer = open_url(
                    self.url + path,
                    method=method,
                    data=json.dumps(body) if body is not None else None,
                    headers={
                        "Authorization": "Bearer " + self.api_key,
                        "Accept": "application/json",
                        "Content-Type": "application/json",
                    },
                    timeout=max(1.0, min(30.0, left)),
                    http_agent="central_mcp.agents",
                )
                text = answer.read()
            except HTTPError as exc:
                status = exc.code
                problem = _problem(exc)
                wait = _retry_after(exc, attempt)
                again = status == 429 or (retry_unsure and status in RETRY_STATUSES)
                if again and self._clock() + wait < deadline:
                    self._sleep(wait)
                    continue
                raise RunPodError(
                    f"RunPod API {method} {path}: HTTP {status} {problem}: {_advice(status)}", status
                ) from None
            except (URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                wait = min(2.0**attempt, 10.0)
                if retry_unsure and self._clock() + wait < deadline:
                    self._sleep(wait)
                    continue
                raise RunPodError(
                    f"RunPod API {method} {path}: no answer from {self.url} ({reason}): check the network and api_url"
                    + ("" if retry_unsure else "; the call may have been carried out: look before trying again")
                ) from None
            try:
                return json.loads(text) if text else None
            except ValueError:
                raise RunPodError(
                    f"RunPod API {method} {path}: the answer is not JSON ({text[:80]!r}): is api_url RunPod's API?"
                ) from None

    def pods(self):
        return (self.request("GET", "/v2/pods") or {}).get("pods") or []

    def pod(self, pod_id):
        return self.request("GET", "/v2/pods/" + pod_id)

    def action(self, pod_id, action):
        return self.request("POST", f"/v2/pods/{pod_id}/action", {"action": action})

    def create(self, body):
        return self.request("POST", "/v2/pods", body, retry_unsure=False)

    def wait_for(self, pod_id, wanted, timeout, poll=2.0):
        """Read the pod until ``wanted(pod)`` holds (then return it) or ``timeout`` seconds pass (RunPodError)."""
        deadline = self._clock() + timeout
        while True:
            pod = self.pod(pod_id)
            if wanted(pod):
                return pod
            if pod.get("status") in ("ERROR", "TERMINATED"):
                raise RunPodError(
                    f"pod {pod.get('name')} ({pod_id}) is {pod['status']}: see its logs in RunPod's console"
                )
            if self._clock() + poll > deadline:
                raise RunPodError(
                    f"pod {pod.get('name')} ({pod_id}) is still {pod.get('status')} after {timeout:g} s: "
                    "raise wait_timeout, or look at it in RunPod's console"
                )
            self._sleep(poll)


def _problem(exc):
    """An RFC 9457 problem's detail (and its list of errors), or the first bytes of whatever came back."""
    try:
        raw = exc.read()
    except Exception:  # noqa: BLE001 - a body that cannot be read is described by the status alone
        return exc.reason or ""
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
    if not isinstance(doc, dict):
        return str(doc)[:200]
    detail = doc.get("detail") or doc.get("message") or doc.get("title") or ""
    errors = doc.get("errors") or []
    return detail + (f" ({'; '.join(str(e) for e in errors)})" if errors else "")


def _retry_after(exc, attempt):
    """Seconds to wait before the next try: RunPod's Retry-After when it sends one, else 1, 2, 4... up to 30."""
    value = exc.headers.get("Retry-After") if exc.headers is not None else None
    if value is not None and str(value).strip().isdigit():
        return float(value)
    return min(2.0 ** (attempt - 1), 30.0)


def ssh_address(pod):
    """(host, port) of the pod's direct SSH, or None while it has none (stopped, booting, 22/tcp not exposed)."""
    direct = (pod.get("ssh") or {}).get("direct")
    if direct and direct.get("host") and direct.get("port"):
        return direct["host"], int(direct["port"])
    for port in (pod.get("runtime") or {}).get("ports") or []:  # older answers have no ssh block
        if port.get("private") == 22 and port.get("type") == "tcp" and port.get("ip") and port.get("public"):
            return port["ip"], int(port["public"])
    return None


def volume_path(pod):
    """Where the pod's persistent volume is mounted (``/workspace`` by default), or None without one."""
    mounts = pod.get("mounts") or {}
    if mounts.get("persistent"):
        return mounts["persistent"].get("path")
    network = mounts.get("network") or []
    return network[0].get("path") if network else None


def public_view(pod):
    """The pod as a module returns it: everything but the values of its environment (keys, tokens)."""
    view = {key: value for key, value in pod.items() if key != "env"}
    view["env_names"] = sorted(pod.get("env") or {})
    return view
