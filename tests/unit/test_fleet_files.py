# SPDX-License-Identifier: Apache-2.0
"""fleet_files on a real temporary directory, through its real main().

Owner and group are the test user's own (a test cannot chown to others);
modes, content, renames, purges, check mode and the secrecy of the content
are checked by reading the filesystem back with os.stat and open().
"""

from __future__ import annotations

import contextlib
import grp
import io
import json
import os
import pwd
import stat

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from ansible_collections.central_mcp.agents.plugins.modules import fleet_files

SECRET = "central-mcp-token-0123456789-secret"
USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run_module(args: dict, check: bool = False, diff: bool = False) -> tuple[dict, str]:
    """Run the module's main() in-process; return its result and its raw JSON output."""
    out = io.StringIO()
    with patch_module_args({**args, "_ansible_check_mode": check, "_ansible_diff": diff}):
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            fleet_files.main()
    return json.loads(out.getvalue()), out.getvalue()


def mode(path) -> str:
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def fleet(tmp_path, names=("A", "B")) -> dict:
    conf = tmp_path / "agents"
    return {
        "directories": [
            {"path": str(conf), "owner": USER, "group": GROUP, "mode": "0750"},
            *({"path": str(tmp_path / "work" / n), "mode": "0700"} for n in names),
        ],
        "files": [
            *(
                {"path": str(conf / f"{n}.env"), "content": f"TOKEN={SECRET}-{n}\n", "owner": USER, "mode": "0600"}
                for n in names
            ),
            {"path": str(conf / "fleet.json"), "content": json.dumps(list(names)) + "\n", "mode": "0640"},
        ],
        "purge": [{"path": str(conf), "patterns": ["*.env", "*.json"]}],
    }


def test_first_run_creates_everything_with_its_modes(tmp_path):
    result, _ = run_module(fleet(tmp_path))
    assert result["changed"] is True
    conf = tmp_path / "agents"
    assert mode(conf) == "0o750" and mode(tmp_path / "work" / "A") == "0o700"  # parents made too
    assert (conf / "A.env").read_text() == f"TOKEN={SECRET}-A\n"
    assert mode(conf / "A.env") == "0o600" and mode(conf / "fleet.json") == "0o640"
    assert set(result["created"]) == {str(conf), *(str(tmp_path / "work" / n) for n in "AB"),
                                      str(conf / "A.env"), str(conf / "B.env"), str(conf / "fleet.json")}  # fmt: skip
    assert not [name for name in os.listdir(conf) if name.startswith(".fleet_files.")]  # no temp file left


def test_second_run_changes_nothing(tmp_path):
    run_module(fleet(tmp_path))
    before = {p: os.stat(p).st_mtime_ns for p in (tmp_path / "agents").iterdir()}
    result, _ = run_module(fleet(tmp_path))
    assert result["changed"] is False and result["changed_paths"] == []
    assert {p: os.stat(p).st_mtime_ns for p in (tmp_path / "agents").iterdir()} == before


def test_a_changed_content_or_mode_is_put_back(tmp_path):
    run_module(fleet(tmp_path))
    env = tmp_path / "agents" / "A.env"
    env.write_text("edited by hand\n")
    os.chmod(tmp_path / "agents" / "fleet.json", 0o666)
    result, _ = run_module(fleet(tmp_path))
    assert result["updated"] == [str(env), str(tmp_path / "agents" / "fleet.json")]
    assert env.read_text() == f"TOKEN={SECRET}-A\n" and mode(env) == "0o600"
    assert mode(tmp_path / "agents" / "fleet.json") == "0o640"


def test_purge_removes_files_of_agents_that_left_and_nothing_else(tmp_path):
    run_module(fleet(tmp_path, names=("A", "B", "C")))
    conf = tmp_path / "agents"
    (conf / "notes.txt").write_text("kept: matches no pattern\n")
    (conf / "sub.env").mkdir()  # a directory is never purged
    result, _ = run_module(fleet(tmp_path, names=("A", "B")))
    assert result["removed"] == [str(conf / "C.env")]
    assert sorted(os.listdir(conf)) == ["A.env", "B.env", "fleet.json", "notes.txt", "sub.env"]
    assert (tmp_path / "work" / "C").is_dir()  # workspaces are not in a purge list: they stay


def test_check_mode_reports_and_changes_nothing(tmp_path):
    run_module(fleet(tmp_path, names=("A", "C")))
    env = tmp_path / "agents" / "A.env"
    env.write_text("old\n")
    result, _ = run_module(fleet(tmp_path, names=("A", "B")), check=True, diff=True)
    conf = tmp_path / "agents"
    assert result["changed"] is True
    assert str(conf / "B.env") in result["created"] and str(tmp_path / "work" / "B") in result["created"]
    assert str(env) in result["updated"] and result["removed"] == [str(conf / "C.env")]
    assert env.read_text() == "old\n" and (conf / "C.env").exists()
    assert not (conf / "B.env").exists() and not (tmp_path / "work" / "B").exists()
    assert f"created {conf / 'B.env'}" in result["diff"]["prepared"]


def test_content_never_appears_in_the_result(tmp_path):
    _, raw = run_module(fleet(tmp_path), diff=True)
    assert SECRET not in raw
    _, raw = run_module(fleet(tmp_path), check=True, diff=True)
    assert SECRET not in raw


def test_new_file_without_mode_is_private(tmp_path):
    path = tmp_path / "f"
    run_module({"files": [{"path": str(path), "content": "x"}]})
    assert mode(path) == "0o600"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"files": [{"path": "relative/f", "content": "x"}]}, "'relative/f' is not an absolute path"),
        (
            {"files": [{"path": "/tmp/x", "content": "one text"}, {"path": "/tmp/x", "content": "another"}]},
            "/tmp/x more than once",
        ),
    ],
)
def test_bad_arguments_fail_before_anything_is_written(args, message):
    result, _ = run_module(args)
    assert result["failed"] is True and message in result["msg"]


def test_a_missing_directory_is_named(tmp_path):
    result, _ = run_module({"files": [{"path": str(tmp_path / "no" / "f"), "content": "x"}]})
    assert result["failed"] is True and f"list {tmp_path / 'no'} in directories" in result["msg"]


def test_a_file_where_a_directory_should_be_is_refused(tmp_path):
    (tmp_path / "d").write_text("x")
    result, _ = run_module({"directories": [{"path": str(tmp_path / "d")}]})
    assert result["failed"] is True and "is not a directory" in result["msg"]


def _shape(options: dict, nested: str) -> dict:
    """Type, default, elements, required and nested options of each option (docs say suboptions, specs options)."""
    return {
        name: (
            o["type"],
            o.get("default"),
            o.get("elements"),
            o.get("required", False),
            _shape(o.get(nested) or {}, nested),
        )
        for name, o in options.items()
    }


def test_documentation_matches_the_argument_spec():
    """What validate-modules checks, without its venv: ansible-doc must not lie."""
    documented = _shape(yaml.safe_load(fleet_files.DOCUMENTATION)["options"], "suboptions")
    assert documented == _shape(fleet_files.ARGUMENT_SPEC, "options")
    assert fleet_files.ARGUMENT_SPEC["files"]["options"]["content"]["no_log"] is True
