# SPDX-License-Identifier: Apache-2.0
"""The fleet's VMs as the agents file describes them: machine type, provisioning model and price.

Why here and not measured: what a VM costs, and whether it is a Spot VM,
is known to the inventory and the Compute API (the vm_upgrade role), not
to the VM. The coordinator role writes them into the agents file beside
the agents (``{"agents": [...], "hosts": [...]}``), with the price table's
date; the dashboard shows each VM against its own agents and its own cost.
The vCPUs and memory of a VM are measured: the coordinator's own by itself,
every other VM's by its pane relay. A host billed by the hour it runs (a
pod) has its price an hour instead: the dashboard counts the hours it ran.

A file without ``hosts`` (a coordinator started by hand) describes one VM,
this one, running every agent.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLANS = ("on_demand", "spot", "commit_1y", "commit_3y")
MODELS = ("", "standard", "spot")
# Compute Engine names of a project (or domain:project), a zone and an instance: they go into API paths.
GCE_NAME_RE = re.compile(r"^[a-z0-9](?:[-a-z0-9.:]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class HostSpec:
    """One VM of the fleet."""

    name: str
    coordinator: bool = False
    machine_type: str = ""
    provisioning_model: str = ""  # spot, standard, or "" when not managed
    monthly_cost: float | None = None  # under its own plan: Spot for a Spot VM, else on-demand
    plans: dict[str, float | None] = field(default_factory=dict)
    price_date: str = ""
    gce: tuple[str, str, str] | None = None  # (project, zone, instance): where the Compute API knows it
    hourly_cost: float | None = None  # a host billed by the hour it runs (a pod): US dollars an hour

    @property
    def spot(self) -> bool:
        """A Spot VM the coordinator's watcher can start again after a preemption."""
        return self.provisioning_model == "spot" and self.gce is not None


def _price(value: Any, where: str, per: str = "a month") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ValueError(f"{where} must be US dollars {per} (a number of 0 or more) or null, got {value!r:.40}")
    return float(value)


def parse_hosts(doc: Any, path: Path) -> list[HostSpec]:
    """The ``hosts`` of an agents file (already read as JSON); ValueError names the bad entry."""
    entries = doc.get("hosts", []) if isinstance(doc, dict) else []
    if not isinstance(entries, list):
        raise ValueError(f"agents file {path}: hosts must be a list, got {type(entries).__name__}")
    hosts: list[HostSpec] = []
    for i, entry in enumerate(entries):
        where = f"agents file {path}, hosts[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ValueError(f"{where}: expected an object with a name")
        model = str(entry.get("provisioning_model") or "").lower()
        if model not in MODELS:
            raise ValueError(f"{where} ({entry['name']}): provisioning_model {model!r} is not standard or spot")
        plans = entry.get("plans") or {}
        if not isinstance(plans, dict) or set(plans) - set(PLANS):
            raise ValueError(f"{where} ({entry['name']}): plans must map {', '.join(PLANS)} to prices")
        gce = entry.get("gce")
        if gce is not None:
            keys = ("project", "zone", "instance")
            parts = tuple(str(gce.get(key) or "") for key in keys) if isinstance(gce, dict) else ()
            if len(parts) != 3 or not all(GCE_NAME_RE.match(part) for part in parts):
                raise ValueError(f"{where} ({entry['name']}): gce must be {{project, zone, instance}}, got {gce!r:.80}")
            gce = parts
        hosts.append(
            HostSpec(
                name=entry["name"],
                coordinator=entry.get("coordinator") is True,
                machine_type=str(entry.get("machine_type") or ""),
                provisioning_model=model,
                monthly_cost=_price(entry.get("monthly_cost"), f"{where} monthly_cost"),
                plans={plan: _price(value, f"{where} plans.{plan}") for plan, value in plans.items()},
                price_date=str(entry.get("price_date") or ""),
                gce=gce,
                hourly_cost=_price(entry.get("hourly_cost"), f"{where} hourly_cost", "an hour"),
            )
        )
    if sum(host.coordinator for host in hosts) > 1:
        raise ValueError(f"agents file {path}: more than one host is marked as the coordinator's")
    return hosts
