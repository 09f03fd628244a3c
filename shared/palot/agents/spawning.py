"""Spawning agents: input checked first, then a branch, an environment, a session and the first prompt.

Owns :class:`Spawner`: choosing a free branch (reserved while the spawn runs, so spawns at once never pick
the same one), provisioning the environment with its dev-server ports, recording the agent, starting its
OpenCode session with the permission mode's rules, and what a retry of an agent spawns. Also the model
checks (:func:`check_model`) that spawning and prompting share.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import git
from ..backends import EnvironmentSpec, RuntimeBackend
from ..errors import BranchExists, InvalidInput, InvalidState, PalotError
from ..install import Progress, quiet
from ..opencode import OpenCodeClient, PermissionRule
from ..store import AgentRecord, Store
from .devports import DevPorts
from .live import LiveAgents
from .models import PERMISSION_MODES, Agent, AgentStatus
from .status import LiveState
from .tracker import Tracker
from .views import AgentViews

_PERMISSION_RULES: dict[str, list[PermissionRule]] = {
    "default": [],
    "ask": [
        PermissionRule(permission="edit", pattern="*", action="ask"),
        PermissionRule(permission="bash", pattern="*", action="ask"),
        PermissionRule(permission="webfetch", pattern="*", action="ask"),
    ],
    "auto": [PermissionRule(permission="*", pattern="*", action="allow")],
}


def _slugify(text: str, limit: int = 32) -> str:
    words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    slug = ""
    for w in words:
        if len(slug) + len(w) + 1 > limit:
            break
        slug = f"{slug}-{w}" if slug else w
    return slug or "agent"


def _title_from(prompt: str) -> str:
    line = prompt.strip().splitlines()[0] if prompt.strip() else "agent"
    return line if len(line) <= 60 else line[:59] + "…"


async def check_model(model: str, client: OpenCodeClient, directory: Path | str) -> None:
    """Refuse a model the server does not know for ``directory``, naming the ones it does."""
    known = await client.models(str(directory))
    if model not in known:
        shown = ", ".join(known[:20]) + (f" (and {len(known) - 20} more)" if len(known) > 20 else "")
        raise InvalidInput(
            f"model '{model}' is not configured in OpenCode for {directory}",
            f"use one of: {shown}" if known else "add a provider to your OpenCode config (`opencode auth login`)",
        )


class Spawner:
    """Creates agents, and says what a retry of one would create."""

    def __init__(self, store: Store, backends: dict[str, RuntimeBackend], client: Callable[[], OpenCodeClient],
                 live: LiveAgents, views: AgentViews, tracker: Tracker, dev_ports: DevPorts) -> None:
        self.store = store
        self.backends = backends
        self._client = client
        self.live = live
        self.views = views
        self.tracker = tracker
        self.dev_ports = dev_ports
        self._reserved: set[tuple[str, str]] = set()  # (repository, branch) chosen by spawns in progress

    @property
    def spawning(self) -> bool:
        """A spawn is in progress: its environment exists before its record does."""
        return bool(self._reserved)

    def reserved_branches(self) -> set[tuple[str, str]]:
        """(repository, branch) of the spawns in progress: their branches have no record yet."""
        return set(self._reserved)

    async def spawn(
        self,
        project: str | Path,
        prompt: str,
        *,
        title: str | None = None,
        model: str | None = None,
        base_branch: str | None = None,
        branch: str | None = None,
        setup_script: str | None = None,
        permission_mode: str = "default",
        environment: str = "worktree",
        options: dict[str, Any] | None = None,
        budget_usd: float | None = None,
        budget_tokens: int | None = None,
        template: str | None = None,
        progress: Progress = quiet,
    ) -> Agent:
        """Create an environment on a new branch, a session in it, and send the prompt (asynchronously).

        Everything is validated before anything is created, so bad input changes nothing.
        ``options`` are the environment tier's (container: memory, cpus, pids, network, ports); ``template``
        names the template the prompt was filled from (for the audit log).
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidInput("the prompt is empty", "say what the agent should work on")
        if permission_mode not in PERMISSION_MODES:
            raise InvalidInput(f"unknown permission mode '{permission_mode}'",
                               f"use one of: {', '.join(PERMISSION_MODES)}")
        backend = self.backends.get(environment)
        if backend is None:
            raise InvalidInput(f"environment '{environment}' is not available",
                               f"use one of: {', '.join(self.backends)}")
        if options and environment == "worktree":
            raise InvalidInput("environment options (memory, cpus, network, ports …) apply to containers only",
                               "drop them, or spawn with environment 'container'")
        if (budget_usd is not None and budget_usd <= 0) or (budget_tokens is not None and budget_tokens <= 0):
            raise InvalidInput("a budget must be more than zero", "e.g. --budget-usd 0.50 or --budget-tokens 200000")
        if model is not None and not re.fullmatch(r"[^/\s]+/\S+", model):
            raise InvalidInput(f"model '{model}' is not of the form provider/model",
                               "e.g. anthropic/claude-sonnet-4-5, as in your OpenCode config")
        root = await git.repo_root(project)
        base_commit = await git.resolve_commit(root, base_branch or "HEAD")
        if model is not None:  # the shared server has the user's providers, as every environment does
            await check_model(model, self._client(), root)
        title = (title or "").strip() or _title_from(prompt)
        if branch:
            await git.validate_branch_name(branch)
            if (str(root), branch) in self._reserved or await git.branch_exists(root, branch):
                raise BranchExists(f"branch '{branch}' already exists in {root}",
                                   "choose another branch name, or omit it and Palot picks a free one")
        else:
            branch = await self._free_branch(root, _slugify(title))

        project_rec = self.store.upsert_project(str(root), root.name)
        self.live.project_paths[project_rec.path] = project_rec
        progress(f"creating {environment} on branch {branch} from {base_commit[:8]}")
        # Reserved until the branch exists: spawns at once with one title must not pick the same branch.
        self._reserved.add((str(root), branch))
        dev_ports = self.dev_ports.allocate()
        try:
            env = await backend.provision(EnvironmentSpec(
                project_path=root, project_id=project_rec.id, project_name=project_rec.name,
                branch=branch, base_commit=base_commit, setup_script=setup_script, options=options,
                dev_ports=dev_ports,
            ))
            data = dict(env.data)
            if setup_script:  # kept so a move can run it again in the new environment
                data["setup_script"] = setup_script
            env = env.model_copy(update={"data": data})
            self.store.add_environment(env)
        finally:
            self._reserved.discard((str(root), branch))
            self.dev_ports.release(dev_ports)
        await self.dev_ports.write_env_map()
        now = time.time()
        agent_id = "ag_" + secrets.token_hex(4)
        rec = AgentRecord(
            id=agent_id, project_id=project_rec.id, environment_id=env.id, session_id=None, title=title,
            prompt=prompt, model=model, permission_mode=permission_mode, status=AgentStatus.PROVISIONING.value,
            error=None, created_at=now, updated_at=now, budget_usd=budget_usd, budget_tokens=budget_tokens,
        )
        self.store.add_agent(rec)
        self.store.audit("spawned", agent_id=agent_id, project_id=project_rec.id, environment=environment,
                         branch=branch, base_commit=base_commit, directory=env.directory, title=title,
                         **({"template": template} if template else {}))
        live = self.live.states[agent_id] = LiveState(provisioning=True)
        try:
            progress("creating the OpenCode session")
            client = backend.client_for(env)
            session = await client.create_session(env.directory, title=title,
                                                  permission=_PERMISSION_RULES[permission_mode])
            self.live.by_session[session.id] = agent_id
            self.store.update_agent(agent_id, session_id=session.id)
            live.provisioning, live.prompt_pending = False, True
            live.prompted_at, live.prompted_wall = time.monotonic(), time.time()
            progress("sending the prompt")
            await client.prompt_async(session.id, env.directory, prompt, model=model)
            self.tracker.watch_environment(agent_id, env)
        except PalotError as e:
            live.provisioning = live.prompt_pending = False
            live.error = f"could not start: {e}"
            self.tracker.settle(agent_id)
            raise
        self.tracker.settle(agent_id)
        return self.views.by_id(agent_id)

    async def models(self, project: str | Path | None = None) -> list[str]:
        """The ``provider/model`` names agents can use in ``project`` (your OpenCode config and the project's)."""
        directory = Path(project).expanduser().resolve() if project else Path.cwd()
        if not directory.is_dir():
            raise InvalidInput(f"{directory} is not a directory", "pass a project's path")
        return await self._client().models(str(directory))

    async def _free_branch(self, root: Path, slug: str) -> str:
        for n in range(1, 1000):
            candidate = f"palot/{slug}" if n == 1 else f"palot/{slug}-{n}"
            # Checked after the await: another spawn may have taken it meanwhile (it reserves it at once).
            if not await git.branch_exists(root, candidate) and (str(root), candidate) not in self._reserved:
                self._reserved.add((str(root), candidate))
                return candidate
        return f"palot/{slug}-{secrets.token_hex(3)}"

    def retry_spawn(self, agent_ref: str) -> dict[str, Any]:
        """What a retry of the agent spawns (the arguments of :meth:`spawn`): its project, prompt, base commit,
        model, permission mode, budget, environment type with its options (read back from the environment) and
        setup script.

        A failed, paused, completed or archived agent can be retried; one still at work or waiting is refused.
        """
        rec, env = self.views.managed(agent_ref, "retry")
        status = self.views.by_id(rec.id).status
        if status.active or status == AgentStatus.WAITING:
            doing = "waiting for you" if status == AgentStatus.WAITING else status.value
            raise InvalidState(f"agent {rec.id} is {doing}, so it cannot be retried now",
                               f"wait for it to settle, or abort it first (`palot agents abort {rec.id}`)")
        project = self.store.get_project(rec.project_id)
        assert project is not None
        if not env.base_commit:
            raise InvalidState(f"agent {rec.id} has no base commit to start again from",
                               "spawn a new agent with its prompt instead")
        options = self.backends[env.type].options_of(env)  # a moved agent is retried where it runs now
        title = re.sub(r"\s*\(retry\)$", "", rec.title) + " (retry)"
        return {"project": project.path, "prompt": rec.prompt, "title": title, "model": rec.model,
                "base_branch": env.base_commit, "setup_script": env.data.get("setup_script"),
                "permission_mode": rec.permission_mode, "environment": env.type, "options": options,
                "budget_usd": rec.budget_usd, "budget_tokens": rec.budget_tokens}

    def retried(self, old_id: str, new: Agent) -> None:
        """Note in the audit log that ``new`` retries ``old_id`` (the old agent is left as it is)."""
        rec = self.store.get_agent(old_id)
        self.store.audit("retried", agent_id=old_id, project_id=rec.project_id, retry=new.id, branch=new.branch)
        self.store.audit("retry_of", agent_id=new.id, project_id=rec.project_id, original=old_id)
