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
  action:
    support: full
    description: On the controller the action plugin runs the module's code in-process (see the description).
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
disk_id:
  description:
    - The disk's numeric ID (a string), unique for the life of the disk; a disk deleted and made again under
      the same name gets another. The vm_upgrade role keys what it remembers about the filesystem on it by this ID.
  returned: when the disk was found
  type: str
  sample: "4735268364102938571"
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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.gce import (  # noqa: E402
    GOOGLE_AUTH_IMPORT_ERROR,
    HAS_GOOGLE_AUTH,
    GceFailure,
)
from ansible_collections.central_mcp.agents.plugins.module_utils.gce_disk import (  # noqa: E402
    ARGUMENT_SPEC,
    SPEC_RULES,
    grow_disk,
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
        module.exit_json(**grow_disk(module.params, module.check_mode, module._diff))
    except GceFailure as failure:
        module.fail_json(msg=failure.msg, **failure.result)


if __name__ == "__main__":
    main()
