# SPDX-License-Identifier: Apache-2.0
"""host_info through its real main(), on this machine.

Paths, users, free space, the Python and the URL are read for real
(temporary files and links, this test's own user, a local HTTP server);
dpkg-query is the real one where the machine has it. systemctl is a stand-in
on PATH that prints what `systemctl show` printed for these properties on
the Molecule VM (this machine runs no systemd); the roles read real units
in the Molecule scenarios.
"""

from __future__ import annotations

import contextlib
import grp
import http.server
import io
import json
import os
import pwd
import re
import shutil
import sys
import threading

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from ansible_collections.central_mcp.agents.plugins.modules import host_info

USER = pwd.getpwuid(os.getuid())
# `systemctl show --property=Id,LoadState,ActiveState,UnitFileState,NeedDaemonReload -- ...`
# as systemd 252 (Debian 12) prints it: one block per unit, in the order asked.
SHOWN = {
    "central-mcp.service": "Id=central-mcp.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n"
    "NeedDaemonReload=no\n",
    "nope.service": "Id=nope.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\nNeedDaemonReload=no\n",
    "stale.service": "Id=stale.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n"
    "NeedDaemonReload=yes\n",
    "off.service": "Id=off.service\nLoadState=loaded\nActiveState=failed\nUnitFileState=disabled\n"
    "NeedDaemonReload=no\n",
}


def run_module(args: dict) -> dict:
    out = io.StringIO()
    with patch_module_args({**args, "_ansible_check_mode": True}):
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            host_info.main()
    return json.loads(out.getvalue())


@pytest.fixture
def fake_systemctl(tmp_path, monkeypatch):
    """A systemctl on PATH that answers `show` for the units of SHOWN, blank-line separated."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"shown = json.loads({json.dumps(json.dumps(SHOWN))})\n"
        "units = sys.argv[sys.argv.index('--') + 1:]\n"
        "assert sys.argv[1] == 'show' and sys.argv[2].startswith('--property='), sys.argv\n"
        "sys.stdout.write('\\n'.join(shown[u] for u in units))\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    (tmp_path / "systemd").mkdir()  # a host booted with systemd (this test machine may not be one)
    monkeypatch.setattr(host_info, "SYSTEMD_RUNTIME", str(tmp_path / "systemd"))


def test_paths_links_and_executables(tmp_path):
    binary = tmp_path / "claude-2.1"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (tmp_path / "claude").symlink_to(binary)
    (tmp_path / "current").symlink_to(tmp_path / "venvs" / "gone")
    paths = [str(binary), str(tmp_path / "claude"), str(tmp_path / "current"), str(tmp_path / "missing")]
    found = run_module({"paths": paths})["paths"]
    assert found[str(binary)] == {"exists": True, "link_target": "", "realpath": str(binary), "executable": True}
    assert found[str(tmp_path / "claude")]["link_target"] == str(binary)
    assert found[str(tmp_path / "claude")]["realpath"] == str(binary)
    # A dangling link: its target is told, and it does not exist.
    assert found[str(tmp_path / "current")]["link_target"] == str(tmp_path / "venvs" / "gone")
    assert not found[str(tmp_path / "current")]["exists"]
    assert found[str(tmp_path / "missing")] == {
        "exists": False,
        "link_target": "",
        "realpath": str(tmp_path / "missing"),
        "executable": False,
    }


def test_users_compared_with_what_is_asked():
    home, shell = USER.pw_dir, USER.pw_shell
    users = run_module(
        {
            "users": [
                {"name": USER.pw_name, "home": home, "shell": shell},
                {"name": "nobody", "shell": "/bin/false"},
                {"name": USER.pw_name + "-nobody-here"},
            ]
        }
    )["users"]
    me = users[USER.pw_name]
    assert me["exists"] and me["in_step"] and me["home"] == home and me["shell"] == shell
    assert grp.getgrgid(USER.pw_gid).gr_name in me["groups"]  # the primary group counts
    assert users["nobody"]["exists"] and not users["nobody"]["in_step"]  # another shell was asked for
    assert users[USER.pw_name + "-nobody-here"] == {
        "exists": False,
        "home": "",
        "shell": "",
        "groups": [],
        "in_step": False,
    }


def test_a_user_lacking_a_group_is_not_in_step():
    groups = run_module({"users": [{"name": USER.pw_name}]})["users"][USER.pw_name]["groups"]
    assert run_module({"users": [{"name": USER.pw_name, "groups": groups}]})["users"][USER.pw_name]["in_step"]
    missing = run_module({"users": [{"name": USER.pw_name, "groups": [*groups, "no-such-group-here"]}]})
    assert not missing["users"][USER.pw_name]["in_step"]


def test_units_running_enabled_and_stale(fake_systemctl):
    units = run_module({"units": list(SHOWN)})["units"]
    assert units["central-mcp.service"] == {
        "load_state": "loaded",
        "active_state": "active",
        "unit_file_state": "enabled",
        "need_daemon_reload": False,
        "running": True,
        "enabled": True,
    }
    assert not units["nope.service"]["running"] and units["nope.service"]["load_state"] == "not-found"
    # Running an old copy of its unit file: not counted as running, so the role starts it with a reload.
    assert units["stale.service"]["need_daemon_reload"] and not units["stale.service"]["running"]
    assert not units["off.service"]["running"] and not units["off.service"]["enabled"]


def test_units_on_a_host_without_systemd_fail_saying_so(tmp_path, monkeypatch):
    monkeypatch.setattr(host_info, "SYSTEMD_RUNTIME", str(tmp_path / "absent"))
    out = io.StringIO()
    with patch_module_args({"units": ["central-mcp.service"]}), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            host_info.main()
    result = json.loads(out.getvalue())
    assert result["failed"] and "was not booted with systemd (its PID 1 is " in result["msg"]
    assert "['central-mcp.service'] need it" in result["msg"] and "set launcher_persistent_root" in result["msg"]


def test_without_units_a_host_without_systemd_is_described(tmp_path, monkeypatch):
    """The launcher's look at a pod asks no unit: it learns there is no systemd, and the PID 1 there is."""
    monkeypatch.setattr(host_info, "SYSTEMD_RUNTIME", str(tmp_path / "absent"))
    result = run_module({})
    assert result["systemd"] is False and result["units"] == {} and result["pid1"]
    monkeypatch.setattr(host_info, "SYSTEMD_RUNTIME", str(tmp_path))
    assert run_module({})["systemd"] is True


def test_free_space_of_existing_paths_only(tmp_path):
    free = run_module({"free_space": [str(tmp_path), str(tmp_path / "not-yet")]})["free_bytes"]
    stat = os.statvfs(tmp_path)
    assert list(free) == [str(tmp_path)]
    assert abs(free[str(tmp_path)] - stat.f_bavail * stat.f_frsize) < 64 * 2**20  # the same disk, moments apart


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="no dpkg on this machine")
def test_missing_packages_by_dpkg():
    result = run_module({"packages": ["dpkg", "central-mcp-no-such-package"]})
    assert result["missing_packages"] == ["central-mcp-no-such-package"]


def test_python_it_runs_on():
    python = run_module({})["python"]
    assert python["executable"] == sys.executable
    assert python["version"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert python["venv_support"] is True  # this test's own venv was made with ensurepip


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_url_status(server):
    assert run_module({"url": server + "/health"})["url_status"] == 200
    assert run_module({"url": server + "/busy"})["url_status"] == 503
    closed = run_module({"url": "http://127.0.0.1:9/health", "url_timeout": 1})
    assert closed["url_status"] == 0 and closed["url_error"]
    for bad in ("ftp://127.0.0.1/health", "http://127.0.0.1:99999/health", "not a url"):
        answer = run_module({"url": bad})
        assert answer["url_status"] == 0 and answer["url_error"], bad


def test_changes_nothing_and_says_so(tmp_path):
    result = run_module({"paths": [str(tmp_path)]})
    assert result["changed"] is False
    assert "url_status" not in result  # only asked for a URL


# ------------------------------------------------------------------ ansible-doc
STANDARD_RETURNS = {"changed", "failed", "msg"}  # every module's; RETURN does not list them


def resolves(documented: dict, name: str) -> bool:
    """Whether RV(name) or O(name) names a documented entry, by the rule antsibull-docs lints with.

    Parts are separated by dots; `[]` marks the elements of a list and may follow nothing else
    (antsibull also allows it after a dict as the very last part: not needed here). A dict keyed
    by path, such as paths, documents its values' keys directly: paths.link_target.
    """
    node = {"type": "dict", "contains": documented}
    for part in name.split("=", 1)[0].split("."):
        key, listed = part.removesuffix("[]"), part.endswith("[]")
        node = (node.get("contains") or node.get("suboptions") or {}).get(key)
        if node is None or (listed and node.get("type") != "list"):
            return False
    return True


def test_every_reference_in_the_documentation_resolves():
    """antsibull-docs lint-collection-docs --plugin-docs, for this module's O() and RV()."""
    returns = {**yaml.safe_load(host_info.RETURN), **{name: {"type": "raw"} for name in STANDARD_RETURNS}}
    options = yaml.safe_load(host_info.DOCUMENTATION)["options"]
    text = host_info.DOCUMENTATION + host_info.RETURN
    for kind, documented in (("RV", returns), ("O", options)):
        names = re.findall(rf"\b{kind}\(([^)]+)\)", text)
        assert names, kind
        assert [name for name in names if not resolves(documented, name)] == [], kind


def test_documentation_says_what_check_and_diff_mode_do():
    attributes = yaml.safe_load(host_info.DOCUMENTATION)["attributes"]
    assert attributes["check_mode"]["support"] == "full"  # it only reads
    assert attributes["diff_mode"]["support"] == "none"  # nothing changes, nothing to diff
    assert attributes["platform"]["platforms"] == "posix"
