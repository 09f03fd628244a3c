"""Cloud agents end to end through Palot's real Worker (routing, bearer auth, per-environment password,
proxy) run by ``wrangler dev`` against the private Docker engine: spawn, a scripted tool call writes a file,
diff, apply, archive; moves worktree → cloud → worktree; and the errors a user meets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cloud_support import PROBE, cloud_palot, cloud_worker, worker_env  # noqa: F401  (fixtures)
from conftest import git, make_repo
from migration_support import capture, make_work, tree

from palot import AgentStatus, Palot
from localdev import LocalWorker
from palot.cloud.worker import CloudAuthFailed, CloudEnvironmentGone, CloudUnreachable
from palot.errors import InvalidInput

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_cloud_agent_writes_a_file_that_is_diffed_applied_and_archived(cloud_palot: Palot, tmp_path: Path):
    palot = cloud_palot
    repo = make_repo(tmp_path / "repo")
    steps: list[str] = []
    agent = await palot.agents.spawn(repo, "write hello", environment="cloud", progress=steps.append)
    assert agent.environment.type == "cloud" and agent.environment.directory == "/workspace"
    done = await palot.agents.wait(agent.id, timeout=120)  # the status comes from events through the Worker
    assert done.status == AgentStatus.COMPLETED, done.error
    assert any("hello" in a.summary for a in await palot.agents.activity(agent.id))

    diff = await palot.agents.diff(agent.id)
    assert [(f.path, f.status) for f in diff.files] == [("hello.txt", "added")]
    assert "+hello from the agent" in diff.patch
    env = await palot.agents.environment(agent.id)
    assert env.state == "running"
    assert env.resources is not None and env.resources["instance_type"]
    assert env.resources["running_seconds"] > 0 and env.resources["cost_usd_estimate"] is not None

    assert await palot.agents.apply(agent.id) == ["hello.txt"]
    assert (repo / "hello.txt").read_text() == "hello from the agent\n"

    env_id = palot.store.get_agent(agent.id).environment_id
    await palot.agents.archive(agent.id)
    # The work is kept on the branch in the user's repository; the cloud environment is gone.
    branch = agent.environment.branch
    assert git(repo, "show", f"{branch}:hello.txt") == "hello from the agent\n"
    with pytest.raises(CloudEnvironmentGone):
        await palot.backends["cloud"].worker().status(env_id)


async def test_move_worktree_to_cloud_and_back_keeps_code_history_and_conversation(cloud_palot: Palot,
                                                                                   tmp_path: Path):
    palot = cloud_palot
    repo = make_repo(tmp_path / "repo", {"README.md": "# sample project\n", "old.txt": "to be deleted\n"})
    agent = await palot.agents.spawn(repo, "write hello")
    assert (await palot.agents.wait(agent.id, timeout=90)).status == AgentStatus.COMPLETED
    await palot.agents.prompt(agent.id, "write notes")
    assert (await palot.agents.wait(agent.id, timeout=90)).status == AgentStatus.COMPLETED
    worktree = Path(agent.environment.directory)
    make_work(worktree)
    (worktree / "old.txt").unlink()
    before = await capture(palot, agent.id)
    users = sum(1 for role, _ in before.messages if role == "user")
    dev_ports = (await palot.agents.environment(agent.id)).dev_ports
    assert dev_ports

    steps: list[str] = []
    result = await palot.agents.move(agent.id, "cloud", progress=steps.append)
    assert result.state == "completed" and result.target == "cloud", result
    assert len(steps) == 9
    moved = await palot.agents.get(agent.id)
    assert moved.environment.type == "cloud" and moved.session_id == agent.session_id
    # Its dev-server ports went with it: recorded, and in the cloud environment's own variables.
    assert (await palot.agents.environment(agent.id)).dev_ports == dev_ports
    shown = await palot.backends["cloud"].worker().run(result.environment_id, ["printenv", "PALOT_PORTS"], "reading")
    assert shown.strip() == dev_ports
    in_cloud = await capture(palot, agent.id)
    assert in_cloud.files == before.files  # byte for byte: uncommitted, untracked, deleted and binary
    assert in_cloud.status == before.status and in_cloud.log == before.log
    assert in_cloud.messages == before.messages
    assert not worktree.exists()

    # The model in the cloud was sent the whole conversation.
    await palot.agents.prompt(agent.id, "recall the conversation")
    assert (await palot.agents.wait(agent.id, timeout=120)).status == AgentStatus.COMPLETED
    last = (await palot.agents.messages(agent.id))[-1]
    assert f"I remember the first request: write hello. This conversation has {users + 1} user messages" in last.text

    before_back = await capture(palot, agent.id)
    cloud_env = palot.store.get_agent(agent.id).environment_id
    result = await palot.agents.move(agent.id, "worktree")
    assert result.state == "completed" and result.target == "worktree", result
    back = await capture(palot, agent.id)
    assert back.files == before_back.files and back.status == before_back.status
    assert back.log == before_back.log and back.messages == before_back.messages
    with pytest.raises(CloudEnvironmentGone):  # the source was cleaned up
        await palot.backends["cloud"].worker().status(cloud_env)
    assert tree(repo) == {"README.md": b"# sample project\n", "old.txt": b"to be deleted\n"}


async def test_unreachable_worker_and_wrong_token_are_clear_errors_that_change_nothing(
        cloud_palot: Palot, cloud_worker: LocalWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    palot = cloud_palot
    repo = make_repo(tmp_path / "repo")
    agents_before = len(palot.agents.list(include_archived=True))
    envs_before = sorted(p.name for p in palot.paths.environments.iterdir()) if palot.paths.environments.exists() \
        else []

    monkeypatch.setenv("PALOT_CLOUD_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("PALOT_CLOUD_TOKEN", cloud_worker.token)
    with pytest.raises(CloudUnreachable) as unreachable:
        await palot.agents.spawn(repo, "write hello", environment="cloud")
    assert "unreachable" in unreachable.value.message and "palot cloud" in (unreachable.value.fix or "")

    monkeypatch.setenv("PALOT_CLOUD_URL", cloud_worker.url)
    monkeypatch.setenv("PALOT_CLOUD_TOKEN", "not-the-token")
    with pytest.raises(CloudAuthFailed) as refused:
        await palot.agents.spawn(repo, "write hello", environment="cloud")
    assert "refused" in refused.value.message and "--token" in (refused.value.fix or "")
    assert "not-the-token" not in str(refused.value)

    monkeypatch.delenv("PALOT_CLOUD_URL")
    monkeypatch.delenv("PALOT_CLOUD_TOKEN")
    with pytest.raises(InvalidInput):
        await palot.agents.spawn(repo, "write hello", environment="cloud", options={"memory": "1g"})

    assert len(palot.agents.list(include_archived=True)) == agents_before
    assert (sorted(p.name for p in palot.paths.environments.iterdir()) if palot.paths.environments.exists()
            else []) == envs_before
    assert git(repo, "branch", "--list", "palot/*") == ""


async def test_an_environment_destroyed_behind_palots_back_is_reported_as_gone(cloud_palot: Palot, tmp_path: Path):
    palot = cloud_palot
    repo = make_repo(tmp_path / "repo")
    agent = await palot.agents.spawn(repo, "write hello", environment="cloud")
    assert (await palot.agents.wait(agent.id, timeout=120)).status == AgentStatus.COMPLETED
    env_id = palot.store.get_agent(agent.id).environment_id
    assert [f.path for f in (await palot.agents.diff(agent.id)).files] == ["hello.txt"]  # synced to the mirror
    await palot.backends["cloud"].worker().destroy(env_id)

    env = await palot.agents.environment(agent.id)
    assert env.state == "missing"
    # The diff still shows the last synced state, and says what happened and what to do.
    diff = await palot.agents.diff(agent.id)
    assert [f.path for f in diff.files] == ["hello.txt"]
    assert diff.unavailable and env_id in diff.unavailable and "destroy the agent" in diff.unavailable
    reason = await palot.backends["cloud"].failure(palot.store.get_environment(env_id))
    assert reason and "gone" in reason
    await palot.agents.destroy(agent.id, force=True)  # still possible, and complete
    assert git(repo, "branch", "--list", agent.environment.branch) == ""


async def test_cli_status_lists_environments_with_costs_and_connect_refuses_a_wrong_token(
        cloud_worker: LocalWorker, tmp_path: Path):
    env = {**worker_env(cloud_worker), "PALOT_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-m", "palot", "cloud", "status", "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["url"] == cloud_worker.url and status["worker"]["instance_type"]
    assert isinstance(status["environments"], list)
    assert cloud_worker.token not in out.stdout + out.stderr

    env.pop("PALOT_CLOUD_URL"), env.pop("PALOT_CLOUD_TOKEN")
    bad = subprocess.run([sys.executable, "-m", "palot", "cloud", "connect", cloud_worker.url, "--token", "wrong",
                          "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["code"] == "cloud_auth_failed"
    assert not (tmp_path / "home" / "cloud.json").exists()  # nothing saved

    good = subprocess.run([sys.executable, "-m", "palot", "cloud", "connect", cloud_worker.url, "--json"], env=env,
                          input=cloud_worker.token + "\n", capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stdout + good.stderr
    saved = (tmp_path / "home" / "cloud.json").read_text()
    assert cloud_worker.token not in saved and cloud_worker.url in saved  # the token is encrypted at rest
    again = subprocess.run([sys.executable, "-m", "palot", "cloud", "status", "--json"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and json.loads(again.stdout)["url"] == cloud_worker.url

    deploy_offline = subprocess.run([sys.executable, "-m", "palot", "cloud", "destroy-all", "--json"], env=env,
                                    capture_output=True, text=True, timeout=60)
    assert deploy_offline.returncode == 2 and "--yes" in json.loads(deploy_offline.stdout)["error"]["fix"]



async def test_deploy_without_a_wrangler_login_is_refused_and_saves_nothing(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "PALOT_CLOUD_"))}
    env.update(PALOT_HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"))  # no wrangler login here
    out = subprocess.run([sys.executable, "-m", "palot", "cloud", "deploy", "--json"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2, out.stdout + out.stderr
    error = json.loads(out.stdout)["error"]
    assert "not logged in" in error["message"] and "wrangler login" in error["fix"]
    assert not (tmp_path / "home" / "cloud.json").exists()


async def test_gc_destroys_a_cloud_environment_no_agent_owns_and_leaves_another_homes_alone(cloud_palot: Palot):
    from palot.orphans import Sweeper
    from palot.store import EnvironmentRecord

    palot = cloud_palot
    worker = palot.backends["cloud"].worker()
    # One this home recorded and archived whose destroy never happened (the Worker was away then), and one
    # this home never made (another home on the same Worker).
    ours, theirs = "env_gc" + os.urandom(3).hex(), "env_other" + os.urandom(3).hex()
    for env_id in (ours, theirs):
        await worker.create(env_id, {})
    palot.store.add_environment(EnvironmentRecord(
        id=ours, type="cloud", directory="/workspace", branch="palot/gone", base_commit=None, server_url=None,
        state="archived", created_at=0.0, data={}))
    try:
        report = await Sweeper(palot).run()
        cloud = [o for o in report.orphans if o.kind == "cloud"]
        assert [o.name for o in cloud] == [ours] and cloud[0].safe and "no agent owns it" in cloud[0].why
        report = await Sweeper(palot).run(yes=True)
        assert [o.name for o in report.orphans if o.kind == "cloud" and o.removed] == [ours]
        with pytest.raises(CloudEnvironmentGone):
            await worker.status(ours)
        assert (await worker.status(theirs))["id"] == theirs  # untouched
    finally:
        await worker.destroy(theirs)


async def test_with_the_internet_on_a_command_reaches_a_listener_on_the_host(cloud_palot: Palot):
    """The control of tests/test_cloud_egress.py: the same probe, through the same Worker and sidecar, connects."""
    worker = cloud_palot.backends["cloud"].worker()
    assert (await worker.health())["enable_internet"] is True
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    env_id = "env_online" + os.urandom(3).hex()
    await worker.create(env_id, {})
    try:
        out = await worker.run(env_id, ["python3", "-c", PROBE, str(listener.getsockname()[1])], "probing")
        assert out.startswith("CONNECTED"), out
    finally:
        listener.close()
        await worker.destroy(env_id)
