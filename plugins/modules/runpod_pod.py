#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Module: start, stop, create or delete a RunPod pod through RunPod's REST API (v2)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: runpod_pod
author: Central-MCP maintainers (@central-mcp)
version_added: "0.1.0"
short_description: Start, stop, create or delete a RunPod pod
description:
  - Brings the RunPod pod named O(name) to O(state) through RunPod's REST API v2 (C(POST /v2/pods/{id}/action),
    C(POST /v2/pods)), and waits until it is there (O(wait)).
  - A pod that is already in O(state) costs one read of the account's pods and changes nothing.
  - For a fleet owner who stops the GPU agents at night and starts them in the morning; the pod keeps its
    volume (C(/workspace)) while stopped, and RunPod bills only that storage. The container disk is wiped on
    every stop; what the agents need again lives on the volume.
  - With O(state=running) and no pod of that name, the pod is created from O(image) and O(gpu_type), with
    C(22/tcp) exposed and the account's SSH keys (C(startSsh)), so that Ansible reaches it by direct SSH.
  - Runs where RunPod's API is reached, normally the controller (C(delegate_to) C(localhost)).
attributes:
  check_mode:
    support: full
    description: Reads the pods and reports what it would do; starts, stops, creates and deletes nothing.
  diff_mode:
    support: full
    description: The pod's status before and after.
  platform:
    support: full
    platforms: posix
    description: Runs wherever RunPod's API is reached (Ansible's own HTTP client, nothing to install).
options:
  name:
    description: The pod's name. Two pods of that name fail the module unless O(id) picks one.
    type: str
    required: true
  id:
    description: The pod's id, when several pods share O(name).
    type: str
  state:
    description:
      - C(running) starts a stopped pod (or creates a missing one), C(stopped) stops a running or booting one,
        C(restarted) restarts a running pod's container (starts a stopped one), C(absent) deletes the pod and its
        volume (irreversible).
    type: str
    choices: [running, stopped, restarted, absent]
    default: running
  wait:
    description: Wait until the pod is in O(state) (running with its SSH address, or stopped).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for O(state).
    type: int
    default: 600
  image:
    description: Container image of a pod to create, e.g. the project's agent image pushed to your registry.
    type: str
  gpu_type:
    description: RunPod GPU type of a pod to create, e.g. C(NVIDIA GeForce RTX 4090).
    type: str
  gpu_count:
    description: GPUs of a pod to create.
    type: int
    default: 1
  disk_gb:
    description: Container disk (GB) of a pod to create; wiped at every stop.
    type: int
    default: 20
  volume_gb:
    description: Persistent volume (GB) of a pod to create; kept while the pod is stopped.
    type: int
    default: 20
  volume_path:
    description: Where the volume is mounted in a pod to create.
    type: str
    default: /workspace
  env:
    description: Environment of a pod to create. Not returned by the module (only the names are).
    type: dict
    default: {}
  cloud:
    description: RunPod's C(SECURE) cloud or the C(COMMUNITY) cloud, for a pod to create.
    type: str
    choices: [SECURE, COMMUNITY]
    default: SECURE
  api_key:
    description: RunPod API key with write access to pods. Keep it in the environment or Vault.
    type: str
  api_url:
    description:
      - RunPod's API, without C(/v2). Not set, the environment's C(RUNPOD_API_URL), else C(https://api.runpod.io).
    type: str
notes:
  - RunPod bills a running pod per hour (its C(cost) in RV(pod), in US dollars); a stopped pod's volume is billed too.
"""

EXAMPLES = r"""
- name: Stop the GPU agents' pods for the night
  central_mcp.agents.runpod_pod:
    name: "{{ item }}"
    state: stopped
  loop: "{{ groups['runpod'] }}"
  delegate_to: localhost
  run_once: true

- name: Start them again (their agents come back without a run of site.yml)
  central_mcp.agents.runpod_pod:
    name: gpu-agents-1
    state: running
  delegate_to: localhost
"""

RETURN = r"""
action:
  description: What was asked of RunPod (C(start), C(stop), C(restart), C(terminate), C(create)), or C(none).
  type: str
  returned: always
pod:
  description: The pod as RunPod describes it after the change, without its environment's values
    (C(env_names) lists the names). Empty after O(state=absent).
  type: dict
  returned: always
ssh_host:
  description: The pod's public IP for direct SSH, once it runs with C(22/tcp) exposed.
  type: str
  returned: when the pod runs
ssh_port:
  description: The public port mapped to the pod's port 22 (a new one after each start).
  type: int
  returned: when the pod runs
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback
from ansible_collections.central_mcp.agents.plugins.module_utils.runpod import (
    BOOTING,
    DEFAULT_URL,
    RunPodApi,
    RunPodError,
    public_view,
    ssh_address,
)

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "id": {"type": "str"},
    "state": {"type": "str", "choices": ["running", "stopped", "restarted", "absent"], "default": "running"},
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 600},
    "image": {"type": "str"},
    "gpu_type": {"type": "str"},
    "gpu_count": {"type": "int", "default": 1},
    "disk_gb": {"type": "int", "default": 20},
    "volume_gb": {"type": "int", "default": 20},
    "volume_path": {"type": "str", "default": "/workspace"},
    "env": {"type": "dict", "default": {}, "no_log": True},
    "cloud": {"type": "str", "choices": ["SECURE", "COMMUNITY"], "default": "SECURE"},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["RUNPOD_API_KEY"])},
    "api_url": {"type": "str", "fallback": (env_fallback, ["RUNPOD_API_URL"])},
}


def find(module, api):
    """The pod called ``name`` (or with ``id``), or None; two of that name fail, naming their ids."""
    name, pod_id = module.params["name"], module.params["id"]
    pods = [p for p in api.pods() if p.get("name") == name]
    if pod_id:
        pods = [p for p in pods if p.get("id") == pod_id]
    if len(pods) > 1:
        module.fail_json(
            msg=f"several pods are named {name} (ids {', '.join(p['id'] for p in pods)}): give id to pick one"
        )
    return pods[0] if pods else None


def plan(state, pod):
    """The action that brings ``pod`` to ``state`` (None: nothing to do)."""
    status = pod["status"] if pod else None
    if state == "absent":
        return "terminate" if pod else None
    if pod is None:
        return "create" if state in ("running", "restarted") else None
    if state == "running":
        return "start" if status in ("EXITED", "ERROR") else None
    if state == "stopped":
        return "stop" if status in ("RUNNING",) + BOOTING else None
    return "restart" if status == "RUNNING" else "start" if status in ("EXITED", "ERROR") else None


def create_body(params):
    if not (params["image"] and params["gpu_type"]):
        return None
    body = {
        "name": params["name"],
        "image": params["image"],
        "disk": params["disk_gb"],
        "ports": ["22/tcp"],
        "env": {str(k): str(v) for k, v in params["env"].items()},
        "mounts": {"persistent": {"size": params["volume_gb"], "path": params["volume_path"]}},
        "cloud": params["cloud"],
        "startSsh": True,
    }
    body["gpu"] = {"id": params["gpu_type"], "count": params["gpu_count"]}
    return body


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    params = module.params
    state = params["state"]
    url = params["api_url"] or DEFAULT_URL  # as given, else RUNPOD_API_URL (env_fallback), else RunPod's
    try:
        api = RunPodApi(params["api_key"], url, timeout=60)
        pod = find(module, api)
        action = plan(state, pod)
        body = create_body(params) if action == "create" else None
        if action == "create" and body is None:
            module.fail_json(
                msg=f"no pod is named {params['name']}: give image and gpu_type to create it, or the name of an "
                "existing pod"
            )
        if action is None and pod is None and state != "absent":
            module.fail_json(msg=f"no pod is named {params['name']}, so it cannot be {state}")
        before = pod["status"] if pod else "absent"
        result = {"changed": action is not None, "action": action or "none"}
        after = {"running": "RUNNING", "restarted": "RUNNING", "stopped": "EXITED", "absent": "absent"}[state]
        if module._diff:
            result["diff"] = {"before": {"status": before}, "after": {"status": after if action else before}}
        if action is not None and not module.check_mode:
            pod = act(api, pod, action, params, body)
        elif action is None and pod is not None and params["wait"] and state == "running" and before in BOOTING:
            pod = settle(api, pod, state, params)  # on its way up already: wait for it
    except RunPodError as exc:
        module.fail_json(msg=str(exc), status=exc.status)
    result["pod"] = public_view(pod) if pod else {}
    address = ssh_address(pod) if pod else None
    if address is not None:
        result["ssh_host"], result["ssh_port"] = address
    module.exit_json(**result)


def act(api, pod, action, params, body):
    """Ask RunPod for ``action`` (``body``: the pod to create); then, with ``wait``, read the pod until it is there."""
    if action == "create":
        pod = api.create(body)
    elif action == "terminate":
        api.action(pod["id"], "terminate")
        return None
    else:
        pod = api.action(pod["id"], action) or pod
    return settle(api, pod, params["state"], params)


def settle(api, pod, state, params):
    if not params["wait"]:
        return pod
    if state == "stopped":
        return api.wait_for(pod["id"], lambda p: p.get("status") == "EXITED", params["wait_timeout"])

    def up(p):
        exposed = "22/tcp" in (p.get("ports") or [])
        return p.get("status") == "RUNNING" and (not exposed or ssh_address(p) is not None)

    return api.wait_for(pod["id"], up, params["wait_timeout"])


if __name__ == "__main__":
    main()
