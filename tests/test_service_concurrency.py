"""Many clients at once: 30 client processes across 5 projects start the one service together and spawn on it
and its one OpenCode server; and two clients racing on one agent (a move and a prompt) get one outcome and one clear error."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import SCRIPTS, Engine, git, make_repo
from palot import api
from palot.client import PalotClient
from palot.errors import InvalidState, PalotError
from service_support import running_service, service_env

SCRIPT = SCRIPTS / "service.json"
CLIENTS = 30
PROJECTS = 5

# One client process: spawn an agent, wait for it, print its view and its last answer.
CLIENT = """
import asyncio, json, sys
from palot.client import PalotClient

async def main() -> None:
    async with PalotClient(sys.argv[1]) as palot:
        agent = await palot.spawn(sys.argv[2], sys.argv[3], title=sys.argv[4])
        agent = await palot.wait(agent.id, timeout=240)
        answer = [m.text for m in await palot.messages(agent.id) if m.role == "assistant"][-1:]
        print(json.dumps({"agent": agent.model_dump(mode="json"), "answer": answer}))

asyncio.run(main())
"""


def _one_client(home: Path, project: Path, title: str) -> tuple[int, str, str]:
    out = subprocess.run([sys.executable, "-c", CLIENT, str(home), str(project), f"echo {title}", title],
                         env=service_env(home), capture_output=True, text=True, timeout=300, check=False)
    return out.returncode, out.stdout, out.stderr


def _services_of(home: Path) -> list[int]:
    """The pids of ``python -m palot.service`` processes serving ``home``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"palot.service" in cmd and f"PALOT_HOME={home}".encode() in env:
            found.append(int(proc.name))
    return found


async def test_thirty_client_processes_start_the_service_and_spawn_at_once_on_one_opencode(
        tmp_path: Path, opencode_bin: Path) -> None:
    home = tmp_path / "palot-home"
    projects = [make_repo(tmp_path / f"project-{i}") for i in range(PROJECTS)]
    async with running_service(home, SCRIPT) as palot:
        before = await palot.status()
        assert before.opencode_pid is not None and before.opencode_connected
        # The service stops (OpenCode stays): all 30 clients find none and race to start it, as recorded.
        assert await palot.stop_service()  # True once the process has ended (it held the home's lock)
        for _ in range(50):
            if not _services_of(home):
                break
            await asyncio.sleep(0.1)
        assert _services_of(home) == []

        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            runs = await asyncio.gather(*[
                loop.run_in_executor(pool, _one_client, home, projects[i % PROJECTS], f"client {i}")
                for i in range(CLIENTS)])

        failures = [f"client {i}: exit {code}: {err.strip()[-400:]}" for i, (code, _out, err) in enumerate(runs)
                    if code != 0]
        log = home / "service" / "service.log"
        assert not failures, "\n".join(failures) + "\n--- service log ---\n" + (
            log.read_text()[-4000:] if log.exists() else "(none)")
        outputs = [json.loads(out.strip().splitlines()[-1]) for _code, out, _err in runs]
        agents = [api.Agent.model_validate(o["agent"]) for o in outputs]
        # Each agent answered its own prompt: no crossed sessions among 30 at once.
        assert [o["answer"] for o in outputs] == [[f"You said: echo client {i}"] for i in range(CLIENTS)]
        assert [a.status for a in agents] == [api.AgentStatus.COMPLETED] * CLIENTS, [a.error for a in agents]
        assert len({a.id for a in agents}) == CLIENTS
        assert len({a.branch for a in agents}) == CLIENTS
        assert len({a.environment.directory for a in agents}) == CLIENTS
        for i, agent in enumerate(agents):
            assert agent.title == f"client {i}"
            assert Path(agent.project_path) == projects[i % PROJECTS]
            assert Path(agent.environment.directory).is_dir()
            assert agent.branch in git(projects[i % PROJECTS], "branch", "--list", agent.branch or "")

        after_client = PalotClient(home, autostart=False)
        try:
            after = await after_client.connect()
            assert _services_of(home) == [after.pid] and after.pid != before.pid
            assert after.opencode_pid == before.opencode_pid
            assert after.opencode_restarts == 0 and after.opencode_connected
            assert after.agents == CLIENTS

            listed = await after_client.list(include_external=False)
            assert sorted(a.id for a in listed) == sorted(a.id for a in agents)
            assert {a.status for a in listed} == {api.AgentStatus.COMPLETED}
            per_project = {p.path: 0 for p in await after_client.projects()}
            for a in listed:
                per_project[a.project_path] += 1
            assert sorted(per_project.values()) == [CLIENTS // PROJECTS] * PROJECTS
        finally:
            await after_client.close()


async def test_a_move_and_a_prompt_racing_on_one_agent_get_one_outcome_and_one_clear_error(
        tmp_path: Path, opencode_bin: Path, container_engine: Engine) -> None:
    home = tmp_path / "palot-home"
    repo = make_repo(tmp_path / "project")
    async with running_service(home, SCRIPT) as palot:
        agent = await palot.spawn(repo, "write hello")
        agent = await palot.wait(agent.id, timeout=120)
        assert agent.status == api.AgentStatus.COMPLETED
        branch, session = agent.branch, agent.session_id
        mover, prompter = PalotClient(home, autostart=False), PalotClient(home, autostart=False)
        try:
            await mover.connect()
            await prompter.connect()
            moved, prompted = await asyncio.gather(mover.move(agent.id, "container"),
                                                   prompter.prompt(agent.id, "write done"),
                                                   return_exceptions=True)
            outcomes = [o for o in (moved, prompted) if not isinstance(o, BaseException)]
            errors = [o for o in (moved, prompted) if isinstance(o, BaseException)]
            assert len(outcomes) == 1 and len(errors) == 1, (moved, prompted)
            error = errors[0]
            assert isinstance(error, InvalidState), repr(error)
            assert isinstance(error, PalotError) and error.fix
            assert any(word in error.message for word in ("busy", "moving")), error.message

            if isinstance(moved, api.MigrationResult):  # the move won: the prompt was refused, nothing sent
                assert "move is in progress" in error.message
                final = await palot.wait(agent.id, timeout=120)
                assert final.environment.type == "container"
                user_texts = [m.text for m in await palot.messages(agent.id) if m.role == "user"]
                assert user_texts == ["write hello"]
                # The conversation carries on in the container.
                await palot.prompt(agent.id, "write done")
            else:  # the prompt won: the move was refused, the agent stayed in its worktree
                assert "prompt is in progress" in error.message
                assert (await palot.moves(agent.id)) == []
            final = await palot.wait(agent.id, timeout=180)
            assert final.status == api.AgentStatus.COMPLETED, final.error
            assert final.branch == branch and final.session_id == session
            assert final.environment.type == ("container" if isinstance(moved, api.MigrationResult) else "worktree")
            user_texts = [m.text for m in await palot.messages(agent.id) if m.role == "user"]
            assert user_texts == ["write hello", "write done"]
            diff = await palot.diff(agent.id)
            assert {"hello.txt", "done.txt"} <= {f.path for f in diff.files}, diff.files
            env = await palot.environment(agent.id)
            assert env.type == final.environment.type and env.state == "running" and env.branch == branch
        finally:
            await mover.close()
            await prompter.close()
            await palot.destroy(agent.id, force=True)
        assert await palot.list(include_external=False) == []
