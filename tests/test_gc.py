"""``palot gc`` and ``palot du`` in the real service, with real git and (for containers) the real engine.

Orphans are made behind Palot's back — a worktree and branches made with git, a move's work directory, a
labelled container and volume made with the engine, an agent whose worktree was deleted — and gc lists each
with its size and why; ``--yes`` removes the safe ones and keeps the branch with unmerged commits, naming the
command that keeps it. Nothing without a Palot label or record is touched: a live agent's worktree and
branch, a branch outside ``palot/``, an unlabelled container, another home's container.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import git, make_repo
from palot import api
from palot.errors import InvalidInput
from service_support import PALOT, running_service, service_env

import pytest


def palot_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PALOT), *args], capture_output=True, text=True, env=service_env(home), timeout=120)


def branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split())


def commit_on(repo: Path, branch: str, name: str) -> None:
    git(repo, "checkout", "-q", "-b", branch)
    (repo / name).write_text(f"work on {branch}\n" * 200)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"work on {branch}")
    git(repo, "checkout", "-q", "main")


async def test_gc_lists_orphans_with_sizes_removes_the_safe_ones_and_keeps_unmerged_work(
        tmp_path: Path, opencode_bin: Path) -> None:
    home, repo = tmp_path / "home", make_repo(tmp_path / "project")
    async with running_service(home) as palot:
        live = await palot.spawn(repo, "write hello")
        gone = await palot.spawn(repo, "write notes")
        for agent in (live, gone):
            assert (await palot.wait(agent.id, timeout=120)).status == api.AgentStatus.COMPLETED
        live_worktree = Path(live.environment.host_path or "")

        # Behind Palot's back: a worktree on a palot/ branch, a merged and an unmerged palot/ branch, a branch of
        # the user's with unmerged commits, a move's leftover directory, a stale move lock, and an agent whose
        # worktree was deleted.
        leftover = live_worktree.parent / "palot-leftover"
        git(repo, "worktree", "add", "-q", "-b", "palot/leftover", str(leftover), "main")
        (leftover / "notes.txt").write_text("x" * 5000)
        git(leftover, "add", "notes.txt")
        git(leftover, "commit", "-q", "-m", "merged later")
        git(repo, "merge", "-q", "--ff-only", "palot/leftover")
        git(repo, "branch", "-q", "palot/merged", "main")
        commit_on(repo, "palot/unmerged", "unmerged.txt")
        commit_on(repo, "feature/mine", "mine.txt")
        move_dir = home / "migrations" / "mig_0123456789"
        move_dir.mkdir(parents=True)
        (move_dir / "code.bundle").write_bytes(b"b" * 4096)
        (home / "migrations" / "locks").mkdir()
        (home / "migrations" / "locks" / "ag_00000000.lock").write_text("")
        subprocess.run(["rm", "-rf", gone.environment.host_path or "/nonexistent"], check=True)

        report = await palot.gc()
        found = {(o.kind, o.name): o for o in report.orphans}
        assert not report.removing and not any(o.removed for o in report.orphans)
        assert set(found) == {
            ("record", gone.id), ("worktree", str(leftover)), ("move", str(move_dir)),
            ("lock", str(home / "migrations" / "locks" / "ag_00000000.lock")),
            ("branch", "palot/leftover"), ("branch", "palot/merged"), ("branch", "palot/unmerged")}, found
        assert found[("worktree", str(leftover))].size >= 5000 and found[("worktree", str(leftover))].safe
        assert found[("move", str(move_dir))].size == 4096
        unmerged = found[("branch", "palot/unmerged")]
        assert not unmerged.safe and unmerged.size and unmerged.size > 0 and unmerged.work == "1 commit(s) merged nowhere"
        assert unmerged.keep == f"git -C {repo} branch -m palot/unmerged kept/unmerged"
        assert found[("branch", "palot/merged")].safe and found[("branch", "palot/leftover")].safe
        assert leftover.is_dir() and move_dir.is_dir()  # looking changes nothing

        listed = palot_cli(home, "gc")
        assert listed.returncode == 0, listed.stderr
        assert "palot/unmerged" in listed.stdout and "holds work" in listed.stdout and "4.0 KB" in listed.stdout
        assert "`palot gc --yes` removes the 6 safe one(s), not the 1 that hold work" in listed.stdout

        refused = palot_cli(home, "gc", "--force")  # force alone is a mistake: nothing happens
        assert refused.returncode == 2 and "force only applies with yes" in refused.stderr
        with pytest.raises(InvalidInput, match="force only applies with yes"):
            await palot.gc(force=True)
        assert leftover.is_dir() and "palot/merged" in branches(repo)

        removed = palot_cli(home, "gc", "--yes", "--json")
        assert removed.returncode == 1, removed.stderr  # something that holds work was kept
        done = api.GcReport.model_validate(json.loads(removed.stdout))
        assert done.removing and done.removed == 6
        assert {(o.kind, o.name) for o in done.orphans if not o.removed} == {("branch", "palot/unmerged")}
        assert not leftover.exists() and not move_dir.exists()
        assert branches(repo) == {"main", "feature/mine", "palot/unmerged", live.branch, gone.branch}
        # The live agent is untouched; the one whose worktree was gone is archived with its branch kept.
        assert live_worktree.is_dir() and (live_worktree / "hello.txt").is_file()
        assert (await palot.get(live.id)).status == api.AgentStatus.COMPLETED
        assert (await palot.get(gone.id)).status == api.AgentStatus.ARCHIVED

        subprocess.run(unmerged.keep, shell=True, check=True)
        again = await palot.gc(yes=True)
        assert again.orphans == [] and "kept/unmerged" in branches(repo)
        assert "Nothing is orphaned" in palot_cli(home, "gc").stdout

        use = await palot.du()
        [item] = [i for i in use.items if i.agent_id == live.id]
        assert (item.kind, item.name, item.environment) == ("worktree", str(live_worktree), "worktree")
        assert item.bytes > 0 and use.by_agent == {live.id: item.bytes}
        assert use.by_project == {"project": item.bytes} and use.by_environment == {"worktree": item.bytes}
        shown = palot_cli(home, "du")
        assert shown.returncode == 0 and live.id in shown.stdout and "by project" in shown.stdout


async def test_gc_removes_labelled_orphan_containers_and_volumes_only(
        tmp_path: Path, opencode_bin: Path, container_engine) -> None:
    import docker

    from palot.images import AGENT_IMAGE

    home, repo = tmp_path / "home", make_repo(tmp_path / "project")
    client = docker.from_env()
    made: list[str] = []
    async with running_service(home) as palot:
        agent = await palot.spawn(repo, "write hello", environment="container")
        assert (await palot.wait(agent.id, timeout=180)).status == api.AgentStatus.COMPLETED

        def run(name: str, labels: dict[str, str]) -> None:
            client.containers.run(AGENT_IMAGE, ["sh", "-c", "head -c 300000 /dev/zero > /tmp/fill; sleep 600"],
                                  name=name, labels=labels, detach=True, entrypoint=[])
            made.append(name)

        try:
            ours = {"palot.environment": "env_0badc0ffee00", "palot.home": str(home)}
            run("palot-env_0badc0ffee00", ours)
            client.volumes.create("palot-env_0badc0ffee00-home", labels=ours)
            run("not-palot", {})  # no label: never touched
            run("palot-env_other", {"palot.environment": "env_other", "palot.home": "/another/home"})
            client.volumes.create("palot-plain-volume")
            subprocess.run(["sh", "-c", "sleep 2"], check=True)  # the fill is written

            report = await palot.gc()
            found = {(o.kind, o.name): o for o in report.orphans}
            assert set(found) == {("container", "palot-env_0badc0ffee00"),
                                  ("volume", "palot-env_0badc0ffee00-home")}, found
            assert found[("container", "palot-env_0badc0ffee00")].size >= 300000
            assert all(o.safe for o in report.orphans)

            done = await palot.gc(yes=True)
            assert done.removed == 2 and all(o.removed for o in done.orphans)
            names = {c.name for c in client.containers.list(all=True)}
            assert "palot-env_0badc0ffee00" not in names
            assert {"not-palot", "palot-env_other", f"palot-{agent.environment.id}"} <= names
            volumes = {v.name for v in client.volumes.list()}
            assert "palot-env_0badc0ffee00-home" not in volumes and "palot-plain-volume" in volumes
            assert f"palot-{agent.environment.id}-home" in volumes
            assert (await palot.get(agent.id)).status == api.AgentStatus.COMPLETED

            use = await palot.du()
            kinds = {i.kind for i in use.items if i.agent_id == agent.id}
            assert kinds == {"clone", "container_layer"}, use.items
            assert any(i.kind == "image" and AGENT_IMAGE in i.name and i.bytes > 0 for i in use.items)
            assert use.by_environment["container"] > 0 and use.by_environment["images"] > 0
        finally:
            for name in made:
                try:
                    client.containers.get(name).remove(force=True)
                except docker.errors.NotFound:
                    pass
            for name in ("palot-plain-volume", "palot-env_0badc0ffee00-home"):
                try:
                    client.volumes.get(name).remove(force=True)
                except docker.errors.NotFound:
                    pass
            await palot.destroy(agent.id, force=True)


async def test_the_services_sweep_only_reports_orphans_unless_settings_say_remove(
        tmp_path: Path, opencode_bin: Path) -> None:
    import asyncio

    from palot.client import PalotClient

    home = tmp_path / "home"
    leftover = home / "migrations" / "mig_00000000aa"
    leftover.mkdir(parents=True)
    (leftover / "session.json").write_text("{}" * 100)
    (home / "settings.toml").write_text("[gc]\nfirst_after_seconds = 6\n\n[notifications]\ncoalesce_seconds = 0\n")
    async with running_service(home) as palot:
        listener = PalotClient(home, autostart=False)
        seen: list[api.Notification] = []

        async def read() -> None:
            async for event in listener.events():
                if event.type == api.NOTIFICATION and event.notification and event.notification.reason == "gc":
                    seen.append(event.notification)

        task = asyncio.create_task(read())
        try:
            for _ in range(300):
                if seen:
                    break
                await asyncio.sleep(0.1)
            [note] = seen
            assert note.title == "1 thing(s) no agent owns" and note.action == "palot gc (then palot gc --yes)"
            assert note.body == f"move {leftover} (200 B)"
            assert leftover.is_dir()  # reported, not removed
            assert (await palot.settings()).settings["gc"] == {"daily": True, "remove": False,
                                                               "first_after_seconds": 6.0}
        finally:
            task.cancel()
            await listener.close()


async def test_an_assistant_and_a_notebook_find_and_remove_orphans_and_see_disk_use(
        tmp_path: Path, service) -> None:
    from mcp import Client
    from mcp_support import data, error_text, mcp_server
    from palot_jupyter import Dashboard

    repo = make_repo(tmp_path / "project")
    agent = await service.spawn(repo, "write hello")
    await service.wait(agent.id, timeout=120)
    git(repo, "branch", "palot/forgotten", "main")
    home = service.paths.home
    leftover = home / "migrations" / "mig_aaaaaaaaaa"
    leftover.mkdir(parents=True)

    async with Client(await mcp_server(service)) as client:
        found = data(await client.call_tool("collect_garbage", {}))
        assert {(o["kind"], o["name"]) for o in found["orphans"]} == {("branch", "palot/forgotten"),
                                                                      ("move", str(leftover))}
        assert "force only applies with yes" in error_text(await client.call_tool("collect_garbage",
                                                                                   {"force": True}))
        use = data(await client.call_tool("disk_use", {}))
        assert list(use["by_agent"]) == [agent.id] and use["total"] > 0

    dash = Dashboard(service)
    try:
        report = await dash.collect_garbage(yes=True)
        assert report.removed == 2 and "removed" in dash.overview.housekeeping.value
        assert "palot/forgotten" not in branches(repo) and not leftover.exists()
        await dash.load_disk_use()
        assert agent.id in dash.overview.housekeeping.value and "Disk use" in dash.overview.housekeeping.value
        env = await service.environment(agent.id)
        assert env.dev_port is not None and env.dev_port >= 41000 and env.dev_ports == f"{env.dev_port}-{env.dev_port + 9}"
    finally:
        dash.close()


async def test_gc_leaves_alone_the_environment_a_spawn_is_still_making(tmp_path: Path, service) -> None:
    import asyncio

    repo = make_repo(tmp_path / "project")
    first = await service.spawn(repo, "write hello")  # the project is known
    spawning = asyncio.create_task(service.spawn(repo, "write notes", branch="palot/slow",
                                                 setup_script="touch started; sleep 6"))
    worktrees = Path(first.environment.host_path or "").parent
    for _ in range(200):
        if (worktrees / "palot-slow" / "started").exists():
            break
        await asyncio.sleep(0.05)
    assert (worktrees / "palot-slow" / "started").exists()
    report = await service.gc(yes=True)  # the worktree and branch exist, their records do not yet
    assert report.orphans == [], report.orphans
    agent = await spawning
    assert Path(agent.environment.host_path or "").is_dir() and "palot/slow" in branches(repo)
