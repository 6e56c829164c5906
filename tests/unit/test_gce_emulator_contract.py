# SPDX-License-Identifier: Apache-2.0
"""The Compute API emulator keeps Google's contract, and behaves like the service over time.

The module tests are only as good as the emulator they run against. These
tests hold it to the official discovery document (routes, verbs, request and
response schemas), drive it with Google's own client library (which builds
its requests from that document and parses the answers), and check that
state changes with time as on Compute Engine, that faults fire as armed, and
that the state survives a restart (the demo relies on it).
"""

from __future__ import annotations

import json
import subprocess
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
from tests.gce_emulator.server import EMULATED  # noqa: E402
from tests.gce_emulator.state import World  # noqa: E402

PROJECT, ZONE, VM = "p1", "us-central1-a", "vm1"
BASE = f"/projects/{PROJECT}/zones/{ZONE}"
DURATIONS = {"stop": 0.2, "start": 0.2, "setMachineType": 0.05}


@pytest.fixture(scope="module")
def contract():
    return Contract.load()


@pytest.fixture
def emu():
    with start(durations=DURATIONS, wait_max_s=5) as running:
        yield running


def call(emu, verb: str, path: str, body=None, token: str | None = "t") -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emu.api_endpoint + path, data=data, method=verb)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ----------------------------------------------------------------- the document
@pytest.mark.parametrize(
    ("method_id", "verb", "request_schema", "response_schema"),
    [
        ("compute.instances.get", "GET", None, "Instance"),
        ("compute.instances.stop", "POST", None, "Operation"),
        ("compute.instances.start", "POST", None, "Operation"),
        ("compute.instances.setMachineType", "POST", "InstancesSetMachineTypeRequest", "Operation"),
        ("compute.instances.setScheduling", "POST", "Scheduling", "Operation"),
        ("compute.machineTypes.get", "GET", None, "MachineType"),
        ("compute.machineTypes.list", "GET", None, "MachineTypeList"),
        ("compute.zoneOperations.get", "GET", None, "Operation"),
        ("compute.zoneOperations.list", "GET", None, "OperationList"),
        ("compute.zoneOperations.wait", "POST", None, "Operation"),
    ],
)
def test_emulated_methods_are_the_documents(contract, method_id, verb, request_schema, response_schema):
    method = contract.methods[method_id]
    assert (method.verb, method.request, method.response) == (verb, request_schema, response_schema)
    assert method_id in EMULATED


@pytest.mark.parametrize(
    ("value", "schema", "problem"),
    [
        ({"status": "RUNNING", "cpus": 4}, "Instance", "Instance.cpus is not a field of Instance"),
        ({"status": "HAPPY"}, "Instance", "Instance.status = 'HAPPY' is not one of the API's values"),
        ({"id": 12}, "Operation", "Operation.id must be a string (uint64)"),
        ({"guestCpus": "4"}, "MachineType", "MachineType.guestCpus must be a integer (int32)"),
        ({"error": {"errors": [{"code": "X", "bogus": 1}]}}, "Operation", "Operation.error.errors[0].bogus"),
        (
            {"machineType": "zones/z/machineTypes/e2-micro", "minCpuPlatform": "x"},
            "InstancesSetMachineTypeRequest",
            "minCpuPlatform",
        ),
    ],
)
def test_schema_checks_catch_drift(contract, value, schema, problem):
    problems = contract.problems(value, {"$ref": schema}, schema)
    assert any(problem in p for p in problems), problems


def test_official_client_drives_the_emulator(emu):
    """Google's own client builds requests from the document and parses the emulator's answers."""
    discovery = pytest.importorskip("googleapiclient.discovery")
    from google.oauth2.credentials import Credentials

    document = Contract.load().document
    compute = discovery.build_from_document(
        document, credentials=Credentials("t"), client_options={"api_endpoint": emu.url + "/compute/v1/"}
    )
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    instances, operations = compute.instances(), compute.zoneOperations()
    ids = {"project": PROJECT, "zone": ZONE}

    def done(request):
        operation = request.execute()
        return operations.wait(operation=operation["name"], **ids).execute()

    assert done(instances.stop(instance=VM, **ids))["status"] == "DONE"
    body = {"machineType": f"zones/{ZONE}/machineTypes/e2-standard-4"}
    assert done(instances.setMachineType(instance=VM, body=body, **ids))["status"] == "DONE"
    assert done(instances.start(instance=VM, **ids))["status"] == "DONE"
    instance = instances.get(instance=VM, **ids).execute()
    assert instance["status"] == "RUNNING" and instance["machineType"].endswith("/machineTypes/e2-standard-4")
    assert instance["machineType"].startswith("https://")  # a full URL, as the real API returns
    names = [t["name"] for t in compute.machineTypes().list(**ids).execute()["items"]]
    assert {"e2-micro", "e2-standard-2", "e2-standard-4", "e2-standard-8"} <= set(names)
    assert emu.violations() == []


@pytest.mark.parametrize(
    ("verb", "path", "body", "says"),
    [
        (
            "POST",
            f"{BASE}/instances/{VM}/setMachineType",
            {"machineType": "e2-micro", "size": 4},
            "size is not a field",
        ),
        ("GET", f"{BASE}/instances/{VM}/resize", None, "no method of the Compute v1 API"),
        ("GET", f"{BASE}/instances/{VM}/stop", None, "only has POST (compute.instances.stop)"),
        ("POST", f"{BASE}/instances/{VM}/stop", {"force": True}, "takes no request body"),
        ("GET", f"{BASE}/instances/{VM}?verbose=1", None, "query parameter 'verbose'"),
    ],
    ids=["unknown-field", "unknown-path", "wrong-verb", "body-on-stop", "unknown-query"],
)
def test_off_contract_requests_are_loud_500s(emu, verb, path, body, says):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    status, answer = call(emu, verb, path, body)
    assert status == 500 and answer["error"]["message"].startswith("EMULATOR CONTRACT VIOLATION")
    assert says in answer["error"]["message"]
    assert len(emu.violations()) == 1


# ----------------------------------------------------------------- behaviour over time
def test_stop_and_start_go_through_the_real_states(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    status, operation = call(emu, "POST", f"{BASE}/instances/{VM}/stop")
    assert status == 200 and operation["kind"] == "compute#operation" and operation["status"] in ("PENDING", "RUNNING")
    assert operation["targetLink"].endswith(f"{BASE}/instances/{VM}") and operation["selfLink"].endswith(
        operation["name"]
    )
    assert emu.instance(PROJECT, ZONE, VM)["status"] == "STOPPING"
    status, busy = call(emu, "POST", f"{BASE}/instances/{VM}/start")
    assert status == 400 and busy["error"]["errors"][0]["reason"] == "resourceNotReady"
    status, waited = call(emu, "POST", f"{BASE}/operations/{operation['name']}/wait")
    assert waited["status"] == "DONE" and "error" not in waited
    assert emu.instance(PROJECT, ZONE, VM)["status"] == "TERMINATED"
    _, operation = call(emu, "POST", f"{BASE}/instances/{VM}/start")
    assert emu.instance(PROJECT, ZONE, VM)["status"] == "STAGING"
    time.sleep(DURATIONS["start"] + 0.05)
    assert call(emu, "GET", f"{BASE}/operations/{operation['name']}")[1]["status"] == "DONE"
    assert emu.instance(PROJECT, ZONE, VM)["status"] == "RUNNING"


def test_set_machine_type_needs_a_stopped_vm(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    status, answer = call(emu, "POST", f"{BASE}/instances/{VM}/setMachineType", {"machineType": "e2-standard-4"})
    assert status == 400 and "must be stopped" in answer["error"]["message"]
    assert answer["error"]["errors"][0]["reason"] == "invalidResourceUsage"


def test_failing_operation_reports_its_error(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro", status="TERMINATED")
    emu.fault("operation_error", method="instances.start")
    _, operation = call(emu, "POST", f"{BASE}/instances/{VM}/start")
    _, waited = call(emu, "POST", f"{BASE}/operations/{operation['name']}/wait")
    assert waited["status"] == "DONE" and waited["httpErrorStatusCode"] == 503
    assert waited["error"]["errors"][0]["code"] == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert emu.instance(PROJECT, ZONE, VM)["status"] == "TERMINATED"


def test_wait_returns_at_the_servers_limit(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.configure(wait_max_s=0.1)
    emu.fault("slow", method="instances.stop", seconds=5)
    _, operation = call(emu, "POST", f"{BASE}/instances/{VM}/stop")
    started = time.monotonic()
    _, waited = call(emu, "POST", f"{BASE}/operations/{operation['name']}/wait")
    assert waited["status"] in ("PENDING", "RUNNING") and time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("token", "configured", "reason"),
    [(None, None, "required"), ("wrong", "right", "authError")],
    ids=["none", "wrong"],
)
def test_bearer_token_is_checked(emu, token, configured, reason):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.configure(token=configured)
    status, answer = call(emu, "GET", f"{BASE}/instances/{VM}", token=token)
    assert status == 401 and answer["error"]["errors"][0]["reason"] == reason


def test_http_faults_fire_as_many_times_as_armed(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.fault("http", status=429, times=2, method="instances.get")
    statuses = [call(emu, "GET", f"{BASE}/instances/{VM}")[0] for _ in range(3)]
    assert statuses == [429, 429, 200]


def test_state_survives_a_restart(tmp_path):
    state = tmp_path / "gce.json"
    with start(state_file=str(state), durations=DURATIONS) as emu:
        emu.add_instance(PROJECT, ZONE, VM, "e2-micro", status="TERMINATED")
        call(emu, "POST", f"{BASE}/instances/{VM}/setMachineType", {"machineType": "e2-standard-2"})
        time.sleep(DURATIONS["setMachineType"] + 0.05)
    world = World(str(state))
    assert world.instance(PROJECT, ZONE, VM)["machineType"].endswith("/e2-standard-2")


def test_runs_as_a_process(tmp_path):
    """python -m tests.gce_emulator, as make demo starts it: prints its URL, serves, keeps its state."""
    state = tmp_path / "gce.json"
    argv = [sys.executable, "-m", "tests.gce_emulator", "--port", "0", "--state", str(state)]
    argv += ["--instance", f"{PROJECT}/{ZONE}/{VM}=e2-micro", "--stop-s", "0.1"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[2].removesuffix("/compute/v1")
        with urllib.request.urlopen(f"{url}/_emulator/state", timeout=10) as response:
            dumped = json.loads(response.read())
        assert [i["name"] for i in dumped["instances"]] == [VM] and dumped["config"]["durations"]["stop"] == 0.1
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0 and json.loads(state.read_text())["instances"]
