# SPDX-License-Identifier: Apache-2.0
"""One run of gce_disk_size: find the boot disk, compare, grow it once (never shrink).

Shared by the module ``gce_disk_size`` and its action plugin, which runs it
inside the controller's Ansible process when the task runs on the
controller anyway (see module_utils/gce_resize.py for why). Both get the
same result, or the same :class:`~.gce.GceFailure`.
"""

from __future__ import annotations

import re

from ansible_collections.central_mcp.agents.plugins.module_utils.gce import (
    GCE_AUTH_ARGUMENT_SPEC,
    GCE_REQUIRED_IF,
    ComputeApi,
    GceError,
    GceFailure,
    GceOperationError,
    GceTimeout,
    link_parts,
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
# AnsibleModule's and the action plugin's argument checks, beyond the spec itself.
SPEC_RULES = {
    "required_one_of": [("instance", "disk")],
    "mutually_exclusive": [("instance", "disk")],
    "required_if": GCE_REQUIRED_IF,
}
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
MIN_SIZE_GB = 10  # the smallest boot disk
MAX_SIZE_GB = 65536  # the largest zonal persistent disk
USER_AGENT = "central-mcp-agents/gce_disk_size"


def grow_disk(params: dict, check_mode: bool = False, diff: bool = False) -> dict:
    """The module's whole run over checked parameters: its result, or GceFailure(msg, partial results)."""
    check_options(params)
    try:
        session = session_for(params["auth_kind"], params["service_account_file"], params["access_token"], USER_AGENT)
    except GceError as exc:
        msg = f"{exc} (auth_kind={params['auth_kind']}; nothing was changed)"
        raise GceFailure(msg, api_calls=0, changed=False) from exc
    api = ComputeApi(session, params["api_endpoint"], params["project"], params["zone"], params["timeout"])
    try:
        return Grow(params, api, check_mode, diff).run()
    except GceError as exc:  # only reads can get here: the resize is inside Grow.run's own handling
        raise GceFailure(explain(exc, params), api_calls=api.calls, changed=False) from exc


class Grow:
    """One run: find the disk, compare, and (outside check mode) grow it once."""

    def __init__(self, params: dict, api: ComputeApi, check_mode: bool = False, diff: bool = False):
        self.api, self.p, self.check_mode, self.diff_wanted = api, params, check_mode, diff
        self.result = {"changed": False}

    def report(self, **extra) -> dict:
        return {**self.result, "api_calls": self.api.calls, **extra}

    def fail(self, msg: str, **extra) -> None:
        raise GceFailure(msg, **self.report(**extra))

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
        self.result.update(disk=name, disk_id=str(disk.get("id") or ""), previous_size_gb=current, size_gb=current,
                           disk_type=short_name(disk.get("type")))  # fmt: skip
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
        extra = {"diff": self.diff(name, current, target)} if self.diff_wanted else {}
        if self.check_mode:  # the one change point: nothing above has written
            return self.report(**extra)
        try:
            operation = self.api.change(f"disks/{name}/resize", {"sizeGb": str(target)})
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


def check_options(p: dict) -> None:
    """Values the API would refuse, refused before any request, each naming the bad value."""
    name = p["instance"] or short_name(p["disk"])
    option = "instance" if p["instance"] else "disk"
    if not NAME_RE.match(name):
        raise GceFailure(f"{option} {name!r} is not a Compute Engine resource name (like central-mcp-vm1)")
    if not MIN_SIZE_GB <= p["size_gb"] <= MAX_SIZE_GB:
        raise GceFailure(
            f"size_gb {p['size_gb']} is out of range: a boot disk is {MIN_SIZE_GB} to {MAX_SIZE_GB} GB "
            "(Compute Engine's GB are GiB)"
        )
    if p["min_growth_gb"] < 0:
        raise GceFailure(f"min_growth_gb must be 0 or more, got {p['min_growth_gb']}")
    if p["timeout"] <= 0:
        raise GceFailure(f"timeout must be a positive number of seconds, got {p['timeout']}")


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
