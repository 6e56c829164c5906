# SPDX-License-Identifier: Apache-2.0
"""A local Compute Engine API emulator, held to Google's discovery document.

Google's API cannot be reached from the test bed, and a mock that only
returns what a test expects proves little. This emulator keeps real state
(instances that go RUNNING -> STOPPING -> TERMINATED -> STAGING -> RUNNING
over configurable times, boot disks that only grow, operations that end DONE
with or without an error),
answers in Google's formats, injects faults on demand (429, 503, slow or
failing operations), and checks every request and response against the
official ``compute.v1`` discovery document, so it cannot drift from the
contract the real service keeps.

In tests::

    with start(durations={"stop": 0.2, "start": 0.3}) as emu:
        emu.add_instance("p", "us-central1-a", "vm1", "e2-micro")
        ... call emu.api_endpoint ...
        emu.log()  # what the client sent

From a shell (``make demo``)::

    python -m tests.gce_emulator --port 8089 --state .cache/gce-emulator.json \\
        --instance demo-project/us-central1-a/central-mcp-vm1=e2-micro

Nothing outside tests/ may import it: it is a stand-in, never part of the collection.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request

from .server import Emulator, EmulatorServer

__all__ = ["Emulator", "EmulatorServer", "RunningEmulator", "start"]


class RunningEmulator:
    """An emulator serving on 127.0.0.1 in a background thread, with helpers for its admin API."""

    def __init__(self, port: int = 0, state_file: str | None = None, verbose: bool = False, **config):
        self.emulator = Emulator(state_file)
        self.server = EmulatorServer(("127.0.0.1", port), self.emulator, verbose=verbose)
        self.url = self.server.url
        self.api_endpoint = f"{self.url}/compute/v1"
        if config:
            self.emulator.world.configure(config)
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="gce-emulator", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def admin(self, verb: str, path: str, body=None):
        """Call the admin API over HTTP (the way another process, such as make demo, would)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=verb)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local test server
            return json.loads(response.read())

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
        """An instance with its boot disk (named after it unless boot_disk says otherwise)."""
        body = {"project": project, "zone": zone, "name": name, "machineType": machine_type, "status": status}
        body.update(diskSizeGb=disk_size_gb, diskType=disk_type, provisioningModel=provisioning_model)
        if boot_disk:
            body["bootDisk"] = boot_disk
        return self.admin("POST", "instances", body)

    def add_disk(self, project: str, zone: str, name: str, size_gb: int = 10, disk_type: str = "pd-balanced") -> dict:
        return self.admin(
            "POST", "disks", {"project": project, "zone": zone, "name": name, "sizeGb": size_gb, "type": disk_type}
        )

    def preempt(self, project: str, zone: str, name: str, notice_s: float = 30.0) -> dict:
        """Preempt a running Spot VM as GCE does (the notice, then TERMINATED); the system operation."""
        return self.admin("POST", "preempt", {"project": project, "zone": zone, "name": name, "noticeS": notice_s})

    def metadata_url(self, project: str, zone: str, name: str) -> str:
        """The base URL of that VM's metadata server (GCE's http://metadata.google.internal)."""
        return f"{self.url}/_emulator/metadata/{project}/{zone}/{name}"

    def fault(self, kind: str, **fields) -> list:
        return self.admin("POST", "faults", {"kind": kind, **fields})

    def configure(self, **config) -> dict:
        return self.admin("POST", "config", config)

    def instance(self, project: str, zone: str, name: str) -> dict:
        """The instance as the API shows it, read without the API (no log entry, no fault)."""
        return self.emulator.world.instance(project, zone, name)

    def disk(self, project: str, zone: str, name: str) -> dict:
        """The disk as the API shows it, read without the API (no log entry, no fault)."""
        return self.emulator.world.disk(project, zone, name)

    def log(self) -> list[dict]:
        return self.admin("GET", "log")

    def clear_log(self) -> None:
        self.admin("DELETE", "log")

    def violations(self) -> list[str]:
        return self.admin("GET", "violations")

    def state(self) -> dict:
        return self.admin("GET", "state")


@contextlib.contextmanager
def start(**options):
    """Context manager: a RunningEmulator for the duration of the block."""
    running = RunningEmulator(**options)
    try:
        yield running
    finally:
        running.close()
