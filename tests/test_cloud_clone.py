"""Faster cloud start for large repositories (issue 16, point 4), under ``wrangler dev`` (workerd, the Docker
engine, OpenCode, the scripted model): a project whose remote the environment can reach is cloned there (a
partial clone at the base commit, on the agent's branch), no bundle of its history travels, and a pause →
resume clones it again under the agent's saved work. A remote the environment cannot reach, or one with
credentials in its URL, falls back to the bundle, and the agent works as before.

The remote is ``git daemon`` on this machine, bound to the Docker bridge's gateway address as the engine
reports it: the environment's containers reach the host there (loopback would be the container's own), and
binding that one address, not every address, keeps the test's server off other networks.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_support import cloud_palot, cloud_worker, make_cloud_work  # noqa: F401
from conftest import Engine, git, make_repo
from migration_support import capture

from palot import Agent, AgentStatus, Palot
from localdev import GitServer, LocalWorker, serving_git

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def git_server(container_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with serving_git(container_engine.host, tmp_path_factory.mktemp("served")) as server:
        yield server


def published(server: GitServer, tmp_path: Path) -> tuple[Path, str]:
    """A project with a history (a 2 MB file added, then removed) pushed to ``server`` as its ``origin``,
    fetched, so its head — the agent's base commit — is on ``origin/main``. Returns it and the head."""
    repo = make_repo(tmp_path / "project")
    (repo / "old.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    git(repo, "add", "old.bin")
    git(repo, "commit", "-q", "-m", "a large file")
    git(repo, "rm", "-q", "old.bin")
    git(repo, "commit", "-q", "-m", "no longer needed")
    name = f"{tmp_path.name}.git"
    git(server.root, "clone", "-q", "--bare", str(repo), name)
    git(server.root / name, "config", "uploadpack.allowFilter", "true")  # as GitHub and GitLab do
    git(repo, "remote", "add", "origin", server.url(name))
    git(repo, "fetch", "-q", "origin")
    return repo, git(repo, "rev-parse", "HEAD").strip()


async def spawned(palot: Palot, repo: Path) -> tuple[Agent, str]:
    agent = await palot.agents.spawn(repo, "write hello", environment="cloud")
    done = await palot.agents.wait(agent.id, timeout=120)
    assert done.status == AgentStatus.COMPLETED, done.error
    assert [f.path for f in (await palot.agents.diff(agent.id)).files] == ["hello.txt"]
    return agent, palot.store.get_agent(agent.id).environment_id or ""


async def in_env(palot: Palot, env_id: str, script: str) -> str:
    worker = palot.backends["cloud"].worker()
    return (await worker.run(env_id, ["sh", "-c", script], "reading the workspace", cwd="/workspace")).strip()


async def test_a_project_with_a_reachable_remote_is_cloned_there_and_only_the_agents_work_travels(
        cloud_palot: Palot, cloud_worker: LocalWorker, git_server: GitServer, tmp_path: Path):
    palot = cloud_palot
    repo, base = published(git_server, tmp_path)
    agent, env_id = await spawned(palot, repo)
    env = palot.store.get_environment(env_id)
    assert env is not None and env.data["code_route"] == "remote", env.data.get("code_route_why")

    # A partial clone of the remote, at the base commit on the agent's branch; the removed file's contents
    # never came (nothing checked out needs them).
    assert await in_env(palot, env_id, "git config remote.origin.promisor") == "true"
    assert await in_env(palot, env_id, "git remote get-url origin") == git_server.url(f"{tmp_path.name}.git")
    assert await in_env(palot, env_id, "git symbolic-ref --short HEAD") == env.branch
    assert await in_env(palot, env_id, "git rev-parse HEAD") == base
    missing = await in_env(palot, env_id, "git rev-list --objects --missing=print --all | grep -c '^?' || true")
    assert int(missing) >= 1
    assert await in_env(palot, env_id, "git status --porcelain") == "?? hello.txt"
    # No bundle of the project's history was kept for restores.
    assert f"envs/{env_id}/base.bundle" not in await asyncio.to_thread(cloud_worker.saved_keys)

    # Pause → resume: a fresh container clones the remote again, and the agent's own work comes back.
    worker = palot.backends["cloud"].worker()
    await make_cloud_work(worker, env_id)
    before = await capture(palot, agent.id)
    assert (await palot.agents.pause(agent.id)).status == AgentStatus.PAUSED
    assert (await palot.agents.resume(agent.id)).status == AgentStatus.COMPLETED
    assert (await worker.status(env_id))["restored"] == "restored"
    after = await capture(palot, agent.id)
    assert after.files == before.files and after.status == before.status and after.log == before.log
    assert await in_env(palot, env_id, "git config remote.origin.promisor") == "true"
    keys = await asyncio.to_thread(cloud_worker.saved_keys)
    assert f"envs/{env_id}/save.tar" in keys and f"envs/{env_id}/base.bundle" not in keys

    # The agent works as usual after it.
    await palot.agents.prompt(agent.id, "write notes")
    assert (await palot.agents.wait(agent.id, timeout=120)).status == AgentStatus.COMPLETED
    await palot.agents.destroy(agent.id, force=True)


async def test_an_unreachable_remote_or_one_with_credentials_falls_back_to_the_bundle(
        cloud_palot: Palot, cloud_worker: LocalWorker, git_server: GitServer, tmp_path: Path):
    palot = cloud_palot
    secret = "s3cret-token-of-the-user"
    with socket.socket() as s:  # a port on the gateway nothing listens on
        s.bind((git_server.host, 0))
        closed = s.getsockname()[1]
    cases = {
        "unreachable": (f"git://{git_server.host}:{closed}/project.git", "failed"),
        "credentials": (f"https://palot:{secret}@git.example.com/project.git", "credentials"),
    }
    for case, (url, why) in cases.items():
        repo, base = published(git_server, tmp_path / case)
        git(repo, "remote", "set-url", "origin", url)  # origin/main still has the base commit
        agent, env_id = await spawned(palot, repo)
        env = palot.store.get_environment(env_id)
        assert env is not None and env.data["code_route"] == "bundle" and why in env.data["code_route_why"]
        assert await in_env(palot, env_id, "git rev-parse HEAD") == base
        assert await in_env(palot, env_id, "git config remote.origin.promisor || echo none") == "none"
        assert f"envs/{env_id}/base.bundle" in await asyncio.to_thread(cloud_worker.saved_keys)
        await palot.agents.destroy(agent.id, force=True)
    # The credentials never left the project: not in Palot's home (its records, logs, mirrors), not in what the
    # Worker logged.
    assert not await asyncio.to_thread(files_holding, palot.paths.home, secret.encode())
    assert secret not in cloud_worker.log_path.read_text(errors="replace")


def files_holding(root: Path, data: bytes) -> list[Path]:
    return [f for f in root.rglob("*") if f.is_file() and not f.is_symlink() and data in f.read_bytes()]
