# SPDX-License-Identifier: Apache-2.0
"""Compute Engine API access for the gce_* modules: credentials, retried requests, operation waits.

Why this exists: resizing a VM (gce_machine_type) and growing its disk
(gce_disk_size) need the same three things, and each is easy to get subtly
wrong. Credentials come from google-auth (a service account key, application
default credentials, or a bare access token), so the modules never handle
OAuth themselves. Requests go through one place that retries what Google asks
clients to retry (429, 5xx, 403 rate-limit reasons) with exponential back-off
and full jitter, and everything, retries and operation waits included,
counts against one deadline, so a module never runs past its ``timeout``.
Operation waits use ``zoneOperations.wait`` (the server blocks until the
operation is done) rather than polling with sleeps.

These modules run on the controller (``delegate_to: localhost``), where
google-auth and requests are installed; the import is guarded so a module can
say so plainly instead of crashing. There, their action plugins run the same
code inside Ansible's own process (module_utils/gce_resize.py, gce_disk.py):
this module is then imported once per playbook run, by Ansible's main
process, and every host's run starts with google-auth already loaded.
"""

from __future__ import annotations

import os
import random
import time
import traceback
import uuid

try:
    import google.auth
    import requests
    from google.auth import exceptions as google_exceptions
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2 import credentials as oauth2_credentials
    from google.oauth2 import service_account

    HAS_GOOGLE_AUTH = True
    GOOGLE_AUTH_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised by the module's own message
    HAS_GOOGLE_AUTH = False
    GOOGLE_AUTH_IMPORT_ERROR = traceback.format_exc()

DEFAULT_ENDPOINT = "https://compute.googleapis.com/compute/v1"
SCOPES = ["https://www.googleapis.com/auth/compute"]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
MAX_ATTEMPTS = 8
# Back-off: attempt n sleeps uniform(0, min(cap, base * 2**(n-1))) ("full jitter").
# Module-level so tests can shorten them; never options a user has to think about.
_BACKOFF_BASE_S = 1.0
_BACKOFF_CAP_S = 32.0
_CONNECT_TIMEOUT_S = 10.0

# The options every gce_* module shares (merged into its own argument_spec).
GCE_AUTH_ARGUMENT_SPEC = {
    "project": {"type": "str", "required": True},
    "zone": {"type": "str", "required": True},
    "auth_kind": {"type": "str", "default": "application", "choices": ["application", "serviceaccount", "accesstoken"]},
    "service_account_file": {"type": "path"},
    "access_token": {"type": "str", "no_log": True},
    "api_endpoint": {"type": "str", "default": DEFAULT_ENDPOINT},
    "timeout": {"type": "int", "default": 600},
}
GCE_REQUIRED_IF = [("auth_kind", "serviceaccount", ["service_account_file"])]


class GceError(Exception):
    """The API said no, or could not be reached. ``status`` and ``reason`` as Google reports them."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status, self.reason = status, reason


class GceFailure(Exception):
    """A module run that fails: ``msg`` says what and what to do, ``result`` what was already done.

    The module passes both to ``fail_json``; the action plugin that runs the
    same code on the controller returns them with ``failed: true``.
    """

    def __init__(self, msg: str, **result):
        super().__init__(msg)
        self.msg, self.result = msg, result


class GceTimeout(GceError):
    """The module's deadline passed. ``operation`` is the one still running, if any."""

    def __init__(self, message: str, operation: dict | None = None):
        super().__init__(message)
        self.operation = operation


class GceOperationError(GceError):
    """An operation ended DONE with an error (ZONE_RESOURCE_POOL_EXHAUSTED, QUOTA_EXCEEDED...)."""

    def __init__(self, message: str, operation: dict, codes: list[str], details: str = ""):
        super().__init__(message, status=operation.get("httpErrorStatusCode"), reason=",".join(codes))
        self.operation, self.codes, self.details = operation, codes, details or message


def credentials_for(auth_kind: str, service_account_file: str | None = None, access_token: str | None = None):
    """google-auth credentials for one of the three ways a controller can be logged in."""
    if auth_kind == "accesstoken":
        if not access_token:
            raise GceError(
                "auth_kind=accesstoken needs access_token (e.g. `gcloud auth print-access-token`, kept in Vault)"
            )
        return oauth2_credentials.Credentials(access_token)
    if auth_kind == "serviceaccount":
        path = os.path.expanduser(service_account_file or "")
        if not path or not os.path.isfile(path):
            raise GceError(
                f"service account file {service_account_file!r} does not exist on the controller: "
                "point service_account_file at the JSON key of a service account that may manage the VM "
                "(roles/compute.instanceAdmin.v1), or use auth_kind=application / accesstoken"
            )
        try:
            return service_account.Credentials.from_service_account_file(path, scopes=SCOPES)
        except (ValueError, KeyError) as exc:
            raise GceError(f"service account file {path} is not a service account JSON key: {exc}") from exc
    try:
        credentials, _project = google.auth.default(scopes=SCOPES)
    except google_exceptions.DefaultCredentialsError as exc:
        raise GceError(
            "no application default credentials on the controller: run `gcloud auth application-default login`, "
            f"set GOOGLE_APPLICATION_CREDENTIALS, or use auth_kind=serviceaccount / accesstoken ({exc})"
        ) from exc
    return credentials


def session_for(auth_kind: str, service_account_file=None, access_token=None, user_agent="central-mcp-agents"):
    """An AuthorizedSession; a bare access token cannot be refreshed, so a 401 is returned, not retried."""
    credentials = credentials_for(auth_kind, service_account_file, access_token)
    refresh = () if auth_kind == "accesstoken" else (401,)
    session = AuthorizedSession(credentials, refresh_status_codes=refresh)
    session.headers["User-Agent"] = user_agent
    return session


def backoff_delay(attempt: int, base: float | None = None, cap: float | None = None) -> float:
    """Seconds to sleep before retry number ``attempt`` (1, 2, ...): full jitter, exponential ceiling."""
    base = _BACKOFF_BASE_S if base is None else base
    cap = _BACKOFF_CAP_S if cap is None else cap
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def _error_of(response) -> GceError:
    """Google's error document ({error: {code, message, errors: [{reason}]}}) as a GceError."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {"message": response.text[:300]}
    if not isinstance(error, dict):  # OAuth endpoints answer {"error": "invalid_grant", ...}
        error = {"message": str(error)}
    reasons = [e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)]
    reason = next((r for r in reasons if r), None) or error.get("status")
    message = error.get("message") or response.reason or "no message"
    label = f"HTTP {response.status_code} {reason}" if reason else f"HTTP {response.status_code}"
    return GceError(f"{label}: {message}", response.status_code, reason)


def retryable(error: GceError) -> bool:
    if error.status in RETRY_STATUSES:
        return True
    return error.status == 403 and error.reason in RATE_LIMIT_REASONS


class ComputeApi:
    """One zone of one project, behind one deadline; counts every HTTP request it sends."""

    def __init__(self, session, endpoint: str, project: str, zone: str, timeout: float, sleep=time.sleep):
        self.session, self.sleep = session, sleep
        self.base = f"{endpoint.rstrip('/')}/projects/{project}/zones/{zone}"
        self.project, self.zone = project, zone
        self.timeout = float(timeout)
        self.deadline = time.monotonic() + self.timeout
        self.calls = 0
        self.retries = 0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def extend(self, seconds: float) -> None:
        """Give what follows (a rollback) a fresh budget: never leave a VM stopped for want of time."""
        self.deadline = max(self.deadline, time.monotonic() + seconds)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """Send one API call, retrying 429/5xx/rate limits within the deadline; the parsed JSON answer."""
        url = f"{self.base}/{path}"
        attempt = 0
        while True:
            remaining = self.remaining()
            if remaining <= 0:
                raise GceTimeout(f"timed out after {self.timeout:g}s, before {method} {path} could be sent")
            attempt += 1
            self.calls += 1
            retry_after = 0.0
            try:
                response = self.session.request(
                    method, url, json=body, timeout=(min(_CONNECT_TIMEOUT_S, remaining), remaining)
                )
            except google_exceptions.RefreshError as exc:
                raise GceError(f"could not get an access token for the Compute API: {exc}", 401, "authError") from exc
            except requests.Timeout as exc:
                raise GceTimeout(f"timed out after {self.timeout:g}s waiting for an answer to {method} {path}") from exc
            except (requests.ConnectionError, google_exceptions.TransportError) as exc:
                error = GceError(f"cannot reach the Compute API at {self.base}: {exc}")
            else:
                if response.ok:
                    return response.json() if response.content else {}
                error = _error_of(response)
                if not retryable(error):
                    raise error
                retry_after = _seconds(response.headers.get("Retry-After"))
            delay = max(retry_after, backoff_delay(attempt))
            if attempt >= MAX_ATTEMPTS or delay >= self.remaining():
                raise GceError(
                    f"{error} (gave up on {method} {path} after {attempt} attempts)", error.status, error.reason
                )
            self.retries += 1
            self.sleep(delay)

    def get(self, path: str) -> dict:
        return self.request("GET", path)

    def post(self, path: str, body: dict | None = None) -> dict:
        return self.request("POST", path, body)

    def change(self, path: str, body: dict | None = None) -> dict:
        """POST a state-changing call with a fresh requestId, kept across its retries: it is carried out once
        even when an answer is lost and the call is sent again (the operation it started comes back)."""
        separator = "&" if "?" in path else "?"
        return self.post(f"{path}{separator}requestId={request_id()}", body)

    def wait(self, operation: dict, what: str) -> dict:
        """Block until the zone operation is DONE (zoneOperations.wait, again until done); raise on its error."""
        while operation.get("status") != "DONE":
            try:
                operation = self.post(f"operations/{operation['name']}/wait")
            except GceTimeout as exc:
                raise GceTimeout(
                    f"timed out after {self.timeout:g}s waiting for {what} (operation {operation['name']} "
                    f"was {operation.get('status', 'not done')})",
                    operation,
                ) from exc
        errors = (operation.get("error") or {}).get("errors") or []
        if errors:
            codes = [e.get("code") or "UNKNOWN" for e in errors]
            details = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
            raise GceOperationError(f"{what} failed: {details}", operation, codes, details)
        return operation


def _seconds(value) -> float:
    """A Retry-After header in seconds (the HTTP-date form is rare for Google APIs and ignored)."""
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 0.0


def short_name(link: str) -> str:
    """e2-micro from .../zones/z/machineTypes/e2-micro (the API returns full URLs)."""
    return (link or "").rstrip("/").rsplit("/", 1)[-1]


# Collections whose names a resource URL carries; link_parts() keeps these.
_LINK_KEYS = frozenset({"projects", "zones", "regions", "instances", "disks", "diskTypes", "machineTypes"})


def link_parts(link: str) -> dict:
    """{'projects': 'p', 'zones': 'z', 'disks': 'd'} from a full or partial resource URL.

    The API links resources by URL (an instance's ``disks[].source``, a disk's
    ``type``); the parts say where a resource lives, e.g. whether a boot disk
    is zonal or regional, which its bare name cannot.
    """
    parts = (link or "").split("?", 1)[0].strip("/").split("/")
    start = (
        parts.index("projects")
        if "projects" in parts
        else next((i for i, part in enumerate(parts) if part in _LINK_KEYS), len(parts))
    )
    pairs = zip(parts[start::2], parts[start + 1 :: 2], strict=False)  # name/value, name/value...
    return {key: value for key, value in pairs if key in _LINK_KEYS and value}


def request_id() -> str:
    """A fresh requestId for a state-changing call: the API runs a request once however often it is retried."""
    return str(uuid.uuid4())
