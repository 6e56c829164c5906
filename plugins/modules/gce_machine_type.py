#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: set a Compute Engine VM's machine type and provisioning model, stopping and starting it safely."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gce_machine_type
short_description: Set a Compute Engine VM's machine type and provisioning model (Spot), with a safe stop and rollback
version_added: "0.1.0"
description:
  - Reads the instance and, when its machine type differs from O(machine_type)
    or its provisioning model from O(provisioning_model), stops it, sets the
    new type (C(instances.setMachineType)) and the new scheduling
    (C(instances.setScheduling)), starts it and confirms it is C(RUNNING) on
    the new type and model, both in one stop. Each step waits for its zone
    operation to be C(DONE) (C(zoneOperations.wait)). A VM that already has
    both costs one read (C(instances.get)).
  - Every state-changing call carries a C(requestId), kept across its
    retries, so a call whose answer was lost and is sent again is carried
    out once.
  - Before anything stops, the new type is looked up in the instance's zone
    (C(machineTypes.get)); an unknown type or zone fails with nothing changed.
    A running VM is only stopped when O(allow_stopping=true).
  - A C(TERMINATED) VM gets the new type and stays stopped, unless
    O(start_if_terminated=true).
  - If setting the type or starting the VM fails (an operation that ends with
    an error such as C(ZONE_RESOURCE_POOL_EXHAUSTED) or C(QUOTA_EXCEEDED), or the
    O(timeout) passes), the module restores the previous type and scheduling
    if they had changed, starts the VM again if it was running, and fails with
    RV(rolled_back=true) and a message that says what happened and on which
    type the VM now runs. The rollback gets a fresh O(timeout) (at least 300 s). A
    VM that was running is never left stopped; if even the rollback fails, the
    message says so in capitals, with the VM's state and the command to start it.
  - HTTP 429, 5xx and rate-limit 403 answers are retried with exponential
    back-off and full jitter, within O(timeout).
  - "Runs on the controller (use C(delegate_to: localhost)); needs the Python
    libraries C(google-auth) and C(requests) there. On the controller its
    action plugin runs it inside Ansible's own process, with the Python
    that runs Ansible: no module start, no unpacking, no fresh imports.
    Run elsewhere, with C(become), C(async) or an C(environment), or where
    Ansible's Python lacks google-auth, it runs as a module in the usual way."
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
      - Left out, the type stays as it is. One of O(machine_type) and
        O(provisioning_model) is required.
    type: str
  provisioning_model:
    description:
      - V(spot) makes the VM a Spot VM (C(provisioningModel=SPOT),
        C(instanceTerminationAction=STOP), C(automaticRestart=false),
        C(onHostMaintenance=TERMINATE)) - roughly 60-90 % cheaper, but Compute
        Engine may stop it at any time with about 30 s notice; it is stopped,
        not deleted, so its disk stays and it can be started again.
      - V(standard) makes it an ordinary VM again (C(automaticRestart=true),
        C(onHostMaintenance=MIGRATE)).
      - The rest of the VM's scheduling (node affinities and the like) is kept.
        Left out, the provisioning model stays as it is.
    type: str
    choices: [standard, spot]
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
  action:
    support: full
    description: On the controller the action plugin runs the module's code in-process (see the description).
  check_mode:
    support: full
    description: Only reads (GET) the instance and the machine type, and reports what would change.
  diff_mode:
    support: full
    description: Shows C(machine_type), C(provisioning_model) and C(status) before and after.
  platform:
    support: full
    platforms: posix
    description: Runs wherever google-auth is installed; the vm_upgrade role runs it on the controller.
notes:
  - The account needs C(compute.instances.get), C(stop), C(start),
    C(setMachineType), C(setScheduling) and C(compute.machineTypes.get), e.g. the role
    C(roles/compute.instanceAdmin.v1).
  - Stopping a VM loses what is in its memory and on local SSDs; agents in tmux
    restart when the VM boots if their service is enabled.
seealso:
  - name: Changing the machine type of a VM
    description: What Compute Engine allows and what stops.
    link: https://cloud.google.com/compute/docs/instances/changing-machine-type-of-stopped-instance
  - name: Spot VMs
    description: What a Spot VM costs and how Compute Engine preempts it.
    link: https://cloud.google.com/compute/docs/instances/spot
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

- name: Make the VM a Spot VM (it stops once; its type stays)
  central_mcp.agents.gce_machine_type:
    project: my-project
    zone: us-central1-a
    instance: central-mcp-vm2
    provisioning_model: spot
    allow_stopping: true
  delegate_to: localhost

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
previous_provisioning_model:
  description: The provisioning model the VM had when the module started.
  returned: always
  type: str
  sample: STANDARD
provisioning_model:
  description: The provisioning model the VM has now (in check mode, the one it would get), as the API spells it.
  returned: always
  type: str
  sample: SPOT
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
  description: Whether a failure was undone (previous type and scheduling restored, VM started again).
    Always false on success.
  returned: always
  type: bool
  sample: false
api_calls:
  description: HTTP requests sent to the API, retries and operation waits included.
  returned: always
  type: int
  sample: 9
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.gce import (  # noqa: E402
    GOOGLE_AUTH_IMPORT_ERROR,
    HAS_GOOGLE_AUTH,
    GceFailure,
)
from ansible_collections.central_mcp.agents.plugins.module_utils.gce_resize import (  # noqa: E402
    ARGUMENT_SPEC,
    SPEC_RULES,
    set_machine_type,
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, **SPEC_RULES)
    if not HAS_GOOGLE_AUTH:
        module.fail_json(
            msg=missing_required_lib("google-auth", reason="to call the Compute Engine API")
            + " Install google-auth and requests on the controller (the collection's requirements.txt lists them).",
            exception=GOOGLE_AUTH_IMPORT_ERROR,
        )
    try:
        module.exit_json(**set_machine_type(module.params, module.check_mode, module._diff))
    except GceFailure as failure:
        module.fail_json(msg=failure.msg, **failure.result)


if __name__ == "__main__":
    main()
