# SPDX-License-Identifier: Apache-2.0
"""What a fleet of 4, 8, 16 and 32 agents costs a month under every pricing plan, from the collection's price table.

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
from ansible_collections.central_mcp.agents.plugins.filter.prices import fleet_costs  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.filter.sizing import machine_type_for_agents  # noqa: E402
from ansible_collections.central_mcp.agents.plugins.module_utils.prices import (  # noqa: E402
    DEFAULT_TABLE,
    PLAN_NAMES,
    PLANS,
)

PER_VM = 16


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


if __name__ == "__main__":
    main()
