# SPDX-License-Identifier: Apache-2.0
"""Verify two VMs: VM 1 (coordinator, agents A-D) and VM 2 (agents E-H) on one podman network, and a pod
(agent P: no systemd, its volume at /workspace) that reaches VM 1 through its own SSH tunnel.

Tests run in file order; the last one adds agent I to VM 2 in a copy of the
inventory and re-runs the site, checking that nothing else restarts.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import testinfra
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "integration"))
from playbook_run import run_playbook  # noqa: E402

HERE = Path(__file__).parent
# The inventory directory: Molecule keeps host_vars and group_vars beside the inventory file.
INVENTORY = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
VM1, VM2, POD = "central-mcp-mh-vm1", "central-mcp-mh-vm2", "central-mcp-mh-pod"
FLEET = {VM1: ["A", "B", "C", "D"], VM2: ["E", "F", "G", "H"]}
EVERYWHERE = {**FLEET, POD: ["P"]}
POD_IMAGE, POD_VOLUME = "localhost/central-mcp-pod:bookworm", "central-mcp-mh-pod-workspace"
SESSION = "central-mcp-agents"
CLI = "/opt/central-mcp/current/bin/central-mcp --token-file /etc/central-mcp/api.token"
HOSTS = {name: testinfra.get_host(f"podman://{name}") for name in EVERYWHERE}
# Where the launcher installs Claude Code (its kind file), and the version it pins.
CLAUDE = yaml.safe_load((HERE.parents[2] / "roles/launcher/vars/kinds/claude.yml").read_text())["claude"]["install"]
NOTICE_S = 15  # Compute Engine gives 30 s; prepare.yml's emulator stops the container 15 s after the notice


def agents_of_coordinator() -> dict[str, dict]:
    out = HOSTS[VM1].check_output(f"{CLI} --json agents")
    return {a["name"]: a for a in json.loads(out)["agents"]}


def wait_registered(names: list[str], timeout: float = 240) -> dict[str, dict]:
    """The real Claude Code CLIs register when they start; two VMs on two shared cores take a while."""
    deadline = time.monotonic() + timeout
    while True:
        agents = agents_of_coordinator()
        if all(agents.get(n, {}).get("registered") for n in names) or time.monotonic() > deadline:
            return agents
        time.sleep(3)


def windows(vm: str) -> dict[str, tuple[str, int]]:
    """window name -> (tmux window id, pane pid): both change when an agent's window is recreated."""
    out = HOSTS[vm].check_output(
        f"runuser -u agent -- tmux list-windows -t ={SESSION} -F '#{{window_name}} #{{window_id}} #{{pane_pid}}'"
    )
    return {name: (wid, int(pid)) for name, wid, pid in (line.split() for line in out.splitlines())}


def main_pid(vm: str, unit: str) -> int:
    return int(HOSTS[vm].check_output(f"systemctl show -p MainPID --value {unit}"))


def probe(vm: str, script: str, *args: str, python: str = "python3") -> dict:
    """Run one of this directory's probe scripts inside a VM container; it prints one JSON document."""
    run = subprocess.run(
        ["podman", "exec", "-i", vm, python, "-", *args],
        input=(HERE / script).read_text(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_all_nine_agents_registered_each_with_its_own_token():
    agents = wait_registered([n for names in EVERYWHERE.values() for n in names])
    assert {name: (a["host"], a["registered"]) for name, a in agents.items()} == {
        name: (vm, True) for vm, names in EVERYWHERE.items() for name in names
    }
    # Each agent's CLI holds its own bearer token (the coordinator knows it by its sha256 only).
    tokens = []
    for vm, names in EVERYWHERE.items():
        for name in names:
            config = HOSTS[vm].check_output(f"cat /home/agent/.central-mcp/{name}/.claude.json")
            header = json.loads(config)["mcpServers"]["central-mcp"]["headers"]["Authorization"]
            tokens.append(header)
    assert len(set(tokens)) == 9


def test_vm2_agents_reach_vm1_over_the_network_with_tokens_only():
    url = HOSTS[VM2].check_output("grep -h ^CENTRAL_MCP_URL= /etc/central-mcp/agents/E.env")
    assert url == f"CENTRAL_MCP_URL=https://{VM1}:3000/mcp"
    listening = HOSTS[VM1].check_output("ss -Htln")
    address = HOSTS[VM1].check_output(f"getent hosts {VM1}").split()[0]
    assert f"{address}:3000" in listening  # the MCP port, with TLS, for the agents on VM 2
    assert "127.0.0.1:3000" in listening  # plain HTTP for VM 1's own agents and checks
    assert "127.0.0.1:8000" in listening and "0.0.0.0:8000" not in listening  # the dashboard stays local
    # From VM 2 without a token: /mcp and /api refuse; /health alone answers (probes). Only over TLS,
    # and only for a client that trusts the fleet CA.
    seen = probe(VM2, "http_probe.py", f"{VM1}:3000", "/etc/central-mcp/fleet-ca.pem")
    assert (seen["mcp"], seen["api"]) == (401, 401) and seen["health"] in (200, 503), seen
    assert seen["without_the_ca"] == "SSLCertVerificationError", seen
    assert seen["plain_http"] not in (200, 401, 503), seen


def test_vm2_relay_refuses_clients_without_its_token():
    tries = probe(VM1, "relay_probe.py", VM2, "8765", "/etc/central-mcp/fleet-ca.pem")
    assert set(tries) == {"no_answer", "wrong_token", "without_the_ca", "plain"}, tries
    assert tries.pop("without_the_ca") == "SSLCertVerificationError"  # it speaks TLS with the fleet's certificate
    assert "challenge" not in tries.pop("plain")  # plain TCP gets no challenge (a TLS alert, or nothing)
    for name, lines in tries.items():
        assert lines[0]["type"] == "challenge", name
        assert [line["type"] for line in lines[1:]] == ["error"], (name, lines)  # then closed: no pane listed
        assert "unauthorized" in lines[1]["message"]
    log = HOSTS[VM2].check_output("journalctl -u central-mcp-relay.service --no-pager -n 50")
    assert "no valid answer to the relay's challenge" in log


def test_vm2_terminals_through_vm1_dashboard():
    python = "/opt/central-mcp/current/bin/python"
    deadline = time.monotonic() + 60
    while True:
        seen = probe(VM1, "dashboard_probe.py", "E", python=python)
        agents = {a["name"]: a for a in seen["state"]["agents"]}
        if all(agents[n]["terminal"] for names in EVERYWHERE.values() for n in names) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {n: (a["host"], a["terminal"]) for n, a in agents.items()} == {
        name: (vm, True) for vm, names in EVERYWHERE.items() for name in names
    }  # the pod's through its tunnel: its relay is on VM 1's loopback
    assert seen["state"]["relay"]["error"] is None
    # Each VM against its own agents (VM 2's and the pod's vCPUs and memory from their relays) and its own price,
    # the pod's by the hour it ran (its agent seen by its relay, in ended 5-minute windows), then the fleet's.
    fleet = seen["state"]["fleet"]
    vms = {vm["name"]: vm for vm in fleet["vms"]}
    assert {name: (vm["agents"], vm["coordinator"]) for name, vm in vms.items()} == {
        VM1: (4, True), VM2: (4, False), POD: (1, False)
    }  # fmt: skip
    assert all(vm["cpus"] and vm["fits"] is not None and not vm["over"] for vm in vms.values()), vms
    assert (vms[VM1]["provisioning_model"], vms[VM2]["provisioning_model"]) == ("standard", "spot")
    assert vms[VM2]["monthly_cost"] == vms[VM2]["plans"]["spot"] < vms[VM2]["plans"]["on_demand"]
    pod = vms[POD]
    # (from its hours before they are rounded for display: hours_7d is shown to 0.01 h)
    assert pod["hourly_cost"] == 0.44 and pod["monthly_cost"] == pytest.approx(
        0.44 * pod["hours_7d"] * 730 / 168, abs=0.02
    ), pod
    assert fleet["monthly_cost"] == round(sum(vm["monthly_cost"] for vm in vms.values()), 2)
    assert fleet["own_agents"] == 4 and not [p for p in fleet["problems"] if "agents on" in p], fleet["problems"]
    assert f"tcp:{VM2}:8765" in seen["state"]["relay"]["address"]
    hello, snapshot = seen["terminal"][:2]
    assert hello == {"type": "hello", "agent": "E", "input": False}
    pane = HOSTS[VM2].check_output(f"runuser -u agent -- tmux display-message -p -t ={SESSION}:E '#{{pane_id}}'")
    assert snapshot["type"] == "snapshot" and snapshot["pane"] == pane
    assert "agent E" in snapshot["data"]  # E's own window, which exists on VM 2 only


def test_status_playbook_asks_the_coordinator_from_both_vms_and_the_pod():
    run = run_playbook(INVENTORY, playbook="playbooks/status.yml")
    assert run.rc == 0, run.failed
    status = {host: res for host, _, res in run.results if "summary" in res}
    for vm, names in EVERYWHERE.items():
        assert {a["name"]: (a["alive"], a["registered"]) for a in status[vm]["agents"]} == dict.fromkeys(
            names, (True, True)
        ), vm  # VM 2 asks VM 1's coordinator over the network


def test_check_mode_on_both_vms_and_the_pod_reports_nothing():
    run = run_playbook(INVENTORY, check=True, diff=True)
    assert run.rc == 0, run.failed
    assert run.changed == [], run.changed


def emulator(verb: str, path: str, body: dict | None = None) -> dict:
    """The Compute API emulator's admin API (prepare.yml started it on the VMs' network)."""
    address = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "gce" / "address").read_text().strip()
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{address}/_emulator/{path}", data=data, method=verb)
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (the local emulator)
        return json.load(answer)


def vm2_instance() -> dict:
    return next(i for i in emulator("GET", "state")["instances"] if i["name"] == VM2)


def task_state(task_id: int) -> dict:
    return json.loads(HOSTS[VM1].check_output(f"{CLI} --json task show {task_id}"))


def until(check, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_vm2_is_a_spot_vm_and_a_preemption_loses_no_task(capsys: pytest.CaptureFixture[str]):
    """VM 2 became a Spot VM in the converge (vm_upgrade_provisioning_model: spot; the emulator stopped its
    container for setScheduling and started it again). Compute Engine preempts it: its shutdown hands E's
    task back within seconds, the coordinator's watcher starts it again, its agents come back and finish."""
    scheduling = vm2_instance()["scheduling"]
    assert (scheduling["provisioningModel"], scheduling["instanceTerminationAction"]) == ("SPOT", "STOP")
    created = HOSTS[VM1].check_output(f"{CLI} --json task add 'Work on the Spot VM' --role review")
    task = json.loads(created)["id"]
    claimed = probe(VM2, "agent_act.py", "E", "next")
    assert claimed["status"] == 200 and claimed["answer"]["task"]["id"] == task, claimed

    body = {"project": "molecule-project", "zone": "us-central1-a", "name": VM2, "noticeS": NOTICE_S}
    emulator("POST", "preempt", body)
    noticed = time.monotonic()
    until(lambda: task_state(task)["state"] == "AVAILABLE", 60, "E's task back on the board")
    handed_back_s = time.monotonic() - noticed
    back = task_state(task)
    assert back["attempts"] == 0 and "was preempted by Compute Engine (Spot)" in back["events"][-1]["text"], back
    assert handed_back_s < NOTICE_S, handed_back_s  # within the notice, not after the offline time-out

    until(lambda: vm2_instance()["status"] == "RUNNING", 180, "VM 2 started again by the watcher")
    running_s = time.monotonic() - noticed
    agents = until(
        lambda: (a := agents_of_coordinator()) and all(a[n]["state"] != "offline" for n in FLEET[VM2]) and a,
        240, "VM 2's agents back", every=3,
    )  # fmt: skip
    registered_s = time.monotonic() - noticed
    assert all(agents[n]["registered"] for n in FLEET[VM2])
    with capsys.disabled():  # the figures go to make test's output, passed or not
        print(f"\nSpot VM 2 preempted (notice {NOTICE_S} s): -> E's task AVAILABLE {handed_back_s:.1f} s; "
              f"-> VM 2 running again {running_s:.1f} s; -> its 4 agents back {registered_s:.1f} s")  # fmt: skip

    again = probe(VM2, "agent_act.py", "E", "next")
    assert again["status"] == 200 and again["answer"]["task"]["id"] == task, again
    done = probe(VM2, "agent_act.py", "E", "complete", str(task))
    assert not done["answer"].get("isError"), done
    assert task_state(task)["state"] == "COMPLETE"
    open_tasks = json.loads(HOSTS[VM1].check_output(f"{CLI} --json tasks"))["tasks"]
    assert not [t for t in open_tasks if t["state"] in ("CLAIMED", "IN_PROGRESS")], open_tasks  # tasks lost: 0
    notes = HOSTS[VM1].check_output("journalctl -u central-mcp.service --no-pager -n 400")
    assert f"spot watcher: {VM2} was preempted; start requested" in notes


def cli_runs() -> bool:
    """P's Claude Code runs on the pod, as P's own user."""
    return HOSTS[POD].run("ps -o user= -C claude").stdout.split() == ["agent-p"]


def boot_status() -> dict:
    return json.loads(HOSTS[POD].check_output("/workspace/.central-mcp/boot status"))


def test_pod_runs_its_agent_without_systemd_and_through_its_tunnel():
    """No systemd on the pod: the boot starter runs the session, the relay and the tunnel to VM 1, whose key may
    forward the coordinator's port and listen on its own port, nothing else."""
    assert HOSTS[POD].check_output("cat /proc/1/comm") == "tini"
    status = boot_status()
    assert status["supervisor"] and {n for n, s in status["services"].items() if s["alive"]} == {
        "tunnel", "session", "relay"
    }, status  # fmt: skip
    env = HOSTS[POD].check_output("grep -h ^CENTRAL_MCP_URL= /etc/central-mcp/agents/P.env")
    assert env == "CENTRAL_MCP_URL=http://127.0.0.1:3000/mcp"  # its end of the tunnel
    # P's CLI runs as its own user, started through sudo and agent-unit without systemd, and holds its own MCP
    # session with the coordinator (a second one after agent-run's heartbeat: no prompt held it back, such as
    # Claude Code's trust question for a workspace it knows under another path).
    cli = HOSTS[POD].check_output("ps -o user= -C claude")
    assert cli.split() == ["agent-p"], cli
    # Its CLI is the image's (installed from the same lock when the image was built), used in place: the
    # volume holds a link to it, not a copy the controller sent.
    installed = HOSTS[POD].check_output(f"readlink {CLAUDE['dir']}/{CLAUDE['version']}")
    assert installed.startswith(f"/usr/local/lib/central-mcp/npm/claude-{CLAUDE['version']}-linux-x64-"), installed
    assert HOSTS[POD].check_output("readlink -f /usr/local/bin/claude").startswith(installed + "/")
    until(lambda: agents_of_coordinator()["P"]["session_count"] >= 2, 60, "P's CLI connected", every=2)
    # The tunnel's key opens no shell on VM 1, and may not forward elsewhere.
    keys = HOSTS[VM1].check_output("cat /var/lib/central-mcp-tunnel/.ssh/authorized_keys")
    assert 'restrict,port-forwarding,command="/usr/sbin/nologin",permitopen="127.0.0.1:3000"' in keys
    shell = HOSTS[POD].run(
        "runuser -u agent -- ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes"
        " -o UserKnownHostsFile=/etc/central-mcp/tunnel/known_hosts -i /run/central-mcp/boot/credentials/tunnel/"
        f"tunnel_key central-mcp-tunnel@{VM1} id"
    )
    assert "uid=" not in shell.stdout, shell.stdout  # nologin: no command runs


def test_pod_stop_hands_its_task_back_and_its_agent_comes_back_without_ansible(capsys: pytest.CaptureFixture[str]):
    """RunPod stops a pod: SIGTERM (its tasks go back at once), then its container disk is gone and only
    /workspace is kept; at the next start the boot starter brings the agent back, with no run of Ansible."""
    HOSTS[POD].check_output("echo kept > /home/agent/workspaces/P/kept.txt; echo gone > /root/gone.txt")
    created = HOSTS[VM1].check_output(f"{CLI} --json task add 'Train on the GPU' --role gpu")
    task = json.loads(created)["id"]
    claimed = probe(POD, "agent_act.py", "P", "next")
    assert claimed["status"] == 200 and claimed["answer"]["task"]["id"] == task, claimed
    sessions = agents_of_coordinator()["P"]["session_count"]

    stopped = time.monotonic()
    subprocess.run(["podman", "stop", "--time", "20", POD], check=True, capture_output=True, timeout=60)
    until(lambda: task_state(task)["state"] == "AVAILABLE", 10, "P's task back on the board")
    back_s = time.monotonic() - stopped
    assert task_state(task)["attempts"] == 0
    subprocess.run(["podman", "rm", "--force", POD], check=True, capture_output=True, timeout=60)
    subprocess.run(
        ["podman", "run", "--detach", "--name", POD, "--hostname", POD, "--network", "central-mcp-mh-net",
         "--volume", f"{POD_VOLUME}:/workspace", POD_IMAGE],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    agents = until(  # P's CLI runs again, as its own user, and opened its MCP session
        lambda: (a := agents_of_coordinator()) and a["P"]["session_count"] > sessions and cli_runs() and a, 180,
        "P back", every=1,
    )  # fmt: skip
    assert HOSTS[POD].check_output("cat /home/agent/workspaces/P/kept.txt") == "kept"
    assert not HOSTS[POD].file("/root/gone.txt").exists  # a new container disk
    assert agents["P"]["host"] == POD
    with capsys.disabled():  # the figures go to make test's output
        print(f"\npod stopped: -> P's task AVAILABLE {back_s:.1f} s; -> a new container on the same volume, P "
              f"back without Ansible {time.monotonic() - stopped:.1f} s after the stop")  # fmt: skip
    done = probe(POD, "agent_act.py", "P", "next")
    assert done["status"] == 200 and done["answer"]["task"]["id"] == task, done
    assert not probe(POD, "agent_act.py", "P", "complete", str(task))["answer"].get("isError")

    # tmux gone (a crash): the starter starts the session again, with P in it, and P's CLI runs again (the
    # relay, which re-attaches meanwhile, must not start the new tmux server: its windows could not use sudo).
    HOSTS[POD].check_output("runuser -u agent -- tmux kill-server")
    until(lambda: "P" in (HOSTS[POD].run(
        f"runuser -u agent -- tmux list-windows -t ={SESSION} -F '#{{window_name}}'").stdout.split()), 30,
        "P's window back")  # fmt: skip
    until(cli_runs, 60, "P's CLI running again", every=1)


def test_adding_agent_i_to_vm2_starts_only_i(tmp_path_factory: pytest.TempPathFactory):
    before = {vm: windows(vm) for vm in EVERYWHERE}
    pod_services = {name: s["pid"] for name, s in boot_status()["services"].items()}
    pids = {
        "coordinator": main_pid(VM1, "central-mcp.service"),
        "relay1": main_pid(VM1, "central-mcp-relay.service"),
        "relay2": main_pid(VM2, "central-mcp-relay.service"),
    }
    inventory = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / "inventory"
    shutil.copytree(INVENTORY, inventory)
    host_vars = inventory / "host_vars" / VM2
    data = yaml.safe_load(host_vars.read_text())
    data["central_mcp_agents"].append({"name": "I", "role": "review"})
    host_vars.write_text(yaml.safe_dump(data))

    run = run_playbook(inventory)
    assert run.rc == 0, run.failed
    after = {vm: windows(vm) for vm in EVERYWHERE}
    assert after[POD] == before[POD]  # the pod's agent, and the starter's services, untouched by the re-run
    assert {name: s["pid"] for name, s in boot_status()["services"].items()} == pod_services
    # Every agent keeps its window and process on both VMs. The Control window
    # (a status view, not an agent) is redrawn on VM 2: its command names the
    # agents it expects, and that list just grew by I.
    assert after[VM1] == before[VM1]  # VM 1: same windows, same ids, same processes
    assert {k: v for k, v in after[VM2].items() if k not in ("I", "Control")} == {
        k: v for k, v in before[VM2].items() if k != "Control"
    }
    assert list(after[VM2]) == ["Control", *FLEET[VM2], "I", "Logs"]
    assert pids == {
        "coordinator": main_pid(VM1, "central-mcp.service"),
        "relay1": main_pid(VM1, "central-mcp-relay.service"),
        "relay2": main_pid(VM2, "central-mcp-relay.service"),
    }
    agents = wait_registered(["I"])
    assert agents["I"]["host"] == VM2 and agents["I"]["registered"]
