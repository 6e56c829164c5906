# SPDX-License-Identifier: Apache-2.0
"""Persistent disks of the emulated Compute Engine: boot disks, disks.get and disks.resize.

Why a disk is its own record, not a field of the instance: on Compute Engine a
boot disk is a resource of its own (``zones/Z/disks/D``) that the instance
links to from ``disks[].source``, may be named differently from the
instance, and is resized through its own method while the VM keeps running.
A client that reads the size from the instance, or resizes "the instance",
would work against a stand-in that merged them and fail against the real API.

The rules kept here are the service's: a disk only grows (a size that is not
larger is refused with 400 before any operation exists); a disk with an
operation in flight answers ``resourceNotReady``; a resize with a
``requestId`` that was seen before returns the first operation instead of
running again (what makes a retried POST safe); an armed ``operation_error``
fault ends the operation DONE with ``QUOTA_EXCEEDED`` (the quota of the
disk's type) and leaves the size as it was.

``World.on_disk_resized`` (in-process only) is called as
``fn(project, zone, disk, size_gb)`` when a resize takes effect, so a test can
grow a loop device the way Compute Engine grows the guest's block device.
"""

from __future__ import annotations

from .common import API, ApiError, not_found, rfc3339, zone_link

DISK_TYPES = ("pd-standard", "pd-balanced", "pd-ssd", "pd-extreme")
# The regional quota a disk type counts against, as a failed resize names it.
QUOTAS = {"pd-standard": "DISKS_TOTAL_GB", "pd-balanced": "SSD_TOTAL_GB", "pd-ssd": "SSD_TOTAL_GB"}
MAX_SIZE_GB = 65536
DEBIAN_IMAGE = f"{API}/projects/debian-cloud/global/images/debian-12-bookworm-v20261118"


class Disks:
    """Disk records and the disk methods; mixed into World, whose lock, clock and data it uses."""

    on_disk_resized = None  # fn(project, zone, disk, size_gb), called when a resize takes effect

    # ------------------------------------------------------------- records
    def add_disk(
        self,
        project: str,
        zone: str,
        name: str,
        size_gb: int = 10,
        disk_type: str = "pd-balanced",
        user: str | None = None,
    ) -> dict:
        if disk_type not in DISK_TYPES:
            raise ValueError(f"disk type {disk_type!r} is not one of the emulator's: {', '.join(DISK_TYPES)}")
        if not (isinstance(size_gb, int) and 10 <= size_gb <= MAX_SIZE_GB):
            raise ValueError(f"disk size {size_gb!r}: a whole number of GB from 10 to {MAX_SIZE_GB}")
        with self.lock:
            if zone not in self.data["zones"]:
                self.data["zones"].append(zone)
            self.data.setdefault("disks", {})[f"{project}/{zone}/{name}"] = {
                "project": project,
                "zone": zone,
                "name": name,
                "id": self._next_id(),
                "sizeGb": size_gb,
                "type": disk_type,
                "created": self.clock(),
                "users": [user] if user else [],
                "pending": None,
            }
            self.save()
            return self.disk(project, zone, name)

    def _disk_record(self, project: str, zone: str, name: str) -> dict:
        self._check_zone(project, zone)
        record = self.data.setdefault("disks", {}).get(f"{project}/{zone}/{name}")
        if record is None:
            raise not_found(f"projects/{project}/zones/{zone}/disks/{name}")
        return record

    def ensure_boot_disks(self) -> None:
        """Give every instance a boot disk: state files written before disks existed keep working."""
        for record in self.data["instances"].values():
            if not record.get("bootDisk"):
                self.add_disk(record["project"], record["zone"], record["name"], user=record["name"])
                record["bootDisk"] = record["name"]

    # ------------------------------------------------------------- views
    def disk(self, project: str, zone: str, name: str) -> dict:
        with self.lock:
            self.tick()
            record = self._disk_record(project, zone, name)
            link = zone_link(project, zone)
            view = {
                "kind": "compute#disk",
                "id": record["id"],
                "creationTimestamp": rfc3339(record["created"]),
                "name": name,
                "sizeGb": str(record["sizeGb"]),
                "zone": link,
                "status": "READY",
                "selfLink": f"{link}/disks/{name}",
                "sourceImage": DEBIAN_IMAGE,
                "type": f"{link}/diskTypes/{record['type']}",
                "users": [f"{link}/instances/{user}" for user in record["users"]],
                "physicalBlockSizeBytes": "4096",
                "architecture": "X86_64",
            }
            if record["users"]:
                view["lastAttachTimestamp"] = rfc3339(record["created"])
            return view

    def attached_disks(self, record: dict) -> list[dict]:
        """An instance's disks[] as instances.get shows them: the boot disk, linked by URL."""
        name = record.get("bootDisk")
        if not name:
            return []
        disk = self._disk_record(record["project"], record["zone"], name)
        return [
            {
                "kind": "compute#attachedDisk",
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "source": f"{zone_link(record['project'], record['zone'])}/disks/{name}",
                "deviceName": "persistent-disk-0",
                "index": 0,
                "boot": True,
                "autoDelete": True,
                "interface": "SCSI",
                "diskSizeGb": str(disk["sizeGb"]),
                "architecture": "X86_64",
            }
        ]

    # ------------------------------------------------------------- disks.resize
    def resize_disk(self, project: str, zone: str, name: str, size_gb, request_id: str | None = None) -> dict:
        with self.lock:
            self.tick()
            record = self._disk_record(project, zone, name)
            seen = self.seen_request(project, request_id)
            if seen:  # the same request again: its first operation, nothing runs twice
                return seen
            try:
                wanted = int(size_gb)
            except (TypeError, ValueError):
                wanted = None
            if wanted is None or wanted <= 0 or wanted > MAX_SIZE_GB:
                raise ApiError(
                    400, "invalid", f"Invalid value for field 'sizeGb': '{size_gb}'. Must be 1 to {MAX_SIZE_GB}"
                )
            if wanted <= record["sizeGb"]:
                message = (
                    f"Invalid value for field 'sizeGb': '{wanted}'. Requested disk size cannot be smaller than "
                    f"or equal to the current size '{record['sizeGb']}' (a disk can only grow)."
                )
                raise ApiError(400, "invalid", message)
            if record["pending"]:
                resource = f"projects/{project}/zones/{zone}/disks/{name}"
                raise ApiError(400, "resourceNotReady", f"The resource '{resource}' is not ready")
            slow = self.take_fault("slow", "compute.disks.resize")
            failure = self.take_fault("operation_error", "compute.disks.resize")
            if failure is not None and not failure.get("message"):
                quota = QUOTAS.get(record["type"], "DISKS_TOTAL_GB")
                failure = {**failure, "message": f"Quota '{quota}' exceeded. Limit: 500.0 in region {{region}}."}
            now = self.clock()
            duration = float(slow["seconds"]) if slow else float(self.config["durations"].get("resize", 0.3))
            op = {
                "name": f"operation-{int(now * 1000)}-{self.data['seq'] + 1:x}-resize",
                "id": self._next_id(),
                "project": project,
                "zone": zone,
                "collection": "disks",
                "target": name,
                "targetId": record["id"],
                "action": "resize",
                "sizeGb": wanted,
                "inserted": now,
                "done_at": now + duration,
                "failure": failure,
                "applied": False,
            }
            key = f"{project}/{zone}/{op['name']}"
            self.data["operations"][key] = op
            self.remember_request(project, request_id, key)
            record["pending"] = op["name"]
            self.tick()
            self.save()
            return self.operation_view(op)

    def apply_disk_operation(self, op: dict) -> None:
        """A resize that has come due: the disk gets its new size, unless the operation failed."""
        record = self.data.get("disks", {}).get(f"{op['project']}/{op['zone']}/{op['target']}")
        if record is None:
            return
        record["pending"] = None
        if op["failure"] is None:
            record["sizeGb"] = op["sizeGb"]
            if self.on_disk_resized is not None:
                self.on_disk_resized(op["project"], op["zone"], op["target"], op["sizeGb"])
