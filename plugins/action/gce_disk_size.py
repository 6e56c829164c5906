# SPDX-License-Identifier: Apache-2.0
"""Action plugin of gce_disk_size: the module's code in Ansible's process when it runs on the controller.

The manual is the module's (``ansible-doc central_mcp.agents.gce_disk_size``);
plugin_utils/module_actions.py says when the code runs here and when as a module.
"""

from __future__ import annotations

from ansible_collections.central_mcp.agents.plugins.module_utils.gce_disk import ARGUMENT_SPEC, SPEC_RULES, grow_disk
from ansible_collections.central_mcp.agents.plugins.plugin_utils.module_actions import GceAction


class ActionModule(GceAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    SPEC_RULES = SPEC_RULES
    run_module_code = staticmethod(grow_disk)
