# SPDX-License-Identifier: Apache-2.0
"""The emulator's scheduling, requestIds and Spot preemption, driven by Google's own client library.

The client builds every request from the discovery document, so a field or
parameter the real API does not have fails here before the emulator is
asked; the emulator checks its answers against the same document.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # tests/ is not on the path under plain `pytest`
    sys.path.insert(0, str(REPO))
from tests.gce_emulator import start  # noqa: E402
from tests.gce_emulator.contract import Contract  # noqa: E402

PROJECT, ZONE, VM = "p1", "us-central1-a", "vm1"
IDS = {"project": PROJECT, "zone": ZONE}
SPOT = {"provisioningModel": "SPOT", "instanceTerminationAction": "STOP", "automaticRestart": False}
SPOT["onHostMaintenance"] = "TERMINATE"


@pytest.fixture
def emu():
    durations = {"stop": 0.1, "start": 0.1, "setMachineType": 0.05, "setScheduling": 0.05}
    with start(durations=durations, wait_max_s=5) as running:
        yield running
        assert running.violations() == []


@pytest.fixture
def compute(emu):
    discovery = pytest.importorskip("googleapiclient.discovery")
    errors = pytest.importorskip("googleapiclient.errors")
    from google.oauth2.credentials import Credentials

    client = discovery.build_from_document(
        Contract.load().document,
        credentials=Credentials("t"),
        client_options={"api_endpoint": emu.url + "/compute/v1/"},
    )
    client.HttpError = errors.HttpError
    return client


def done(compute, operation: dict) -> dict:
    return compute.zoneOperations().wait(operation=operation["name"], **IDS).execute()


def scheduling(compute) -> dict:
    return compute.instances().get(instance=VM, **IDS).execute()["scheduling"]


def test_a_new_vm_is_standard(emu, compute):
    emu.add_instance(PROJECT, ZONE, VM)
    assert scheduling(compute) == {
        "provisioningModel": "STANDARD",
        "automaticRestart": True,
        "onHostMaintenance": "MIGRATE",
        "preemptible": False,
    }


def test_set_scheduling_needs_a_stopped_vm_and_then_makes_it_spot(emu, compute):
    emu.add_instance(PROJECT, ZONE, VM)
    with pytest.raises(compute.HttpError) as refused:
        compute.instances().setScheduling(instance=VM, body=SPOT, **IDS).execute()
    assert refused.value.resp.status == 400 and "must be stopped" in str(refused.value)
    assert scheduling(compute)["provisioningModel"] == "STANDARD"
    done(compute, compute.instances().stop(instance=VM, **IDS).execute())
    operation = done(compute, compute.instances().setScheduling(instance=VM, body=SPOT, **IDS).execute())
    assert operation["operationType"] == "setScheduling" and "error" not in operation
    assert scheduling(compute) == {**SPOT, "preemptible": True}
    back = {"provisioningModel": "STANDARD", "automaticRestart": True, "onHostMaintenance": "MIGRATE"}
    done(compute, compute.instances().setScheduling(instance=VM, body=back, **IDS).execute())
    assert scheduling(compute) == {**back, "preemptible": False}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({**SPOT, "automaticRestart": True}, "cannot be automatically restarted"),
        ({**SPOT, "onHostMaintenance": "MIGRATE"}, "must be terminated on host maintenance"),
    ],
)
def test_a_spot_vm_that_would_restart_or_migrate_is_refused(emu, compute, body, says):
    emu.add_instance(PROJECT, ZONE, VM, status="TERMINATED")
    with pytest.raises(compute.HttpError) as refused:
        compute.instances().setScheduling(instance=VM, body=body, **IDS).execute()
    assert refused.value.resp.status == 400 and says in str(refused.value)
    assert not [op for op in emu.state()["operations"] if op["operationType"] == "setScheduling"]


@pytest.mark.parametrize("method", ["stop", "start", "setMachineType", "setScheduling"])
def test_the_same_request_id_gets_the_same_operation(emu, compute, method):
    """What makes a retry after a lost answer safe, for every state-changing call of an instance."""
    emu.add_instance(PROJECT, ZONE, VM, status="RUNNING" if method == "stop" else "TERMINATED")
    body = {"setMachineType": {"machineType": f"zones/{ZONE}/machineTypes/e2-standard-2"}, "setScheduling": SPOT}
    kwargs = {"instance": VM, "requestId": "7d1f6e1c-2a4b-4c8d-9e0f-1a2b3c4d5e6f", **IDS}
    if method in body:
        kwargs["body"] = body[method]
    first = getattr(compute.instances(), method)(**kwargs).execute()
    again = getattr(compute.instances(), method)(**kwargs).execute()
    assert again["name"] == first["name"]
    assert [op["operationType"] for op in emu.state()["operations"]] == [method]
    with pytest.raises(compute.HttpError) as bad:
        getattr(compute.instances(), method)(**{**kwargs, "requestId": "not-a-uuid"}).execute()
    assert bad.value.resp.status == 400 and "Must be a UUID" in str(bad.value)


def metadata(emu, path: str = "instance/preempted", flavor: str | None = "Google") -> tuple[int, str]:
    request = urllib.request.Request(f"{emu.metadata_url(PROJECT, ZONE, VM)}/computeMetadata/v1/{path}")
    if flavor:
        request.add_header("Metadata-Flavor", flavor)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - local test server
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_preemption_gives_notice_then_stops_the_vm_and_a_start_brings_it_back(emu, compute):
    seen = []
    emu.emulator.world.on_instance_state = lambda *event: seen.append(event[3:])
    emu.add_instance(PROJECT, ZONE, VM, provisioning_model="SPOT")
    assert metadata(emu) == (200, "FALSE")
    assert metadata(emu, flavor=None)[0] == 403  # as on GCE: no header, no answer
    notice = emu.preempt(PROJECT, ZONE, VM, notice_s=0.3)
    assert notice["operationType"] == "compute.instances.preempted"
    instance = compute.instances().get(instance=VM, **IDS).execute()
    assert instance["status"] == "STOPPING" and metadata(emu) == (200, "TRUE")
    assert seen == [("STOPPING", "preempted")]
    time.sleep(0.35)
    assert compute.instances().get(instance=VM, **IDS).execute()["status"] == "TERMINATED"
    assert seen == [("STOPPING", "preempted"), ("TERMINATED", "preempted")]
    assert metadata(emu) == (200, "TRUE")  # until the VM starts again
    done(compute, compute.instances().start(instance=VM, **IDS).execute())
    assert compute.instances().get(instance=VM, **IDS).execute()["status"] == "RUNNING"
    assert metadata(emu) == (200, "FALSE") and seen[-1] == ("RUNNING", "start")


def test_only_a_running_spot_vm_is_preempted(emu):
    emu.add_instance(PROJECT, ZONE, VM)
    with pytest.raises(urllib.error.HTTPError) as standard:
        emu.preempt(PROJECT, ZONE, VM)
    assert "not a Spot VM" in standard.value.read().decode()
    emu.add_instance(PROJECT, ZONE, "vm2", status="TERMINATED", provisioning_model="SPOT")
    with pytest.raises(urllib.error.HTTPError) as stopped:
        emu.preempt(PROJECT, ZONE, "vm2")
    assert "only a running Spot VM" in stopped.value.read().decode()


def test_a_preemption_is_found_among_the_zones_operations_and_the_vm_has_a_token(emu, compute):
    """What the fleet's watcher reads: the VM's own token from its metadata server, then the preemptions of a
    stopped Spot VM (a person's stop is none)."""
    emu.add_instance(PROJECT, ZONE, VM, provisioning_model="SPOT")
    emu.add_instance(PROJECT, ZONE, "vm2", provisioning_model="SPOT")
    target = compute.instances().get(instance=VM, **IDS).execute()["id"]
    emu.preempt(PROJECT, ZONE, VM, notice_s=0)
    done(compute, compute.instances().stop(instance="vm2", **IDS).execute())
    wanted = f'(operationType = "compute.instances.preempted") AND (targetId = "{target}")'
    found = compute.zoneOperations().list(filter=wanted, **IDS).execute()["items"]
    assert [(op["operationType"], op["targetId"], op["status"]) for op in found] == [
        ("compute.instances.preempted", target, "DONE")
    ]
    other = compute.instances().get(instance="vm2", **IDS).execute()["id"]
    none = compute.zoneOperations().list(filter=wanted.replace(target, other), **IDS).execute()
    assert "items" not in none
    with pytest.raises(compute.HttpError) as bad:
        compute.zoneOperations().list(filter="operationType ~ preempted", **IDS).execute()
    assert bad.value.resp.status == 400
    status, text = metadata(emu, "instance/service-accounts/default/token")
    assert status == 200 and json.loads(text)["token_type"] == "Bearer"
