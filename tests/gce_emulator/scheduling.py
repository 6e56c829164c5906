# SPDX-License-Identifier: Apache-2.0
"""Scheduling of the emulated instances: provisioning model, setScheduling and Spot preemption.

The rules kept here are the service's, as its discovery document and its
manual describe them:

- ``instances.setScheduling`` runs on a ``TERMINATED`` instance only and sets
  the whole ``scheduling`` (fields left out take their defaults, as on GCE).
  A Spot VM cannot restart automatically nor live-migrate: ``SPOT`` with
  ``automaticRestart: true`` or ``onHostMaintenance: MIGRATE`` is refused
  with 400 before any operation exists.
- A Spot VM shows ``preemptible: true`` beside ``provisioningModel: SPOT``.
- Preemption (an admin call: nothing in the public API preempts) is what
  GCE does to a running Spot VM: the guest's metadata ``instance/preempted``
  turns ``TRUE``, the instance is ``STOPPING`` for the notice (about 30 s on
  GCE), then ``TERMINATED`` (its ``instanceTerminationAction`` is STOP); a
  system operation ``compute.instances.preempted`` records it. A later start
  clears ``preempted``.

``World.on_instance_state`` (in-process, or ``--on-state`` of the process)
is called as ``fn(project, zone, name, status, reason)`` when an instance
reaches ``RUNNING`` or ``TERMINATED``, so a test can start and stop the
container that plays the VM the way Compute Engine starts and stops it.
"""

from __future__ import annotations

from .common import ApiError

STANDARD = {"provisioningModel": "STANDARD", "automaticRestart": True, "onHostMaintenance": "MIGRATE"}
SPOT_DEFAULTS = {"automaticRestart": False, "onHostMaintenance": "TERMINATE", "instanceTerminationAction": "STOP"}
# What GCE gives a Spot VM between the preemption notice and the hard stop.
PREEMPTION_NOTICE_S = 30.0


def scheduling_for(body: dict) -> dict:
    """The instance's scheduling after a setScheduling with this body: the body over the model's defaults."""
    model = body.get("provisioningModel") or ("SPOT" if body.get("preemptible") else "STANDARD")
    if model not in ("STANDARD", "SPOT"):
        raise ApiError(
            400, "invalid", f"Invalid value for field 'resource.provisioningModel': '{model}'. Not supported here."
        )
    spot = model == "SPOT"
    wanted = {"provisioningModel": model, **(SPOT_DEFAULTS if spot else STANDARD)}
    for key in ("automaticRestart", "onHostMaintenance", "instanceTerminationAction"):
        if key in body:
            wanted[key] = body[key]
    if spot and wanted["automaticRestart"]:
        raise ApiError(
            400,
            "invalid",
            "Invalid value for field 'resource.automaticRestart': 'true'. "
            "Spot and preemptible instances cannot be automatically restarted.",
        )
    if spot and wanted["onHostMaintenance"] != "TERMINATE":
        raise ApiError(
            400,
            "invalid",
            f"Invalid value for field 'resource.onHostMaintenance': '{wanted['onHostMaintenance']}'. "
            "Spot and preemptible instances must be terminated on host maintenance.",
        )
    if not spot and "instanceTerminationAction" in wanted:
        wanted.pop("instanceTerminationAction")
    wanted["preemptible"] = spot
    return wanted


class Scheduling:
    """The scheduling methods; mixed into World, whose lock, clock, data and operations it uses."""

    on_instance_state = None  # fn(project, zone, name, status, reason) when an instance is RUNNING or TERMINATED

    @staticmethod
    def scheduling_of(record: dict) -> dict:
        return record.get("scheduling") or {**STANDARD, "preemptible": False}

    def check_scheduling(self, record: dict, body: dict) -> dict:
        """setScheduling's checks, before any operation: the stopped VM, the new scheduling."""
        if record["status"] != "TERMINATED":
            reason = "Instance must be stopped before its scheduling can be changed."
            raise ApiError(400, "invalidResourceUsage", f"Invalid resource usage: '{reason}'.")
        return scheduling_for(body or {})

    def preempt(self, project: str, zone: str, name: str, notice_s: float = PREEMPTION_NOTICE_S) -> dict:
        """What GCE does to a running Spot VM it needs back: notice, STOPPING, then TERMINATED."""
        with self.lock:
            self.tick()
            record = self._instance_record(project, zone, name)
            if self.scheduling_of(record)["provisioningModel"] != "SPOT":
                raise ValueError(f"instance {name} is not a Spot VM: only Spot VMs are preempted")
            if record["status"] != "RUNNING" or record["pending"]:
                raise ValueError(f"instance {name} is {record['status']}: only a running Spot VM can be preempted")
            now = self.clock()
            op = {
                "name": f"systemevent-{int(now * 1000)}-{self.data['seq'] + 1:x}-preempted",
                "id": self._next_id(),
                "project": project,
                "zone": zone,
                "target": name,
                "targetId": record["id"],
                "action": "compute.instances.preempted",
                "inserted": now,
                "done_at": now + float(notice_s),
                "failure": None,
                "applied": False,
            }
            self.data["operations"][f"{project}/{zone}/{op['name']}"] = op
            record.update(pending=op["name"], status="STOPPING", preempted=True)
            self.state_reached(record, "preempted")  # the guest's ACPI shutdown, at the notice
            self.save()
            return self.operation_view(op)

    def state_reached(self, record: dict, reason: str) -> None:
        if self.on_instance_state is not None:
            self.on_instance_state(record["project"], record["zone"], record["name"], record["status"], reason)
