# SPDX-License-Identifier: Apache-2.0
"""site.yml as AWX / Automation Platform runs it: from an ansible-runner private data dir.

AWX checks the project out into project/, writes the inventory into inventory/,
extra vars into env/extravars and answers the Vault password prompt from
env/passwords. The converged VM must come out of such a run unchanged.
Runs last (file order), on the fleet the other tests left converged.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ansible_runner
import testinfra.utils.ansible_runner

REPO = Path(__file__).resolve().parents[3]
INVENTORY = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
testinfra_hosts = [
    f"podman://{name}" for name in testinfra.utils.ansible_runner.AnsibleRunner(str(INVENTORY)).get_hosts("agents")
]
VAULT_PASSWORD = "molecule-vault-password"
NOT_PART_OF_A_CHECKOUT = shutil.ignore_patterns(
    ".git", ".venv", ".cache", ".ansible", "__pycache__", "*.egg-info", ".pytest_cache"
)


def awx_private_data_dir(root: Path) -> Path:
    shutil.copytree(REPO, root / "project", symlinks=True, ignore=NOT_PART_OF_A_CHECKOUT)
    shutil.copytree(INVENTORY, root / "inventory", symlinks=True)
    vault_dir = root / "inventory" / "group_vars" / "all"
    vault_dir.mkdir(parents=True, exist_ok=True)
    password_file = root / "vault-password"
    password_file.write_text(VAULT_PASSWORD)
    vault = vault_dir / "vault.yml"
    vault.write_text("central_mcp_vault_check: opened\n")
    ansible_vault = str(Path(sys.executable).with_name("ansible-vault"))
    subprocess.run(
        [ansible_vault, "encrypt", "--vault-password-file", str(password_file), str(vault)],
        check=True, capture_output=True,
    )  # fmt: skip
    password_file.unlink()  # from here on, only env/passwords knows it, as in AWX
    (root / "env").mkdir()
    (root / "env" / "extravars").write_text(json.dumps({"central_mcp_awx_job": True}))
    (root / "env" / "passwords").write_text(json.dumps({r"^Vault password:\s*?$": VAULT_PASSWORD}))
    (root / "env" / "envvars").write_text(json.dumps({"CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", "")}))
    return root


# Tasks of each play that run on every re-run, changes or not (names as they start).
RAN = (
    "Look at the target once (Python",
    "Look at the target once (packages",
    "Reconcile the live session",
    "Read every agent's process",
)
# Each role's files step, left out of a re-run whose look found its stamp intact and its arguments the same.
LEFT_OUT = ("Write the data and configuration directories", "Write the agents' workspaces")


def test_site_runs_unchanged_from_an_awx_project_layout(host, tmp_path):
    root = awx_private_data_dir(tmp_path / "job")
    result = ansible_runner.run(private_data_dir=str(root), playbook="site.yml", cmdline="--ask-vault-pass", quiet=True)
    assert result.rc == 0, result.stdout.read()[-3000:]
    name = host.backend.get_hostname()
    assert result.stats["changed"].get(name, 0) == 0, [
        e["event_data"].get("task") for e in result.events
        if e["event"] == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")
    ]  # fmt: skip
    # Every part of the site looked at the host (its files too, through their stamps), checked its session and
    # read its status.
    ran = {e["event_data"].get("task", "") for e in result.events if e["event"] == "runner_on_ok"}
    for part in RAN:
        assert any(task.startswith(part) for task in ran), (part, sorted(ran))
    skipped = {e["event_data"].get("task", "") for e in result.events if e["event"] == "runner_on_skipped"}
    for part in LEFT_OUT:
        assert any(task.startswith(part) for task in skipped), (part, sorted(skipped))
    assert not (root / "vault-password").exists()
