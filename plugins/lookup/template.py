# SPDX-License-Identifier: Apache-2.0
"""Lookup: ansible.builtin.template's lookup, without a deep copy of every variable for each file."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: template
author: Central-MCP maintainers (@central-mcp)
version_added: "0.4.0"
short_description: Render templates as ansible.builtin.template's lookup does, at a fraction of the cost
description:
  - Returns each template rendered by P(ansible.builtin.template#lookup), which does all the work (the
    search path, C(ansible_managed), the options). Only what it is given differs.
  - That lookup deep-copies every variable of the task before each file, so that the template's own
    variables (C(template_path), C(ansible_managed), C(template_vars)) do not land in the task's. With
    a role's variables and the fleet plan, that copy takes 10-25 ms a file, most of the lookup's time.
    This one gives it a copy of the top level only, as the C(ansible.builtin.template) module does with
    its variables. The output is the same.
  - The roles of this collection render their units with it, so that a re-run that only compares them
    with what the last run left (see M(central_mcp.agents.fleet_files)) costs little.
options:
  _terms:
    description: Template files, found as ansible.builtin.template's lookup finds them (C(templates/) first).
    type: list
    elements: str
    required: true
notes:
  - Every option of P(ansible.builtin.template#lookup) (C(template_vars), C(trim_blocks) and the others) is
    passed to it as given.
"""

EXAMPLES = r"""
- name: The unit as the role writes it
  ansible.builtin.debug:
    msg: "{{ lookup('central_mcp.agents.template', 'etc/systemd/system/central-mcp-agents.service.j2') }}"
"""

RETURN = r"""
_raw:
  description: One rendered template per term.
  type: list
  elements: str
"""

from ansible.plugins.loader import lookup_loader
from ansible.plugins.lookup import LookupBase


class _TopLevelCopy(dict):
    """The task's variables, whose deep copy is a copy of the top level: the values are shared, read only."""

    def __deepcopy__(self, memo: dict) -> dict:
        return dict(self)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        builtin = lookup_loader.get("ansible.builtin.template", loader=self._loader, templar=self._templar)
        return builtin.run(terms, variables=_TopLevelCopy(variables or {}), **kwargs)
