# SPDX-License-Identifier: Apache-2.0
"""What a fleet of 4, 8, 16 and 32 agents costs a month under every pricing plan, from the collection's price table,
and a hybrid fleet: a VM and GPU pods billed by the hour they run.

The machine type and boot disk are what ``auto`` picks (vm_upgrade: 0.5 vCPU
and 500 MB per agent, 20 GB + 2 GB per agent of pd-balanced disk), up to 16
agents per VM; the prices are the table's defaults (module_utils/prices.py,
with their date), as every run of site.yml prints them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collections"))
from ansible_collections.central_mcp.agents.plugins.filter.disk_sizing import disk_size_for_agents  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.filter.prices import fleet_costs, fleet_pods  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.filter.sizing import machine_type_for_agents  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.prices import (  # noqa: E402
    DEFAULT_TABLE,
    PLAN_NAMES,
    PLANS,
)

PER_VM = 16
WEEKS_A_MONTH = 730 / 168  # as the dashboard counts a pod's month (coordinator: dashboard/vms.py)


def fleet(agents: int) -> list[dict]:
    vms, left = [], agents
    while left > 0:
        here = min(left, PER_VM)
        vms.append({"host": f"vm{len(vms) + 1}", "machine_type": machine_type_for_agents(here),
                    "disk_size_gb": disk_size_for_agents(here), "agents": here})  # fmt: skip
        left -= here
    return vms


def main() -> None:
    print(f"US dollars a month, {DEFAULT_TABLE['source']}, prices of {DEFAULT_TABLE['date']}")
    print(f"{'agents':>6}  {'VMs':<20}" + "".join(f"{PLAN_NAMES[p]:>24}" for p in PLANS))
    for agents in (4, 8, 16, 32):
        vms = fleet(agents)
        costs = fleet_costs(vms)
        shape = f"{len(vms)} x {vms[0]['machine_type']}"
        cells = "".join(f"{costs['fleet'][p]:>12,.2f} ({costs['per_agent'][p]:>5,.2f}/ag)" for p in PLANS)
        print(f"{agents:>6}  {shape:<20}{cells}")
    saved = 1 - fleet_costs(fleet(8))["fleet"]["spot"] / fleet_costs(fleet(8))["fleet"]["on_demand"]
    print(f"Spot saves {saved:.0%} of the on-demand price of 8 agents (machine and disk)")
    hybrid()


POD_HOURLY = 0.44  # an example price of a GPU pod an hour (RunPod's own is in the inventory: runpod_cost_per_hour)
POD_HOURS_A_DAY = 8


def hybrid() -> None:
    """8 agents on one e2-standard-4 VM, plus 2 on GPU pods that run 8 hours a day: the status table's lines,
    and each pod's month as the dashboard prices it (the hours it ran in the last week, as a month)."""
    hostvars = {
        "vm1": {"central_mcp_agents": [{"name": f"A{n}"} for n in range(8)]},
        **{f"gpu-{n}": {"runpod_cost_per_hour": POD_HOURLY, "central_mcp_agents": [{"name": f"G{n}"}]} for n in (1, 2)},
    }  # fmt: skip
    vms = [{"host": "vm1", "machine_type": "e2-standard-4", "disk_size_gb": disk_size_for_agents(8), "agents": 8}]
    costs = fleet_costs(vms, pods=fleet_pods(hostvars, list(hostvars)))
    print(
        f"\nA hybrid fleet: 8 agents on an e2-standard-4, 2 on GPU pods at ${POD_HOURLY}/h, {POD_HOURS_A_DAY} h a day"
    )
    print("\n".join(costs["lines"]))
    week = POD_HOURS_A_DAY * 7
    pod_month = round(POD_HOURLY * week * WEEKS_A_MONTH, 2)
    vm_month = costs["now"]
    print(f"dashboard: each pod {week} h in 7 days -> ${pod_month:,.2f} a month; the fleet "
          f"${vm_month + 2 * pod_month:,.2f} a month (the VM on-demand ${vm_month:,.2f} + 2 pods), "
          f"${(vm_month + 2 * pod_month) / 10:,.2f} per agent")  # fmt: skip


if __name__ == "__main__":
    main()
