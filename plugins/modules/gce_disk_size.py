#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: grow a Compute Engine VM's boot disk (or any zonal disk) online; never shrink it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gce_disk_size
short_description: Grow the boot disk of a Compute Engine VM online, never shrinking it
version_added: "0.1.0"
description:
  - Reads the disk (C(disks.get)) and, when it is smaller than O(size_gb), grows
    it (C(disks.resize)) and waits for the zone operation to be C(DONE)
    (C(zoneOperations.wait)). Compute Engine grows a disk while the VM runs;
    nothing stops or restarts.
  - With O(instance), the boot disk is found through the instance's
    C(disks[]) (the entry with C(boot=true)); its name need not be the
    instance's. With O(disk), that disk is used directly (one read fewer).
  - A disk can never shrink on Compute Engine. Asking for less than the current
    size fails before any request that changes anything, with the current size
    in the message, unless O(keep_larger=true), which leaves the larger disk as
    it is.
  - Only the disk grows. The partition and the filesystem on it are the
    guest's business (C(growpart), C(resize2fs), C(xfs_growfs)); the role
    C(central_mcp.agents.vm_upgrade) does both.
  - An operation that ends in an error (e.g. C(QUOTA_EXCEEDED)) fails with the
    API's own code and message; the disk is read back and the message says
    that its size is unchanged.
  - HTTP 429, 5xx and rate-limit 403 answers are retried with exponential
    back-off and full jitter, within O(timeout). The resize carries a
    C(requestId), so a retried request is carried out once.
  - "Runs on the controller (use C(delegate_to: localhost)); needs the Python
    libraries C(google-auth) and C(requests) there."
author:
  - Central-MCP maintainers (@central-mcp)
# project, zone, auth_kind, service_account_file, access_token, api_endpoint, requirements
extends_documentation_fragment:
  - central_mcp.agents.gce
options:
  instance:
    description:
      - Name of the VM whose boot disk should grow. Exactly one of O(instance) and O(disk) is needed.
    type: str
  disk:
    description:
      - Name (or URL) of a zonal persistent disk to grow, instead of finding the boot disk of O(instance).
    type: str
  size_gb:
    description:
      - The size the disk should have at least, in GB (Compute Engine's GB are GiB, 2^30 bytes).
      - From 10 (the smallest boot disk) to 65536.
    type: int
    required: true
  keep_larger:
    description:
      - When the disk is already larger than O(size_gb), leave it and succeed (RV(changed=false)) instead
        of failing. For sizes computed from the fleet, which go down when agents are removed while the disk
        cannot.
    type: bool
    default: false
  min_growth_gb:
    description:
      - Grow only when O(size_gb) is at least this many GB above the current size; a smaller difference is
        left alone (RV(changed=false)). Every grow is permanent and billed, so a computed size should not
        move the disk for every added agent. V(0) grows for any difference.
    type: int
    default: 0
  timeout:
    description:
      - Seconds the whole change may take, retries and the operation wait included.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: Only reads (GET) the instance and the disk, and reports what would change.
  diff_mode:
    support: full
    description: Shows C(size_gb) and C(disk_type) before and after.
  platform:
    support: full
    platforms: posix
    description: Runs wherever google-auth is installed; the vm_upgrade role runs it on the controller.
notes:
  - The account needs C(compute.disks.get) and C(compute.disks.resize), and
    C(compute.instances.get) with O(instance); e.g. the role
    C(roles/compute.instanceAdmin.v1).
  - A bigger disk costs more every month and cannot be made smaller again;
    the filter P(central_mcp.agents.disk_size_change#filter) says by how much.
  - Regional disks (C(regions/R/disks/D)) are not handled; the module says so
    and names the C(gcloud) command.
seealso:
  - name: Increase the size of a persistent disk
    description: What Compute Engine allows, and the guest's part (growpart, resize2fs, xfs_growfs).
    link: https://cloud.google.com/compute/docs/disks/resize-persistent-disk
  - module: central_mcp.agents.gce_machine_type
"""

EXAMPLES = r"""
- name: Give the VM's boot disk 50 GB (online, no restart)
  central_mcp.agents.gce_disk_size:
    project: my-project
    zone: us-central1-a
    instance: central-mcp-vm1
    size_gb: 50
    auth_kind: serviceaccount
    service_account_file: ~/.config/gcloud/central-mcp-sa.json
  delegate_to: localhost
  become: false
  register: disk

- name: Size it from the fleet, growing in steps of 5 GB or more and never failing on a larger disk
  central_mcp.agents.gce_disk_size:
    project: my-project
    zone: us-central1-a
    instance: central-mcp-vm1
    size_gb: "{{ central_mcp_agents | length | central_mcp.agents.disk_size_for_agents }}"
    min_growth_gb: 5
    keep_larger: true
    auth_kind: accesstoken
    access_token: "{{ vault_gce_access_token }}"
  delegate_to: localhost

- name: Only tell what would change, for a disk known by name
  central_mcp.agents.gce_disk_size:
    project: my-project
    zone: us-central1-a
    disk: central-mcp-data
    size_gb: 200
  delegate_to: localhost
  check_mode: true
  diff: true
"""

RETURN = r"""
disk:
  description: Name of the disk (the boot disk found through O(instance), or O(disk)).
  returned: when the disk was found
  type: str
  sample: central-mcp-vm1
previous_size_gb:
  description: Size of the disk in GB when the module started.
  returned: when the disk was found
  type: int
  sample: 10
size_gb:
  description: Size of the disk in GB at the end (in check mode, the size it would get).
  returned: when the disk was found
  type: int
  sample: 50
disk_type:
  description: The disk's type (C(pd-standard), C(pd-balanced), C(pd-ssd)...), for pricing it.
  returned: when the disk was found
  type: str
  sample: pd-balanced
changed:
  description: Whether the disk grew (in check mode, would grow).
  returned: always
  type: bool
  sample: true
api_calls:
  description: HTTP requests sent to the API, retries and the operation wait included.
  returned: always
  type: int
  sample: 5
"""

import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.gce import (  # noqa: E402
    GCE_AUTH_ARGUMENT_SPEC,
    GOOGLE_AUTH_IMPORT_ERROR,
    HAS_GOOGLE_AUTH,
    ComputeApi,
    GceError,
    GceOperationError,
    GceTimeout,
    link_parts,
    request_id,
    session_for,
    short_name,
)

ARGUMENT_SPEC = {
    **GCE_AUTH_ARGUMENT_SPEC,
    "instance": {"type": "str"},
    "disk": {"type": "str"},
    "size_gb": {"type": "int", "required": True},
    "keep_larger": {"type": "bool", "default": False},
    "min_growth_gb": {"type": "int", "default": 0},
}
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
MIN_SIZE_GB = 10  # the smallest boot disk
MAX_SIZE_GB = 65536  # the largest zonal persistent disk
USER_AGENT = "central-mcp-agents/gce_disk_size"


class Grow:
    """One run: find the disk, compare, and (outside check mode) grow it once."""

    def __init__(self, module: AnsibleModule, api: ComputeApi):
        self.module, self.api, self.p = module, api, module.params
        self.result = {"changed": False}

    def report(self, **extra) -> dict:
        return {**self.result, "api_calls": self.api.calls, **extra}

    def fail(self, msg: str, **extra) -> None:
        self.module.fail_json(msg=msg, **self.report(**extra))

    def find_disk(self) -> str:
        """The disk's name: as given, or the instance's boot disk (read from its disks[])."""
        p = self.p
        if p["disk"]:
            return short_name(p["disk"])
        instance = self.api.get(f"instances/{p['instance']}")
        boot = [d for d in instance.get("disks") or [] if d.get("boot")]
        if not boot or not boot[0].get("source"):
            self.fail(
                f"instance {p['instance']} has no boot disk in its disks[]: name the disk with the disk option "
                "(nothing was changed)"
            )
        parts = link_parts(boot[0]["source"])
        name = parts.get("disks") or short_name(boot[0]["source"])
        if "regions" in parts:
            self.fail(
                f"the boot disk {name} of instance {p['instance']} is a regional disk (region {parts['regions']}); "
                f"this module grows zonal disks: use `gcloud compute disks resize {name} --region "
                f"{parts['regions']} --size {p['size_gb']}GB` (nothing was changed)"
            )
        if parts.get("zones", p["zone"]) != p["zone"]:
            self.fail(
                f"the boot disk {name} of instance {p['instance']} is in zone {parts['zones']}, not {p['zone']}: "
                "run the module with that zone and the disk option (nothing was changed)"
            )
        return name

    def run(self) -> dict:
        p = self.p
        name = self.find_disk()
        disk = self.api.get(f"disks/{name}")
        current, target = int(disk.get("sizeGb") or 0), p["size_gb"]
        self.result.update(disk=name, previous_size_gb=current, size_gb=current, disk_type=short_name(disk.get("type")))
        if target < current:
            if p["keep_larger"]:
                return self.report()
            self.fail(
                f"disk {name} is {current} GB and size_gb is {target}: a Compute Engine disk can only grow, never "
                f"shrink. Set size_gb to {current} or more (nothing was changed)"
            )
        if target - current < max(p["min_growth_gb"], 1):
            return self.report()
        if disk.get("status", "READY") != "READY":
            self.fail(
                f"disk {name} is {disk['status']}, not READY: wait until it is, then run again (nothing was changed)"
            )
        self.result.update(changed=True, size_gb=target)
        extra = {"diff": self.diff(name, current, target)} if self.module._diff else {}
        if self.module.check_mode:  # the one change point: nothing above has written
            return self.report(**extra)
        try:
            operation = self.api.post(f"disks/{name}/resize?requestId={request_id()}", {"sizeGb": str(target)})
            self.api.wait(operation, f"growing disk {name} to {target} GB")
        except GceError as exc:
            self.fail(self.failure(name, current, target, exc), **extra)
        try:
            final = int(self.api.get(f"disks/{name}").get("sizeGb") or 0)
        except GceError as exc:
            self.fail(
                f"disk {name} was grown to {target} GB but reading it back failed: {exc}; look at it in the console"
            )
        if final < target:
            self.fail(f"disk {name} should be {target} GB but the API shows {final} GB: look at it in the console")
        self.result["size_gb"] = final
        return self.report(**extra)

    def diff(self, name: str, current: int, target: int) -> dict:
        where = f"projects/{self.p['project']}/zones/{self.p['zone']}/disks/{name}"
        kind = self.result["disk_type"]
        return {
            "before_header": where,
            "after_header": where,
            "before": f"size_gb: {current}\ndisk_type: {kind}\n",
            "after": f"size_gb: {target}\ndisk_type: {kind}\n",
        }

    def failure(self, name: str, current: int, target: int, error: GceError) -> str:
        """What went wrong, and the size the disk has now (read back, not assumed)."""
        what = f"growing disk {name} from {current} GB to {target} GB failed"
        if isinstance(error, GceTimeout):
            return (
                f"{what}: {error}. The operation may still finish and grow the disk: run again later to see "
                "(a second run does not grow it twice)"
            )
        cause = str(getattr(error, "details", error)).rstrip(". ")
        self.api.extend(30)  # one more read, so the message can say what the disk is now
        try:
            now = int(self.api.get(f"disks/{name}").get("sizeGb") or 0)
        except GceError as exc:
            return f"{what}: {cause}. Reading the disk back failed too ({exc}): look at it in the console"
        self.result.update(size_gb=now, changed=now > current)
        if now >= target:
            self.result["changed"] = True
            return f"{what} as far as the API answered ({cause}), yet the disk is now {now} GB: run again to confirm"
        hint = ""
        if isinstance(error, GceOperationError) and "QUOTA_EXCEEDED" in error.codes:
            hint = "; ask for more disk quota in the region (IAM & Admin > Quotas) or choose a smaller size"
        elif error.status == 403:
            hint = "; the account may not resize disks: grant it roles/compute.instanceAdmin.v1 on the project"
        return f"{what}: {cause}. The disk is unchanged at {now} GB{hint}"


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_one_of=[("instance", "disk")],
        mutually_exclusive=[("instance", "disk")],
        required_if=[("auth_kind", "serviceaccount", ["service_account_file"])],
    )
    if not HAS_GOOGLE_AUTH:
        module.fail_json(
            msg=missing_required_lib("google-auth", reason="to call the Compute Engine API")
            + " Install google-auth and requests on the controller (the collection's requirements.txt lists them).",
            exception=GOOGLE_AUTH_IMPORT_ERROR,
        )
    p = module.params
    check_options(module)
    try:
        session = session_for(p["auth_kind"], p["service_account_file"], p["access_token"], USER_AGENT)
    except GceError as exc:
        module.fail_json(msg=f"{exc} (auth_kind={p['auth_kind']}; nothing was changed)", api_calls=0, changed=False)
    api = ComputeApi(session, p["api_endpoint"], p["project"], p["zone"], p["timeout"])
    try:
        module.exit_json(**Grow(module, api).run())
    except GceError as exc:  # only reads can get here: the resize is inside Grow.run's own handling
        module.fail_json(msg=explain(exc, p), api_calls=api.calls, changed=False)


def check_options(module: AnsibleModule) -> None:
    """Values the API would refuse, refused before any request, each naming the bad value."""
    p = module.params
    name = p["instance"] or short_name(p["disk"])
    option = "instance" if p["instance"] else "disk"
    if not NAME_RE.match(name):
        module.fail_json(msg=f"{option} {name!r} is not a Compute Engine resource name (like central-mcp-vm1)")
    if not MIN_SIZE_GB <= p["size_gb"] <= MAX_SIZE_GB:
        module.fail_json(
            msg=f"size_gb {p['size_gb']} is out of range: a boot disk is {MIN_SIZE_GB} to {MAX_SIZE_GB} GB "
            "(Compute Engine's GB are GiB)"
        )
    if p["min_growth_gb"] < 0:
        module.fail_json(msg=f"min_growth_gb must be 0 or more, got {p['min_growth_gb']}")
    if p["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be a positive number of seconds, got {p['timeout']}")


def explain(exc: GceError, p: dict) -> str:
    """What an error before any change means, and what to do about it."""
    what = f"instance {p['instance']}" if p["instance"] else f"disk {short_name(p['disk'])}"
    where = f"{what} (project {p['project']}, zone {p['zone']})"
    if exc.status == 401:
        hint = "the credentials were refused: an access token may have expired (get a fresh one), or the key is revoked"
    elif exc.status == 403:
        hint = "the account may not read it: grant it roles/compute.instanceAdmin.v1 on the project"
    elif exc.status == 404:
        hint = "check project, zone and name (`gcloud compute instances list`, `gcloud compute disks list`)"
    else:
        return f"reading {where} failed: {exc} (nothing was changed)"
    return f"reading {where} failed: {exc}; {hint} (nothing was changed)"


if __name__ == "__main__":
    main()
