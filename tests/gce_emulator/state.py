# SPDX-License-Identifier: Apache-2.0
"""What the emulated Compute Engine holds: instances, operations, faults, time.

State changes happen with time, as on the real service, but lazily: an
operation records when it will be done, and every read first applies what has
come due (``tick``). No background thread, and the state can be written to a
JSON file and read back by a later process (the demo keeps its VM across
runs). Times are wall-clock seconds for that reason.

Everything here returns plain dicts shaped like the API's resources; the
server checks them against the discovery document before they leave.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import zlib

from .common import ApiError, not_found, rfc3339, zone_link
from .disks import Disks
from .scheduling import Scheduling, scheduling_for

# guestCpus, memoryMb, isSharedCpu: the numbers the real API reports.
MACHINE_TYPES = {
    "e2-micro": (2, 1024, True),
    "e2-small": (2, 2048, True),
    "e2-medium": (2, 4096, True),
    "e2-standard-2": (2, 8192, False),
    "e2-standard-4": (4, 16384, False),
    "e2-standard-8": (8, 32768, False),
    "e2-standard-16": (16, 65536, False),
    "e2-highmem-2": (2, 16384, False),
    "e2-highmem-4": (4, 32768, False),
    "n2-standard-2": (2, 8192, False),
    "n2-standard-4": (4, 16384, False),
    "n2-standard-8": (8, 32768, False),
}
ZONES = ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "europe-west1-b", "europe-west4-a"]
DEFAULT_CONFIG = {
    # Seconds each operation takes; the real ones take 10-60 s, tests want them short.
    "durations": {"stop": 1.0, "start": 1.5, "setMachineType": 0.3, "setScheduling": 0.3, "resize": 0.3},
    # zoneOperations.wait returns after this long even if the operation is not done (real API: ~2 min).
    "wait_max_s": 120.0,
    # None: any non-empty bearer token is accepted. A string: only that one.
    "token": None,
}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# One term of an AIP-160 filter: field = "value" (quotes optional), possibly in parentheses.
_TERM = re.compile(r'\(?\s*([A-Za-z][A-Za-z0-9_.]*)\s*=\s*"?([^"()\s]*)"?\s*\)?')


def parse_filter(text: str | None) -> list[tuple[str, str]]:
    """[(field, value)] of a filter such as ``(operationType = "compute.instances.preempted") AND (targetId = 7)``;
    anything else is a 400, as the API answers a filter it cannot read."""
    if not text:
        return []
    terms = []
    for part in re.split(r"\s+AND\s+|\)\s+\(", text.strip()):
        found = _TERM.fullmatch(part.strip())
        if not found:
            message = f"Invalid value for field 'filter': '{text}'. Invalid list filter expression."
            raise ApiError(400, "invalid", message)
        terms.append((found.group(1), found.group(2)))
    return terms


# What a failed operation reports, per method, unless the fault says otherwise.
OPERATION_ERRORS = {
    "start": (
        "ZONE_RESOURCE_POOL_EXHAUSTED",
        "The zone '{zone}' does not have enough resources available to fulfill the request. "
        "Try a different zone, or try again later.",
        503,
    ),
    "setMachineType": ("QUOTA_EXCEEDED", "Quota 'CPUS' exceeded. Limit: 8.0 in region {region}.", 403),
    "setScheduling": ("INTERNAL_ERROR", "Internal error. Please try again or contact Google Support.", 500),
    "stop": ("INTERNAL_ERROR", "Internal error. Please try again or contact Google Support.", 500),
    "resize": ("QUOTA_EXCEEDED", "Quota 'SSD_TOTAL_GB' exceeded. Limit: 500.0 in region {region}.", 403),
}


class World(Disks, Scheduling):
    """The whole emulated state, behind one lock; optionally saved to a JSON file after each change."""

    def __init__(self, state_file: str | None = None, clock=time.time):
        self.lock = threading.RLock()
        self.clock = clock
        self.state_file = state_file
        self.data = self._empty()
        if state_file and os.path.exists(state_file):
            with open(state_file, encoding="utf-8") as handle:
                self.data.update(json.load(handle))
        self.ensure_boot_disks()

    @staticmethod
    def _empty() -> dict:
        return {
            "instances": {},
            "disks": {},
            "operations": {},
            "requests": {},
            "faults": [],
            "seq": 1000,
            "zones": list(ZONES),
        }

    def save(self) -> None:
        if not self.state_file:
            return
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)

    def reset(self) -> None:
        with self.lock:
            config = self.data.get("config")
            self.data = self._empty()
            if config:
                self.data["config"] = config
            self.save()

    @property
    def config(self) -> dict:
        config = self.data.setdefault("config", json.loads(json.dumps(DEFAULT_CONFIG)))
        return config

    def configure(self, changes: dict) -> dict:
        with self.lock:
            for key, value in changes.items():
                if key not in DEFAULT_CONFIG:
                    raise ValueError(f"unknown config key {key!r}: use one of {sorted(DEFAULT_CONFIG)}")
                if key == "durations":
                    self.config["durations"].update(value)
                else:
                    self.config[key] = value
            self.save()
            return self.config

    def seen_request(self, project: str, request_id: str | None) -> dict | None:
        """The operation a state-changing call with this requestId already started (None: a new request).

        As on GCE: the ID must be a UUID other than the zero one, and a request sent again with the same ID
        gets its first operation back instead of running twice (what makes a retried POST safe).
        """
        if request_id is None:
            return None
        if not _UUID.match(request_id) or set(request_id) <= {"0", "-"}:
            raise ApiError(400, "invalid", f"Invalid value for field 'requestId': '{request_id}'. Must be a UUID")
        key = self.data.setdefault("requests", {}).get(f"{project}/{request_id}")
        return self.operation_view(self.data["operations"][key]) if key else None

    def remember_request(self, project: str, request_id: str | None, operation_key: str) -> None:
        if request_id is not None:
            self.data.setdefault("requests", {})[f"{project}/{request_id}"] = operation_key

    def _next_id(self) -> str:
        self.data["seq"] += 1
        return str(7_000_000_000_000_000 + self.data["seq"])

    # ------------------------------------------------------------- instances
    def add_instance(
        self,
        project: str,
        zone: str,
        name: str,
        machine_type="e2-micro",
        status="RUNNING",
        disk_size_gb: int = 10,
        disk_type: str = "pd-balanced",
        boot_disk: str | None = None,
        provisioning_model: str = "STANDARD",
    ) -> dict:
        """An instance and its boot disk (named after it unless boot_disk says otherwise), as GCE creates them."""
        if status not in ("RUNNING", "TERMINATED"):
            raise ValueError(f"status {status!r}: an instance starts RUNNING or TERMINATED")
        if machine_type not in MACHINE_TYPES:
            raise ValueError(f"machine type {machine_type!r} is not in the emulator's catalogue")
        with self.lock:
            if zone not in self.data["zones"]:
                self.data["zones"].append(zone)
            now = self.clock()
            self.data["instances"][f"{project}/{zone}/{name}"] = {
                "project": project,
                "zone": zone,
                "name": name,
                "id": self._next_id(),
                "machineType": machine_type,
                "status": status,
                "created": now,
                "lastStart": now if status == "RUNNING" else None,
                "lastStop": now if status == "TERMINATED" else None,
                "pending": None,
                "bootDisk": boot_disk or name,
                "scheduling": scheduling_for({"provisioningModel": provisioning_model}),
                "preempted": False,
            }
            self.add_disk(project, zone, boot_disk or name, disk_size_gb, disk_type, user=name)
            return self.instance(project, zone, name)

    def _instance_record(self, project: str, zone: str, name: str) -> dict:
        self._check_zone(project, zone)
        record = self.data["instances"].get(f"{project}/{zone}/{name}")
        if record is None:
            raise not_found(f"projects/{project}/zones/{zone}/instances/{name}")
        return record

    def _check_zone(self, project: str, zone: str) -> None:
        if zone not in self.data["zones"]:
            raise not_found(f"projects/{project}/zones/{zone}")

    def instance(self, project: str, zone: str, name: str) -> dict:
        with self.lock:
            self.tick()
            record = self._instance_record(project, zone, name)
            link = zone_link(project, zone)
            view = {
                "kind": "compute#instance",
                "id": record["id"],
                "name": name,
                "creationTimestamp": rfc3339(record["created"]),
                "zone": link,
                "machineType": f"{link}/machineTypes/{record['machineType']}",
                "status": record["status"],
                "cpuPlatform": "Intel Broadwell" if record["status"] == "RUNNING" else "Unknown CPU Platform",
                "selfLink": f"{link}/instances/{name}",
                "labels": {"central-mcp": "agents"},
                "deletionProtection": False,
                "scheduling": self.scheduling_of(record),
            }
            disks = self.attached_disks(record)
            if disks:
                view["disks"] = disks
            for key, field in (("lastStart", "lastStartTimestamp"), ("lastStop", "lastStopTimestamp")):
                if record[key]:
                    view[field] = rfc3339(record[key])
            return view

    def metadata(self, project: str, zone: str, name: str) -> dict:
        """What the VM's own metadata server answers, by path (the values are text, as on GCE)."""
        with self.lock:
            self.tick()
            record = self._instance_record(project, zone, name)
            token = {"access_token": self.config.get("token") or "emulated-metadata-token", "expires_in": 3599,
                     "token_type": "Bearer"}  # fmt: skip
            return {
                "/computeMetadata/v1/instance/preempted": "TRUE" if record.get("preempted") else "FALSE",
                "/computeMetadata/v1/instance/name": name,
                # The VM's service account's token, as google-auth's compute_engine credentials read it.
                "/computeMetadata/v1/instance/service-accounts/default/token": json.dumps(token),
            }

    # ------------------------------------------------------------- machine types
    def machine_type(self, project: str, zone: str, name: str) -> dict:
        with self.lock:
            self._check_zone(project, zone)
        if name not in MACHINE_TYPES:
            raise not_found(f"projects/{project}/zones/{zone}/machineTypes/{name}")
        cpus, memory, shared = MACHINE_TYPES[name]
        link = zone_link(project, zone)
        return {
            "kind": "compute#machineType",
            "id": str(zlib.crc32(name.encode())),
            "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
            "name": name,
            "description": f"{cpus} vCPU{'s' if cpus > 1 else ''}, {memory // 1024} GB RAM",
            "guestCpus": cpus,
            "memoryMb": memory,
            "imageSpaceGb": 0,
            "maximumPersistentDisks": 128,
            "maximumPersistentDisksSizeGb": "263168",
            "zone": zone,
            "selfLink": f"{link}/machineTypes/{name}",
            "isSharedCpu": shared,
            "architecture": "X86_64",
        }

    def machine_types(self, project: str, zone: str) -> dict:
        items = [self.machine_type(project, zone, name) for name in MACHINE_TYPES]
        link = zone_link(project, zone)
        return {
            "kind": "compute#machineTypeList",
            "id": f"projects/{project}/zones/{zone}/machineTypes",
            "items": items,
            "selfLink": f"{link}/machineTypes",
        }

    # ------------------------------------------------------------- faults
    def add_fault(self, fault: dict) -> list:
        kinds = ("http", "operation_error", "slow")
        if fault.get("kind") not in kinds:
            raise ValueError(f"fault kind {fault.get('kind')!r}: use one of {kinds}")
        with self.lock:
            self.data["faults"].append({"method": "*", "times": 1, **fault})
            self.save()
            return self.data["faults"]

    def clear_faults(self) -> None:
        with self.lock:
            self.data["faults"] = []
            self.save()

    def take_fault(self, kind: str, method_id: str) -> dict | None:
        """The first armed fault of this kind for this method (ids match in full or without `compute.`)."""
        with self.lock:
            for fault in self.data["faults"]:
                wanted = fault["method"]
                if fault["kind"] == kind and wanted in ("*", method_id, method_id.removeprefix("compute.")):
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self.data["faults"].remove(fault)
                    self.save()
                    return fault
        return None

    # ------------------------------------------------------------- operations
    def act(
        self,
        project: str,
        zone: str,
        name: str,
        action: str,
        body: dict | None = None,
        request_id: str | None = None,
    ) -> dict:
        """stop / start / setMachineType / setScheduling: check, create the operation, start the transition."""
        body = body or {}
        with self.lock:
            self.tick()
            record = self._instance_record(project, zone, name)
            seen = self.seen_request(project, request_id)
            if seen:  # the same request again: its first operation, nothing runs twice
                return seen
            if record["pending"]:
                resource = f"projects/{project}/zones/{zone}/instances/{name}"
                raise ApiError(400, "resourceNotReady", f"The resource '{resource}' is not ready")
            machine_type = scheduling = None
            if action == "setMachineType":
                machine_type = body.get("machineType")
                target = (machine_type or "").rsplit("/", 1)[-1]
                if target not in MACHINE_TYPES:
                    message = (
                        f"Invalid value for field 'resource.machineType': '{machine_type}'. "
                        f"Machine type with name '{target}' does not exist in zone '{zone}'."
                    )
                    raise ApiError(400, "invalid", message)
                if record["status"] != "TERMINATED":
                    reason = "Instance must be stopped before its machine type can be changed."
                    raise ApiError(400, "invalidResourceUsage", f"Invalid resource usage: '{reason}'.")
            if action == "setScheduling":
                scheduling = self.check_scheduling(record, body)
            slow = self.take_fault("slow", f"compute.instances.{action}")
            failure = self.take_fault("operation_error", f"compute.instances.{action}")
            duration = float(slow["seconds"]) if slow else float(self.config["durations"].get(action, 0.5))
            # Stopping a stopped VM (or starting a running one) is accepted and done at once, as on GCE.
            noop = (action, record["status"]) in (("stop", "TERMINATED"), ("start", "RUNNING"))
            now = self.clock()
            op = {
                "name": f"operation-{int(now * 1000)}-{self.data['seq'] + 1:x}-{action.lower()}",
                "id": self._next_id(),
                "project": project,
                "zone": zone,
                "target": name,
                "targetId": record["id"],
                "action": action,
                "machineType": machine_type and machine_type.rsplit("/", 1)[-1],
                "scheduling": scheduling,
                "inserted": now,
                "done_at": now + (0.0 if noop else duration),
                "failure": failure,
                "applied": False,
            }
            key = f"{project}/{zone}/{op['name']}"
            self.data["operations"][key] = op
            self.remember_request(project, request_id, key)
            if not noop:
                record["pending"] = op["name"]
                record["status"] = {"stop": "STOPPING", "start": "STAGING"}.get(action, record["status"])
                if action == "stop":
                    self.state_reached(record, "stop")  # the guest gets its shutdown signal now, as on GCE
            self.tick()
            self.save()
            return self.operation_view(op)

    def tick(self) -> None:
        """Apply every operation that has come due: the instance reaches its new state."""
        now, changed = self.clock(), False
        for op in self.data["operations"].values():
            if op["applied"] or now < op["done_at"]:
                continue
            op["applied"], changed = True, True
            if op.get("collection") == "disks":
                self.apply_disk_operation(op)
                continue
            record = self.data["instances"].get(f"{op['project']}/{op['zone']}/{op['target']}")
            if record is None:
                continue
            record["pending"] = None
            failed = op["failure"] is not None
            before = record["status"]
            if op["action"] in ("stop", "compute.instances.preempted"):
                record["status"] = "RUNNING" if failed else "TERMINATED"
                record["lastStop"] = None if failed else op["done_at"]
            elif op["action"] == "start":
                record["status"] = "TERMINATED" if failed else "RUNNING"
                if not failed:
                    record["lastStart"] = op["done_at"]
                    record["preempted"] = False
            elif op["action"] == "setMachineType" and not failed:
                record["machineType"] = op["machineType"]
            elif op["action"] == "setScheduling" and not failed:
                record["scheduling"] = op["scheduling"]
            if record["status"] != before:
                self.state_reached(record, "preempted" if op["action"].endswith("preempted") else op["action"])
        if changed:
            self.save()

    def operation(self, project: str, zone: str, name: str) -> dict:
        with self.lock:
            self.tick()
            return self.operation_view(self._operation_record(project, zone, name))

    def _operation_record(self, project: str, zone: str, name: str) -> dict:
        self._check_zone(project, zone)
        op = self.data["operations"].get(f"{project}/{zone}/{name}")
        if op is None:
            raise not_found(f"projects/{project}/zones/{zone}/operations/{name}")
        return op

    def operations(self, project: str, zone: str, filter_text: str | None = None) -> dict:
        """zoneOperations.list, oldest first, with the AIP-160 filters a client of the fleet sends:
        ``field = "value"`` terms (``operationType``, ``targetId``, ``status``...) joined by AND or spaces."""
        wanted = parse_filter(filter_text)
        with self.lock:
            self.tick()
            self._check_zone(project, zone)
            views = [
                self.operation_view(op)
                for op in self.data["operations"].values()
                if (op["project"], op["zone"]) == (project, zone)
            ]
        items = [v for v in views if all(str(v.get(field)) == value for field, value in wanted)]
        link = zone_link(project, zone)
        answer = {"kind": "compute#operationList", "id": f"projects/{project}/zones/{zone}/operations",
                  "selfLink": f"{link}/operations"}  # fmt: skip
        if items:
            answer["items"] = items
        return answer

    def wait(self, project: str, zone: str, name: str) -> dict:
        """zoneOperations.wait: block until the operation is done or the server's wait limit passes."""
        deadline = self.clock() + float(self.config["wait_max_s"])
        while True:
            with self.lock:
                op = self._operation_record(project, zone, name)
                now = self.clock()
                if now >= op["done_at"] or now >= deadline:
                    return self.operation(project, zone, name)
                pause = min(op["done_at"], deadline) - now
            time.sleep(pause + 0.001)

    def operation_view(self, op: dict) -> dict:
        now = self.clock()
        link = zone_link(op["project"], op["zone"])
        total = max(op["done_at"] - op["inserted"], 1e-9)
        done = now >= op["done_at"]
        status = "DONE" if done else ("PENDING" if now < op["inserted"] + 0.1 * total else "RUNNING")
        view = {
            "kind": "compute#operation",
            "id": op["id"],
            "name": op["name"],
            "zone": link,
            "operationType": op["action"],
            "targetLink": f"{link}/{op.get('collection', 'instances')}/{op['target']}",
            "targetId": op["targetId"],
            "status": status,
            "user": "emulator@central-mcp.test",
            "progress": 100 if done else int(100 * (now - op["inserted"]) / total),
            "insertTime": rfc3339(op["inserted"]),
            "startTime": rfc3339(op["inserted"]),
            "selfLink": f"{link}/operations/{op['name']}",
        }
        if done:
            view["endTime"] = rfc3339(op["done_at"])
            if op["failure"] is not None:
                code, message, http = OPERATION_ERRORS.get(op["action"], OPERATION_ERRORS["stop"])
                message = op["failure"].get("message") or message
                message = message.format(zone=f"projects/{op['project']}/zones/{op['zone']}", region=op["zone"][:-2])
                view["error"] = {"errors": [{"code": op["failure"].get("code") or code, "message": message}]}
                view["httpErrorStatusCode"] = int(op["failure"].get("http_status") or http)
                names = {403: "FORBIDDEN", 500: "INTERNAL SERVER ERROR", 503: "SERVICE UNAVAILABLE"}
                view["httpErrorMessage"] = names.get(view["httpErrorStatusCode"], "ERROR")
        return view

    def dump(self) -> dict:
        """Everything, for the admin API: instances as the API shows them plus their raw records."""
        with self.lock:
            self.tick()
            instances = []
            for record in self.data["instances"].values():
                view = self.instance(record["project"], record["zone"], record["name"])
                instances.append({**view, "_pending": record["pending"], "_machine_type": record["machineType"]})
            operations = [self.operation_view(op) for op in self.data["operations"].values()]
            for view, op in zip(operations, self.data["operations"].values(), strict=True):
                view["_seconds"] = round(op["done_at"] - op["inserted"], 3)
            disks = [self.disk(r["project"], r["zone"], r["name"]) for r in self.data.get("disks", {}).values()]
            faults, config = self.data["faults"], self.config
            return {
                "instances": instances,
                "disks": disks,
                "operations": operations,
                "faults": faults,
                "config": config,
            }
