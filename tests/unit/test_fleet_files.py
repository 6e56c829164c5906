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


def tree(root) -> dict:
    """Every path under root with its mode, owner, content and mtime: what a check-mode run must leave alone."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        found[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, path.is_file() and path.read_bytes())
    return found


def drift(tmp_path) -> None:
    """A converged fleet of A and C, then edited by hand: what the next run of A and B has to put right."""
    run_module(fleet(tmp_path, names=("A", "C")))
    (tmp_path / "agents" / "A.env").write_text("old\n")
    os.chmod(tmp_path / "agents" / "fleet.json", 0o666)
    os.chmod(tmp_path / "work" / "A", 0o755)


def test_check_mode_reports_the_same_changes_and_changes_nothing(tmp_path):
    drift(tmp_path)
    before = tree(tmp_path)
    checked, _ = run_module(fleet(tmp_path, names=("A", "B")), check=True, diff=True)
    assert tree(tmp_path) == before  # not a byte, mode or mtime
    conf = tmp_path / "agents"
    assert checked["changed"] is True
    assert checked["created"] == [str(tmp_path / "work" / "B"), str(conf / "B.env")]
    assert checked["updated"] == [str(tmp_path / "work" / "A"), str(conf / "A.env"), str(conf / "fleet.json")]
    assert checked["removed"] == [str(conf / "C.env")]
    diff = by_header(checked["diff"])
    assert diff[f"{tmp_path / 'work' / 'A'} (attributes)"] == (
        "state: directory\nmode: 0755\n",
        "state: directory\nmode: 0700\n",
    )
    assert diff[f"{conf / 'C.env'} (attributes)"] == ("state: file\n", "state: absent\n")
    applied, _ = run_module(fleet(tmp_path, names=("A", "B")), diff=True)
    for key in ("changed", "created", "updated", "removed", "changed_paths", "diff"):
        assert checked[key] == applied[key], key


def test_check_mode_on_a_host_where_the_owner_is_not_there_yet(tmp_path):
    """An earlier task (skipped in check mode) makes the user: check mode reports the change; a run fails first."""
    run_module(fleet(tmp_path))
    args = fleet(tmp_path)
    args["files"][-1]["owner"] = "central-mcp-no-such-user"
    before = tree(tmp_path)
    checked, _ = run_module(args, check=True, diff=True)
    assert not checked.get("failed") and tree(tmp_path) == before
    assert checked["updated"] == [str(tmp_path / "agents" / "fleet.json")]
    assert "owner: central-mcp-no-such-user" in checked["diff"][0]["after"]
    (tmp_path / "agents" / "A.env").write_text("old\n")  # a change listed before the bad entry
    before = tree(tmp_path)
    failed, _ = run_module(args)
    assert failed["failed"] is True and "'central-mcp-no-such-user' does not exist" in failed["msg"]
    assert "nothing was written" in failed["msg"] and tree(tmp_path) == before


def test_content_never_appears_in_the_result(tmp_path):
    _, raw = run_module(fleet(tmp_path), diff=True)
    assert SECRET not in raw
    drift(tmp_path)
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
        (
            {"files": [{"path": "/central-mcp-not-here/x", "content": "some text", "mode": "u=rw"}]},
            "mode 'u=rw' of /central-mcp-not-here/x is not an octal mode",
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


# ------------------------------------------------------------------ a failure half-way
def refuse(monkeypatch, function: str, suffix: str) -> None:
    """os.<function> fails with EACCES for a path ending in suffix (as a read-only mount or an immutable file)."""
    real = getattr(os, function)

    def refused(path, *args, **kwargs):
        target = args[0] if function == "rename" else path  # rename(tmp, path): the path it replaces
        if str(target).endswith(suffix):
            raise PermissionError(13, "Permission denied", str(target))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, function, refused)


@pytest.mark.parametrize(
    ("converged", "function", "suffix", "written"),
    [
        # The first change fails: nothing was written, and the run says so.
        (False, "makedirs", "/agents", []),
        # B.env fails after the directories and A.env: those are listed, B.env and what follows are not.
        (False, "rename", "/B.env", ["agents", "work/A", "work/B", "agents/A.env"]),
        # The directory was made, then refused its mode: it changed, so it is listed.
        (False, "chmod", "/work/B", ["agents", "work/A", "work/B"]),
        # On a host with agents A, B, C and A.env edited by hand: A.env and the fleet (A, B) are written,
        # then C's purge fails.
        (True, "unlink", "/C.env", ["agents/A.env", "agents/fleet.json"]),
    ],
)
def test_a_failure_half_way_lists_what_was_written(tmp_path, monkeypatch, converged, function, suffix, written):
    if converged:
        run_module(fleet(tmp_path, names=("A", "B", "C")))
        (tmp_path / "agents" / "A.env").write_text("edited by hand\n")
    refuse(monkeypatch, function, suffix)
    result, raw = run_module(fleet(tmp_path), diff=True)
    monkeypatch.undo()
    paths = [str(tmp_path / path) for path in written]
    assert result["failed"] is True and result["changed"] is bool(paths)
    assert result["changed_paths"] == paths  # all created here, or all updated
    assert result["created" if not converged else "updated"] == paths
    assert suffix in result["msg"] and "Permission denied" in result["msg"]
    assert ("Nothing was written" in result["msg"]) is (not paths)
    assert SECRET not in raw
    # What the failure left is what it said: a second run finishes the rest and changes nothing else.
    assert [p for p in paths if not os.path.exists(p)] == []
    again, _ = run_module(fleet(tmp_path))
    assert not set(again["changed_paths"]) & (set(paths) - {str(tmp_path / "work" / "B")})
    assert (tmp_path / "agents" / "B.env").read_text() == f"TOKEN={SECRET}-B\n"
    assert not [name for name in os.listdir(tmp_path / "agents") if name.startswith(".fleet_files.")]


# ------------------------------------------------------------------ the diff
def public_and_secret(tmp_path) -> dict:
    conf = tmp_path / "agents"
    return {
        "directories": [{"path": str(conf), "mode": "0750"}],
        "files": [
            {"path": str(conf / "unit.service"), "content": "[Service]\nExecStart=/bin/true\n", "mode": "0644"},
            {"path": str(conf / "A.env"), "content": f"TOKEN={SECRET}\n", "mode": "0600"},
            {"path": str(conf / "agents.json"), "content": f'{{"hash": "{SECRET}"}}\n', "mode": "0640"},
        ],
        "purge": [{"path": str(conf), "patterns": ["*.env", "*.txt"]}],
    }


def by_header(diff: list) -> dict:
    return {entry["before_header"]: (entry["before"], entry["after"]) for entry in diff}


def test_no_diff_without_diff_mode(tmp_path):
    for check in (False, True):
        result, _ = run_module(public_and_secret(tmp_path / str(check)), check=check)
        assert result["changed"] is True and "diff" not in result


def test_diff_shows_public_content_and_never_a_secret(tmp_path):
    conf = tmp_path / "agents"
    result, raw = run_module(public_and_secret(tmp_path), diff=True)
    diff = by_header(result["diff"])
    assert diff[str(conf / "unit.service")] == ("", "[Service]\nExecStart=/bin/true\n")  # no longer masked as no_log
    assert diff[f"{conf / 'unit.service'} (attributes)"] == ("state: absent\n", "state: file\nmode: 0644\n")
    assert diff[f"{conf} (attributes)"] == ("state: absent\n", "state: directory\nmode: 0750\n")
    for secret in ("A.env", "agents.json"):  # 0600 and 0640: not readable by every user
        before, after = diff[str(conf / secret)]
        assert before == "" and "is not shown; it changes" in after
    assert SECRET not in raw

    # Changed: the unit's old and new text; the secrets' only a line; a removed file's old text if it was public.
    args = public_and_secret(tmp_path)
    args["files"][0]["content"] = "[Service]\nExecStart=/bin/false\n"
    args["files"][1]["content"] = f"TOKEN={SECRET}-new\n"
    (conf / "old.txt").write_text("public notes\n")
    os.chmod(conf / "old.txt", 0o644)
    (conf / "B.env").write_text(f"TOKEN={SECRET}-B\n")
    os.chmod(conf / "B.env", 0o600)
    result, raw = run_module(args, check=True, diff=True)
    diff = by_header(result["diff"])
    assert diff[str(conf / "unit.service")] == ("[Service]\nExecStart=/bin/true\n", "[Service]\nExecStart=/bin/false\n")
    before, after = diff[str(conf / "A.env")]
    assert "is not shown" in before and "is not shown; it changes" in after and before != after
    assert diff[str(conf / "old.txt")] == ("public notes\n", "")
    assert "is not shown" in diff[str(conf / "B.env")][0] and diff[str(conf / "B.env")][1] == ""
    assert diff[f"{conf / 'B.env'} (attributes)"] == ("state: file\n", "state: absent\n")
    assert result["removed"] == [str(conf / "B.env"), str(conf / "old.txt")]
    assert SECRET not in raw


def test_a_file_made_private_shows_neither_its_old_nor_its_new_content(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"public": "once"}\n')
    os.chmod(path, 0o644)
    result, raw = run_module({"files": [{"path": str(path), "content": f"{SECRET}\n", "mode": "0600"}]}, diff=True)
    diff = by_header(result["diff"])
    assert "once" not in raw and SECRET not in raw
    assert diff[f"{path} (attributes)"] == ("state: file\nmode: 0644\n", "state: file\nmode: 0600\n")


def test_public_content_equal_to_a_secret_stays_masked(tmp_path):
    same = f"{SECRET}\n"
    files = [{"path": str(tmp_path / "public"), "content": same, "mode": "0644"},
             {"path": str(tmp_path / "private"), "content": same, "mode": "0600"}]  # fmt: skip
    result, raw = run_module({"files": files}, diff=True)
    assert SECRET not in raw
    masked = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"  # as Ansible masks a no_log value
    assert by_header(result["diff"])[str(tmp_path / "public")] == ("", masked)


def test_a_rewrite_keeps_the_mode_its_entry_leaves_out(tmp_path):
    path = tmp_path / "script"
    path.write_text("old\n")
    os.chmod(path, 0o755)
    result, _ = run_module({"files": [{"path": str(path), "content": "new\n"}]})
    assert result["updated"] == [str(path)] and path.read_text() == "new\n" and mode(path) == "0o755"


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


def test_documentation_says_what_check_and_diff_mode_do():
    attributes = yaml.safe_load(fleet_files.DOCUMENTATION)["attributes"]
    assert attributes["check_mode"]["support"] == "full"
    assert attributes["diff_mode"]["support"] == "full"
    assert attributes["platform"]["platforms"] == "posix"


# ------------------------------------------------------------ other users' links, recurse, validate
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="gives files to other uids (root only)")


@ROOT_ONLY
def test_recurse_gives_the_tree_of_the_old_owner_to_the_new_one_without_following_links(tmp_path):
    """A workspace made for the console user passes to the agent's own user with what is in it."""
    work, outside = tmp_path / "work", tmp_path / "outside"
    (work / "src").mkdir(parents=True)
    (work / "src" / "main.py").write_text("print()\n")
    (work / "theirs").write_text("not the old owner's\n")
    outside.write_text("root's file\n")
    (work / "link").symlink_to(outside)
    for path in (work, work / "src", work / "src" / "main.py", work / "link"):
        os.lchown(path, 4242, 4242)
    os.chown(work / "theirs", 4343, 4343)
    result, _ = run_module({"directories": [{"path": str(work), "owner": "4545", "group": "4545", "recurse": True}]})
    assert result["changed_paths"] == [str(work)]
    owners = {p: (os.lstat(work / p).st_uid, os.lstat(work / p).st_gid) for p in ("src", "src/main.py", "link")}
    assert owners == dict.fromkeys(("src", "src/main.py", "link"), (4545, 4545))
    assert os.stat(work / "theirs").st_uid == 4343, "only what had the old owner changes hands"
    assert os.stat(outside).st_uid == 0, "a link is changed itself, never what it points to"
    assert (os.stat(work).st_uid, os.stat(work).st_gid) == (4545, 4545)
    again, _ = run_module({"directories": [{"path": str(work), "owner": "4545", "group": "4545", "recurse": True}]})
    assert again["changed"] is False


@ROOT_ONLY
def test_a_listed_path_that_is_another_users_link_is_refused_before_anything_is_written(tmp_path):
    target = tmp_path / "shadow"
    target.write_text("root's\n")
    link = tmp_path / "agent.env"
    link.symlink_to(target)
    os.lchown(link, 4242, 4242)
    result, _ = run_module({"files": [{"path": str(link), "content": SECRET, "mode": "0600"}]})
    assert result["failed"] and "is a symbolic link owned by 4242" in result["msg"]
    assert target.read_text() == "root's\n" and os.path.islink(link)


def test_validate_refuses_bad_content_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "rule"
    path.write_text("good old\n")
    check = "/bin/sh -c 'grep -q good %s'"
    bad, _ = run_module({"files": [{"path": str(path), "content": "bad new\n", "validate": check}]})
    assert bad["failed"] and "refused the new content" in bad["msg"] and bad["changed_paths"] == []
    assert path.read_text() == "good old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rule"], "no temporary file is left behind"
    good, _ = run_module({"files": [{"path": str(path), "content": "good new\n", "validate": check}]})
    assert good["changed_paths"] == [str(path)] and path.read_text() == "good new\n"
