# SPDX-License-Identifier: Apache-2.0
"""One run of gce_machine_type: read the VM, stop it, set its type, start it, or roll back.

Why this lives here and not in the module: the same run serves two callers.
The module ``gce_machine_type`` runs it wherever Ansible sends a module; its
action plugin runs it inside the controller's own Ansible process when the
task runs on the controller anyway (``delegate_to: localhost``), which saves
a Python start, the module's unpacking and google-auth's imports on every
host and every play. Both get the same result, or the same
:class:`~.gce.GceFailure` with the same message and partial results.
"""

from __future__ import annotations

import re
import time

from ansible_collections.central_mcp.agents.plugins.module_utils.gce import (
    GCE_AUTH_ARGUMENT_SPEC,
    GCE_REQUIRED_IF,
    ComputeApi,
    GceError,
    GceFailure,
    GceTimeout,
    session_for,
    short_name,
)

ARGUMENT_SPEC = {
    **GCE_AUTH_ARGUMENT_SPEC,
    "instance": {"type": "str", "required": True},
    "machine_type": {"type": "str"},
    "provisioning_model": {"type": "str", "choices": ["standard", "spot"]},
    "allow_stopping": {"type": "bool", "default": False},
    "start_if_terminated": {"type": "bool", "default": False},
}
# AnsibleModule's and the action plugin's argument checks, beyond the spec itself.
SPEC_RULES = {"required_if": GCE_REQUIRED_IF, "required_one_of": [("machine_type", "provisioning_model")]}
TYPE_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
STOPPED = ("TERMINATED", "STOPPED")
SETTLING = ("PROVISIONING", "STAGING", "STOPPING", "REPAIRING", "PENDING", "PENDING_STOP")
_POLL_S = 2.0  # between reads of a VM that is between two states
USER_AGENT = "central-mcp-agents/gce_machine_type"
ROLLBACK_MIN_S = 300  # a rollback may always take this long: a stopped VM costs more than a slow play
# What each provisioning model sets (instances.setScheduling). A Spot VM is stopped, not deleted, when
# Compute Engine takes it back, so its disk, its agents' workspaces and its name stay; it cannot restart
# by itself nor live-migrate (the API refuses both), so the fleet's watcher starts it again.
SCHEDULING = {
    "SPOT": {
        "provisioningModel": "SPOT",
        "instanceTerminationAction": "STOP",
        "automaticRestart": False,
        "onHostMaintenance": "TERMINATE",
    },
    "STANDARD": {"provisioningModel": "STANDARD", "automaticRestart": True, "onHostMaintenance": "MIGRATE"},
}


def model_of(instance: dict) -> str:
    """STANDARD or SPOT, as the instance's scheduling says (an older preemptible VM counts as Spot)."""
    scheduling = instance.get("scheduling") or {}
    if scheduling.get("provisioningModel"):
        return scheduling["provisioningModel"]
    return "SPOT" if scheduling.get("preemptible") else "STANDARD"


def scheduling_body(current: dict, model: str) -> dict:
    """setScheduling's body: the VM's own scheduling (node affinities and all) with the model's fields."""
    body = {key: value for key, value in (current or {}).items() if key != "preemptible"}
    body.update(SCHEDULING[model])
    if model != "SPOT":
        body.pop("instanceTerminationAction", None)
    return body


def set_machine_type(params: dict, check_mode: bool = False, diff: bool = False) -> dict:
    """The module's whole run over checked parameters: its result, or GceFailure(msg, partial results)."""
    if params["machine_type"] is None and params["provisioning_model"] is None:
        raise GceFailure("nothing to set: give machine_type, provisioning_model or both")
    if params["machine_type"] is not None and not TYPE_RE.match(short_name(params["machine_type"])):
        raise GceFailure(f"machine_type {params['machine_type']!r} is not a machine type name (like e2-standard-4)")
    if params["timeout"] <= 0:
        raise GceFailure(f"timeout must be a positive number of seconds, got {params['timeout']}")
    try:
        session = session_for(params["auth_kind"], params["service_account_file"], params["access_token"], USER_AGENT)
    except GceError as exc:
        raise GceFailure(f"{exc} (auth_kind={params['auth_kind']}; nothing was changed)", api_calls=0) from exc
    api = ComputeApi(session, params["api_endpoint"], params["project"], params["zone"], params["timeout"])
    try:
        return Resize(params, api, check_mode, diff).run()
    except GceError as exc:  # only reads can get here: every write is inside Resize.apply's rollback
        raise GceFailure(explain(exc, params), api_calls=api.calls, changed=False) from exc


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


class Resize:
    """One run: the API, what was found, and what has been done so far (for the rollback and the result).

    The machine type and the provisioning model both change only on a stopped VM, so one run changes
    both in one stop: stop -> setMachineType -> setScheduling -> start, each only when due.
    """

    def __init__(self, params: dict, api: ComputeApi, check_mode: bool = False, diff: bool = False):
        self.api, self.p, self.check_mode, self.diff_wanted = api, params, check_mode, diff
        self.path = f"instances/{self.p['instance']}"
        self.target = short_name(self.p["machine_type"]) if self.p["machine_type"] is not None else None
        self.model = (self.p["provisioning_model"] or "").upper() or None
        self.previous = self.status = self.previous_model = None
        self.previous_scheduling: dict = {}
        self.type_due = self.model_due = False
        self.stopped_at = self.back_at = self.step = None
        self.result = {"stopped": False, "downtime_s": 0.0, "rolled_back": False, "changed": False}

    def fail(self, msg: str, **result) -> None:
        raise GceFailure(msg, **result)

    def read(self) -> dict:
        """The instance, once it is no longer between two states (a stop or start someone else began)."""
        instance = self.api.get(self.path)
        while instance.get("status") in SETTLING and self.api.remaining() > _POLL_S:
            time.sleep(_POLL_S)
            instance = self.api.get(self.path)
        return instance

    def report(self, instance: dict | None = None, **extra) -> dict:
        if instance:
            self.result.update(
                machine_type=short_name(instance.get("machineType")),
                provisioning_model=model_of(instance),
                status=instance.get("status"),
            )
        if self.result["stopped"]:
            self.result["downtime_s"] = round((self.back_at or time.monotonic()) - self.stopped_at, 1)
        previous = {"previous_machine_type": self.previous, "previous_provisioning_model": self.previous_model}
        return {**self.result, **previous, "api_calls": self.api.calls, **extra}

    def diff(self, after_status: str) -> dict:
        where = f"projects/{self.p['project']}/zones/{self.p['zone']}/{self.path}"
        after_type, after_model = self.target or self.previous, self.model or self.previous_model
        return {
            "before_header": where,
            "after_header": where,
            "before": f"machine_type: {self.previous}\nprovisioning_model: {self.previous_model}\n"
            f"status: {self.status}\n",
            "after": f"machine_type: {after_type}\nprovisioning_model: {after_model}\nstatus: {after_status}\n",
        }

    def change_words(self) -> str:
        """`from e2-micro to e2-standard-4`, `from STANDARD to SPOT` or both: what this run changes."""
        parts = []
        if self.type_due:
            parts.append(f"from {self.previous} to {self.target}")
        if self.model_due:
            parts.append(f"from {self.previous_model} to {self.model}")
        return " and ".join(parts)

    def run(self) -> dict:
        instance = self.read()
        self.previous, self.status = short_name(instance.get("machineType")), instance.get("status")
        self.previous_model, self.previous_scheduling = model_of(instance), instance.get("scheduling") or {}
        self.result.update(machine_type=self.previous, provisioning_model=self.previous_model, status=self.status)
        self.type_due = self.target is not None and self.previous != self.target
        self.model_due = self.model is not None and self.previous_model != self.model
        if not (self.type_due or self.model_due):
            return self.report()
        self.preflight()
        starts = self.status == "RUNNING" or self.p["start_if_terminated"]
        after = "RUNNING" if starts else self.status
        self.result.update(changed=True, status=after)
        self.result.update(
            machine_type=self.target or self.previous, provisioning_model=self.model or self.previous_model
        )
        extra = {"diff": self.diff(after)} if self.diff_wanted else {}
        if self.check_mode:  # the one change point: nothing above has written
            return self.report(**extra)
        try:
            self.apply(starts)
        except GceError as exc:
            self.fail(**self.rollback(exc, extra))
        try:
            final = self.api.get(self.path)
        except GceError as exc:
            msg = f"instance {self.p['instance']} was changed {self.change_words()} but reading it back failed: {exc}"
            self.fail(f"{msg}; look at it in the console", **self.report())
        want_type, want_model = self.target or self.previous, self.model or self.previous_model
        found = (short_name(final.get("machineType")), model_of(final), final.get("status"))
        if found != (want_type, want_model, after):
            self.fail(
                f"instance {self.p['instance']} should be {after} on {want_type} ({want_model}) but the API shows "
                f"it {found[2]} on {found[0]} ({found[1]}): look at it in the console",
                **self.report(final, **extra),
            )
        return self.report(final, **extra)

    def preflight(self) -> None:
        """Everything that can be refused, refused before anything stops."""
        p, name = self.p, self.p["instance"]
        if self.status not in ("RUNNING", *STOPPED):
            self.fail(
                f"instance {name} is {self.status}: its machine type and provisioning model can only be changed "
                "from RUNNING or TERMINATED; resume or start it first, or wait for what it is doing to finish",
                **self.report(),
            )
        if self.type_due:
            try:
                self.api.get(f"machineTypes/{self.target}")
            except GceError as exc:
                if exc.status != 404:
                    raise
                self.fail(
                    f"machine type {self.target} does not exist in zone {p['zone']}: pick one from "
                    f"`gcloud compute machine-types list --zones {p['zone']}` (nothing was changed)",
                    **self.report(),
                )
        if self.status == "RUNNING" and not p["allow_stopping"]:
            self.fail(
                f"instance {name} is RUNNING; changing it {self.change_words()} means stopping it for a few "
                "minutes: set allow_stopping: true to allow that (nothing was changed)",
                **self.report(),
            )

    def apply(self, starts: bool) -> None:
        """stop -> setMachineType -> setScheduling -> start, each waited for; self.step names the step in flight."""
        name = self.p["instance"]
        if self.status == "RUNNING":
            self.step = "stopping it"
            self.stopped_at = time.monotonic()
            operation = self.api.change(f"{self.path}/stop")
            self.result["stopped"] = True
            self.api.wait(operation, f"stopping instance {name}")
        if self.type_due:
            self.step = "setting the machine type"
            body = {"machineType": f"zones/{self.p['zone']}/machineTypes/{self.target}"}
            operation = self.api.change(f"{self.path}/setMachineType", body)
            self.api.wait(operation, f"setting the machine type to {self.target}")
        if self.model_due:
            self.step = "setting the provisioning model"
            body = scheduling_body(self.previous_scheduling, self.model)
            operation = self.api.change(f"{self.path}/setScheduling", body)
            self.api.wait(operation, f"setting the provisioning model to {self.model}")
        if starts:
            self.step = "starting it"
            self.api.wait(self.api.change(f"{self.path}/start"), f"starting instance {name}")
            self.back_at = time.monotonic()
        self.step = "confirming the change"

    def rollback(self, error: GceError, extra: dict) -> dict:
        """Put the VM back as it was: previous type and scheduling, running if it was. The failure's msg and results."""
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
                self.api.wait(self.api.change(f"{self.path}/setMachineType", body), f"restoring {self.previous}")
                done.append(f"restored machine type {self.previous}")
            if instance.get("status") in STOPPED and model_of(instance) != self.previous_model:
                body = scheduling_body(self.previous_scheduling, self.previous_model)
                self.api.wait(self.api.change(f"{self.path}/setScheduling", body), f"restoring {self.previous_model}")
                done.append(f"restored provisioning model {self.previous_model}")
            if was_running and instance.get("status") in STOPPED:
                self.api.wait(self.api.change(f"{self.path}/start"), f"starting {name} again")
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
            state = f"{instance.get('status')} on {short_name(instance.get('machineType'))} ({model_of(instance)})"
        cause = str(getattr(error, "details", error)).rstrip(". ")
        what = f"changing instance {name} {self.change_words()} failed while {self.step}: {cause}"
        self.result["rolled_back"] = bool(done) and failure is None
        wanted = (self.target or self.previous, self.model or self.previous_model)
        if failure is not None:
            why = str(failure).rstrip(". ")
            msg = (
                f"{what}. ROLLBACK FAILED: {why}. THE VM IS NOW {state.upper()}. Start it by hand: "
                f"gcloud compute instances start {name} --zone {p['zone']} --project {p['project']}"
            )
        elif instance and instance.get("status") == "RUNNING" and self._is(instance, *wanted):
            msg = (
                f"{what}. The step finished late: the VM is RUNNING on {wanted[0]} ({wanted[1]}); run again to confirm"
            )
        elif instance and self._is(instance, self.previous, self.previous_model):
            how = f"Rolled back ({', '.join(done)})" if done else "Nothing had changed"
            msg = (
                f"{what}. {how}: the VM is {instance.get('status')} on its old type {self.previous} "
                f"({self.previous_model})"
            )
        else:
            msg = f"{what}. The VM is now {state}"
        return {"msg": msg, **self.report(instance, error=str(error), **extra)}

    @staticmethod
    def _is(instance: dict, machine_type: str, model: str) -> bool:
        return short_name(instance.get("machineType")) == machine_type and model_of(instance) == model
