"""The `palot` command line, run as a user runs it: the installed console script in a subprocess.

One Palot service for the module (``palot serve`` with the scripted model, in a private ``PALOT_HOME``),
which every command reaches as a client; one agent spawned through the CLI, then every command on it in
the order a person would use them; ``palot down`` always runs at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from palot.endpoint import Endpoint
from palot.paths import PalotPaths

from conftest import CORE_SCRIPT, git, make_repo
from service_support import start_service, stop_service, wait_ready

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

    def __init__(self, home: Path) -> None:
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
    cli = Cli(tmp_path_factory.mktemp("cli") / "palot-home")
    try:
        yield cli
    finally:
        cli.run("down", timeout=60)  # never leave a service or server behind, whatever failed


@pytest.fixture(scope="module")
def service(cli: Cli) -> Iterator[dict[str, Any]]:
    """The module's Palot service (scripted, isolated): its status as the service reports it."""
    proc = start_service(cli.home)

    async def ready() -> dict[str, Any]:
        client = await wait_ready(cli.home, proc)
        try:
            return (await client.status()).model_dump(mode="json")
        finally:
            await client.close()

    try:
        yield asyncio.run(ready())
    finally:
        asyncio.run(stop_service(cli.home, proc))


@pytest.fixture(scope="module")
def server(cli: Cli, service: dict[str, Any]) -> dict[str, Any]:
    """What `palot up` printed (with the running service's settings)."""
    return cli.json(*UP)


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("cli") / "project")


@pytest.fixture(scope="module")
def spawned(cli: Cli, server: dict[str, Any], repo_dir: Path) -> dict[str, Any]:
    """The agent `palot agents spawn --wait --json` printed."""
    return cli.json("agents", "spawn", str(repo_dir), "write hello please", "--wait", "--timeout", "60", "--json")


# --- the service and its server -----------------------------------------------------------------


def test_up_reports_the_running_service_and_its_server(server: dict[str, Any], service: dict[str, Any]):
    assert server["url"].startswith("http://127.0.0.1:") and server["url"] == service["opencode_url"]
    assert server["pid"] == service["opencode_pid"] and process_running(server["pid"])
    assert (server["attached"], server["scripted"], server["isolated"]) == (True, True, True)
    assert server["service"]["pid"] == service["pid"] and server["service"]["version"] == service["palot_version"]


def test_up_with_other_settings_refuses_and_says_how_to_fix_it(cli: Cli, server: dict[str, Any],
                                                               service: dict[str, Any]):
    out = cli.run("up", "--json")
    assert out.returncode == 2
    error = json.loads(out.stdout)["error"]
    assert error["code"] == "invalid_state"
    assert "palot down" in error["fix"]
    assert process_running(server["pid"]) and process_running(service["pid"])  # left alone


def test_service_status_prints_the_service_and_its_opencode_server(cli: Cli, service: dict[str, Any]):
    status = cli.json("service", "status", "--json")
    assert status["running"] is True
    assert (status["pid"], status["palot_version"], status["opencode_pid"], status["opencode_url"]) == (
        service["pid"], service["palot_version"], service["opencode_pid"], service["opencode_url"])
    assert status["opencode_connected"] is True and status["opencode_restarts"] == 0
    assert status["socket"] == str(Endpoint(PalotPaths(cli.home)).socket)
    text = cli.run("service", "status")
    assert text.returncode == 0, text.stderr
    for shown in (f"pid {service['pid']}", status["socket"], service["opencode_url"], "connected", "agents",
                  "clients"):
        assert shown in text.stdout


def test_service_logs_prints_the_end_of_the_service_log(cli: Cli, service: dict[str, Any]):
    out = cli.run("service", "logs", "-n", "1000")
    assert out.returncode == 0, out.stderr
    assert f"ready on {Endpoint(PalotPaths(cli.home)).socket} (pid {service['pid']})" in out.stdout
    assert len(cli.run("service", "logs", "-n", "1").stdout.splitlines()) == 1


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


def test_messages_and_audit_show_the_conversation_and_what_happened(cli: Cli, spawned: dict[str, Any]):
    messages = cli.json("agents", "messages", spawned["id"], "--json")
    assert (messages[0]["role"], messages[0]["text"]) == ("user", "write hello please")
    assert messages[-1]["text"] == "Created hello.txt."
    text = cli.run("agents", "messages", spawned["id"]).stdout
    assert "write hello please" in text and "Created hello.txt." in text
    audit = cli.json("agents", "audit", spawned["id"], "--json")
    assert audit and {e["agent_id"] for e in audit} == {spawned["id"]}
    assert ("running", "completed") in [(e["detail"].get("from"), e["detail"].get("to")) for e in audit]


def test_projects_and_models_come_from_the_service(cli: Cli, spawned: dict[str, Any], repo_dir: Path):
    assert [p["path"] for p in cli.json("projects", "--json")] == [str(repo_dir)]
    models = cli.json("models", str(repo_dir), "--json")["models"]
    assert any(m.startswith("palot-scripted/") for m in models), models


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


def test_pause_and_resume_of_a_worktree_agent_exit_2_naming_the_fix(cli: Cli, spawned: dict[str, Any]):
    for command in ("pause", "resume"):
        out = cli.run("agents", command, spawned["id"])
        assert out.returncode == 2, out.stdout
        assert "only cloud agents" in out.stderr and f"palot agents move {spawned['id']} cloud" in out.stderr
    assert cli.json("agents", "show", spawned["id"], "--json")["agent"]["status"] == "completed"


def test_archive_hides_the_agent_unless_all_are_listed(cli: Cli, spawned: dict[str, Any]):
    archived = cli.json("agents", "archive", spawned["id"], "--json")
    assert archived["status"] == "archived"
    assert not Path(spawned["environment"]["directory"]).exists()
    assert cli.json("agents", "list", "--json") == []
    assert [(a["id"], a["status"]) for a in cli.json("agents", "list", "--all", "--json")] == [
        (spawned["id"], "archived")]


def test_spawn_shows_progress_and_watch_follows_the_agent_until_it_settles(cli: Cli, spawned: dict[str, Any],
                                                                          repo_dir: Path):
    out = cli.run("agents", "spawn", str(repo_dir), "write notes please")
    assert out.returncode == 0, out.stderr
    assert "creating worktree on branch palot/write-notes-please" in out.stderr  # progress, on stderr
    assert "write notes please" in out.stdout
    watched = cli.run("agents", "watch", "palot/write-notes-please", "--json")
    assert watched.returncode == 0, watched.stderr
    events = [json.loads(line) for line in watched.stdout.splitlines()]
    assert events[-1]["type"] == "agent.updated" and events[-1]["agent"]["status"] == "completed"
    agent_id = events[-1]["agent_id"]
    assert {e["agent_id"] for e in events} == {agent_id}  # only the watched agent's events
    text = cli.run("agents", "watch", agent_id)  # settled: prints its status and returns at once
    assert text.returncode == 0 and "completed" in text.stdout
    archived = cli.run("agents", "watch", spawned["id"], timeout=30)  # archived agents are not replayed
    assert archived.returncode == 0 and "archived" in archived.stdout

    # `wait` on a completed agent (by its branch) returns at once with exit 0.
    out = cli.run("agents", "wait", "palot/write-notes-please", "--timeout", "30", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "completed"


# --- doctor and errors ----------------------------------------------------------------------------


def test_doctor_reports_every_check_ok_the_running_server_and_service(cli: Cli, server: dict[str, Any],
                                                                      service: dict[str, Any], opencode_bin: Path):
    report = cli.json("doctor", "--json")
    checks = {c["name"]: c for c in report["checks"]}
    assert {"opencode", "ripgrep", "git", "data dir"} <= set(checks)
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert str(opencode_bin) in checks["opencode"]["detail"]
    assert checks["data dir"]["detail"] == str(cli.home.resolve())
    assert report["server"] == {"url": server["url"], "pid": server["pid"]}
    assert (report["service"]["running"], report["service"]["pid"], report["service"]["version"]) == (
        True, service["pid"], service["palot_version"])
    assert f"pid {service['pid']}" in cli.run("doctor").stdout


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


def test_a_bad_option_is_refused_with_the_field_and_its_fix(cli: Cli, spawned: dict[str, Any], repo_dir: Path):
    out = cli.run("agents", "spawn", str(repo_dir), "x", "--env", "container", "--cpus", "-1", "--json")
    assert out.returncode == 2
    error = json.loads(out.stdout)["error"]
    assert error["code"] == "invalid_input" and "options.cpus" in error["message"] and error["fix"]


# --- last: stopping -------------------------------------------------------------------------------


def test_down_stops_the_service_and_the_server(cli: Cli, server: dict[str, Any], service: dict[str, Any]):
    out = cli.run("down")
    assert out.returncode == 0, out.stderr
    assert f"stopped the Palot service (pid {service['pid']})" in out.stdout
    assert not process_running(service["pid"]) and not process_running(server["pid"])
    report = cli.json("doctor", "--json")
    assert report["server"] is None and report["service"]["running"] is False  # doctor starts nothing
    assert "no Palot server was running" in cli.run("down").stdout
    status = cli.run("service", "status")
    assert status.returncode == 1 and "not running" in status.stdout
