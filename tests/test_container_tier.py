"""Agents in containers: the real Docker engine, the real OpenCode inside, the scripted model."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import Engine, git
from palot import AgentStatus, Palot
from palot.errors import InvalidInput, PalotError


def docker(engine: Engine, *args: str) -> str:
    return subprocess.run(["docker", "-H", engine.host, *args], capture_output=True, text=True).stdout


async def test_container_agent_writes_a_file_diff_shows_it_and_apply_brings_it_home(
    palot: Palot, repo: Path, container_engine: Engine
):
    agent = await palot.agents.spawn(repo, "write hello", environment="container",
                                     options={"memory": "1g", "cpus": 1.5, "pids": 256, "ports": [3000]},
                                     setup_script="whoami > /tmp/setup-done")
    assert agent.environment.type == "container" and agent.environment.directory == "/workspace"
    agent = await palot.agents.wait(agent.id, timeout=90)
    assert agent.status == AgentStatus.COMPLETED, agent.error
    assert not (repo / "hello.txt").exists()  # the user's checkout is untouched

    diff = await palot.agents.diff(agent.id)
    assert [(f.path, f.status) for f in diff.files] == [("hello.txt", "added")]
    assert await palot.agents.apply(agent.id) == ["hello.txt"]
    assert (repo / "hello.txt").read_text() == "hello from the agent\n"

    env = await palot.agents.environment(agent.id)
    assert env.state == "running" and env.resources and env.resources["memory_limit_bytes"] == 1024 ** 3
    # The dev-server port is published on loopback and shown; the setup script ran inside, as the agent user.
    assert env.resources["ports"]["3000"].startswith("127.0.0.1:")
    env_id = palot.store.get_agent(agent.id).environment_id
    assert docker(container_engine, "exec", f"palot-{env_id}", "cat", "/tmp/setup-done").strip() == "agent"
    assert docker(container_engine, "port", f"palot-{env_id}", "3000/tcp").strip() == env.resources["ports"]["3000"]
    name = f"palot-{palot.store.get_agent(agent.id).environment_id}"
    limits = docker(container_engine, "inspect", name, "--format",
                    "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}")
    assert limits.split() == [str(1024 ** 3), str(int(1.5e9)), "256"]
    assert docker(container_engine, "exec", name, "id", "-un").strip() == "agent"  # non-root
    # The server inside has its own generated password and is published on loopback only.
    record = palot.store.get_environment(palot.store.get_agent(agent.id).environment_id)
    assert record.server_url and record.server_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as http:
        assert (await http.get(record.server_url + "/global/health")).status_code == 401
    assert "password" not in str(record.data).lower()


async def test_the_memory_limit_is_enforced_and_the_agent_fails_with_the_reason(
    palot: Palot, repo: Path, container_engine: Engine
):
    agent = await palot.agents.spawn(repo, "hog memory", environment="container", options={"memory": "1g"})
    agent = await palot.agents.wait(agent.id, timeout=120)
    for _ in range(50):  # the OOM check runs right after the turn ends
        if agent.status == AgentStatus.FAILED:
            break
        await asyncio.sleep(0.2)
        agent = await palot.agents.get(agent.id)
    assert agent.status == AgentStatus.FAILED
    assert agent.error and "memory" in agent.error and "1g" in agent.error
    # A retry makes its container alike: the options are read back from the environment's record.
    assert palot.agents.retry_spawn(agent.id)["options"] == {"memory": "1g", "cpus": 2.0, "pids": 1024,
                                                             "network": "full"}


async def test_an_environment_with_network_none_cannot_reach_the_host(
    palot: Palot, repo: Path, container_engine: Engine
):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        agent = await palot.agents.spawn(repo, f"probe network {port}", environment="container",
                                         options={"network": "none"})
        agent = await palot.agents.wait(agent.id, timeout=90)
        assert agent.status == AgentStatus.COMPLETED, agent.error
        bash = [i for i in await palot.agents.activity(agent.id) if i.kind == "bash"]
        assert bash and "CONNECTED" not in bash[0].summary
        record = palot.store.get_environment(palot.store.get_agent(agent.id).environment_id)
        client = palot.backends["container"].client_for(record)
        parts = [p for m in await client.messages(agent.session_id, "/workspace") for p in m.parts
                 if p.type == "tool" and p.tool == "bash"]
        output = str(parts[0].state.get("output", ""))
        assert output.split()[0] == "lo" and "eth0" not in output  # loopback only
        assert "CONNECTED" not in output
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
        assert record.server_url is None  # reached through the relay socket, no published port
    finally:
        listener.close()


async def test_archive_keeps_the_branch_and_destroy_removes_container_and_volume(
    palot: Palot, repo: Path, container_engine: Engine
):
    kept = await palot.agents.spawn(repo, "write notes", environment="container")
    gone = await palot.agents.spawn(repo, "write hello", environment="container")
    kept, gone = await palot.agents.wait(kept.id, timeout=90), await palot.agents.wait(gone.id, timeout=90)
    kept_env = palot.store.get_agent(kept.id).environment_id
    gone_env = palot.store.get_agent(gone.id).environment_id

    await palot.agents.archive(kept.id)
    assert git(repo, "show", f"{kept.environment.branch}:NOTES.md").startswith("# Notes")
    assert docker(container_engine, "ps", "-a", "-q", "--filter", f"name=palot-{kept_env}") == ""

    assert docker(container_engine, "volume", "ls", "-q", "--filter", f"name=palot-{gone_env}-home").strip()
    await palot.agents.destroy(gone.id, force=True)
    assert docker(container_engine, "ps", "-a", "-q", "--filter", f"name=palot-{gone_env}") == ""
    assert docker(container_engine, "volume", "ls", "-q", "--filter", f"name=palot-{gone_env}-home") == ""
    assert not (palot.paths.environments / gone_env).exists()
    assert gone.environment.branch not in git(repo, "branch", "--list")


async def test_bad_container_options_are_clear_errors_and_change_nothing(
    palot: Palot, repo: Path, container_engine: Engine
):
    for options in ({"network": "bridge"}, {"gpus": 1}, {"network": "none", "ports": [3000]}, {"cpus": 0}):
        with pytest.raises(InvalidInput):
            await palot.agents.spawn(repo, "write hello", environment="container", options=options)
    with pytest.raises(InvalidInput):
        await palot.agents.spawn(repo, "write hello", options={"memory": "1g"})  # worktree: no options
    assert palot.agents.list() == []
    assert "palot/" not in git(repo, "branch", "--list")


async def test_the_engine_stopping_mid_run_shows_a_clear_status_and_loses_no_record(
    palot: Palot, repo: Path, container_engine: Engine
):
    agent = await palot.agents.spawn(repo, "slow task", environment="container")
    record = palot.store.get_environment(palot.store.get_agent(agent.id).environment_id)
    client = palot.backends["container"].client_for(record)
    with palot.hub.subscribe(session_id=agent.session_id, types=["message.part.delta"], replay=False) as sub:
        await sub.get(timeout=60)
    container_engine.stop()
    try:
        agent = await palot.agents.wait(agent.id, timeout=60)
        assert agent.status == AgentStatus.FAILED
        assert agent.error and "engine" in agent.error
        assert [a.id for a in palot.agents.list()] == [agent.id]
        env = await palot.agents.environment(agent.id)
        assert env.state in ("engine unreachable", "missing", "exited")
        with pytest.raises(PalotError):
            await client.health(timeout=2)
    finally:
        container_engine.start()
    await palot.agents.destroy(agent.id, force=True)


async def test_missing_image_and_unreachable_engine_are_clear_errors_that_change_nothing(
    palot: Palot, repo: Path, container_engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    from palot.images import AGENT_IMAGE, EngineUnavailable, ImageMissing

    docker(container_engine, "image", "tag", AGENT_IMAGE, "palot-agent:kept-aside")
    docker(container_engine, "image", "rm", AGENT_IMAGE)
    try:
        with pytest.raises(ImageMissing) as e:
            await palot.agents.spawn(repo, "write hello", environment="container")
        assert "palot images build" in str(e.value)
    finally:
        docker(container_engine, "image", "tag", "palot-agent:kept-aside", AGENT_IMAGE)
        docker(container_engine, "image", "rm", "palot-agent:kept-aside")

    monkeypatch.setenv("DOCKER_HOST", f"unix://{container_engine.run_dir}/no-engine-here.sock")
    palot.backends["container"].engine.forget()  # the connection made with the old DOCKER_HOST
    with pytest.raises(EngineUnavailable) as e:
        await palot.agents.spawn(repo, "write hello", environment="container")
    assert "DOCKER_HOST" in str(e.value) and "start Docker" in str(e.value)
    assert palot.agents.list() == []
    assert "palot/" not in git(repo, "branch", "--list")


def test_palot_images_status_reports_the_built_image(container_engine: Engine, tmp_path: Path):
    import json
    import os
    import sys

    env = {**os.environ, "DOCKER_HOST": container_engine.host, "PALOT_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-m", "palot", "images", "status", "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["present"] and status["current"] and status["image"].startswith("palot-agent:")
