# SPDX-License-Identifier: Apache-2.0
"""gce_disk_size against the Compute API emulator, and the emulator's disks against the contract.

As for gce_machine_type, the module runs through its real ``main()`` with
``auth_kind: accesstoken`` and ``api_endpoint`` pointing at the emulator, and
what happened is read back from the emulator's own state and request log.
The emulator checks every request and answer against Google's discovery
document (``sizeGb`` is an int64 *string* there, a classic slip), and each
test fails if it saw a contract violation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml
from ansible_collections.central_mcp.agents.plugins.module_utils import gce, gce_disk
from ansible_collections.central_mcp.agents.plugins.modules import gce_disk_size
from gce_harness import DURATIONS, REPO, assert_doc_matches_spec, calls, posts
from gce_harness import run_module as run

from tests.gce_emulator import start
from tests.gce_emulator.contract import Contract
from tests.gce_emulator.server import EMULATED
from tests.gce_emulator.state import World

PROJECT, ZONE, VM = "demo-project", "us-central1-a", "vm1"
BASE = f"/projects/{PROJECT}/zones/{ZONE}"


def module_args(emu, **extra) -> dict:
    base = {
        "project": PROJECT,
        "zone": ZONE,
        "instance": VM,
        "size_gb": 50,
        "auth_kind": "accesstoken",
        "access_token": "test-token",
        "api_endpoint": emu.api_endpoint,
        "timeout": 20,
    }
    return {k: v for k, v in {**base, **extra}.items() if v is not None}


def run_module(emu, check: bool = False, diff: bool = False, **extra) -> dict:
    return run(gce_disk_size, module_args(emu, **extra), check, diff)


def size(emu, name: str = VM) -> int:
    """The disk's size, read from the emulator's state, not through the module."""
    return int(emu.disk(PROJECT, ZONE, name)["sizeGb"])


# ----------------------------------------------------------------- the manual
def test_documentation_matches_the_argument_spec():
    """ansible-doc is the manual: every option it shows (doc fragment included) is one the module takes."""
    assert_doc_matches_spec("gce_disk_size", gce_disk_size.ARGUMENT_SPEC)
    returned = yaml.safe_load(gce_disk_size.RETURN)
    assert set(returned) == {"disk", "disk_id", "previous_size_gb", "size_gb", "disk_type", "changed", "api_calls"}
    yaml.safe_load(gce_disk_size.EXAMPLES)


# ----------------------------------------------------------------- no-op, grow, check mode
@pytest.mark.parametrize(
    ("extra", "expected_calls"),
    [({"disk": VM, "instance": None}, ["disks.get"]), ({}, ["instances.get", "disks.get"])],
    ids=["by-disk-one-read", "by-instance"],
)
def test_big_enough_is_a_noop(emu, extra, expected_calls):
    emu.add_instance(PROJECT, ZONE, VM, disk_size_gb=50)
    result = run_module(emu, **extra)
    assert result["rc"] == 0, result
    assert result["changed"] is False and calls(emu) == expected_calls and result["api_calls"] == len(expected_calls)
    assert (result["previous_size_gb"], result["size_gb"], result["disk_type"]) == (50, 50, "pd-balanced")


def test_boot_disk_is_grown_online(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4", disk_size_gb=10, boot_disk="vm1-boot")
    result = run_module(emu, diff=True)
    assert result["rc"] == 0, result
    assert result["changed"] is True and result["disk"] == "vm1-boot"
    assert (result["previous_size_gb"], result["size_gb"]) == (10, 50) and size(emu, "vm1-boot") == 50
    assert calls(emu) == ["instances.get", "disks.get", "disks.resize", "zoneOperations.wait", "disks.get"]
    assert result["api_calls"] == 5
    resize = [e for e in emu.log() if e["method"] == "compute.disks.resize"][0]
    assert resize["query"].startswith("requestId=")
    assert emu.instance(PROJECT, ZONE, VM)["status"] == "RUNNING"  # nothing stopped
    assert emu.instance(PROJECT, ZONE, VM)["disks"][0]["diskSizeGb"] == "50"
    assert result["diff"]["before"] == "size_gb: 10\ndisk_type: pd-balanced\n"
    assert result["diff"]["after"] == "size_gb: 50\ndisk_type: pd-balanced\n"
    emu.clear_log()
    again = run_module(emu)
    assert again["changed"] is False and posts(emu) == []


def test_check_mode_only_reads(emu):
    emu.add_instance(PROJECT, ZONE, VM, disk_size_gb=10, disk_type="pd-ssd")
    result = run_module(emu, check=True, diff=True)
    assert result["rc"] == 0, result
    assert result["changed"] is True and result["size_gb"] == 50 and result["disk_type"] == "pd-ssd"
    assert posts(emu) == [] and size(emu) == 10
    assert result["diff"]["after"] == "size_gb: 50\ndisk_type: pd-ssd\n"


# ----------------------------------------------------------------- smaller, thresholds
def test_shrink_is_refused_before_any_change(emu):
    emu.add_instance(PROJECT, ZONE, VM, disk_size_gb=60)
    result = run_module(emu, size_gb=30)
    assert result["rc"] == 1 and result["changed"] is False
    assert "disk vm1 is 60 GB and size_gb is 30" in result["msg"] and "never shrink" in result["msg"]
    assert "Set size_gb to 60 or more (nothing was changed)" in result["msg"]
    assert posts(emu) == [] and size(emu) == 60


@pytest.mark.parametrize(
    ("current", "extra", "changed", "final"),
    [
        (60, {"size_gb": 30, "keep_larger": True}, False, 60),  # the fleet shrank, the disk stays
        (48, {"size_gb": 50, "min_growth_gb": 5}, False, 48),  # 2 GB more is not worth a grow
        (40, {"size_gb": 50, "min_growth_gb": 5}, True, 50),
        (49, {"size_gb": 50}, True, 50),  # without a threshold any difference grows
    ],
    ids=["keep-larger", "below-threshold", "at-threshold", "no-threshold"],
)
def test_keep_larger_and_growth_threshold(emu, current, extra, changed, final):
    emu.add_instance(PROJECT, ZONE, VM, disk_size_gb=current)
    result = run_module(emu, **extra)
    assert result["rc"] == 0 and result["changed"] is changed and result["size_gb"] == final, result
    assert size(emu) == final and bool(posts(emu)) is changed


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"size_gb": 5}, "size_gb 5 is out of range: a boot disk is 10 to 65536 GB"),
        ({"size_gb": 70000}, "size_gb 70000 is out of range"),
        ({"instance": "VM One"}, "instance 'VM One' is not a Compute Engine resource name"),
        ({"instance": "vm-gone"}, "check project, zone and name"),
        ({"instance": None, "disk": "disk-gone"}, "reading disk disk-gone (project demo-project"),
        ({"zone": "mars-north1-a"}, "HTTP 404 notFound"),
        ({"min_growth_gb": -1}, "min_growth_gb must be 0 or more, got -1"),
        ({"disk": VM}, "parameters are mutually exclusive: instance|disk"),
    ],
    ids=["too-small", "too-big", "bad-name", "unknown-instance", "unknown-disk", "unknown-zone", "threshold", "both"],
)
def test_refused_with_the_value_named(emu, extra, says):
    emu.add_instance(PROJECT, ZONE, VM)
    result = run_module(emu, **extra)
    assert result["rc"] == 1 and says in result["msg"], result
    assert posts(emu) == [] and size(emu) == 10


# ----------------------------------------------------------------- faults
@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "times": 2},
        {"status": 503, "times": 2},
        {"status": 403, "times": 2},  # reason rateLimitExceeded
        {"status": 503, "times": 1, "method": "disks.resize"},
        {"status": 503, "times": 1, "method": "disks.resize", "after": True},  # done, answer lost
        {"status": 429, "times": 1, "method": "zoneOperations.wait"},
    ],
    ids=["429", "503", "403-rate-limit", "503-on-resize", "answer-lost-on-resize", "429-on-wait"],
)
def test_transient_errors_are_retried_and_the_disk_grows_once(emu, fault):
    emu.add_instance(PROJECT, ZONE, VM, disk_size_gb=10)
    emu.fault("http", **fault)
    result = run_module(emu)
    assert result["rc"] == 0, result
    assert size(emu) == 50 and result["size_gb"] == 50
    statuses = [entry["status"] for entry in emu.log()]
    assert statuses.count(fault["status"]) == fault["times"] and result["api_calls"] == len(statuses)
    resizes = [op for op in emu.state()["operations"] if op["operationType"] == "resize"]
    assert len(resizes) == 1  # the retried resize carried the same requestId


def test_retries_stop_and_the_error_is_named(emu):
    emu.add_instance(PROJECT, ZONE, VM)
    emu.fault("http", status=503, times=50)
    result = run_module(emu)
    assert result["rc"] == 1 and "HTTP 503" in result["msg"] and f"after {gce.MAX_ATTEMPTS} attempts" in result["msg"]
    assert posts(emu) == []


@pytest.mark.parametrize(("disk_type", "quota"), [("pd-balanced", "SSD_TOTAL_GB"), ("pd-standard", "DISKS_TOTAL_GB")])
def test_quota_exceeded_is_reported_and_the_disk_unchanged(emu, disk_type, quota):
    emu.add_instance(PROJECT, ZONE, VM, disk_size_gb=10, disk_type=disk_type)
    emu.fault("operation_error", method="disks.resize")
    result = run_module(emu)
    assert result["rc"] == 1 and result["changed"] is False, result
    assert result["msg"].startswith("growing disk vm1 from 10 GB to 50 GB failed: QUOTA_EXCEEDED: Quota ")
    assert f"'{quota}' exceeded" in result["msg"] and "The disk is unchanged at 10 GB" in result["msg"]
    assert "ask for more disk quota" in result["msg"]
    assert size(emu) == 10 and result["size_gb"] == 10


def test_refused_resize_request_names_the_api_reason(emu):
    emu.add_instance(PROJECT, ZONE, VM)
    emu.fault(
        "http",
        status=403,
        reason="forbidden",
        message="Required 'compute.disks.resize' permission",
        method="disks.resize",
    )
    result = run_module(emu)
    assert result["rc"] == 1 and "HTTP 403 forbidden: Required 'compute.disks.resize' permission" in result["msg"]
    assert "unchanged at 10 GB" in result["msg"] and "roles/compute.instanceAdmin.v1" in result["msg"]


def test_timeout_says_the_grow_may_still_happen(emu):
    emu.add_instance(PROJECT, ZONE, VM)
    emu.configure(wait_max_s=0.2)
    emu.fault("slow", method="disks.resize", seconds=3)
    result = run_module(emu, timeout=1)
    assert result["rc"] == 1 and "timed out after 1s" in result["msg"] and "may still finish" in result["msg"]


def test_module_runs_as_a_process(emu, tmp_path):
    """python -m <module> ARGS_FILE: the module's own entry point, no patched arguments."""
    emu.add_instance(PROJECT, ZONE, VM)
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args(emu, size_gb=20)}))
    env = {**os.environ, "PYTHONPATH": str(REPO / "collections")}
    name = "ansible_collections.central_mcp.agents.plugins.modules.gce_disk_size"
    proc = subprocess.run([sys.executable, "-m", name, str(args)], capture_output=True, text=True, env=env, timeout=60)
    result = json.loads(proc.stdout)
    assert proc.returncode == 0 and result["changed"] is True and size(emu) == 20, proc.stderr
    assert "test-token" not in proc.stdout


PARAMS = {"project": PROJECT, "zone": ZONE, "instance": VM, "disk": None, "size_gb": 50}


class _StubApi:
    """An instances.get answer the emulator never gives (it always makes a zonal boot disk)."""

    calls = 0

    def __init__(self, disks):
        self.disks = disks

    def get(self, path):
        assert path == f"instances/{VM}", path
        return {"name": VM, "disks": self.disks}


@pytest.mark.parametrize(
    ("disks", "says"),
    [
        ([], "instance vm1 has no boot disk in its disks[]: name the disk with the disk option"),
        ([{"boot": False, "source": "projects/p/zones/z/disks/data"}], "has no boot disk"),
        (
            [{"boot": True, "source": "projects/p/regions/us-central1/disks/vm1-boot"}],
            "is a regional disk (region us-central1); this module grows zonal disks: use `gcloud compute disks "
            "resize vm1-boot --region us-central1 --size 50GB`",
        ),
        ([{"boot": True, "source": "projects/p/zones/europe-west1-b/disks/d"}], "is in zone europe-west1-b, not"),
    ],
    ids=["no-disks", "no-boot-disk", "regional", "other-zone"],
)
def test_boot_disks_it_cannot_grow_are_refused_by_name(disks, says):
    with pytest.raises(gce.GceFailure) as failure:
        gce_disk.Grow(PARAMS, _StubApi(disks)).find_disk()
    assert says in str(failure.value) and "(nothing was changed)" in str(failure.value)


@pytest.mark.parametrize(
    ("link", "parts"),
    [
        (f"https://www.googleapis.com/compute/v1/projects/p/zones/{ZONE}/disks/d1", {"zones": ZONE, "disks": "d1"}),
        ("projects/p/regions/us-central1/disks/d2", {"regions": "us-central1", "disks": "d2"}),
        ("projects/disks/zones/z/disks/d3", {"projects": "disks", "zones": "z", "disks": "d3"}),
    ],
)
def test_link_parts_tells_zonal_from_regional(link, parts):
    assert gce.link_parts(link).items() >= parts.items()


# ----------------------------------------------------------------- the emulator's disks
@pytest.mark.parametrize(
    ("method_id", "verb", "request_schema", "response_schema"),
    [
        ("compute.disks.get", "GET", None, "Disk"),
        ("compute.disks.resize", "POST", "DisksResizeRequest", "Operation"),
    ],
)
def test_disk_methods_are_the_documents(method_id, verb, request_schema, response_schema):
    method = Contract.load().methods[method_id]
    assert (method.verb, method.request, method.response) == (verb, request_schema, response_schema)
    assert method_id in EMULATED


def call(emu, verb: str, path: str, body=None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emu.api_endpoint + path, data=data, method=verb)
    request.add_header("Authorization", "Bearer t")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("body", "query", "status", "says"),
    [
        ({"sizeGb": "10"}, "", 400, "cannot be smaller than or equal to the current size '10'"),
        ({"sizeGb": "8"}, "", 400, "a disk can only grow"),
        ({"sizeGb": 20}, "", 500, "DisksResizeRequest.sizeGb must be a string (int64)"),
        ({"sizeGb": "20"}, "?requestId=not-a-uuid", 400, "Must be a UUID"),
        ({"sizeGb": "20"}, "?force=1", 500, "query parameter 'force'"),
    ],
    ids=["equal", "smaller", "integer-size", "bad-request-id", "unknown-query"],
)
def test_resize_keeps_the_services_rules(gce_server, body, query, status, says):
    gce_server.admin("POST", "reset")
    gce_server.add_instance(PROJECT, ZONE, VM)
    code, answer = call(gce_server, "POST", f"{BASE}/disks/{VM}/resize{query}", body)
    assert code == status and says in answer["error"]["message"], answer
    assert size(gce_server) == 10


def test_official_client_grows_a_disk_once_per_request_id(emu):
    """Google's own client builds the requests from the document and parses the emulator's answers."""
    discovery = pytest.importorskip("googleapiclient.discovery")
    from google.oauth2.credentials import Credentials

    compute = discovery.build_from_document(
        Contract.load().document,
        credentials=Credentials("t"),
        client_options={"api_endpoint": emu.url + "/compute/v1/"},
    )
    emu.add_instance(PROJECT, ZONE, VM, disk_size_gb=10)
    ids = {"project": PROJECT, "zone": ZONE}
    boot = compute.instances().get(instance=VM, **ids).execute()["disks"][0]
    assert boot["boot"] is True and boot["source"].endswith(f"{BASE}/disks/{VM}")
    rid = "3f0c2a8e-1b7d-4c55-9a1e-2d5b6c7e8f90"
    first = compute.disks().resize(disk=VM, body={"sizeGb": "30"}, requestId=rid, **ids).execute()
    busy, _ = call(emu, "POST", f"{BASE}/disks/{VM}/resize", {"sizeGb": "40"})
    assert busy == 400  # resourceNotReady while the first runs
    again = compute.disks().resize(disk=VM, body={"sizeGb": "30"}, requestId=rid, **ids).execute()
    assert again["name"] == first["name"] and first["targetLink"].endswith(f"/disks/{VM}")
    done = compute.zoneOperations().wait(operation=first["name"], **ids).execute()
    assert done["status"] == "DONE" and "error" not in done
    disk = compute.disks().get(disk=VM, **ids).execute()
    assert disk["sizeGb"] == "30" and disk["type"].endswith("/diskTypes/pd-balanced") and disk["users"]


def test_state_files_without_disks_still_load(tmp_path):
    """A demo state written before disks existed: its instances get a 10 GB boot disk, nothing else changes."""
    state = tmp_path / "gce.json"
    with start(state_file=str(state), durations=DURATIONS) as emu:
        emu.add_instance(PROJECT, ZONE, VM, "e2-standard-2")
    old = json.loads(state.read_text())
    del old["disks"], old["requests"]
    for record in old["instances"].values():
        del record["bootDisk"]
    state.write_text(json.dumps(old))
    world = World(str(state))
    view = world.instance(PROJECT, ZONE, VM)
    assert view["machineType"].endswith("/e2-standard-2") and view["disks"][0]["diskSizeGb"] == "10"
