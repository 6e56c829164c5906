# SPDX-License-Identifier: Apache-2.0
"""The template lookup: what ansible.builtin.template's lookup renders, without deep-copying the variables."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, lookup_loader
from ansible.template import Templar, trust_as_template

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lookups():
    from ansible_collections.central_mcp.agents.plugins.lookup.template import LookupModule

    if lookup_loader.get("ansible.builtin.template") is None:  # run alone: nothing set the plugin loader up yet
        init_plugin_loader([str(REPO / "collections")])
    loader = DataLoader()
    templar = Templar(loader=loader)
    return {
        "ansible.builtin.template": lookup_loader.get("ansible.builtin.template", loader=loader, templar=templar),
        "central_mcp.agents.template": LookupModule(loader=loader, templar=templar),
    }


class Untouchable:
    """A value a deep copy would fail on: the lookup must pass it through as it is."""

    def __deepcopy__(self, memo):
        raise AssertionError("deep-copied")


def variables(tmp_path: Path) -> dict:
    return {
        "ansible_search_path": [str(tmp_path)],
        "unit": "central-mcp-agents.service",
        "agents": [{"name": "A", "memory_max": "512M"}, {"name": "B", "memory_max": "1G"}],
        "ansible_managed": trust_as_template("Ansible managed"),
    }


def test_it_renders_what_the_builtin_renders(tmp_path, lookups):
    template = tmp_path / "unit.j2"
    template.write_text(
        "{{ ansible_managed | comment }}\n[Unit]\nDescription={{ unit }}\n"
        "{% for agent in agents %}\n# {{ agent.name }}: MemoryMax={{ agent.memory_max }}\n{% endfor %}\n"
        "Path={{ template_path | basename }}\n\n",
        encoding="utf-8",
    )
    wanted = lookups["ansible.builtin.template"].run([str(template)], variables=variables(tmp_path))
    assert lookups["central_mcp.agents.template"].run([str(template)], variables=variables(tmp_path)) == wanted
    assert "# B: MemoryMax=1G\n" in wanted[0] and wanted[0].endswith("Path=unit.j2\n\n")


def test_the_template_vars_stay_the_templates_and_nothing_is_deep_copied(tmp_path, lookups):
    template = tmp_path / "unit.j2"
    template.write_text("{{ unit }} {{ extra }} {{ template_path | basename }}\n", encoding="utf-8")
    given = {**variables(tmp_path), "big": Untouchable()}
    with pytest.raises(AssertionError, match="deep-copied"):
        copy.deepcopy(given)  # what the builtin lookup does first
    rendered = lookups["central_mcp.agents.template"].run(
        [str(template)], variables=given, template_vars={"extra": "x"}
    )
    assert rendered == ["central-mcp-agents.service x unit.j2\n"]
    assert "template_path" not in given and "extra" not in given  # the caller's variables are left as they were
