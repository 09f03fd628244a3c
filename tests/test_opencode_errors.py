"""OpenCode's failures reach people as one sentence with the fix; commands whose outcome is a failure exit
non-zero (README: "Exit codes")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import CORE_SCRIPT, git, make_repo
from palot import AgentStatus, Palot
from palot.opencode.failures import error_sentence, http_error_detail

PALOT = Path(sys.executable).parent / "palot"

#: What OpenCode 1.18.33 sent for a prompt with an unknown model (recorded from a real server).
BUN_TRACE = ("ProviderModelNotFoundError: Model not found: nosuch/model.\n"
             "    at <anonymous> (/$bunfs/root/chunk-dn9bw1yz.js:439:94416)\n"
             "    at SessionPrompt.getModel (/$bunfs/root/chunk-p1c43e92.js:1142:11505)\n")


def test_a_stack_trace_becomes_one_sentence_with_the_fix():
    text = error_sentence("UnknownError", {"message": BUN_TRACE})
    assert text == "Model not found: nosuch/model — choose a model from your OpenCode config (`palot models` lists them)"
    assert error_sentence("APIError", {"message": "slow down", "statusCode": 429}).startswith(
        "the model provider answered 429: slow down — ")
    assert error_sentence("ProviderAuthError", {}).startswith("provider auth error — ")
    assert http_error_detail('{"name":"UnknownError","data":{"message":"Unexpected server error."}}') == \
        "Unexpected server error."
    assert http_error_detail("plain\n    at x (y.js:1:2)") == "plain"


async def test_a_model_error_in_a_turn_is_shown_without_the_stack_trace(palot: Palot, repo: Path):
    agent = await palot.agents.spawn(repo, "write hello")
    await palot.agents.wait(agent.id, timeout=60)
    # The model is checked before Palot sends a prompt, so this one goes to OpenCode directly, as another
    # client (the OpenCode TUI) could send it.
    await palot.server.client.prompt_async(agent.session_id, agent.environment.directory, "again",
                                           model="nosuch/model")
    failed = await palot.agents.wait(agent.id, timeout=30, until=[AgentStatus.FAILED])
    assert failed.status.value == "failed"
    assert failed.error.startswith("Model not found: nosuch/model — choose a model"), failed.error
    assert "$bunfs" not in failed.error and "\n" not in failed.error
    messages = await palot.agents.messages(agent.id)
    assert all("$bunfs" not in (m.error or "") for m in messages)


@pytest.fixture
def home(tmp_path: Path, opencode_bin: Path):
    env = {**os.environ, "PALOT_HOME": str(tmp_path / "home")}
    up = _palot(env, "up", "--scripted", str(CORE_SCRIPT), "--isolated", "--json")
    assert up.returncode == 0, up.stderr
    try:
        yield env
    finally:
        _palot(env, "down")


def _palot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PALOT), *args], env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)


def test_cli_refuses_an_unknown_model_before_creating_anything_and_exits_2(home: dict[str, str], tmp_path: Path):
    repo = make_repo(tmp_path / "project")
    out = _palot(home, "agents", "spawn", str(repo), "write hello", "--model", "nosuch/model", "--wait")
    assert out.returncode == 2
    assert "model 'nosuch/model' is not configured" in out.stderr and "palot-scripted/scripted" in out.stderr
    assert "Traceback" not in out.stderr
    assert git(repo, "branch", "--list").strip() == "* main"
    assert json.loads(_palot(home, "agents", "list", "--json").stdout) == []
    models = _palot(home, "models", str(repo))
    assert models.returncode == 0 and models.stdout.split() == ["palot-scripted/scripted"]


def test_cli_exit_codes_say_how_the_agent_ended(home: dict[str, str], tmp_path: Path):
    repo = make_repo(tmp_path / "project")
    done = _palot(home, "agents", "spawn", str(repo), "write hello", "--wait", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "completed"
    # The core script answers "provoke an error" with a provider error: the agent fails, and so does the command.
    failed = _palot(home, "agents", "spawn", str(repo), "provoke an error", "--wait", "--json")
    agent = json.loads(failed.stdout)
    assert (failed.returncode, agent["status"]) == (1, "failed"), failed.stderr
    assert _palot(home, "agents", "wait", agent["id"]).returncode == 1
    slow = _palot(home, "agents", "spawn", str(repo), "slow task", "--wait", "--timeout", "1", "--json")
    assert (slow.returncode, json.loads(slow.stdout)["status"]) == (3, "running"), slow.stderr


def test_a_palot_home_that_is_a_file_is_a_clear_error_not_a_traceback(tmp_path: Path):
    not_a_folder = tmp_path / "palot-home"
    not_a_folder.write_text("oops")
    out = _palot({**os.environ, "PALOT_HOME": str(not_a_folder)}, "agents", "list")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"cannot use {not_a_folder} as its data directory" in out.stderr and "PALOT_HOME" in out.stderr
    cloud = tmp_path / "home2"
    cloud.mkdir()
    (cloud / "cloud.json").write_text("{not json")
    out = _palot({**os.environ, "PALOT_HOME": str(cloud)}, "cloud", "status", "--json")
    assert out.returncode == 2 and json.loads(out.stdout)["error"]["code"] == "cloud_not_configured"


def test_an_answer_of_an_unexpected_shape_is_a_clear_error_not_a_validation_traceback():
    from palot.errors import OpenCodeError
    from palot.opencode.client import _health, _parse, _sessions

    request = httpx.Request("GET", "http://127.0.0.1:4096/global/health")
    with pytest.raises(OpenCodeError) as e:
        _parse(_health, httpx.Response(200, content=b'{"healthy": "perhaps"}', request=request))
    assert str(e.value).startswith("OpenCode answered GET /global/health with an unexpected shape (healthy: ")
    assert "palot doctor" in (e.value.fix or "")
    with pytest.raises(OpenCodeError, match="unexpected shape"):
        _parse(_sessions, httpx.Response(200, content=b"<html>proxy error</html>", request=request))
