#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: grow the root partition and filesystem of a VM into a bigger disk, online."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grow_root_fs
short_description: Grow the partition and filesystem of / into a bigger disk, online, only when there is room
version_added: "0.4.0"
description:
  - Finds the device and filesystem type of O(mount) (C(findmnt)) and the
    disk and partition under it (C(lsblk)). When the filesystem is on a
    partition, asks C(growpart --dry-run) whether the partition can grow
    into its disk and, if so, grows it with C(growpart). Then compares the
    filesystem's own size (C(dumpe2fs -h), C(xfs_info)) with its partition
    or disk and, when it is smaller by at least O(min_room_mb), grows it
    online with C(resize2fs) (ext2/3/4) or C(xfs_growfs) (XFS).
  - Nothing grows when there is no room, so a second run changes nothing; a
    run that finds nothing to grow runs three or four commands that only read.
  - A filesystem that is not ext2/3/4 or XFS, an overlay (a container) and a
    filesystem on LVM, RAID or an encrypted device are left alone; the
    message says why (grow what is under such a filesystem by hand).
  - C(growpart) comes from the package C(cloud-guest-utils). When it is
    missing, the partition's room is estimated from sysfs; if the partition
    has room, the module changes nothing and returns RV(growpart_needed=true),
    so that the play installs the package and runs the module again. A
    partition that fills its disk never needs the package.
  - RV(msg) says in one line what grew (or would grow, or why nothing does),
    with the sizes as C(df) shows them before and after.
  - With O(known_disk) and O(cache_file), a run on a disk whose filesystem was
    found to fill it, and which has not changed since, costs no module run on
    the host (see O(cache_file)).
author:
  - Central-MCP maintainers (@central-mcp)
options:
  mount:
    description: Mount point of the filesystem to grow.
    type: path
    default: /
  min_room_mb:
    description:
      - Least room (MiB) between the filesystem and its device that is worth
        growing for. A grown filesystem can end a few blocks short of its
        device (resize2fs rounds), which is not room.
    type: int
    default: 16
  disk_grew:
    description:
      - Whether the disk grew in this play (in check mode, whether it would).
      - When V(true), a partition or disk that shows no room yet is looked at
        again every 2 seconds for up to O(settle_timeout) seconds (the kernel
        can see a disk's new size a moment after it grew). In check mode,
        when nothing would grow yet, the message says that the filesystem
        would grow once the disk has grown.
    type: bool
    default: false
  settle_timeout:
    description: Seconds to wait for the kernel to see the new size of a disk that grew (O(disk_grew=true)).
    type: int
    default: 10
  known_disk:
    description:
      - The disk under O(mount) as the controller knows it, e.g. from the result of
        M(central_mcp.agents.gce_disk_size). Only the action plugin reads it, on the controller, with O(cache_file).
    type: dict
    suboptions:
      id:
        description:
          - Names the disk for good, e.g. C(PROJECT/ZONE/DISK#DISK_ID); a disk made again under the same
            name has another RV(central_mcp.agents.gce_disk_size#module:disk_id).
        type: str
        required: true
      size_gb:
        description: Its size in GB (GiB), as the Compute API reports it.
        type: int
        required: true
  cache_file:
    description:
      - A file on the controller in which the action plugin remembers a look that left nothing to grow
        (RV(nothing_to_grow=true)) on O(known_disk), when the kernel showed the disk at its full O(known_disk.size_gb)
        or the filesystem is one the module leaves alone. A later run with the same O(known_disk), O(mount) and
        O(min_room_mb), and O(disk_grew=false), returns what was found then (RV(cached=true)) without running
        anything on the host; a disk that grew since, by this play or by hand, or was made again, is looked at.
      - Outside check mode only; a look that fails, or leaves something to grow, is not remembered.
        Deleting the file costs one look.
    type: path
attributes:
  action:
    support: full
    description: With O(cache_file), the action plugin on the controller may answer without running the module.
  check_mode:
    support: full
    description:
      - Only reads (C(findmnt), C(lsblk), C(growpart --dry-run), C(dumpe2fs -h)
        or C(xfs_info)), and says what would grow. Without C(growpart) the
        partition's room is estimated from sysfs.
  diff_mode:
    support: full
    description: Shows the sizes of the partition and of the filesystem before and after (what they would become).
  platform:
    support: full
    platforms: posix
    description: Linux with util-linux (C(findmnt), C(lsblk)), and e2fsprogs or xfsprogs for the filesystem.
notes:
  - Needs root (C(become)).
  - "Growing is online: no unmount, no restart. Nothing ever shrinks."
requirements:
  - util-linux (findmnt, lsblk)
  - e2fsprogs (dumpe2fs, resize2fs) or xfsprogs (xfs_info, xfs_growfs)
  - cloud-guest-utils (growpart) when the filesystem is on a partition that has room to grow
seealso:
  - module: central_mcp.agents.gce_disk_size
  - plugin: central_mcp.agents.root_fs_remembered
    plugin_type: filter
    description: Whether a look remembered in O(cache_file) stands, without a task on the host.
  - name: Resizing a persistent disk
    description: Compute Engine grows the disk; the guest grows its partition and filesystem.
    link: https://cloud.google.com/compute/docs/disks/resize-persistent-disk
"""

EXAMPLES = r"""
- name: Grow / into the boot disk
  central_mcp.agents.grow_root_fs:
    disk_grew: "{{ boot_disk is changed }}"
  become: true
  register: root_fs

- name: Install growpart when the partition of / must grow, and grow it
  when: root_fs.growpart_needed and not ansible_check_mode
  become: true
  block:
    - name: Install growpart (cloud-guest-utils)
      ansible.builtin.package:
        name: cloud-guest-utils
        state: present

    - name: Grow / into the boot disk, now with growpart
      central_mcp.agents.grow_root_fs:
        disk_grew: "{{ boot_disk is changed }}"
      register: root_fs

- name: Say what grew
  ansible.builtin.debug:
    msg: "{{ root_fs.msg }}"

- name: Look at / only when its boot disk changed since / was last found to fill it (a re-run costs no module run)
  central_mcp.agents.grow_root_fs:
    disk_grew: "{{ boot_disk is changed }}"
    known_disk:
      id: "my-project/us-central1-a/{{ boot_disk.disk }}#{{ boot_disk.disk_id }}"
      size_gb: "{{ boot_disk.size_gb }}"
    cache_file: "~/.cache/central-mcp/root-fs/{{ inventory_hostname }}.json"
  become: true
"""

RETURN = r"""
msg:
  description: What grew, would grow, or why nothing does, with C(df)'s sizes before and after.
  returned: always
  type: str
  sample: "/ (ext4 on /dev/sda1) grew: partition 1 of /dev/sda (growpart), filesystem (resize2fs)
    (df: 9.67 GB → 35.36 GB, 31.52 GB free)"
mount:
  description: The mount point looked at (O(mount)).
  returned: always
  type: str
  sample: /
source:
  description: The device mounted there, as C(findmnt) names it.
  returned: always
  type: str
  sample: /dev/sda1
fstype:
  description: Its filesystem type.
  returned: always
  type: str
  sample: ext4
disk:
  description: The disk whose partition holds the filesystem; null for a filesystem on a whole disk or one left alone.
  returned: always
  type: str
  sample: /dev/sda
partition:
  description: The number of that partition on RV(disk); null when there is none.
  returned: always
  type: int
  sample: 1
partition_grown:
  description: Whether the partition grew (in check mode, would grow).
  returned: always
  type: bool
  sample: true
filesystem_grown:
  description: Whether the filesystem grew (in check mode, would grow).
  returned: always
  type: bool
  sample: true
growpart_needed:
  description:
    - The partition has room but C(growpart) is not installed. Nothing was changed (in check mode, the message
      says what would grow). Install C(cloud-guest-utils) and run the module again.
  returned: always
  type: bool
  sample: false
nothing_to_grow:
  description:
    - Once this run is over, nothing is left that the module would grow - the filesystem fills its partition and
      the partition its disk, whose size the kernel shows (RV(disk_bytes)), or the filesystem is one the module
      leaves alone. False when something grows in check mode, growpart is missing, or a size could not be read.
  returned: always
  type: bool
  sample: true
settled:
  description: With RV(nothing_to_grow=true), how O(mount) stands, in one line without C(df)'s sizes; else empty.
  returned: always
  type: str
  sample: / (ext4 on /dev/sda1) fills its disk
disk_bytes:
  description: The size of the disk under the filesystem as the kernel shows it; null for a filesystem left alone.
  returned: always
  type: int
  sample: 37580963840
cached:
  description:
    - The result is the one O(cache_file) remembered (nothing ran on the host; RV(msg) says when it was found).
      Only present then.
  returned: when true
  type: bool
  sample: true
df_before:
  description: The filesystem's size and free bytes, as C(df --block-size=1) shows them, before any change.
  returned: when the module ran on the host (not when RV(cached))
  type: dict
  contains:
    size_bytes:
      description: Size in bytes.
      type: int
      sample: 10383695872
    free_bytes:
      description: Bytes free for users that are not root.
      type: int
      sample: 7516192768
df_after:
  description: The same after the changes (what the module found, when nothing changed).
  returned: when the module ran on the host (not when RV(cached))
  type: dict
  contains:
    size_bytes:
      description: Size in bytes.
      type: int
      sample: 37968470016
    free_bytes:
      description: Bytes free for users that are not root.
      type: int
      sample: 33844518912
commands:
  description: The commands the module ran, in order (none when RV(cached)).
  returned: always
  type: list
  elements: str
  sample: [findmnt, lsblk, growpart, dumpe2fs]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.root_fs import (  # noqa: E402
    ARGUMENT_SPEC,
    SPEC_RULES,
    GrowError,
    RootFs,
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, **SPEC_RULES)
    module.run_command_environ_update = {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"}  # the parsers read English
    p = module.params
    if p["min_room_mb"] < 0 or p["settle_timeout"] < 0:
        module.fail_json(msg=f"min_room_mb ({p['min_room_mb']}) and settle_timeout ({p['settle_timeout']}) "
                         "must be 0 or more")  # fmt: skip

    def run(argv: list) -> tuple:
        path = module.get_bin_path(argv[0])
        if path is None:
            return 127, "", f"{argv[0]}: command not found"
        return module.run_command([path, *argv[1:]])

    root = RootFs(
        run,
        module.get_bin_path,
        mount=p["mount"],
        min_room_mb=p["min_room_mb"],
        disk_grew=p["disk_grew"],
        settle_timeout=p["settle_timeout"],
        check_mode=module.check_mode,
        diff=module._diff,
    )
    try:
        module.exit_json(**root.grow())
    except GrowError as exc:  # exc.result tells what was already done
        module.fail_json(msg=exc.msg, **{k: v for k, v in exc.result.items() if k != "msg"})
    except (OSError, ValueError) as exc:  # a tool printed what the parsers do not know, or sysfs is unreadable
        module.fail_json(msg=f"could not work out how to grow {p['mount']}: {exc}", **root.result)


if __name__ == "__main__":
    main()
