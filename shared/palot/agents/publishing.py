"""Publishing an agent's work: its branch committed and pushed, and a pull request opened with ``gh``.

Owns :class:`Publisher`. Without the GitHub CLI the branch is still pushed, and the result says what is
missing; ``gh`` runs with a time limit, so a login prompt or a dead network cannot hang Palot.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from .. import git
from ..backends import RuntimeBackend
from ..errors import InvalidState, PullRequestFailed
from ..store import Store
from .conversation import Conversation
from .models import PullRequest
from .views import AgentViews

#: Seconds ``gh pr create`` may take.
GH_TIMEOUT = 120.0


class Publisher:
    """Pushes agents' branches and opens their pull requests."""

    def __init__(self, store: Store, backends: dict[str, RuntimeBackend], views: AgentViews,
                 conversation: Conversation) -> None:
        self.store = store
        self.backends = backends
        self.views = views
        self.conversation = conversation

    async def create_pr(
        self, agent_ref: str, *, title: str | None = None, body: str | None = None, remote: str = "origin",
        base: str | None = None,
    ) -> PullRequest:
        """Commit the agent's work on its branch, push it, and open a PR with ``gh`` when it is installed.

        Without ``gh`` the branch is still pushed and the result says exactly what is missing.
        """
        rec, env = self.views.managed(agent_ref, "create a PR for")
        project = self.store.get_project(rec.project_id)
        assert project is not None and env.branch
        repo = Path(project.path)
        url = await git.remote_url(repo, remote)
        if url is None:
            raise InvalidState(f"{repo} has no remote '{remote}' to push {env.branch} to",
                               f"add one (`git -C {repo} remote add {remote} URL`) or pass another remote")
        if (await self.conversation.git_diff(env)).is_empty:
            raise InvalidState(f"agent {rec.id} has no changes to propose", "wait for it to finish, or prompt it")
        if env.state == "active":
            await self.backends[env.type].publish_branch(env, title or rec.title)
        await git.push_branch(repo, env.branch, remote)
        self.store.audit("pushed", agent_id=rec.id, project_id=rec.project_id, branch=env.branch, remote=remote)
        gh = shutil.which("gh")
        if gh is None:
            return PullRequest(
                agent_id=rec.id, branch=env.branch, remote=remote, remote_url=url, pushed=True,
                message=(f"pushed {env.branch} to {remote}; the GitHub CLI (gh) is not installed, so no PR was "
                         "opened — install gh and run `gh auth login`, or open the PR from the branch on your host"),
            )
        args = [gh, "pr", "create", "--head", env.branch, "--title", title or rec.title,
                "--body", body or f"Opened by Palot for agent {rec.id}.\n\nPrompt:\n\n{rec.prompt}"]
        if base:
            args += ["--base", base]
        proc = await asyncio.create_subprocess_exec(*args, cwd=repo, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), GH_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise PullRequestFailed(f"pushed {env.branch}, but `gh pr create` did not finish within {GH_TIMEOUT:.0f} s",
                                    "run `gh auth status` to check your login and network, then try again") from None
        if proc.returncode != 0:
            raise PullRequestFailed(f"pushed {env.branch}, but `gh pr create` failed: {err.decode(errors='replace')[-500:]}",
                                    "run `gh auth status` to check your login, then try again")
        pr_url = out.decode().strip().splitlines()[-1] if out.strip() else None
        self.store.audit("pr_created", agent_id=rec.id, project_id=rec.project_id, url=pr_url)
        return PullRequest(agent_id=rec.id, branch=env.branch, remote=remote, remote_url=url, pushed=True,
                           url=pr_url, message=f"opened {pr_url}")
