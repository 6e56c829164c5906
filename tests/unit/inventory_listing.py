# SPDX-License-Identifier: Apache-2.0
"""What the inventory plugins' tests share: ``ansible-inventory --list`` read as plain JSON."""

from __future__ import annotations


def unwrap(value):
    """ansible-inventory --list marks strings from an inventory source as unsafe ({"__ansible_unsafe": ...})."""
    if isinstance(value, dict) and set(value) == {"__ansible_unsafe"}:
        return value["__ansible_unsafe"]
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value
