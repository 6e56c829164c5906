# SPDX-License-Identifier: Apache-2.0
"""HTTP front of the emulator: the Compute v1 paths, an OAuth token endpoint, and an admin API.

Every Compute request goes through the same steps: log it, find its discovery
method (contract), check its query and body against the document, check the
bearer token, fire an armed HTTP fault, run it, and check the answer against
the method's response schema. A contract violation is answered with 500 and a
message starting ``EMULATOR CONTRACT VIOLATION``, and kept for the tests to
assert on (``GET /_emulator/violations``).

Admin API (no token; bind it to 127.0.0.1):
  GET    /_emulator/state        instances (as the API shows them), operations, faults, config
  POST   /_emulator/instances    {project, zone, name, machineType?, status?, diskSizeGb?, diskType?, bootDisk?,
                                  provisioningModel?: STANDARD|SPOT}
                                 add an instance and its boot disk (default: named after it, 10 GB pd-balanced)
  POST   /_emulator/preempt      {project, zone, name, noticeS?: 30} preempt a running Spot VM as GCE does:
                                 metadata preempted TRUE, STOPPING for the notice, then TERMINATED
  GET    /_emulator/metadata/PROJECT/ZONE/NAME/computeMetadata/v1/instance/preempted
                                 that VM's metadata server (header Metadata-Flavor: Google), as the guest reads it
  POST   /_emulator/disks        {project, zone, name, sizeGb?, type?} add a disk attached to nothing
  POST   /_emulator/faults       {kind: http, status: 429|503|403|500|any, reason?, message?, times?, method?,
                                  after?: true = carry the request out, then lose its answer to this error}
                                 {kind: operation_error, method: instances.start|disks.resize|..., code?, message?,
                                  times?} (disks.resize: QUOTA_EXCEEDED of the disk type's quota, size unchanged)
                                 {kind: slow, method: instances.setMachineType, seconds, times?}
  DELETE /_emulator/faults       disarm all faults
  POST   /_emulator/config       {durations: {stop, start, setMachineType, setScheduling, resize}, wait_max_s, token}
  GET    /_emulator/log          every request: verb, path, method id, status, time
  DELETE /_emulator/log          forget the log
  GET    /_emulator/violations   contract violations seen so far
  POST   /_emulator/reset        drop instances, operations, faults, log and violations
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .contract import Contract, ContractViolation
from .scheduling import PREEMPTION_NOTICE_S
from .state import ApiError, World

# The discovery methods the emulator answers; the contract test checks each against the document.
EMULATED = (
    "compute.instances.get",
    "compute.instances.stop",
    "compute.instances.start",
    "compute.instances.setMachineType",
    "compute.instances.setScheduling",
    "compute.machineTypes.get",
    "compute.disks.get",
    "compute.disks.resize",
    "compute.machineTypes.list",
    "compute.zoneOperations.get",
    "compute.zoneOperations.list",
    "compute.zoneOperations.wait",
)
# The instance methods that change state: each takes a requestId and answers with an operation.
INSTANCE_ACTIONS = (
    "compute.instances.stop",
    "compute.instances.start",
    "compute.instances.setMachineType",
    "compute.instances.setScheduling",
)
HTTP_FAULTS = {
    429: ("rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"),
    403: ("rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"),
    500: ("backendError", "Internal error. Please try again.", "global"),
    503: ("backendError", "The service is currently unavailable.", "global"),
}


class Emulator:
    """The contract, the world and what the tests want to read back (log, violations)."""

    def __init__(self, state_file: str | None = None, contract: Contract | None = None):
        self.contract = contract or Contract.load()
        self.world = World(state_file)
        self.log: list[dict] = []
        self.violations: list[str] = []
        self.tokens_issued = 0
        self.lock = threading.Lock()

    def record(self, entry: dict) -> None:
        with self.lock:
            self.log.append(entry)
            del self.log[:-10000]

    def violation(self, message: str) -> tuple[int, dict]:
        with self.lock:
            self.violations.append(message)
        text = f"EMULATOR CONTRACT VIOLATION: {message}"
        error = {"message": text, "domain": "emulator", "reason": "contractViolation"}
        return 500, {"error": {"code": 500, "message": text, "errors": [error]}}

    # ------------------------------------------------------------- compute
    def compute(self, verb: str, path: str, query: dict, headers, raw: bytes, entry: dict) -> tuple[int, dict]:
        try:
            method, params = self.contract.match(verb, path)
            entry["method"] = method.id
            self.contract.check_query(method, query)
            body = json.loads(raw) if raw else None
            self.contract.check_request(method, body)
        except ContractViolation as exc:
            return self.violation(str(exc))
        except ValueError as exc:
            return 400, ApiError(400, "parseError", f"Invalid JSON payload received. {exc}").body()
        try:
            self.authorize(headers.get("Authorization", ""))
            fault = self.world.take_fault("http", method.id)
            if fault and fault.get("after"):  # done, but the answer is lost: what a retry must survive
                self.dispatch(method.id, params, body or {}, query)
            if fault:
                status = int(fault.get("status", 503))
                generic = ("invalid", f"Invalid request (HTTP {status}).", "global")
                reason, message, domain = HTTP_FAULTS.get(status, generic)
                raise ApiError(status, fault.get("reason", reason), fault.get("message", message), domain)
            answer = self.dispatch(method.id, params, body or {}, query)
        except ApiError as exc:
            return exc.status, exc.body()
        try:
            self.contract.check_response(method, answer)
        except ContractViolation as exc:
            return self.violation(f"the emulator itself answered off-contract: {exc}")
        return 200, answer

    def authorize(self, header: str) -> None:
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        if not token:
            raise ApiError(
                401,
                "required",
                "Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        wanted = self.world.config.get("token")
        if wanted and token != wanted:
            raise ApiError(
                401,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )

    def dispatch(self, method_id: str, p: dict, body: dict, query: dict | None = None) -> dict:
        world = self.world
        if method_id == "compute.instances.get":
            return world.instance(p["project"], p["zone"], p["instance"])
        request_id = ((query or {}).get("requestId") or [None])[0]
        if method_id in INSTANCE_ACTIONS:
            action = method_id.rsplit(".", 1)[1]
            return world.act(p["project"], p["zone"], p["instance"], action, body, request_id)
        if method_id == "compute.machineTypes.get":
            return world.machine_type(p["project"], p["zone"], p["machineType"])
        if method_id == "compute.machineTypes.list":
            return world.machine_types(p["project"], p["zone"])
        if method_id == "compute.disks.get":
            return world.disk(p["project"], p["zone"], p["disk"])
        if method_id == "compute.disks.resize":
            return world.resize_disk(p["project"], p["zone"], p["disk"], body.get("sizeGb"), request_id)
        if method_id == "compute.zoneOperations.get":
            return world.operation(p["project"], p["zone"], p["operation"])
        if method_id == "compute.zoneOperations.list":
            return world.operations(p["project"], p["zone"], ((query or {}).get("filter") or [None])[0])
        if method_id == "compute.zoneOperations.wait":
            return world.wait(p["project"], p["zone"], p["operation"])
        raise ApiError(501, "notImplemented", f"{method_id} exists in the Compute API but is not emulated")

    # ------------------------------------------------------------- guest metadata
    def metadata(self, path: str, headers) -> tuple[int, str]:
        """The metadata server one VM sees (on GCE: http://metadata.google.internal, per VM by its address).

        Here under /_emulator/metadata/PROJECT/ZONE/NAME, so a test gives each VM its own base URL and the
        guest reads the same paths with the same header as on GCE. Only what the fleet reads is served.
        """
        if headers.get("Metadata-Flavor") != "Google":
            return 403, "Missing required header: Metadata-Flavor: Google"
        parts = path.split("/", 6)  # '', '_emulator', 'metadata', project, zone, name, rest
        if len(parts) < 7:
            return 404, "not found"
        project, zone, name, rest = parts[3], parts[4], parts[5], "/" + parts[6]
        try:
            values = self.world.metadata(project, zone, name)
        except ApiError:
            return 404, "not found"
        value = values.get(rest)
        return (200, value) if value is not None else (404, "not found")

    # ------------------------------------------------------------- oauth
    def token(self, raw: bytes) -> tuple[int, dict]:
        """Google's token endpoint for a service account's signed JWT (jwt-bearer grant)."""
        form = parse_qs(raw.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or not form.get("assertion"):
            return 400, {"error": "invalid_grant", "error_description": "expected a jwt-bearer assertion"}
        with self.lock:
            self.tokens_issued += 1
            token = f"emulated-sa-token-{self.tokens_issued}"
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    # ------------------------------------------------------------- admin
    def admin(self, verb: str, path: str, body: dict) -> tuple[int, object]:
        world = self.world
        try:
            if (verb, path) == ("GET", "/_emulator/state"):
                return 200, world.dump()
            if (verb, path) == ("POST", "/_emulator/instances"):
                fields = {"machine_type": body.get("machineType", "e2-micro"), "status": body.get("status", "RUNNING")}
                fields.update(
                    disk_size_gb=int(body.get("diskSizeGb", 10)),
                    disk_type=body.get("diskType", "pd-balanced"),
                    boot_disk=body.get("bootDisk"),
                    provisioning_model=body.get("provisioningModel", "STANDARD"),
                )
                return 200, world.add_instance(body["project"], body["zone"], body["name"], **fields)
            if (verb, path) == ("POST", "/_emulator/disks"):
                fields = {"size_gb": int(body.get("sizeGb", 10)), "disk_type": body.get("type", "pd-balanced")}
                return 200, world.add_disk(body["project"], body["zone"], body["name"], **fields)
            if (verb, path) == ("POST", "/_emulator/preempt"):
                notice = float(body.get("noticeS", PREEMPTION_NOTICE_S))
                return 200, world.preempt(body["project"], body["zone"], body["name"], notice)
            if (verb, path) == ("POST", "/_emulator/faults"):
                return 200, world.add_fault(body)
            if (verb, path) == ("DELETE", "/_emulator/faults"):
                world.clear_faults()
                return 200, []
            if (verb, path) == ("POST", "/_emulator/config"):
                return 200, world.configure(body)
            if (verb, path) == ("GET", "/_emulator/log"):
                with self.lock:
                    return 200, list(self.log)
            if (verb, path) == ("DELETE", "/_emulator/log"):
                with self.lock:
                    self.log.clear()
                return 200, []
            if (verb, path) == ("GET", "/_emulator/violations"):
                with self.lock:
                    return 200, list(self.violations)
            if (verb, path) == ("POST", "/_emulator/reset"):
                world.reset()
                with self.lock:
                    self.log.clear()
                    self.violations.clear()
                return 200, {}
        except (KeyError, ValueError, TypeError) as exc:
            return 400, {"error": f"bad admin request {verb} {path}: {exc}"}
        return 404, {"error": f"no admin endpoint {verb} {path}"}


class Handler(BaseHTTPRequestHandler):
    """Turns HTTP into calls on the server's Emulator; quiet unless verbose."""

    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: without this, +40 ms per call

    def _serve(self) -> None:
        emulator = self.server.emulator
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = parse_qs(parts.query)
        entry = {"verb": self.command, "path": parts.path, "query": parts.query, "method": None, "t": time.time()}
        if parts.path.startswith(emulator.contract.service_path + "/"):
            status, answer = emulator.compute(self.command, parts.path, query, self.headers, raw, entry)
        elif parts.path == "/token" and self.command == "POST":
            status, answer = emulator.token(raw)
            entry["method"] = "oauth2.token"
        elif parts.path.startswith("/_emulator/metadata/"):
            status, text = emulator.metadata(parts.path, self.headers)
            self._send(status, text.encode(), "application/text")
            return
        elif parts.path.startswith("/_emulator/"):
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            status, answer = emulator.admin(self.command, parts.path, body)
            entry = None
        else:
            status, answer = 404, {"error": {"code": 404, "message": f"Not Found: {parts.path}"}}
        if entry is not None:
            entry.update(status=status, seconds=round(time.time() - entry["t"], 4))
            emulator.record(entry)
        self._send(status, json.dumps(answer).encode(), "application/json; charset=UTF-8")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        if self.server.verbose:
            super().log_message(format, *args)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: Emulator, verbose: bool = False):
        super().__init__(address, Handler)
        self.emulator, self.verbose = emulator, verbose

    def handle_error(self, request, client_address):
        """A client that gave up on a long zoneOperations.wait is normal here, not a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
