# SPDX-License-Identifier: Apache-2.0
"""Action plugin of grow_root_fs: a look that left nothing to grow, remembered on the controller.

The manual is the module's (``ansible-doc central_mcp.agents.grow_root_fs``).
With ``known_disk`` (what the Compute API says of the disk) and
``cache_file``, a look that left nothing to grow is written down, and a
later run on the same disk at the same size answers from it without
touching the VM (plugin_utils/root_fs_memo.py says when an entry stands).
Otherwise, and always without ``cache_file``, the module runs on the host
as a module does.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.central_mcp.agents.plugins.module_utils.root_fs import ARGUMENT_SPEC, SPEC_RULES
from ansible_collections.central_mcp.agents.plugins.plugin_utils import root_fs_memo as memo
from ansible_collections.central_mcp.agents.plugins.plugin_utils.module_actions import run_as_module


class ActionModule(ActionBase):
    _supports_async = True  # the module's run, as before (nothing is remembered from an async job)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC, **SPEC_RULES)
        cache = args["cache_file"] if not self._task.async_val else None
        look = (args["known_disk"], args["mount"], args["min_room_mb"])
        if cache and not args["disk_grew"]:
            known = memo.recall(memo.read(cache), *look)
            if known is not None:
                return {**result, **known}
        result = run_as_module(self, result, task_vars)
        if cache and not self._task.check_mode and memo.worth_remembering(result, args["known_disk"]):
            try:
                memo.remember(cache, *look, result)
            except OSError as exc:  # a cache: the look stands, the next run looks again
                self._display.warning(f"grow_root_fs could not remember its look in {cache}: {exc}")
        return result
