# SPDX-License-Identifier: Apache-2.0
"""One price table for every cost the collection shows: machine types under each pricing plan, and disks.

Why rates and not a price per machine type: Compute Engine bills a VM as
vCPUs plus memory, at a rate per family (E2, N2...) and per plan (on-demand,
Spot, 1- and 3-year committed use). With the rates, every type of a family
has a price, custom types included, and a user who gets other prices
(another region, a discount) overrides a handful of numbers instead of a
list of types. A type may still have prices of its own (``machine_types``).

The defaults are Google's list prices for us-central1 (Iowa) in US dollars
on the table's ``date``. They move: Spot prices can change up to once every
30 days, and other regions cost more. Every report prints the date, and
``central_mcp_prices`` in the inventory overrides any part of the table:
it is merged into the defaults key by key.

Persistent disks cost the same under every plan (commitments and Spot cover
vCPUs and memory only); they are priced per GB-month.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

PLANS = ("on_demand", "spot", "commit_1y", "commit_3y")
PLAN_NAMES = {"on_demand": "on-demand", "spot": "Spot", "commit_1y": "1-yr commit", "commit_3y": "3-yr commit"}
DEFAULT_TABLE = {
    "date": "2025-06-01",
    "source": "Compute Engine list prices, us-central1",
    # Google's own figure for a month of a VM that runs all the time.
    "hours_per_month": 730,
    # US dollars per vCPU-hour and per GB-hour of memory, [vcpu, memory], per family and plan.
    "rates": {
        "e2": {
            "on_demand": [0.021811, 0.002923],
            "spot": [0.006543, 0.000877],
            "commit_1y": [0.013741, 0.001842],
            "commit_3y": [0.009815, 0.001316],
        },
        "n2": {
            "on_demand": [0.031611, 0.004237],
            "spot": [0.007650, 0.001025],
            "commit_1y": [0.019915, 0.002669],
            "commit_3y": [0.014225, 0.001907],
        },
    },
    # Shared-core types are billed for a fraction of a vCPU.
    "shared_core_vcpus": {"e2-micro": 0.25, "e2-small": 0.5, "e2-medium": 1.0},
    # A type's own prices, US dollars an hour per plan, over the rates (e.g. a negotiated price).
    "machine_types": {},
    # US dollars per GB-month by disk type, under every plan.
    "disks": {"pd-standard": 0.04, "pd-balanced": 0.10, "pd-ssd": 0.17},
}
# GB of memory per vCPU of the predefined shapes, as Compute Engine names them.
SHAPES = {"standard": 4, "highmem": 8, "highcpu": 1}
SHARED_CORE_MEMORY_GB = {"e2-micro": 1, "e2-small": 2, "e2-medium": 4}
_PREDEFINED = re.compile(r"^([a-z][a-z0-9]*)-(standard|highmem|highcpu)-(\d+)$")
_CUSTOM = re.compile(r"^(?:([a-z][a-z0-9]*)-)?custom-(\d+)-(\d+)(?:-ext)?$")
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


class PriceError(ValueError):
    """A price table that cannot be used: the message names the bad value."""


def _merge(base: Mapping, over: Mapping) -> dict:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (
            _merge(base[key], value) if isinstance(value, Mapping) and isinstance(base.get(key), Mapping) else value
        )
    return merged


def _price(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise PriceError(f"{where} must be a price of 0 or more (US dollars), got {value!r:.60}")
    return float(value)


def table(overrides=None) -> dict:
    """The default table with ``overrides`` (central_mcp_prices) merged in, checked; PriceError names what is bad."""
    if overrides in (None, ""):
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise PriceError(f"central_mcp_prices must be a mapping (see the README's Prices), got {overrides!r:.80}")
    unknown = sorted(str(key) for key in overrides if key not in DEFAULT_TABLE)
    if unknown:
        raise PriceError(f"central_mcp_prices: unknown key(s) {', '.join(unknown)}: use {', '.join(DEFAULT_TABLE)}")
    merged = _merge(DEFAULT_TABLE, overrides)
    if not _DATE.match(str(merged["date"])):
        raise PriceError(f"central_mcp_prices.date {merged['date']!r:.40} must be the prices' date, YYYY-MM-DD")
    hours = _price(merged["hours_per_month"], "central_mcp_prices.hours_per_month")
    if not 600 <= hours <= 745:
        raise PriceError(f"central_mcp_prices.hours_per_month {hours:g} is not a month of hours (730 is Google's)")
    for family, plans in _mapping(merged["rates"], "rates").items():
        for plan, pair in _mapping(plans, f"rates.{family}").items():
            where = f"central_mcp_prices.rates.{family}.{plan}"
            if plan not in PLANS:
                raise PriceError(f"{where}: {plan!r} is not a plan: use {', '.join(PLANS)}")
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise PriceError(f"{where} must be [per vCPU-hour, per GB-hour], got {pair!r:.60}")
            for value in pair:
                _price(value, where)
    for name, plans in _mapping(merged["machine_types"], "machine_types").items():
        for plan, value in _mapping(plans, f"machine_types.{name}").items():
            if plan not in PLANS:
                raise PriceError(
                    f"central_mcp_prices.machine_types.{name}: {plan!r} is not a plan: use {', '.join(PLANS)}"
                )
            _price(value, f"central_mcp_prices.machine_types.{name}.{plan}")
    for name, value in _mapping(merged["disks"], "disks").items():
        _price(value, f"central_mcp_prices.disks.{name}")
    for name, value in _mapping(merged["shared_core_vcpus"], "shared_core_vcpus").items():
        _price(value, f"central_mcp_prices.shared_core_vcpus.{name}")
    return merged


def _mapping(value, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise PriceError(f"central_mcp_prices.{where} must be a mapping, got {value!r:.60}")
    return value


def shape(machine_type: str, prices: Mapping) -> tuple[str, float, float] | None:
    """(family, billed vCPUs, memory GB) of a type, from its name as Compute Engine spells it; None if unknown."""
    name = str(machine_type or "")
    if name in prices["shared_core_vcpus"]:
        return name.split("-", 1)[0], float(prices["shared_core_vcpus"][name]), SHARED_CORE_MEMORY_GB.get(name, 0)
    found = _PREDEFINED.match(name)
    if found:
        family, kind, vcpus = found.group(1), found.group(2), int(found.group(3))
        return family, float(vcpus), float(vcpus * SHAPES[kind])
    custom = _CUSTOM.match(name)
    if custom:
        return custom.group(1) or "n1", float(custom.group(2)), int(custom.group(3)) / 1024
    return None


def hourly(machine_type: str, plan: str, prices: Mapping) -> float | None:
    """US dollars an hour of a machine type under a plan; None when the table cannot price it."""
    own = prices["machine_types"].get(machine_type) or {}
    if plan in own:
        return float(own[plan])
    found = shape(machine_type, prices)
    if found is None:
        return None
    family, vcpus, memory_gb = found
    rates = (prices["rates"].get(family) or {}).get(plan)
    if not rates:
        return None
    return vcpus * rates[0] + memory_gb * rates[1]


def monthly(machine_type: str, plan: str, prices: Mapping) -> float | None:
    rate = hourly(machine_type, plan, prices)
    return None if rate is None else rate * float(prices["hours_per_month"])


def disk_monthly(size_gb, disk_type: str, prices: Mapping) -> float | None:
    rate = prices["disks"].get(disk_type)
    return None if rate is None or size_gb in (None, "") else float(rate) * float(size_gb)


def vm_plans(machine_type: str | None, disk_gb, disk_type: str, prices: Mapping) -> dict:
    """{plan: US dollars a month of the VM (machine + disk), or None} for every plan."""
    disk = disk_monthly(disk_gb, disk_type, prices) if disk_gb not in (None, "") else 0.0
    plans = {}
    for plan in PLANS:
        machine = monthly(machine_type, plan, prices) if machine_type else None
        plans[plan] = None if machine is None or disk is None else round(machine + disk, 2)
    return plans
