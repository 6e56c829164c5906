# SPDX-License-Identifier: Apache-2.0
"""This VM's vCPUs and memory, as the sizing rule counts them (the status table's capacity of each VM).

What the VM has is measured on the VM, not taken from its machine type: a
host without a Compute identity (a container, a pod) has no type to look up,
and a type's figures are not what the guest sees after a change that has not
rebooted it yet.
"""

from __future__ import annotations

import os


def machine(meminfo: str = "/proc/meminfo") -> dict[str, int | None]:
    """{cpus, memory_bytes}: the CPUs the kernel shows (not this process's affinity) and MemTotal."""
    memory = None
    try:
        with open(meminfo, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return {"cpus": os.cpu_count(), "memory_bytes": memory}
