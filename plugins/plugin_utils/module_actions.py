# SPDX-License-Identifier: Apache-2.0
"""What the collection's action plugins share: running a module's code in Ansible's process, or the module.

GceAction is the base of the gce_* modules' action plugins: their own code,
in Ansible's process, when it would run on the controller. run_as_module is
the module's run on the task's host, as Ansible's action for plain modules
does it (grow_root_fs's action plugin uses it too).

Why: the gce_* modules run on the controller (``delegate_to: localhost``),
where a module run costs a Python start, unpacking the module and importing
google-auth and requests again, for every host, every run: most of the time
a re-run that changes nothing spends in them. The action plugin runs the
same code (module_utils/gce_resize.py, gce_disk.py) in the worker Ansible
forks for the task. Ansible's main process loads the plugin, and so
google-auth, once per playbook run, before it forks the workers.

It does so only where the module would have run on the controller with the
same credentials: a local connection, no ``become``, no ``async``, no task
``environment`` (google-auth may read GOOGLE_APPLICATION_CREDENTIALS or a
proxy from it), and google-auth importable in Ansible's own Python.
Anywhere else the module runs as a module, as before.
"""

from __future__ import annotations

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash
from ansible_collections.central_mcp.agents.plugins.module_utils.gce import HAS_GOOGLE_AUTH, GceFailure


class GceAction(ActionBase):
    """Subclasses name the module's argument spec, its extra rules and the function that is its run."""

    ARGUMENT_SPEC: dict = {}
    SPEC_RULES: dict = {}
    _supports_async = True  # as a module (below), as before

    @staticmethod
    def run_module_code(params: dict, check_mode: bool, diff: bool) -> dict:
        raise NotImplementedError

    def in_process(self) -> bool:
        """Whether the module would run right here, as this process's user, with this environment."""
        return (
            HAS_GOOGLE_AUTH
            and getattr(self._connection, "transport", None) == "local"
            and not self._play_context.become
            and not self._task.async_val
            and not any(self._task.environment or ())  # a list of dicts, from the task and its parents
        )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if not self.in_process():
            return run_as_module(self, result, task_vars)
        validation, params = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC, **self.SPEC_RULES)
        try:
            result.update(self.run_module_code(params, bool(self._task.check_mode), bool(self._task.diff)))
        except GceFailure as failure:
            result.update(failure.result, failed=True, msg=failure.msg)
        result.setdefault("changed", False)
        result["invocation"] = {"module_args": params}  # shown from -vvv, as a module's is
        # as AnsibleModule does: no value of a no_log option (access_token) in what is returned
        return remove_values(result, validation._no_log_values)


def run_as_module(action: ActionBase, result: dict, task_vars: dict) -> dict:
    """The module's run on the task's host, as Ansible's own action for modules (normal) does it, async included."""
    wrap_async = action._task.async_val and not action._connection.has_native_async
    result = merge_hash(result, action._execute_module(task_vars=task_vars, wrap_async=wrap_async))
    if not wrap_async:
        action._remove_tmp_path(action._connection._shell.tmpdir)
    return result
