# SPDX-License-Identifier: Apache-2.0
"""Inventory: RunPod pods as hosts, from RunPod's REST API (v2)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: runpod
author: Central-MCP maintainers (@central-mcp)
version_added: "0.1.0"
short_description: RunPod pods as inventory hosts
description:
  - Lists the pods of a RunPod account (C(GET /v2/pods) of RunPod's REST API v2) whose name matches O(names),
    one host per pod, named after the pod.
  - A running pod with C(22/tcp) exposed gets C(ansible_host) and C(ansible_port) from its direct SSH address
    (the public IP and the port mapped to 22, which change each time the pod starts), and C(ansible_user)
    C(root). RunPod's SSH proxy is not used, since it carries no SFTP or SCP.
  - Each host gets C(runpod_id), C(runpod_status), C(runpod_gpu) (C({id, count}), or C(none) for a CPU pod),
    C(runpod_cost_per_hour) (US dollars; 0 while stopped), C(runpod_image), C(runpod_volume_path) (where the
    persistent volume is mounted, C(/workspace) by default), C(runpod_cloud), C(runpod_data_center) and
    C(runpod_started_at).
  - Groups C(runpod) (every pod listed) and C(runpod_<status>) (e.g. C(runpod_running), C(runpod_exited)); more
    with O(groups), O(keyed_groups) and O(compose) (a pod is put in C(agents) this way, see the example).
  - SSH host keys. A pod's address changes with every start, so its key is kept under an alias,
    C(runpod-<pod id>) (C(HostKeyAlias)), in a file of O(known_hosts_dir). With O(host_key_scope=start)
    (default), the file is the pod's current start's, C(<pod id>-<start time>); the first connection of each
    start learns the key (C(StrictHostKeyChecking=accept-new)) and every later one is checked against it. That
    fits any image, since a stock image's start script makes new host keys on every start. With
    O(host_key_scope=pod), for an image that keeps its host keys on the volume (the project's agent image
    does), one file per pod, and a key that changes is refused.
  - Two pods of the same name fail the inventory, naming their ids, rather than one hiding the other. A pod whose
    name is not a host name (1-63 letters, digits, C(.), C(_) or C(-)) is left out with a warning.
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin; the file must be named C(*.runpod.yml) or C(*.runpod.yaml).
    type: str
    required: true
    choices: [central_mcp.agents.runpod]
  api_key:
    description:
      - RunPod API key (read access to pods is enough). Keep it out of the file, in the environment or Vault.
    type: str
    env:
      - name: RUNPOD_API_KEY
  api_url:
    description: RunPod's API, without C(/v2).
    type: str
    default: https://api.runpod.io
    env:
      - name: RUNPOD_API_URL
  names:
    description: Pods whose name matches one of these shell patterns (C(fnmatch)), e.g. C(gpu-agents-*).
    type: list
    elements: str
    default: ["*"]
  statuses:
    description: Only pods in these states (C(RUNNING), C(EXITED), C(PROVISIONING), C(STARTING), C(ERROR)); empty
      lists every state.
    type: list
    elements: str
    default: []
  known_hosts_dir:
    description: Controller directory of the pods' SSH host keys (one file per pod, or per start).
    type: path
    default: ~/.ansible/runpod_known_hosts
  host_key_scope:
    description: C(start) learns a pod's host key once per start; C(pod) once per pod (an image that keeps its
      host keys on the volume).
    type: str
    choices: [start, pod]
    default: start
  timeout:
    description: Seconds the listing may take, retries of RunPod's rate limit and server errors included.
    type: float
    default: 60
"""

EXAMPLES = r"""
# inventories/pods.runpod.yml: the GPU agents' pods, their running ones in the agents group
plugin: central_mcp.agents.runpod
names: ["gpu-agents-*"]
host_key_scope: pod        # the project's agent image keeps its host keys on /workspace
groups:
  agents: runpod_status == 'RUNNING'
compose:
  launcher_persistent_root: runpod_volume_path
# with RUNPOD_API_KEY in the environment:
#   ansible-inventory -i inventories/pods.runpod.yml --graph
#   ansible-playbook -i inventories/gcp.gcp.yml -i inventories/pods.runpod.yml site.yml
"""

import fnmatch
import os
import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible_collections.central_mcp.agents.plugins.module_utils.runpod import (
    RunPodApi,
    RunPodError,
    ssh_address,
    volume_path,
)

POD_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
HOST_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,62}$")
STATUSES = ("PROVISIONING", "STARTING", "RUNNING", "EXITED", "ERROR", "TERMINATED")


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "central_mcp.agents.runpod"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".runpod.yml", ".runpod.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        statuses = [str(s).upper() for s in self.get_option("statuses") or []]
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise AnsibleParserError(
                f"{path}: statuses {', '.join(unknown)}: not a pod state; use some of {', '.join(STATUSES)}"
            )
        try:
            api = RunPodApi(self.get_option("api_key"), self.get_option("api_url"), self.get_option("timeout"))
            pods = api.pods()
        except RunPodError as exc:
            raise AnsibleParserError(f"{path}: {exc}") from None
        patterns = self.get_option("names") or ["*"]
        chosen = [
            pod
            for pod in pods
            if any(fnmatch.fnmatchcase(pod.get("name") or "", p) for p in patterns)
            and (not statuses or pod.get("status") in statuses)
        ]
        for pod in [pod for pod in chosen if not HOST_NAME.match(pod.get("name") or "")]:
            # The name becomes the host's, which roles use in file names on the controller.
            self.display.warning(
                f"{path}: pod {pod.get('name')!r} ({pod.get('id')}) is left out: a host name is 1-63 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit; rename the pod to use it"
            )
            chosen.remove(pod)
        self._refuse_twins(path, chosen)
        strict = self.get_option("strict")
        self.inventory.add_group("runpod")
        for pod in chosen:
            host = self.inventory.add_host(pod["name"], group="runpod")
            group = "runpod_" + str(pod.get("status") or "unknown").lower()
            self.inventory.add_group(group)
            self.inventory.add_child(group, host)
            hostvars = self._hostvars(pod)
            for key, value in hostvars.items():
                self.inventory.set_variable(host, key, value)
            self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)

    @staticmethod
    def _refuse_twins(path, pods):
        seen = {}
        for pod in pods:
            seen.setdefault(pod.get("name"), []).append(pod.get("id"))
        twins = {name: ids for name, ids in seen.items() if len(ids) > 1}
        if twins:
            listed = "; ".join(f"{name} (ids {', '.join(ids)})" for name, ids in sorted(twins.items()))
            raise AnsibleParserError(
                f"{path}: several pods have the same name: {listed}. Each pod is one host, named after the pod: "
                "rename one in RunPod's console (or narrow names)"
            )

    def _hostvars(self, pod):
        hostvars = {
            "runpod_id": pod["id"],
            "runpod_status": pod.get("status"),
            "runpod_gpu": pod.get("gpu"),
            "runpod_cost_per_hour": float(pod.get("cost") or 0.0),
            "runpod_image": pod.get("image"),
            "runpod_volume_path": volume_path(pod),
            "runpod_cloud": pod.get("cloud"),
            "runpod_data_center": pod.get("dataCenterId"),
            "runpod_started_at": pod.get("startedAt"),
            "ansible_user": "root",
        }
        address = ssh_address(pod)
        if address is not None:
            hostvars["ansible_host"], hostvars["ansible_port"] = address
            hostvars["ansible_ssh_common_args"] = self._host_key_args(pod)
        return hostvars

    def _host_key_args(self, pod):
        """SSH options that keep the pod's host key under its id, whatever address it has this start."""
        if not POD_ID.match(str(pod["id"])):  # it names a file on the controller
            raise AnsibleParserError(f"RunPod answered a pod id {pod['id']!r}, which is not one: refusing to use it")
        directory = os.path.expanduser(self.get_option("known_hosts_dir"))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        name = pod["id"]
        if self.get_option("host_key_scope") == "start":
            name += "-" + re.sub(r"[^0-9A-Za-z]", "", str(pod.get("startedAt") or "unstarted"))
        known = os.path.join(directory, name)
        return f"-o HostKeyAlias=runpod-{pod['id']} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=accept-new"
