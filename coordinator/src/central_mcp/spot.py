# SPDX-License-Identifier: Apache-2.0
"""The Spot watcher: the fleet's preempted Spot VMs started again, and what each went through.

A Spot VM that Compute Engine preempts is stopped, not deleted
(``instanceTerminationAction: STOP``), and never restarts by itself
(``automaticRestart: false``). This task of the coordinator's process (on
the coordinator's VM, which stays standard) reads every Spot VM of the
agents file's hosts each ``spot_s`` and starts again one that a preemption
stopped: a ``compute.instances.preempted`` operation on it since it last
started. A Spot VM that a person stopped is left stopped. When a start
fails (``ZONE_RESOURCE_POOL_EXHAUSTED``: the zone has no Spot capacity
now) it tries again later, waiting twice as long each time, up to 15
minutes. Its agents register again as they boot; their tasks went back to
the board when the VM went down (``/runtime/leaving``).

Credentials: the coordinator VM's own service account, its token read from
the metadata server (what google-auth's compute_engine credentials do; one
GET, no library). The account needs ``compute.instances.get``,
``compute.instances.start`` and ``compute.zoneOperations.list`` on the
fleet's VMs only: see the README's custom role.

Every VM's story is kept for the dashboard: running, preempted (since
when), starting, back (after how long), stopped by a person, or why it
cannot be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2

from central_mcp.authors import BY_COORDINATOR
from central_mcp.fleet_hosts import HostSpec
from central_mcp.service import Service

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
BACKOFF_MAX_S = 900.0
PREEMPTED = "compute.instances.preempted"


class ComputeError(Exception):
    """The Compute API or the metadata server said no, or could not be reached."""


@dataclass
class VmStory:
    """What the watcher knows of one Spot VM, as the dashboard shows it."""

    state: str = "unknown"  # running, preempted, starting, stopped, unknown
    status: str | None = None  # the API's, e.g. TERMINATED
    preempted_at: float | None = None
    back_at: float | None = None
    down_s: float | None = None  # preemption -> RUNNING again, the last time
    starts: int = 0  # start requests since the preemption
    next_try_at: float = 0.0
    error: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "status": self.status,
            "preempted_at": self.preempted_at,
            "back_at": self.back_at,
            "down_s": None if self.down_s is None else round(self.down_s, 1),
            "starts": self.starts,
            "error": self.error,
        }


def _seconds(stamp: str | None) -> float | None:
    """An RFC 3339 time of the API as epoch seconds (None when absent)."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class SpotWatcher:
    """Reads the fleet's Spot VMs every ``spot_s`` and starts again those a preemption stopped."""

    def __init__(self, svc: Service, client: httpx2.AsyncClient | None = None) -> None:
        self.svc = svc
        self.stories: dict[str, VmStory] = {}
        self._client = client
        self._token: tuple[str, float] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="central-mcp-spot")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        status = None  # in /health's loops once there is a Spot VM to watch
        async with httpx2.AsyncClient(timeout=TIMEOUT_S) as client:
            self._client = self._client or client
            while not self.svc.stopping:
                if not any(host.spot for host in self.svc.hosts) and not self.stories:
                    await asyncio.sleep(self.svc.settings.spot_s)
                    continue
                status = status or self.svc.loop_status("spot", self.svc.settings.spot_s)
                started = time.time()
                try:
                    await self.check()
                except Exception as exc:  # one bad round must not end the watcher
                    status.failures += 1
                    status.last_ok, status.last_error = False, f"{type(exc).__name__}: {exc}"
                    log.exception("spot watcher failed; retrying in %g s", self.svc.settings.spot_s)
                else:
                    status.last_ok, status.last_error = True, None
                status.last_run, status.runs = started, status.runs + 1
                status.last_duration_ms = round((time.time() - started) * 1000, 2)
                await asyncio.sleep(self.svc.settings.spot_s)

    # -- one round --------------------------------------------------------------------
    async def check(self) -> None:
        """Read each Spot VM once; start the preempted ones whose back-off has passed."""
        spot = [host for host in self.svc.hosts if host.spot]
        for name in set(self.stories) - {host.name for host in spot}:
            del self.stories[name]  # no longer a Spot VM of the fleet
        for host in spot:
            story = self.stories.setdefault(host.name, VmStory())
            try:
                await self._check(host, story)
                story.error = None
            except (ComputeError, httpx2.HTTPError) as exc:
                story.error = str(exc) or type(exc).__name__
                log.warning("spot watcher: %s: %s", host.name, story.error)
        self.svc.spot_view = {name: story.view() for name, story in self.stories.items()}

    async def _check(self, host: HostSpec, story: VmStory) -> None:
        project, zone, instance = host.gce or ("", "", "")
        base = f"projects/{project}/zones/{zone}"
        vm = await self._call("GET", f"{base}/instances/{instance}")
        status, now = vm.get("status"), time.time()
        story.status = status
        if status == "RUNNING":
            if story.state in ("preempted", "starting"):
                story.back_at = now
                story.down_s = now - story.preempted_at if story.preempted_at else None
                self._tell(f"Spot VM {host.name} is running again after {story.down_s or 0:.0f} s.")
            story.state, story.starts, story.next_try_at = "running", 0, 0.0
            return
        if status in ("STAGING", "PROVISIONING", "REPAIRING"):
            story.state = "starting" if story.state in ("preempted", "starting") else story.state
            return
        last_start = _seconds(vm.get("lastStartTimestamp")) or 0.0
        preemption = await self._preempted_since(base, vm["id"], last_start)
        if preemption is None:  # stopped by a person, or stopping for another reason: not ours to start
            story.state = "stopping" if status == "STOPPING" else "stopped"
            return
        if story.state not in ("preempted", "starting"):
            story.preempted_at = preemption
            self._tell(f"Spot VM {host.name} was preempted by Compute Engine; the watcher starts it again.")
        story.state = "preempted"  # a start that failed (no capacity in the zone) leaves it TERMINATED
        if status != "TERMINATED" or now < story.next_try_at:
            return
        story.starts += 1  # counted first: a start the API refuses backs off as one that fails later
        story.next_try_at = now + min(BACKOFF_MAX_S, self.svc.settings.spot_s * 2**story.starts)
        await self._call("POST", f"{base}/instances/{instance}/start?requestId={uuid.uuid4()}")
        story.state = "starting"
        log.info("spot watcher: %s was preempted; start requested (attempt %d)", host.name, story.starts)

    async def _preempted_since(self, base: str, target_id: str, since: float) -> float | None:
        """When the VM was last preempted after ``since`` (its last start), or None."""
        wanted = f'(operationType = "{PREEMPTED}") AND (targetId = "{target_id}")'
        found = await self._call("GET", f"{base}/operations", params={"filter": wanted})
        times = [_seconds(op.get("insertTime")) or 0.0 for op in found.get("items") or []]
        after = [t for t in times if t >= since]
        return max(after) if after else None

    def _tell(self, text: str) -> None:
        log.info("spot watcher: %s", text)
        self.svc.board.post_note("coordinator", text, written_by=BY_COORDINATOR)

    # -- HTTP -----------------------------------------------------------------------
    async def _call(self, method: str, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        url = f"{self.svc.settings.compute_url.rstrip('/')}/{path}"
        headers = {"Authorization": f"Bearer {await self._access_token()}"}
        answer = await self._client.request(method, url, params=params, headers=headers)
        if answer.status_code == 401:
            self._token = None  # expired early: a fresh one next time
        if not answer.is_success:
            raise ComputeError(f"{method} {path}: HTTP {answer.status_code} {_message(answer)}")
        return answer.json() if answer.content else {}

    async def _access_token(self) -> str:
        """The coordinator VM's service account's token, from its metadata server; kept until a minute before expiry."""
        if self._token is not None and time.time() < self._token[1]:
            return self._token[0]
        url = f"{self.svc.settings.metadata_url.rstrip('/')}/computeMetadata/v1/instance/service-accounts/default/token"
        try:
            answer = await self._client.get(url, headers={"Metadata-Flavor": "Google"})
            doc = answer.json() if answer.is_success else {}
        except (httpx2.HTTPError, ValueError) as exc:
            raise ComputeError(f"no token from the metadata server at {url}: {exc}") from None
        if "access_token" not in doc:
            raise ComputeError(
                f"no token from the metadata server at {url} (HTTP {answer.status_code}): does this VM have a service "
                "account? It needs compute.instances.get, compute.instances.start and compute.zoneOperations.list"
            )
        self._token = (doc["access_token"], time.time() + max(0.0, float(doc.get("expires_in", 300)) - 60))
        return self._token[0]


def _message(answer: httpx2.Response) -> str:
    try:
        error = answer.json().get("error") or {}
    except (ValueError, json.JSONDecodeError, AttributeError):
        return answer.text[:200]
    return str(error.get("message") if isinstance(error, dict) else error)[:300]
