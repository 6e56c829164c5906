#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: set a Compute Engine VM's machine type, stopping and starting it safely."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gce_machine_type
short_description: Set the machine type of a Compute Engine VM, with a safe stop, start and rollback
version_added: "0.1.0"
description:
  - Reads the instance and, when its machine type differs from O(machine_type),
    stops it, sets the new type, starts it and confirms it is C(RUNNING) on the
    new type. Each step waits for its zone operation to be C(DONE)
    (C(zoneOperations.wait)).
  - Before anything stops, the new type is looked up in the instance's zone
    (C(machineTypes.get)); an unknown type or zone fails with nothing changed.
    A running VM is only stopped when O(allow_stopping=true).
  - A C(TERMINATED) VM gets the new type and stays stopped, unless
    O(start_if_terminated=true).
  - If setting the type or starting the VM fails (an operation that ends with
    an error such as C(ZONE_RESOURCE_POOL_EXHAUSTED) or C(QUOTA_EXCEEDED), or the
    O(timeout) passes), the module restores the previous type if it had
    changed, starts the VM again if it was running, and fails with
    RV(rolled_back=true) and a message that says what happened and on which
    type the VM now runs. The rollback gets a fresh O(timeout) (at least 300 s). A
    VM that was running is never left stopped; if even the rollback fails, the
    message says so in capitals, with the VM's state and the command to start it.
  - HTTP 429, 5xx and rate-limit 403 answers are retried with exponential
    back-off and full jitter, within O(timeout).
  - "Runs on the controller (use C(delegate_to: localhost)); needs the Python
    libraries C(google-auth) and C(requests) there."
author:
  - Central-MCP maintainers (@central-mcp)
# project, zone, auth_kind, service_account_file, access_token, api_endpoint, requirements
extends_documentation_fragment:
  - central_mcp.agents.gce
options:
  instance:
    description: Name of the VM.
    type: str
    required: true
  machine_type:
    description:
      - The machine type the VM should have, e.g. C(e2-standard-4). A full or
        partial URL (C(zones/Z/machineTypes/T)) is accepted; its last part is used.
    type: str
    required: true
  allow_stopping:
    description:
      - Whether the module may stop a C(RUNNING) VM to change its type (the VM
        is down for a few minutes). When V(false) and the type differs, the
        module fails before changing anything.
    type: bool
    default: false
  start_if_terminated:
    description:
      - Start a C(TERMINATED) VM after setting its type. By default a stopped VM
        stays stopped.
    type: bool
    default: false
  timeout:
    description:
      - Seconds the whole change may take, retries and operation waits included.
        A rollback after a failure gets a fresh budget of the same length, at
        least 300 seconds, so that a VM that was running is started again.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: Only reads (GET) the instance and the machine type, and reports what would change.
  diff_mode:
    support: full
    description: Shows C(machine_type) and C(status) before and after.
  platform:
    support: full
    platforms: posix
    description: Runs wherever google-auth is installed; the vm_upgrade role runs it on the controller.
notes:
  - The account needs C(compute.instances.get), C(stop), C(start),
    C(setMachineType) and C(compute.machineTypes.get), e.g. the role
    C(roles/compute.instanceAdmin.v1).
  - Stopping a VM loses what is in its memory and on local SSDs; agents in tmux
    restart when the VM boots if their service is enabled.
seealso:
  - name: Changing the machine type of a VM
    description: What Compute Engine allows and what stops.
    link: https://cloud.google.com/compute/docs/instances/changing-machine-type-of-stopped-instance
"""

EXAMPLES = r"""
- name: Give the VM room for eight agents (it stops for about two minutes)
  central_mcp.agents.gce_machine_type:
    project: my-project
    zone: us-central1-a
    instance: central-mcp-vm1
    machine_type: e2-standard-4
    allow_stopping: true
    auth_kind: serviceaccount
    service_account_file: ~/.config/gcloud/central-mcp-sa.json
  delegate_to: localhost
  become: false
  register: resize

- name: Only tell what would change
  central_mcp.agents.gce_machine_type:
    project: my-project
    zone: us-central1-a
    instance: central-mcp-vm1
    machine_type: e2-standard-8
    auth_kind: accesstoken
    access_token: "{{ vault_gce_access_token }}"
  delegate_to: localhost
  check_mode: true
  diff: true
"""

RETURN = r"""
previous_machine_type:
  description: The machine type the VM had when the module started.
  returned: always
  type: str
  sample: e2-micro
machine_type:
  description: The machine type the VM has now (in check mode, the one it would get).
  returned: always
  type: str
  sample: e2-standard-4
status:
  description: The VM's status at the end (C(RUNNING), C(TERMINATED)...); in check mode, the one it would have.
  returned: always
  type: str
  sample: RUNNING
stopped:
  description: Whether the module stopped the VM (it was started again unless the message says otherwise).
  returned: always
  type: bool
  sample: true
downtime_s:
  description: Seconds from the stop request until the VM was running again, as the module measured it
    (0 if it did not stop the VM).
  returned: always
  type: float
  sample: 94.2
rolled_back:
  description: Whether a failure was undone (previous type restored, VM started again). Always false on success.
  returned: always
  type: bool
  sample: false
api_calls:
  description: HTTP requests sent to the API, retries and operation waits included.
  returned: always
  type: int
  sample: 9
"""

import re  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.gce import (  # noqa: E402
    GCE_AUTH_ARGUMENT_SPEC,
    GOOGLE_AUTH_IMPORT_ERROR,
    HAS_GOOGLE_AUTH,
    ComputeApi,
    GceError,
    GceTimeout,
    session_for,
    short_name,
)

ARGUMENT_SPEC = {
    **GCE_AUTH_ARGUMENT_SPEC,
    "instance": {"type": "str", "required": True},
    "machine_type": {"type": "str", "required": True},
    "allow_stopping": {"type": "bool", "default": False},
    "start_if_terminated": {"type": "bool", "default": False},
}
TYPE_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
STOPPED = ("TERMINATED", "STOPPED")
SETTLING = ("PROVISIONING", "STAGING", "STOPPING", "REPAIRING", "PENDING", "PENDING_STOP")
_POLL_S = 2.0  # between reads of a VM that is between two states
USER_AGENT = "central-mcp-agents/gce_machine_type"
ROLLBACK_MIN_S = 300  # a rollback may always take this long: a stopped VM costs more than a slow play


class Resize:
    """One run: the API, what was found, and what has been done so far (for the rollback and the result)."""

    def __init__(self, module: AnsibleModule, api: ComputeApi):
        self.module, self.api, self.p = module, api, module.params
        self.path = f"instances/{self.p['instance']}"
        self.target = short_name(self.p["machine_type"])
        self.previous = self.status = None
        self.stopped_at = self.back_at = self.step = None
        self.result = {"stopped": False, "downtime_s": 0.0, "rolled_back": False, "changed": False}

    def read(self) -> dict:
        """The instance, once it is no longer between two states (a stop or start someone else began)."""
        instance = self.api.get(self.path)
        while instance.get("status") in SETTLING and self.api.remaining() > _POLL_S:
            time.sleep(_POLL_S)
            instance = self.api.get(self.path)
        return instance

    def report(self, instance: dict | None = None, **extra) -> dict:
        if instance:
            self.result.update(machine_type=short_name(instance.get("machineType")), status=instance.get("status"))
        if self.result["stopped"]:
            self.result["downtime_s"] = round((self.back_at or time.monotonic()) - self.stopped_at, 1)
        return {**self.result, "previous_machine_type": self.previous, "api_calls": self.api.calls, **extra}

    def diff(self, after_status: str) -> dict:
        where = f"projects/{self.p['project']}/zones/{self.p['zone']}/{self.path}"
        return {
            "before_header": where,
            "after_header": where,
            "before": f"machine_type: {self.previous}\nstatus: {self.status}\n",
            "after": f"machine_type: {self.target}\nstatus: {after_status}\n",
        }

    def run(self) -> dict:
        instance = self.read()
        self.previous, self.status = short_name(instance.get("machineType")), instance.get("status")
        self.result.update(machine_type=self.previous, status=self.status)
        if self.previous == self.target:
            return self.report()
        self.preflight()
        starts = self.status == "RUNNING" or self.p["start_if_terminated"]
        after = "RUNNING" if starts else self.status
        self.result.update(changed=True, machine_type=self.target, status=after)
        extra = {"diff": self.diff(after)} if self.module._diff else {}
        if self.module.check_mode:  # the one change point: nothing above has written
            return self.report(**extra)
        try:
            self.apply(starts)
        except GceError as exc:
            self.module.fail_json(**self.rollback(exc, extra))
        try:
            final = self.api.get(self.path)
        except GceError as exc:
            msg = f"the VM was set to {self.target} but reading it back failed: {exc}; look at it in the console"
            self.module.fail_json(msg=msg, **self.report())
        if short_name(final.get("machineType")) != self.target or final.get("status") != after:
            self.module.fail_json(
                msg=f"instance {self.p['instance']} should be {after} on {self.target} but the API shows it "
                f"{final.get('status')} on {short_name(final.get('machineType'))}: look at it in the console",
                **self.report(final, **extra),
            )
        return self.report(final, **extra)

    def preflight(self) -> None:
        """Everything that can be refused, refused before anything stops."""
        p, name = self.p, self.p["instance"]
        if self.status not in ("RUNNING", *STOPPED):
            self.module.fail_json(
                msg=f"instance {name} is {self.status}: its machine type can only be changed from RUNNING or "
                "TERMINATED; resume or start it first, or wait for what it is doing to finish",
                **self.report(),
            )
        try:
            self.api.get(f"machineTypes/{self.target}")
        except GceError as exc:
            if exc.status != 404:
                raise
            self.module.fail_json(
                msg=f"machine type {self.target} does not exist in zone {p['zone']}: pick one from "
                f"`gcloud compute machine-types list --zones {p['zone']}` (nothing was changed)",
                **self.report(),
            )
        if self.status == "RUNNING" and not p["allow_stopping"]:
            self.module.fail_json(
                msg=f"instance {name} is RUNNING on {self.previous}; changing it to {self.target} means stopping "
                "it for a few minutes: set allow_stopping: true to allow that (nothing was changed)",
                **self.report(),
            )

    def apply(self, starts: bool) -> None:
        """stop -> setMachineType -> start, each waited for; self.step names the step in flight."""
        name = self.p["instance"]
        if self.status == "RUNNING":
            self.step = "stopping it"
            self.stopped_at = time.monotonic()
            operation = self.api.post(f"{self.path}/stop")
            self.result["stopped"] = True
            self.api.wait(operation, f"stopping instance {name}")
        self.step = "setting the machine type"
        body = {"machineType": f"zones/{self.p['zone']}/machineTypes/{self.target}"}
        self.api.wait(self.api.post(f"{self.path}/setMachineType", body), f"setting the machine type to {self.target}")
        if starts:
            self.step = f"starting it on {self.target}"
            self.api.wait(self.api.post(f"{self.path}/start"), f"starting instance {name} on {self.target}")
            self.back_at = time.monotonic()
        self.step = "confirming the change"

    def rollback(self, error: GceError, extra: dict) -> dict:
        """Put the VM back as it was: previous type, running if it was. Returns fail_json's arguments."""
        p, name, was_running = self.p, self.p["instance"], self.status == "RUNNING"
        self.api.extend(max(self.api.timeout, ROLLBACK_MIN_S))
        done, instance, failure = [], None, None
        try:
            if isinstance(error, GceTimeout) and error.operation:
                try:  # let the step that ran out of time finish, so the VM is in a state we can act on
                    self.api.wait(error.operation, "the step that timed out")
                except GceError:
                    pass
            instance = self.read()
            if instance.get("status") in STOPPED and short_name(instance.get("machineType")) != self.previous:
                body = {"machineType": f"zones/{p['zone']}/machineTypes/{self.previous}"}
                self.api.wait(self.api.post(f"{self.path}/setMachineType", body), f"restoring {self.previous}")
                done.append(f"restored machine type {self.previous}")
            if was_running and instance.get("status") in STOPPED:
                self.api.wait(self.api.post(f"{self.path}/start"), f"starting {name} again")
                self.back_at = time.monotonic()
                done.append("started the VM again")
            instance = self.api.get(self.path)
        except GceError as exc:
            failure = exc
            try:
                instance = self.api.get(self.path)
            except GceError:
                pass
        state = "in an unknown state"
        if instance:
            state = f"{instance.get('status')} on {short_name(instance.get('machineType'))}"
        cause = str(getattr(error, "details", error)).rstrip(". ")
        what = f"changing instance {name} from {self.previous} to {self.target} failed while {self.step}: {cause}"
        self.result["rolled_back"] = bool(done) and failure is None
        if failure is not None:
            why = str(failure).rstrip(". ")
            msg = (
                f"{what}. ROLLBACK FAILED: {why}. THE VM IS NOW {state.upper()}. Start it by hand: "
                f"gcloud compute instances start {name} --zone {p['zone']} --project {p['project']}"
            )
        elif instance and instance.get("status") == "RUNNING" and short_name(instance["machineType"]) == self.target:
            msg = f"{what}. The step finished late: the VM is RUNNING on {self.target}; run again to confirm"
        elif instance and short_name(instance.get("machineType")) == self.previous:
            how = f"Rolled back ({', '.join(done)})" if done else "Nothing had changed"
            msg = f"{what}. {how}: the VM is {instance.get('status')} on its old type {self.previous}"
        else:
            msg = f"{what}. The VM is now {state}"
        return {"msg": msg, **self.report(instance, error=str(error), **extra)}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_if=[("auth_kind", "serviceaccount", ["service_account_file"])],
    )
    if not HAS_GOOGLE_AUTH:
        module.fail_json(
            msg=missing_required_lib("google-auth", reason="to call the Compute Engine API")
            + " Install google-auth and requests on the controller (the collection's requirements.txt lists them).",
            exception=GOOGLE_AUTH_IMPORT_ERROR,
        )
    p = module.params
    if not TYPE_RE.match(short_name(p["machine_type"])):
        module.fail_json(msg=f"machine_type {p['machine_type']!r} is not a machine type name (like e2-standard-4)")
    if p["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be a positive number of seconds, got {p['timeout']}")
    try:
        session = session_for(p["auth_kind"], p["service_account_file"], p["access_token"], USER_AGENT)
    except GceError as exc:
        module.fail_json(msg=f"{exc} (auth_kind={p['auth_kind']}; nothing was changed)", api_calls=0)
    api = ComputeApi(session, p["api_endpoint"], p["project"], p["zone"], p["timeout"])
    try:
        module.exit_json(**Resize(module, api).run())
    except GceError as exc:  # only reads can get here: every write is inside Resize.apply's rollback
        module.fail_json(msg=explain(exc, p), api_calls=api.calls, changed=False)


def explain(exc: GceError, p: dict) -> str:
    """What an error before any change means, and what to do about it."""
    where = f"instance {p['instance']} (project {p['project']}, zone {p['zone']})"
    if exc.status == 401:
        hint = "the credentials were refused: an access token may have expired (get a fresh one), or the key is revoked"
    elif exc.status == 403:
        hint = "the account may not manage this VM: grant it roles/compute.instanceAdmin.v1 on the project"
    elif exc.status == 404:
        hint = "check project, zone and instance (`gcloud compute instances list`)"
    else:
        return f"reading {where} failed: {exc} (nothing was changed)"
    return f"reading {where} failed: {exc}; {hint} (nothing was changed)"


if __name__ == "__main__":
    main()
