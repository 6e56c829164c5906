# SPDX-License-Identifier: Apache-2.0
"""The agent_token lookup: generated once, kept private, read back by every role."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.central_mcp.agents.plugins.lookup.agent_token import _read_or_create, _token_file

REPO = Path(__file__).resolve().parents[2]


def lookup(tmp_path, *terms):
    return [_read_or_create(_token_file(str(tmp_path), term)) for term in terms]


def test_the_lookup_through_ansible(tmp_path):
    expr = f"{{{{ lookup('central_mcp.agents.agent_token', 'vm1/A', dir='{tmp_path}') }}}}"
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
    }
    ansible = Path(sys.executable).with_name("ansible")
    out = subprocess.run(
        [str(ansible), "localhost", "-m", "ansible.builtin.debug", "-a", f"msg={expr}"],
        capture_output=True, text=True, env=env, check=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    token = (tmp_path / "vm1" / "A.token").read_text().strip()
    assert token in out


def test_a_token_is_made_once_and_read_back(tmp_path):
    first = lookup(tmp_path, "vm1/A")[0]
    assert len(first) == 40 and first.isalnum()
    assert lookup(tmp_path, "vm1/A") == [first]
    path = tmp_path / "vm1" / "A.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_each_agent_and_host_gets_its_own(tmp_path):
    tokens = lookup(tmp_path, "vm1/A", "vm1/B", "vm2/A")
    assert len(set(tokens)) == 3


def test_a_token_from_an_earlier_password_lookup_file_is_kept(tmp_path):
    (tmp_path / "vm1").mkdir()
    (tmp_path / "vm1" / "A.token").write_text("kept-token\n")
    assert lookup(tmp_path, "vm1/A") == ["kept-token"]


@pytest.mark.parametrize("term", ["A", "vm1/../../etc/passwd", "../x/A", "vm1/A/B", "vm 1/A", "vm1/$(id)", "/A"])
def test_bad_terms_are_refused(tmp_path, term):
    with pytest.raises(AnsibleLookupError, match="is not HOST/AGENT"):
        lookup(tmp_path, term)
    assert list(tmp_path.iterdir()) == []
