# SPDX-License-Identifier: Apache-2.0
"""fleet_files' stamp and host_info's check of it: a re-run may leave fleet_files out only when nothing changed.

Each test converges a small fleet with a stamp, then changes one thing on the "host" (or nothing) and asks
host_info, as the roles' look does, whether the stamp still holds; where it does not, fleet_files itself must
find something to put right or re-stamp, so that the shortcut never hides a change.
"""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.central_mcp.agents.plugins.module_utils import files_stamp
from ansible_collections.central_mcp.agents.plugins.modules import host_info
from test_fleet_files import SECRET, fleet, refuse
from test_fleet_files import run_module as run_files


def stamped(tmp_path, names=("A", "B"), given="input-1") -> dict:
    return {**fleet(tmp_path, names), "stamp": {"path": str(tmp_path / "stamps" / "fleet.json"), "input": given}}


def look(tmp_path) -> dict:
    """host_info's answer for the stamp, as the roles read it before their fleet_files task."""
    out = io.StringIO()
    with patch_module_args({"stamps": [str(tmp_path / "stamps" / "fleet.json")], "_ansible_check_mode": True}):
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            host_info.main()
    return json.loads(out.getvalue())["stamps"][str(tmp_path / "stamps" / "fleet.json")]


def test_a_converged_fleet_leaves_an_intact_stamp_with_its_input(tmp_path):
    assert look(tmp_path) == {"input": None, "intact": False}  # no stamp yet: fleet_files has to run
    result, raw = run_files(stamped(tmp_path))
    assert result["changed"] is True
    assert look(tmp_path) == {"input": "input-1", "intact": True}
    stamp = tmp_path / "stamps" / "fleet.json"
    assert oct(os.stat(stamp).st_mode & 0o777) == "0o600" and oct(os.stat(stamp.parent).st_mode & 0o777) == "0o700"
    assert SECRET not in stamp.read_text() and SECRET not in raw


def test_a_run_with_nothing_to_do_is_no_change_though_it_writes_the_first_stamp(tmp_path):
    run_files(fleet(tmp_path))  # converged before stamps existed
    result, _ = run_files(stamped(tmp_path))
    assert result["changed"] is False and look(tmp_path)["intact"] is True
    mtime = os.stat(tmp_path / "stamps" / "fleet.json").st_mtime_ns
    again, _ = run_files(stamped(tmp_path))
    assert again["changed"] is False
    assert os.stat(tmp_path / "stamps" / "fleet.json").st_mtime_ns == mtime  # the same stamp is not rewritten


def edit(path):
    path.write_text("edited by hand\n")


def same_size_edit(path):
    """Another content of the same size, its mtime put back as it was: the ctime still tells."""
    st = os.stat(path)
    path.write_text(path.read_text().replace("A", "Z"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda t: edit(t / "agents" / "A.env"), id="a file edited"),
        pytest.param(lambda t: same_size_edit(t / "agents" / "A.env"), id="same size, mtime put back"),
        pytest.param(lambda t: os.chmod(t / "agents" / "fleet.json", 0o666), id="a file's mode"),
        pytest.param(lambda t: os.unlink(t / "agents" / "B.env"), id="a file removed"),
        pytest.param(lambda t: os.chmod(t / "work" / "A", 0o755), id="a directory's mode"),
        pytest.param(lambda t: os.rmdir(t / "work" / "B"), id="a directory removed"),
        pytest.param(lambda t: (t / "agents" / "C.env").write_text("x\n"), id="a file to purge appeared"),
    ],
)
def test_any_change_to_a_path_breaks_the_stamp_and_fleet_files_puts_it_right(tmp_path, change):
    run_files(stamped(tmp_path))
    change(tmp_path)
    assert look(tmp_path)["intact"] is False
    result, _ = run_files(stamped(tmp_path))
    assert result["changed"] is True
    assert (tmp_path / "agents" / "A.env").read_text() == f"TOKEN={SECRET}-A\n"
    assert not (tmp_path / "agents" / "C.env").exists()
    assert look(tmp_path) == {"input": "input-1", "intact": True}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda t: (t / "work" / "A" / "notes.md").write_text("an agent's work\n"), id="in a workspace"),
        pytest.param(lambda t: (t / "agents" / "notes.txt").write_text("x\n"), id="no purge pattern matches it"),
    ],
)
def test_what_fleet_files_does_not_manage_leaves_the_stamp_intact(tmp_path, change):
    run_files(stamped(tmp_path))
    change(tmp_path)
    assert look(tmp_path)["intact"] is True
    result, _ = run_files(stamped(tmp_path))
    assert result["changed"] is False  # the stamp was right: there was nothing to do


def test_other_arguments_give_another_input(tmp_path):
    run_files(stamped(tmp_path))
    assert look(tmp_path)["input"] == "input-1"
    result, _ = run_files(stamped(tmp_path, names=("A",), given="input-2"))
    assert result["removed"] == [str(tmp_path / "agents" / "B.env")]
    assert look(tmp_path) == {"input": "input-2", "intact": True}


def test_check_mode_writes_no_stamp(tmp_path):
    result, _ = run_files(stamped(tmp_path), check=True)
    assert result["changed"] is True and not (tmp_path / "stamps").exists()


def test_a_failure_half_way_leaves_no_stamp(tmp_path, monkeypatch):
    run_files(stamped(tmp_path))
    edit(tmp_path / "agents" / "A.env")
    refuse(monkeypatch, "rename", "/C.env")  # after A.env was put back
    result, _ = run_files(stamped(tmp_path, names=("A", "B", "C"), given="input-2"))
    monkeypatch.undo()
    assert result["failed"] is True and str(tmp_path / "agents" / "A.env") in result["changed_paths"]
    assert look(tmp_path) == {"input": None, "intact": False}


def test_a_user_or_group_change_breaks_the_stamp(tmp_path, monkeypatch):
    """The same owner name may stand for another uid after users change: the user databases are signed."""
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    monkeypatch.setattr(files_stamp, "USER_DBS", (str(passwd),))
    run_files(stamped(tmp_path))
    assert look(tmp_path)["intact"] is True
    passwd.write_text("root:x:0:0::/root:/bin/sh\nagent-a:x:1001:1001::/home/agent-a:/bin/sh\n")
    assert look(tmp_path)["intact"] is False


@pytest.mark.parametrize("text", ["", "not json", '{"version": 1}', '{"version": 1, "entries": [{"path": 1}]}'])
def test_a_damaged_stamp_is_not_intact(tmp_path, text):
    (tmp_path / "stamps").mkdir()
    (tmp_path / "stamps" / "fleet.json").write_text(text)
    assert look(tmp_path) == {"input": None, "intact": False}


def test_a_relative_stamp_path_is_refused_before_anything_is_written(tmp_path):
    args = {**fleet(tmp_path), "stamp": {"path": "stamps/fleet.json", "input": "x"}}
    result, _ = run_files(args)
    assert result["failed"] is True and "stamps/fleet.json" in result["msg"]
    assert not (tmp_path / "agents").exists()
