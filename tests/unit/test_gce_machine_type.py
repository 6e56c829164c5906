# SPDX-License-Identifier: Apache-2.0
"""gce_machine_type against the Compute API emulator (tests/gce_emulator).

The module runs through its real ``main()`` with its arguments patched in, as
Ansible's own unit tests do (and once as a separate process, as Ansible runs
it), with ``auth_kind: accesstoken`` and ``api_endpoint`` pointing at the
emulator. What happened is read back from the emulator's own state and
request log, never from the module's result alone. Operations take tenths of
a second here; the emulator checks every request and answer against Google's
discovery document, and each test fails if it saw a contract violation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible_collections.central_mcp.agents.plugins.module_utils import gce, gce_resize
from ansible_collections.central_mcp.agents.plugins.modules import gce_machine_type
from gce_harness import DURATIONS, REPO, assert_doc_matches_spec, calls, posts
from gce_harness import run_module as run

PROJECT, ZONE, VM = "demo-project", "us-central1-a", "vm1"
# The role's one check of its settings (tasks/preflight.yml), which fails before any API call.
CHECK_TASK = (
    "Check the VM's names, machine type, provisioning model, disk size, prices and credentials before any API call"
)


# ----------------------------------------------------------------- fixtures
@pytest.fixture
def emu(emu, monkeypatch):
    """The shared emulator (conftest.py), and short polls of a VM between two states."""
    monkeypatch.setattr(gce_resize, "_POLL_S", 0.05)
    return emu


def module_args(emu, **extra) -> dict:
    base = {
        "project": PROJECT,
        "zone": ZONE,
        "instance": VM,
        "machine_type": "e2-standard-4",
        "auth_kind": "accesstoken",
        "access_token": "test-token",
        "api_endpoint": emu.api_endpoint,
        "timeout": 20,
    }
    return {**base, **extra}


def run_module(emu, check: bool = False, diff: bool = False, **extra) -> dict:
    return run(gce_machine_type, module_args(emu, **extra), check, diff)


def vm(emu) -> tuple[str, str]:
    """(status, machine type) of the VM, read from the emulator's state, not through the module."""
    instance = emu.instance(PROJECT, ZONE, VM)
    return instance["status"], instance["machineType"].rsplit("/", 1)[-1]


# ----------------------------------------------------------------- the manual
def test_documentation_matches_the_argument_spec():
    """ansible-doc is the manual: every option it shows (doc fragment included) is one the module takes."""
    assert_doc_matches_spec("gce_machine_type", gce_machine_type.ARGUMENT_SPEC)
    returned = yaml.safe_load(gce_machine_type.RETURN)
    assert set(returned) >= {"previous_machine_type", "machine_type", "status", "stopped", "downtime_s", "rolled_back"}


def test_the_shared_options_come_from_the_doc_fragment():
    """The auth options are documented once (plugins/doc_fragments/gce.py); the check reads the merged manual."""
    shared = {"project", "zone", "auth_kind", "service_account_file", "access_token", "api_endpoint"}
    own = yaml.safe_load(gce_machine_type.DOCUMENTATION)
    assert own["extends_documentation_fragment"] == ["central_mcp.agents.gce"]
    assert not shared & set(own["options"]), "documented in the module and in the fragment"
    spec = gce_machine_type.ARGUMENT_SPEC
    with pytest.raises(AssertionError, match="undocumented"):
        assert_doc_matches_spec("gce_machine_type", {**spec, "region": {"type": "str"}})
    with pytest.raises(AssertionError, match="api_endpoint"):
        assert_doc_matches_spec("gce_machine_type", {**spec, "api_endpoint": {"type": "str", "default": "http://x"}})


# ----------------------------------------------------------------- the plain paths
def test_right_type_is_a_noop_with_one_read(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4")
    result = run_module(emu, allow_stopping=True)
    assert result["rc"] == 0, result
    assert result["changed"] is False and result["stopped"] is False
    assert result["api_calls"] <= 2 and calls(emu) == ["instances.get"]
    assert vm(emu) == ("RUNNING", "e2-standard-4")


def test_running_vm_is_resized_and_running_again(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    result = run_module(emu, allow_stopping=True, diff=True)
    assert result["rc"] == 0, result
    assert vm(emu) == ("RUNNING", "e2-standard-4")
    assert result["changed"] and result["stopped"] and not result["rolled_back"]
    assert (result["previous_machine_type"], result["machine_type"], result["status"]) == (
        "e2-micro",
        "e2-standard-4",
        "RUNNING",
    )
    emulated = DURATIONS["stop"] + DURATIONS["setMachineType"] + DURATIONS["start"]
    assert emulated <= result["downtime_s"] + 0.05 < emulated + 2
    assert calls(emu) == [
        "instances.get",
        "machineTypes.get",
        "instances.stop",
        "zoneOperations.wait",
        "instances.setMachineType",
        "zoneOperations.wait",
        "instances.start",
        "zoneOperations.wait",
        "instances.get",
    ]
    assert result["api_calls"] == len(calls(emu))
    assert "machine_type: e2-standard-4" in result["diff"]["after"]
    emu.clear_log()
    again = run_module(emu, allow_stopping=True)
    assert again["changed"] is False and calls(emu) == ["instances.get"]


def test_terminated_vm_gets_the_type_and_stays_stopped(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro", status="TERMINATED")
    result = run_module(emu)  # allow_stopping is not needed: nothing has to stop
    assert result["rc"] == 0, result
    assert vm(emu) == ("TERMINATED", "e2-standard-4")
    assert result["status"] == "TERMINATED" and result["stopped"] is False and result["downtime_s"] == 0
    assert "instances.stop" not in calls(emu) and "instances.start" not in calls(emu)


def test_terminated_vm_is_started_when_asked(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro", status="TERMINATED")
    result = run_module(emu, start_if_terminated=True)
    assert result["rc"] == 0, result
    assert vm(emu) == ("RUNNING", "e2-standard-4") and result["status"] == "RUNNING"


def test_check_mode_only_reads_and_shows_the_plan(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    result = run_module(emu, check=True, diff=True, allow_stopping=True)
    assert result["rc"] == 0, result
    assert result["changed"] is True and result["machine_type"] == "e2-standard-4"
    assert posts(emu) == [] and calls(emu) == ["instances.get", "machineTypes.get"]
    assert vm(emu) == ("RUNNING", "e2-micro")
    assert result["diff"]["before"] == "machine_type: e2-micro\nprovisioning_model: STANDARD\nstatus: RUNNING\n"
    assert result["diff"]["after"] == "machine_type: e2-standard-4\nprovisioning_model: STANDARD\nstatus: RUNNING\n"


# ----------------------------------------------------------------- the provisioning model (Spot)
def model(emu) -> str:
    return emu.instance(PROJECT, ZONE, VM)["scheduling"]["provisioningModel"]


def test_spot_and_a_new_type_in_one_stop_then_a_no_op_costs_one_read(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    result = run_module(emu, allow_stopping=True, provisioning_model="spot", diff=True)
    assert result["rc"] == 0, result
    assert vm(emu) == ("RUNNING", "e2-standard-4") and model(emu) == "SPOT"
    assert emu.instance(PROJECT, ZONE, VM)["scheduling"] == {
        "provisioningModel": "SPOT",
        "instanceTerminationAction": "STOP",
        "automaticRestart": False,
        "onHostMaintenance": "TERMINATE",
        "preemptible": True,
    }
    assert (result["previous_provisioning_model"], result["provisioning_model"]) == ("STANDARD", "SPOT")
    assert [c for c in calls(emu) if c != "zoneOperations.wait"] == [
        "instances.get",
        "machineTypes.get",
        "instances.stop",
        "instances.setMachineType",
        "instances.setScheduling",
        "instances.start",
        "instances.get",
    ]
    assert "provisioning_model: SPOT" in result["diff"]["after"]
    emu.clear_log()
    again = run_module(emu, allow_stopping=True, provisioning_model="spot")
    assert again["changed"] is False and again["api_calls"] == 1 and calls(emu) == ["instances.get"]


def test_only_the_model_changes_when_no_type_is_asked_and_standard_brings_it_back(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-2", status="TERMINATED")
    args = {"machine_type": None, "allow_stopping": False}
    result = run_module(emu, provisioning_model="spot", **args)
    assert result["rc"] == 0, result
    assert vm(emu) == ("TERMINATED", "e2-standard-2") and model(emu) == "SPOT" and not result["stopped"]
    assert "machineTypes.get" not in calls(emu) and "instances.start" not in calls(emu)
    back = run_module(emu, provisioning_model="standard", **args)
    assert back["rc"] == 0 and model(emu) == "STANDARD"
    assert emu.instance(PROJECT, ZONE, VM)["scheduling"]["automaticRestart"] is True


def test_spot_check_mode_only_reads(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4")
    result = run_module(emu, check=True, provisioning_model="spot", allow_stopping=True)
    assert result["rc"] == 0 and result["changed"] and result["provisioning_model"] == "SPOT"
    assert posts(emu) == [] and calls(emu) == ["instances.get"] and model(emu) == "STANDARD"


def test_a_running_vm_is_not_stopped_for_spot_unless_allowed(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4")
    result = run_module(emu, provisioning_model="spot")
    assert result["rc"] == 1 and "changing it from STANDARD to SPOT means stopping it" in result["msg"]
    assert posts(emu) == [] and model(emu) == "STANDARD"


def test_a_failed_set_scheduling_puts_the_old_type_back_and_starts_the_vm(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.fault("operation_error", method="instances.setScheduling")
    result = run_module(emu, allow_stopping=True, provisioning_model="spot")
    assert result["rc"] == 1 and result["rolled_back"] is True, result
    assert result["msg"].startswith(
        "changing instance vm1 from e2-micro to e2-standard-4 and from STANDARD to SPOT failed while setting the "
        "provisioning model"
    )
    assert "Rolled back (restored machine type e2-micro, started the VM again)" in result["msg"]
    assert vm(emu) == ("RUNNING", "e2-micro") and model(emu) == "STANDARD"


def test_a_failed_start_on_spot_puts_the_standard_scheduling_back(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4")
    emu.fault("operation_error", method="instances.start")
    result = run_module(emu, allow_stopping=True, provisioning_model="spot")
    assert result["rc"] == 1 and result["rolled_back"] is True, result
    assert "restored provisioning model STANDARD, started the VM again" in result["msg"]
    assert vm(emu) == ("RUNNING", "e2-standard-4") and model(emu) == "STANDARD"


def test_neither_a_type_nor_a_model_is_refused(emu):
    emu.add_instance(PROJECT, ZONE, VM)
    args = module_args(emu)
    del args["machine_type"]
    result = run(gce_machine_type, args)
    assert result["rc"] == 1 and "one of the following is required: machine_type, provisioning_model" in result["msg"]
    none = run_module(emu, machine_type=None)  # given, but empty
    assert none["rc"] == 1 and "nothing to set" in none["msg"]
    assert calls(emu) == []


# ----------------------------------------------------------------- refused before any change
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"machine_type": "e2-nope-4"}, "machine type e2-nope-4 does not exist in zone us-central1-a"),
        ({"zone": "mars-north1-a"}, "HTTP 404 notFound"),
        ({"allow_stopping": False}, "set allow_stopping: true"),
        ({"machine_type": "E2 Standard"}, "machine_type 'E2 Standard' is not a machine type name"),
        ({"instance": "vm-gone"}, "check project, zone and instance"),
    ],
    ids=["unknown-type", "unknown-zone", "stopping-not-allowed", "bad-name", "unknown-instance"],
)
def test_refused_before_anything_changes(emu, extra, expected):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    result = run_module(emu, **{"allow_stopping": True, **extra})
    assert result["rc"] == 1 and expected in result["msg"], result
    assert "nothing was changed" in result["msg"] or "machine type name" in result["msg"]
    assert posts(emu) == [] and vm(emu) == ("RUNNING", "e2-micro")


# ----------------------------------------------------------------- transient errors
@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "times": 2},
        {"status": 503, "times": 2},
        {"status": 403, "times": 2},  # reason rateLimitExceeded
        {"status": 503, "times": 1, "method": "instances.stop"},
        {"status": 429, "times": 1, "method": "zoneOperations.wait"},
    ],
    ids=["429", "503", "403-rate-limit", "503-on-stop", "429-on-wait"],
)
def test_transient_errors_are_retried(emu, fault):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.fault("http", **fault)
    result = run_module(emu, allow_stopping=True)
    assert result["rc"] == 0, result
    assert vm(emu) == ("RUNNING", "e2-standard-4")
    statuses = [entry["status"] for entry in emu.log()]
    assert statuses.count(fault["status"]) == fault["times"]
    assert result["api_calls"] == len(statuses)


@pytest.mark.parametrize("method", ["instances.stop", "instances.setMachineType", "instances.start"])
def test_a_lost_answer_is_retried_and_the_step_runs_once(emu, method):
    """The emulator carries the call out and loses its answer; the retry carries the same requestId and gets
    the first operation back (without it, a second stop of a STOPPING VM is refused: resourceNotReady)."""
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.fault("http", status=503, times=1, method=method, after=True)
    result = run_module(emu, allow_stopping=True)
    assert result["rc"] == 0, result
    assert vm(emu) == ("RUNNING", "e2-standard-4")
    sent = [entry for entry in emu.log() if entry["method"] == f"compute.{method}"]
    assert [entry["status"] for entry in sent] == [503, 200]
    assert sent[0]["query"] == sent[1]["query"] and sent[0]["query"].startswith("requestId=")
    action = method.rsplit(".", 1)[1]
    assert [op["operationType"] for op in emu.state()["operations"]].count(action) == 1
    changes = [entry for entry in emu.log() if entry["verb"] == "POST" and "/wait" not in entry["path"]]
    assert all(entry["query"].startswith("requestId=") for entry in changes)
    assert len({entry["query"] for entry in changes}) == 3  # stop, setMachineType, start: one ID each


def test_retries_stop_and_the_error_is_named(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.fault("http", status=503, times=50)
    result = run_module(emu, allow_stopping=True)
    assert result["rc"] == 1 and "HTTP 503" in result["msg"] and f"after {gce.MAX_ATTEMPTS} attempts" in result["msg"]
    assert posts(emu) == []


def test_access_token_refused(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.configure(token="the-right-token")
    result = run_module(emu, access_token="an-expired-token", allow_stopping=True)
    assert result["rc"] == 1 and "HTTP 401" in result["msg"] and "credentials were refused" in result["msg"]
    assert result["api_calls"] == 1  # a 401 is not retried


def test_missing_service_account_file(emu, tmp_path):
    missing = tmp_path / "nope.json"
    result = run_module(emu, auth_kind="serviceaccount", service_account_file=str(missing), access_token=None)
    assert result["rc"] == 1 and str(missing) in result["msg"] and "does not exist on the controller" in result["msg"]
    assert result["api_calls"] == 0 and emu.log() == []


@pytest.mark.parametrize("auth_kind", ["serviceaccount", "application"])
def test_service_account_key_gets_a_token(emu, tmp_path, monkeypatch, auth_kind):
    """The real google-auth flow: a signed JWT exchanged at the key's token_uri (directly, or as ADC)."""
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    from cryptography.hazmat.primitives import serialization

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file = tmp_path / "sa.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "k1",
                "private_key": pem.decode(),
                "client_email": f"central-mcp@{PROJECT}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{emu.url}/token",
            }
        )
    )
    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))  # what application reads
    key = str(key_file) if auth_kind == "serviceaccount" else None
    result = run_module(emu, auth_kind=auth_kind, service_account_file=key, access_token=None)
    assert result["rc"] == 0, result
    assert calls(emu) == ["oauth2.token", "instances.get"]


def test_no_application_default_credentials(emu, tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    result = run_module(emu, auth_kind="application", access_token=None)
    assert result["rc"] == 1 and "no application default credentials on the controller" in result["msg"]
    assert emu.log() == []


@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 12])
def test_backoff_is_full_jitter_under_an_exponential_ceiling(attempt):
    ceiling = min(gce._BACKOFF_CAP_S, gce._BACKOFF_BASE_S * 2 ** (attempt - 1))
    delays = [gce.backoff_delay(attempt) for _ in range(200)]
    assert all(0 <= d <= ceiling for d in delays) and max(delays) > ceiling / 2


def test_missing_google_auth_says_what_to_install(emu, monkeypatch):
    monkeypatch.setattr(gce_machine_type, "HAS_GOOGLE_AUTH", False)
    result = run_module(emu)
    assert result["rc"] == 1 and "google-auth" in result["msg"] and "on the controller" in result["msg"]


# ----------------------------------------------------------------- failures and rollback
@pytest.mark.parametrize(
    ("kind", "fault", "says"),
    [
        ("operation_error", {}, "QUOTA_EXCEEDED"),  # the operation ends DONE with an error
        ("http", {"status": 400, "reason": "invalid", "message": "Invalid machine type"}, "HTTP 400 invalid"),
    ],
    ids=["operation-error", "request-refused"],
)
def test_failed_set_machine_type_restarts_the_vm_on_its_old_type(emu, kind, fault, says):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.fault(kind, method="instances.setMachineType", **fault)
    result = run_module(emu, allow_stopping=True)
    assert result["rc"] == 1 and result["rolled_back"] is True
    assert vm(emu) == ("RUNNING", "e2-micro")
    assert result["msg"].startswith("changing instance vm1 from e2-micro to e2-standard-4 failed while setting the")
    assert says in result["msg"] and "RUNNING on its old type e2-micro" in result["msg"]
    assert (result["status"], result["machine_type"]) == ("RUNNING", "e2-micro")


def test_zone_exhausted_on_start_restores_the_old_type(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.fault("operation_error", method="instances.start")
    result = run_module(emu, allow_stopping=True)
    assert result["rc"] == 1 and result["rolled_back"] is True
    assert vm(emu) == ("RUNNING", "e2-micro")
    assert "ZONE_RESOURCE_POOL_EXHAUSTED" in result["msg"]
    assert "restored machine type e2-micro" in result["msg"] and "started the VM again" in result["msg"]
    assert calls(emu).count("instances.setMachineType") == 2


def test_timeout_is_clear_and_the_vm_is_not_left_stopped(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.fault("slow", method="instances.setMachineType", seconds=1.5)
    result = run_module(emu, allow_stopping=True, timeout=1)
    assert result["rc"] == 1 and "while setting the machine type: timed out after 1s" in result["msg"], result
    assert vm(emu) == ("RUNNING", "e2-micro") and result["rolled_back"] is True


def test_failed_rollback_says_so_loudly(emu):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    emu.fault("operation_error", method="instances.setMachineType")
    emu.fault("operation_error", method="instances.start", code="ZONE_RESOURCE_POOL_EXHAUSTED")
    result = run_module(emu, allow_stopping=True)
    assert result["rc"] == 1 and result["rolled_back"] is False
    assert "ROLLBACK FAILED" in result["msg"] and "THE VM IS NOW TERMINATED ON E2-MICRO" in result["msg"]
    assert "gcloud compute instances start vm1" in result["msg"]
    assert vm(emu) == ("TERMINATED", "e2-micro")


# ----------------------------------------------------------------- as Ansible runs it
def test_module_runs_as_a_process(emu, tmp_path):
    """python -m <module> ARGS_FILE: the module's own entry point, no patched arguments."""
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args(emu, allow_stopping=True)}))
    env = {**os.environ, "PYTHONPATH": str(REPO / "collections")}
    name = "ansible_collections.central_mcp.agents.plugins.modules.gce_machine_type"
    proc = subprocess.run([sys.executable, "-m", name, str(args)], capture_output=True, text=True, env=env, timeout=60)
    result = json.loads(proc.stdout)
    assert proc.returncode == 0 and result["changed"] is True, proc.stderr
    assert "test-token" not in proc.stdout  # access_token is no_log
    assert vm(emu) == ("RUNNING", "e2-standard-4")


# ----------------------------------------------------------------- the vm_upgrade role
ROLE_PLAY = "- hosts: all\n  gather_facts: false\n  roles: [central_mcp.agents.vm_upgrade]\n"


def role_run(emu, tmp_path, machine_type: str, check: bool = False, groups: dict | None = None, **extra):
    """The role through ansible-runner on two local hosts: vm1 (a GCE VM with six agents) and plain."""
    from tests.integration.playbook_run import run_playbook

    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    gce_vars = {"gce_project": PROJECT, "gce_zone": ZONE, "gce_instance": VM}
    agents = [{"name": f"A{i}", "role": "backend"} for i in range(6)]
    role_vars = {
        "vm_upgrade_machine_type": machine_type,
        "vm_upgrade_auth_kind": "accesstoken",
        "vm_upgrade_access_token": "test-token",
        "vm_upgrade_api_endpoint": emu.api_endpoint,
        "vm_upgrade_timeout_s": 30,
        **extra,
    }
    hosts = {"vm1": {**local, **gce_vars, "central_mcp_agents": agents}, "plain": local}
    inventory = {"all": {"hosts": hosts, "vars": role_vars, "children": groups or {}}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(ROLE_PLAY)
    run = run_playbook(tmp_path / "inventory.yml", str(tmp_path / "play.yml"), check=check, diff=check)
    messages = {(host, task): res.get("msg") for host, task, res in run.results}
    return run, messages


REPORT = ("vm1", "Show what changed (or would), what the VM costs a month and how / stands")
FLEET_COSTS = ("vm1", "Show what each VM, the fleet and one agent cost a month under every pricing plan")
SKIPPED = ("plain", "Say why the machine type and boot disk of this host are left alone")
# What follows a resize (handlers/main.yml), run only after one.
AFTER_RESIZE = ("Wait until the resized VM answers again", "Read the VM's facts again (its CPUs and memory changed)")


def ran(run, host: str) -> list[str]:
    """The tasks that ran or were skipped on host, in order (ok, changed or skipped)."""
    done = {(h, t) for h, t, _ in run.results} | set(run.skipped)
    return [t for h, t in done if h == host]


def test_role_plans_resizes_and_then_changes_nothing(emu, tmp_path):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    run, messages = role_run(emu, tmp_path, "auto", check=True)  # 6 agents: e2-standard-4
    assert run.rc == 0, run.stdout
    assert messages[REPORT] == [
        "vm1: would change: e2-micro → e2-standard-4, $6.11 → $97.83/month, the VM stops for ~2–3 minutes"
    ]
    costs = messages[FLEET_COSTS]
    assert costs[2].split()[:5] == ["vm1", "e2-standard-4", "6", "on-demand", "97.83"]  # what it would be
    assert "plain is not resized: it has no gce_project" in messages[SKIPPED]
    assert all(("vm1", task) in run.skipped for task in AFTER_RESIZE)  # notified, nothing stopped in check mode
    assert posts(emu) == [] and vm(emu) == ("RUNNING", "e2-micro")

    run, messages = role_run(emu, tmp_path, "auto")
    assert run.rc == 0 and run.changed_count("vm1") == 1, run.stdout
    (line,) = messages[REPORT]
    assert line.startswith("vm1: e2-micro → e2-standard-4, $6.11 → $97.83/month, the VM was down for ")
    assert line.endswith(" MB)") and " vCPUs, " in line  # the VM's facts, read again by the handlers
    assert all(task in ran(run, "vm1") for task in AFTER_RESIZE)
    assert vm(emu) == ("RUNNING", "e2-standard-4")

    run, messages = role_run(emu, tmp_path, "auto")
    assert run.rc == 0 and run.changed_count("vm1") == 0, run.stdout
    assert messages[REPORT] == ["vm1: e2-standard-4 (unchanged, $97.83/month)"]
    assert not any(task in ran(run, "vm1") for task in AFTER_RESIZE)  # no handler after a no-op


def test_role_makes_an_agents_vm_spot_and_prices_the_fleet_under_every_plan(emu, tmp_path):
    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4")
    run, messages = role_run(emu, tmp_path, "", check=True, vm_upgrade_provisioning_model="spot")
    assert run.rc == 0, run.stdout
    assert messages[REPORT] == [
        "vm1: would change: e2-standard-4 on-demand → e2-standard-4 Spot, $97.83 → $29.35/month, the VM stops for "
        "~2–3 minutes"
    ]
    assert posts(emu) == [] and emu.instance(PROJECT, ZONE, VM)["scheduling"]["provisioningModel"] == "STANDARD"

    run, messages = role_run(emu, tmp_path, "", vm_upgrade_provisioning_model="spot")
    assert run.rc == 0 and run.changed_count("vm1") == 1, run.stdout
    assert emu.instance(PROJECT, ZONE, VM)["scheduling"]["provisioningModel"] == "SPOT"
    assert vm(emu) == ("RUNNING", "e2-standard-4")
    costs = messages[FLEET_COSTS]
    assert costs[0].startswith("US dollars a month, prices of 2025-") and len(costs) == 6
    assert costs[2].split() == ["vm1", "e2-standard-4", "6", "Spot", "97.83", "29.35", "61.64", "44.03"]
    assert costs[-1] == "now, each VM on its own plan: $29.35 a month, $4.89 per agent"

    emu.clear_log()
    run, _ = role_run(emu, tmp_path, "", vm_upgrade_provisioning_model="spot")
    assert run.rc == 0 and run.changed_count("vm1") == 0 and calls(emu) == ["instances.get"]  # one read


SIZED = ("vm1", "Say how auto sized the machine type (by the rule, or by what the fleet was measured to use)")
# What the coordinator's GET /api/usage answers (coordinator/tests/test_usage.py holds the real one to it).
PER_AGENT = {"windows": 2016, "cpu_p95_percent": 18.0, "rss_p95_bytes": 410 * 2**20, "agents": 8}
USAGE = {"days": 7, "since": 0, "window_s": 300, "agents": {}, "per_agent": PER_AGENT}


def test_role_sizes_auto_by_what_the_fleet_was_measured_to_use(emu, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    served = []

    class Usage(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            served.append((self.path, self.headers["Authorization"]))
            body = json.dumps(USAGE).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Usage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    measured = {"vm_upgrade_sizing": "measured", "vm_upgrade_usage_token": "usage-token",
                "vm_upgrade_usage_url": f"http://127.0.0.1:{server.server_port}/api/usage"}  # fmt: skip
    try:
        run, messages = role_run(emu, tmp_path, "auto", check=True, **measured)
    finally:
        server.shutdown()
    assert run.rc == 0, run.stdout
    # 6 agents at 0.18 vCPU and 410 MB each fit e2-standard-2; the rule (0.5 vCPU, 500 MB) would take e2-standard-4.
    assert messages[REPORT] == [
        "vm1: would change: e2-micro → e2-standard-2, $6.11 → $48.91/month, the VM stops for ~2–3 minutes"
    ]
    assert messages[SIZED].startswith("vm1: e2-standard-2 for 6 agents, sized by measurement: the 95th percentile")
    assert served == [("/api/usage?days=7", "Bearer usage-token")]

    gone = {**measured, "vm_upgrade_usage_url": "http://127.0.0.1:9/api/usage"}  # nothing listens: the rule
    run, messages = role_run(emu, tmp_path, "auto", check=True, **gone)
    assert run.rc == 0, run.stdout
    assert "e2-micro → e2-standard-4" in messages[REPORT][0]
    assert messages[SIZED].startswith("vm1: e2-standard-4 for 6 agents, sized by the rule (0.5 vCPU and 500 MB")
    assert "no measurement from the coordinator" in messages[SIZED]


def test_role_refuses_spot_for_the_coordinators_vm_before_any_call(emu, tmp_path):
    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4")
    coordinator = {"coordinator": {"hosts": {"vm1": {}}}}
    run, messages = role_run(emu, tmp_path, "", groups=coordinator, vm_upgrade_provisioning_model="spot")
    assert run.rc != 0
    (failed,) = [msg for host, _task, msg in run.failed if host == "vm1"]
    assert "vm_upgrade_provisioning_model is spot on vm1, the coordinator's VM" in failed
    assert calls(emu) == []
    run, _ = role_run(
        emu, tmp_path, "", groups=coordinator, vm_upgrade_provisioning_model="spot", vm_upgrade_spot_coordinator=True
    )
    assert run.rc == 0 and emu.instance(PROJECT, ZONE, VM)["scheduling"]["provisioningModel"] == "SPOT"


@pytest.mark.parametrize(
    ("task_keywords", "in_process"),
    [({}, True), ({"environment": {"HTTPS_PROXY": ""}}, False), ({"async": 30, "poll": 2}, False)],
    ids=["on-the-controller", "task-environment", "async"],
)
def test_action_runs_in_process_only_where_the_module_would_run_as_is(emu, tmp_path, task_keywords, in_process):
    """The interpreter the task names does not exist: only a run inside Ansible's own process succeeds.

    A task environment (it may carry GOOGLE_APPLICATION_CREDENTIALS or a proxy) or async needs the
    module as a module, which then fails for want of that interpreter: the fallback is taken.
    """
    from tests.integration.playbook_run import run_playbook

    emu.add_instance(PROJECT, ZONE, VM, "e2-standard-4")
    task = {
        "name": "Ensure the machine type",
        "central_mcp.agents.gce_machine_type": module_args(emu, machine_type="e2-standard-4"),
        "delegate_to": "localhost",
        "vars": {"ansible_python_interpreter": str(tmp_path / "no-such-python")},
        **task_keywords,
    }
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    (tmp_path / "inventory.yml").write_text("all: {hosts: {localhost: {ansible_connection: local}}}\n")
    run = run_playbook(tmp_path / "inventory.yml", str(tmp_path / "play.yml"))
    assert (run.rc == 0) is in_process, run.stdout
    if in_process:
        ((_, _, result),) = run.results
        assert result["machine_type"] == "e2-standard-4" and result["api_calls"] == 1 and not result["changed"]
        assert result["invocation"]["module_args"]["access_token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
        assert calls(emu) == ["instances.get"]
    else:
        assert "no-such-python" in run.stdout and emu.log() == []


def test_role_refuses_an_unknown_type_before_any_call(emu, tmp_path):
    emu.add_instance(PROJECT, ZONE, VM, "e2-micro")
    run, _ = role_run(emu, tmp_path, "E2 Huge")
    assert run.rc != 0 and run.failed[0][:2] == ("vm1", CHECK_TASK)
    assert '"E2 Huge" is not a machine type: use auto, one of e2-micro' in run.failed[0][2]
    assert emu.log() == []
