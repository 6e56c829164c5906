# SPDX-License-Identifier: Apache-2.0
"""The guest's side of a bigger boot disk, on real filesystems in image files on loop devices.

What this machine allows decides what is tested how (see the test bed notes):

- Partition nodes of a partitioned loop device (``losetup -P``) do not appear
  here, and a mounted ext4 cannot be grown online (the kernel answers
  "Permission denied to resize filesystem"). So the partition + ext4 path is
  driven step by step: a GPT image with a small ext4 partition (reached with
  ``--offset``/``--sizelimit``) gets a bigger "disk" (the file grows), and at
  each step the parsers of the module grow_root_fs (module_utils/root_fs.py)
  read what the real tools print (``growpart --dry-run``, ``dumpe2fs -h``);
  growpart grows the partition in the image, resize2fs the filesystem
  (offline here; a GCE VM does it online). test_grow_root_fs.py drives the
  module's whole run on the partition path against a stand-in of the tools.
- XFS grows online here. So the module runs for real on an XFS on a loop
  device mounted in a temporary directory (a disk that the kernel sees grow
  late, check mode with diff, a grow, a no-op), and the whole role runs
  through ansible-runner against such an XFS: the emulator grows the VM's
  boot disk, its ``on_disk_resized`` hook grows the loop device the way
  Compute Engine grows the guest's block device, and the role's one module
  run finds, measures and grows that filesystem, and reports ``df`` before
  and after. Check mode before it changes nothing, and a second run changes
  nothing in one module run of three reads.

Needs root, loop devices, cloud-guest-utils (growpart), fdisk (sfdisk),
e2fsprogs and xfsprogs; each test says which one it missed when it skips.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.central_mcp.agents.plugins.module_utils import root_fs as d
from ansible_collections.central_mcp.agents.plugins.modules import grow_root_fs

REPO = Path(__file__).resolve().parents[2]
# The role's one check of its settings (tasks/preflight.yml), which fails before any API call.
CHECK_TASK = (
    "Check the VM's names, machine type, provisioning model, disk size, prices and credentials before any API call"
)

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tests.gce_emulator import start  # noqa: E402

MIB = 2**20
PROJECT, ZONE, VM = "demo-project", "us-central1-a", "vm1"


def sh(*argv, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=check, timeout=60)


def need(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("loop devices and mounts need root")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (packages cloud-guest-utils, fdisk, e2fsprogs, xfsprogs)")
    probe = sh("losetup", "--find", check=False)
    if probe.returncode != 0:
        pytest.skip(f"no free loop device: {probe.stderr.strip()}")


@pytest.fixture
def loops():
    """Loop devices and mounts made by a test, undone whatever happens."""
    made = {"loops": [], "mounts": []}
    yield made
    for mount in reversed(made["mounts"]):
        sh("umount", mount, check=False)
    for loop in reversed(made["loops"]):
        sh("losetup", "--detach", loop, check=False)


def attach(loops, image: Path, offset: int = 0, sizelimit: int = 0) -> str:
    argv = ["losetup", "--find", "--show"]
    if offset or sizelimit:
        argv += ["--offset", offset, "--sizelimit", sizelimit]
    loop = sh(*argv, image).stdout.strip()
    loops["loops"].append(loop)
    return loop


def mounted_xfs(tmp_path: Path, loops, size: int = 0) -> tuple[Path, Path, str]:
    """A fresh XFS in a sparse image (IMAGE_MIB, or size bytes), on a loop device, mounted in tmp_path."""
    image, mount = tmp_path / "xfs.img", tmp_path / "root"
    mount.mkdir()
    sparse_file(image, size or IMAGE_MIB * MIB)
    loop = attach(loops, image)
    sh("mkfs.xfs", "-q", "-f", loop)
    sh("mount", loop, mount)
    loops["mounts"].append(mount)
    return image, mount, loop


def sparse_file(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


def df_bytes(mount: Path) -> int:
    return int(sh("df", "--block-size=1", "--output=size", mount).stdout.split()[-1])


# ----------------------------------------------------------------- partition + ext4, step by step
def partition(image: Path) -> tuple[int, int]:
    """(start, size) of partition 1, in bytes, as sfdisk reads it back."""
    table = json.loads(sh("sfdisk", "--json", image).stdout)["partitiontable"]
    first = table["partitions"][0]
    sector = table.get("sectorsize", 512)
    return first["start"] * sector, first["size"] * sector


def test_partition_and_ext4_grow_into_a_bigger_disk(tmp_path, loops):
    need("losetup", "growpart", "sfdisk", "mkfs.ext4", "dumpe2fs", "resize2fs", "e2fsck")
    image, mount = tmp_path / "disk.img", tmp_path / "mnt"
    mount.mkdir()
    sparse_file(image, 32 * MIB)  # the VM's disk, as created (sparse)
    table = "label: gpt\nstart=2048, type=linux\n"  # one partition that fills the disk, as on a fresh VM
    subprocess.run(["sfdisk", "--quiet", str(image)], input=table, text=True, check=True, capture_output=True)
    start, size = partition(image)
    fs = attach(loops, image, start, size)
    sh("mkfs.ext4", "-q", "-F", fs)
    sh("mount", fs, mount)
    loops["mounts"].append(mount)
    (mount / "workspace.txt").write_text("an agent's work\n")
    before = df_bytes(mount)
    sh("umount", mount)
    loops["mounts"].remove(mount)

    # A full partition: growpart says NOCHANGE, the filesystem fills it.
    dry = sh("growpart", "--dry-run", image, 1, check=False)
    assert d.growpart_plan(dry.stdout, dry.returncode)["grow"] is False
    room = d.filesystem_room(sh("dumpe2fs", "-h", fs).stdout, "ext4", size)
    assert room["grow"] is False

    # Compute Engine grows the disk: the image file gets bigger.
    os.truncate(image, 128 * MIB)
    dry = sh("growpart", "--dry-run", image, 1, check=False)
    plan = d.growpart_plan(dry.stdout, dry.returncode)
    assert plan["grow"] is True and plan["from_bytes"] == size, (dry.stdout, plan)
    assert partition(image)[1] == size  # a dry run changes nothing
    sh("growpart", image, 1)
    start, grown = partition(image)
    assert grown == plan["to_bytes"] and grown > 120 * MIB
    dry = sh("growpart", "--dry-run", image, 1, check=False)
    assert d.growpart_plan(dry.stdout, dry.returncode)["grow"] is False  # idempotent: NOCHANGE now

    # The filesystem is still its old size, in a bigger partition: room to grow.
    sh("losetup", "--detach", fs)
    loops["loops"].remove(fs)
    fs = attach(loops, image, start, grown)
    room = d.filesystem_room(sh("dumpe2fs", "-h", fs).stdout, "ext4", grown)
    assert room["grow"] is True and room["fs_bytes"] == size
    sh("e2fsck", "-f", "-p", fs)  # offline here; on a GCE VM the role runs resize2fs on the mounted /
    sh("resize2fs", fs)
    room = d.filesystem_room(sh("dumpe2fs", "-h", fs).stdout, "ext4", grown)
    assert room["grow"] is False and room["room_bytes"] < MIB  # what is left is rounding, not room

    sh("mount", fs, mount)
    loops["mounts"].append(mount)
    after = df_bytes(mount)
    assert after > before + 90 * MIB and (mount / "workspace.txt").read_text() == "an agent's work\n"


# ----------------------------------------------------------------- the module, on XFS
def run_module(args: dict, check: bool = False, diff: bool = False) -> dict:
    out = io.StringIO()
    with patch_module_args({**args, "_ansible_check_mode": check, "_ansible_diff": diff}):
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            grow_root_fs.main()
    return json.loads(out.getvalue())


def test_module_grows_xfs_online_once_the_kernel_sees_the_disk(tmp_path, loops):
    need("losetup", "mkfs.xfs", "xfs_growfs", "xfs_info", "findmnt", "lsblk")
    image, mount, loop = mounted_xfs(tmp_path, loops)
    first = xfs_blocks(mount)
    args = {"mount": str(mount)}

    done = run_module(args)
    assert not done["changed"] and done["commands"] == XFS_READS, done
    assert done["msg"] == f"{mount} (xfs on {loop}) already fills its disk (df: {d.human(df_bytes(mount))}, " + (
        f"{d.human(done['df_after']['free_bytes'])} free)"
    )

    # The disk grows, and the kernel sees it a second later.
    os.truncate(image, (IMAGE_MIB + 64) * MIB)
    assert not run_module(args)["changed"]  # not seen yet, and not said to have grown: nothing to wait for
    later = threading.Timer(1.0, sh, ("losetup", "--set-capacity", loop))
    later.start()
    try:
        grew = run_module({**args, "disk_grew": True, "settle_timeout": 10})
    finally:
        later.join()
    assert grew["changed"] and grew["commands"] == [*XFS_READS, "lsblk", "xfs_growfs"], grew
    assert xfs_blocks(mount) >= first + 60 * MIB and grew["df_after"]["size_bytes"] == df_bytes(mount)
    assert grew["msg"].startswith(f"{mount} (xfs on {loop}) grew: filesystem (xfs_growfs) (df: ")

    # Check mode with diff: says what would grow, changes nothing; then the real run; then nothing.
    os.truncate(image, (IMAGE_MIB + 128) * MIB)
    sh("losetup", "--set-capacity", loop)
    size = xfs_blocks(mount)
    would = run_module(args, check=True, diff=True)
    assert would["changed"] and would["filesystem_grown"] and xfs_blocks(mount) == size
    assert would["msg"].startswith(f"would grow {mount} (xfs on {loop}): the filesystem (df: ")
    assert would["diff"]["before"] == f"xfs filesystem on {loop}: {d.human(size)}\n"
    assert would["diff"]["after"] == f"xfs filesystem on {loop}: {d.human((IMAGE_MIB + 128) * MIB)}\n"
    grew = run_module(args, diff=True)
    assert grew["changed"] and grew["diff"]["after"] == f"xfs filesystem on {loop}: {d.human(xfs_blocks(mount))}\n"
    assert xfs_blocks(mount) > size + 60 * MIB
    assert not run_module(args, check=True, diff=True)["changed"]


def test_module_fails_on_a_path_that_is_not_a_mount_point(tmp_path):
    need("findmnt")
    out = io.StringIO()
    with patch_module_args({"mount": str(tmp_path)}):
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            grow_root_fs.main()
    result = json.loads(out.getvalue())
    assert result["failed"] and result["msg"].startswith(f"findmnt finds no filesystem mounted at {tmp_path}")
    assert result["changed"] is False and result["commands"] == ["findmnt"]


# ----------------------------------------------------------------- the role, end to end, on XFS
ROLE_PLAY = "- hosts: all\n  gather_facts: false\n  roles: [central_mcp.agents.vm_upgrade]\n"
IMAGE_MIB = 320  # mkfs.xfs wants 300 MB at least; the file is sparse
GIB = 2**30


def role_run(emu, tmp_path, mount: Path, check: bool = False, **role_vars):
    from tests.integration.playbook_run import run_playbook

    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    gce_vars = {"gce_project": PROJECT, "gce_zone": ZONE, "gce_instance": VM}
    agents = [{"name": f"A{i}", "role": "backend"} for i in range(4)]
    shared = {
        "vm_upgrade_disk_size_gb": "auto",
        "vm_upgrade_auth_kind": "accesstoken",
        "vm_upgrade_access_token": "test-token",
        "vm_upgrade_api_endpoint": emu.api_endpoint,
        "vm_upgrade_timeout_s": 30,
        "vm_upgrade_fs_cache_dir": str(tmp_path / "cache"),  # not the user's ~/.cache
        "ansible_become_method": "su",  # root to root, no sudo on the test bed
        **role_vars,
    }
    hosts = {"vm1": {**local, **gce_vars, "central_mcp_agents": agents}, "plain": local}
    (tmp_path / "inventory.yml").write_text(json.dumps({"all": {"hosts": hosts, "vars": shared}}))
    (tmp_path / "play.yml").write_text(ROLE_PLAY)
    extravars = {"_vm_upgrade_root_mount": str(mount)}  # the role's / is the loop-mounted XFS
    run = run_playbook(tmp_path / "inventory.yml", str(tmp_path / "play.yml"), extravars, check=check, diff=check)
    messages = {(host, task): res.get("msg") for host, task, res in run.results}
    return run, messages


# One report: the disk's change and cost, the VM's monthly cost, how / stands (no machine type: not managed).
REPORT = ("vm1", "Show what changed (or would), what the VM costs a month and how / stands")
GROW = ("vm1", "Grow the partition and filesystem of / where there is room (growpart, resize2fs, xfs_growfs)")
GROWPART = ("vm1", "Install growpart (cloud-guest-utils) and grow the partition and filesystem of / with it")
# Skipped when the controller remembers that / filled this very disk: no module run, no task on the VM.
LOOK = (
    "vm1",
    "Look at / on the VM and grow its partition and filesystem into the disk, unless it filled this very disk",
)
XFS_READS = ["findmnt", "lsblk", "xfs_info"]


def module_runs(run) -> list[dict]:
    """vm1's results of grow_root_fs in a role run that ran on the host (not answered from the cache)."""
    return [res for host, task, res in run.results if (host, task) == GROW and not res.get("cached")]


def xfs_blocks(mount: Path) -> int:
    info = sh("xfs_info", mount).stdout
    return d.filesystem_room(info, "xfs", 0)["fs_bytes"]


def resize_by_hand(emu, size_gb: int) -> None:
    """`gcloud compute disks resize`: the disk grows outside the role (its hook grows the loop device)."""
    emu.emulator.world.resize_disk(PROJECT, ZONE, VM, size_gb)
    for _ in range(50):
        if emu.disk(PROJECT, ZONE, VM)["sizeGb"] == str(size_gb):  # reading ticks the emulator's clock
            return
        time.sleep(0.05)
    raise AssertionError(f"the emulator did not grow the disk to {size_gb} GB")


def test_role_grows_disk_and_filesystem_remembers_and_grows_a_disk_grown_by_hand(tmp_path, loops):
    """The loop device is the disk, GiB for GiB (a sparse image): the kernel shows it at the API's size."""
    need("losetup", "mkfs.xfs", "xfs_growfs", "xfs_info", "findmnt", "lsblk")
    image, mount, loop = mounted_xfs(tmp_path, loops, size=10 * GIB)
    start_bytes = xfs_blocks(mount)

    def grow_loop(project, zone, disk, size_gb):
        """What Compute Engine does to the guest's block device when the disk grows."""
        os.truncate(image, size_gb * GIB)
        sh("losetup", "--set-capacity", loop)

    with start(durations={"resize": 0.1}) as emu:
        emu.add_instance(PROJECT, ZONE, VM, "e2-standard-2", disk_size_gb=10)
        emu.emulator.world.on_disk_resized = grow_loop

        run, messages = role_run(emu, tmp_path, mount, check=True)  # 4 agents: auto wants 28 GB
        assert run.rc == 0, run.stdout
        disk, cost, root = messages[REPORT]
        assert disk == "vm1: would change: boot disk 10 GB → 28 GB, +$1.80/month, online, no restart"
        assert cost.startswith("vm1: once changed, boot disk 28 GB pd-balanced $2.80/month")
        assert "would grow into the disk once it has grown (df: " in root, root
        assert [res["commands"] for res in module_runs(run)] == [XFS_READS]
        assert GROWPART in run.skipped
        assert ("plain", "Say why the machine type and boot disk of this host are left alone") in messages
        assert int(emu.disk(PROJECT, ZONE, VM)["sizeGb"]) == 10 and xfs_blocks(mount) == start_bytes
        assert [e for e in emu.log() if e["verb"] != "GET"] == []
        assert not (tmp_path / "cache").exists()  # check mode remembers nothing

        run, messages = role_run(emu, tmp_path, mount)
        assert run.rc == 0 and run.changed_count("vm1") == 2, run.stdout  # the disk, then xfs_growfs
        assert run.changed_count("plain") == 0
        disk, _cost, root = messages[REPORT]
        assert disk == "vm1: boot disk 10 GB → 28 GB, +$1.80/month, online, no restart"
        assert int(emu.disk(PROJECT, ZONE, VM)["sizeGb"]) == 28
        grown = xfs_blocks(mount)
        assert grown >= start_bytes + 17 * GIB, (start_bytes, grown)
        assert f"{mount} (xfs on {loop}) grew: filesystem (xfs_growfs) (df: " in root, root
        (grew,) = module_runs(run)
        assert grew["filesystem_grown"] and not grew["partition_grown"] and grew["commands"][-1] == "xfs_growfs"
        assert grew["nothing_to_grow"] and grew["disk_bytes"] == 28 * GIB  # the kernel shows all of it
        assert len(list((tmp_path / "cache").rglob("*.json"))) == 1  # remembered

        run, messages = role_run(emu, tmp_path, mount)  # converged: / is not looked at
        assert run.rc == 0 and run.changed_count("vm1") == 0, run.stdout
        disk, _cost, root = messages[REPORT]
        assert disk == "vm1: boot disk 28 GB pd-balanced (unchanged, $2.80/month)"
        assert root.startswith(f"vm1: {mount} (xfs on {loop}) fills its disk (found so on "), root
        assert root.endswith("; its 28 GB disk has not changed since)") and xfs_blocks(mount) == grown
        assert module_runs(run) == [] and LOOK in run.skipped  # no task at all on the VM

        run, messages = role_run(emu, tmp_path, mount, check=True)  # nor in check mode
        assert run.rc == 0 and run.changed_count("vm1") == 0 and module_runs(run) == [], run.stdout

        # Someone grows the disk by hand (gcloud compute disks resize): auto keeps the larger disk, and
        # the filesystem, no longer known to fill it, is looked at and grown.
        resize_by_hand(emu, 40)
        run, messages = role_run(emu, tmp_path, mount)
        assert run.rc == 0 and run.changed_count("vm1") == 1, run.stdout  # xfs_growfs
        disk, _cost, root = messages[REPORT]
        assert (
            disk == "vm1: boot disk 40 GB pd-balanced (unchanged, $4.00/month; 28 GB asked, and a disk never shrinks)"
        )
        assert f"{mount} (xfs on {loop}) grew: filesystem (xfs_growfs)" in root, root
        assert xfs_blocks(mount) >= grown + 11 * GIB
        run, messages = role_run(emu, tmp_path, mount)
        assert run.rc == 0 and run.changed_count("vm1") == 0 and module_runs(run) == [], run.stdout


def test_role_looks_again_while_the_kernel_shows_the_disk_smaller(tmp_path, loops):
    """The API says 28 GB but the guest still sees 10 (no rescan yet): nothing is remembered."""
    need("losetup", "mkfs.xfs", "xfs_growfs", "xfs_info", "findmnt", "lsblk")
    _image, mount, _loop = mounted_xfs(tmp_path, loops, size=10 * GIB)
    with start() as emu:
        emu.add_instance(PROJECT, ZONE, VM, "e2-standard-2", disk_size_gb=28)  # no hook: the loop stays 10 GiB
        for _ in range(2):
            run, messages = role_run(emu, tmp_path, mount)
            assert run.rc == 0 and run.changed_count("vm1") == 0, run.stdout
            (looked,) = module_runs(run)
            assert looked["nothing_to_grow"] and looked["disk_bytes"] == 10 * GIB
            assert "already fills its disk" in messages[REPORT][-1]
        assert not (tmp_path / "cache").exists()


def test_role_check_mode_reads_this_machines_root(tmp_path):
    """The role's probes on the real / of this machine (ext4 on a whole disk on the test bed), in check mode.

    Check mode only reads, so this is safe on any machine; it runs the ext4
    path (findmnt, lsblk, dumpe2fs -h on a mounted filesystem) for real.
    """
    need("findmnt", "lsblk", "dumpe2fs")
    with start() as emu:
        emu.add_instance(PROJECT, ZONE, VM, disk_size_gb=28)  # what auto wants for 4 agents: no grow
        run, messages = role_run(emu, tmp_path, Path("/"), check=True)
        assert run.rc == 0 and run.changed_count("vm1") == 0, run.stdout
        disk, _cost, root = messages[REPORT]
        assert disk == "vm1: boot disk 28 GB pd-balanced (unchanged, $2.80/month)"
        assert root.startswith("vm1: / ") and "(df: " in root, root
        (looked,) = module_runs(run)
        assert looked["changed"] is False and looked["commands"][:2] == ["findmnt", "lsblk"], looked
        assert [e for e in emu.log() if e["verb"] != "GET"] == []


def test_role_refuses_a_bad_size_and_a_shrink_before_any_change(tmp_path):
    """Two VMs: one asks for "50GB" (refused by the role's preflight), one for less than its disk has."""
    from tests.integration.playbook_run import run_playbook

    with start() as emu:
        emu.add_instance(PROJECT, ZONE, "vm1", disk_size_gb=10)
        emu.add_instance(PROJECT, ZONE, "vm2", disk_size_gb=60)
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        hosts = {
            "vm1": {**local, "gce_instance": "vm1", "vm_upgrade_disk_size_gb": "50GB"},
            "vm2": {**local, "gce_instance": "vm2", "vm_upgrade_disk_size_gb": 30},
        }
        shared = {
            "gce_project": PROJECT,
            "gce_zone": ZONE,
            "vm_upgrade_auth_kind": "accesstoken",
            "vm_upgrade_access_token": "test-token",
            "vm_upgrade_api_endpoint": emu.api_endpoint,
        }
        (tmp_path / "inventory.yml").write_text(json.dumps({"all": {"hosts": hosts, "vars": shared}}))
        (tmp_path / "play.yml").write_text(ROLE_PLAY)
        run = run_playbook(tmp_path / "inventory.yml", str(tmp_path / "play.yml"))
        failed = {host: (task, msg) for host, task, msg in run.failed}
        assert failed["vm1"][0] == CHECK_TASK
        assert 'vm_upgrade_disk_size_gb "50GB" is not a disk size: use auto, or a whole number' in failed["vm1"][1]
        assert failed["vm2"][0].startswith("Grow the VM's boot disk through the Compute API")
        assert "disk vm2 is 60 GB and size_gb is 30" in failed["vm2"][1] and "never shrink" in failed["vm2"][1]
        assert [e for e in emu.log() if e["verb"] != "GET"] == []
        assert [emu.disk(PROJECT, ZONE, vm)["sizeGb"] for vm in ("vm1", "vm2")] == ["10", "60"]
