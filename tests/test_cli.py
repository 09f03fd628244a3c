"""The `palot` command line, run as a user runs it: the installed console script in a subprocess.

One shared server for the module (``palot up`` with the scripted model, in a
private ``PALOT_HOME``), one agent spawned through the CLI, then every command
on it in the order a person would use them; ``palot down`` always runs at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CORE_SCRIPT, git, make_repo

PALOT = Path(sys.executable).parent / "palot"
UP = ["up", "--scripted", str(CORE_SCRIPT), "--isolated", "--json"]


def process_running(pid: int) -> bool:
    """True if ``pid`` is a live process (an unreaped zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Cli:
    """Runs ``palot`` with its own PALOT_HOME and the pinned OpenCode."""

    def __init__(self, home: Path, opencode_bin: Path) -> None:
        self.home = home
        self.env = {**os.environ, "PALOT_HOME": str(home)}

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PALOT), *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def json(self, *args: str, timeout: float = 90) -> Any:
        """Run a command that must succeed and return its JSON output."""
        out = self.run(*args, timeout=timeout)
        assert out.returncode == 0, f"palot {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
        return json.loads(out.stdout)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, opencode_bin: Path) -> Iterator[Cli]:
    cli = Cli(tmp_path_factory.mktemp("cli") / "palot-home", opencode_bin)
    try:
        yield cli
    finally:
        cli.run("down", timeout=60)  # never leave a server behind, whatever failed


@pytest.fixture(scope="module")
def server(cli: Cli) -> dict[str, Any]:
    """What the first `palot up` printed."""
    return cli.json(*UP)


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("cli") / "project")


@pytest.fixture(scope="module")
def spawned(cli: Cli, server: dict[str, Any], repo_dir: Path) -> dict[str, Any]:
    """The agent `palot agents spawn --wait --json` printed."""
    return cli.json("agents", "spawn", str(repo_dir), "write hello please", "--wait", "--timeout", "60", "--json")


# --- the server ---------------------------------------------------------------------------------


def test_up_starts_a_shared_server_and_prints_where(server: dict[str, Any]):
    assert server["url"].startswith("http://127.0.0.1:")
    assert process_running(server["pid"])
    assert (server["attached"], server["scripted"], server["isolated"]) == (False, True, True)


def test_up_again_attaches_to_the_running_server(cli: Cli, server: dict[str, Any]):
    again = cli.json(*UP)
    assert again["attached"] is True
    assert (again["url"], again["pid"]) == (server["url"], server["pid"])


def test_up_with_other_settings_refuses_and_says_how_to_fix_it(cli: Cli, server: dict[str, Any]):
    out = cli.run("up", "--json")
    assert out.returncode == 2
    error = json.loads(out.stdout)["error"]
    assert error["code"] == "invalid_state"
    assert "palot down" in error["fix"]
    assert process_running(server["pid"])  # the running server is left alone


# --- one agent, start to finish -------------------------------------------------------------------


def test_spawn_and_wait_prints_the_completed_agent(spawned: dict[str, Any], repo_dir: Path):
    assert spawned["id"].startswith("ag_")
    assert spawned["status"] == "completed", spawned["error"]
    assert spawned["project_path"] == str(repo_dir)
    assert spawned["environment"]["branch"] == "palot/write-hello-please"
    worktree = Path(spawned["environment"]["directory"])
    assert (worktree / "hello.txt").read_text() == "hello from the agent\n"


def test_list_shows_the_agent(cli: Cli, spawned: dict[str, Any]):
    agents = cli.json("agents", "list", "--json")
    assert [(a["id"], a["status"], a["title"]) for a in agents] == [
        (spawned["id"], "completed", "write hello please")]


def test_show_prints_the_agent_with_its_activity(cli: Cli, spawned: dict[str, Any]):
    shown = cli.json("agents", "show", spawned["id"], "--json")
    assert shown["agent"]["id"] == spawned["id"] and shown["agent"]["status"] == "completed"
    assert [(i["kind"], i["target"], i["summary"]) for i in shown["activity"]] == [
        ("write", "hello.txt", "1 lines"), ("message", "", "Created hello.txt.")]


def test_diff_shows_the_new_file(cli: Cli, spawned: dict[str, Any]):
    diff = cli.json("agents", "diff", spawned["id"], "--json")
    assert [(f["path"], f["status"], f["additions"], f["deletions"]) for f in diff["files"]] == [
        ("hello.txt", "added", 1, 0)]
    assert "+hello from the agent" in diff["patch"]


def test_apply_puts_the_agents_file_in_the_users_checkout(cli: Cli, spawned: dict[str, Any], repo_dir: Path):
    out = cli.run("agents", "apply", spawned["id"])
    assert out.returncode == 0, out.stderr
    assert "hello.txt" in out.stdout
    assert (repo_dir / "hello.txt").read_text() == "hello from the agent\n"
    assert git(repo_dir, "status", "--porcelain") == "?? hello.txt\n"  # left uncommitted for the user


def test_archive_hides_the_agent_unless_all_are_listed(cli: Cli, spawned: dict[str, Any]):
    archived = cli.json("agents", "archive", spawned["id"], "--json")
    assert archived["status"] == "archived"
    assert not Path(spawned["environment"]["directory"]).exists()
    assert cli.json("agents", "list", "--json") == []
    assert [(a["id"], a["status"]) for a in cli.json("agents", "list", "--all", "--json")] == [
        (spawned["id"], "archived")]


# --- doctor and errors ----------------------------------------------------------------------------


def test_doctor_reports_every_check_ok_and_the_running_server(cli: Cli, server: dict[str, Any], opencode_bin: Path):
    report = cli.json("doctor", "--json")
    checks = {c["name"]: c for c in report["checks"]}
    assert {"opencode", "ripgrep", "git", "data dir"} <= set(checks)
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert str(opencode_bin) in checks["opencode"]["detail"]
    assert checks["data dir"]["detail"] == str(cli.home.resolve())
    assert report["server"] == {"url": server["url"], "pid": server["pid"]}


def test_an_unknown_agent_exits_2_with_the_error_and_its_fix(cli: Cli, server: dict[str, Any]):
    out = cli.run("agents", "show", "nope")
    assert out.returncode == 2
    assert "error:" in out.stderr and "nope" in out.stderr
    assert "fix:" in out.stderr
    assert out.stdout == ""


def test_spawning_in_a_missing_path_prints_a_json_error(cli: Cli, server: dict[str, Any]):
    out = cli.run("agents", "spawn", "/nonexistent", "x", "--json")
    assert out.returncode == 2
    error = json.loads(out.stdout)["error"]
    assert error["code"] == "path_not_found"
    assert "/nonexistent" in error["message"] and error["fix"]


# --- last: stopping -------------------------------------------------------------------------------


def test_down_stops_the_server(cli: Cli, server: dict[str, Any]):
    out = cli.run("down")
    assert out.returncode == 0, out.stderr
    assert not process_running(server["pid"])
    assert cli.json("doctor", "--json")["server"] is None
    assert "no Palot server was running" in cli.run("down").stdout
