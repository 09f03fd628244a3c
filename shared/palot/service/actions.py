"""What the service does for each action of :data:`palot.api.ACTIONS`: one call into the core each.

The table :data:`HANDLERS` has exactly the API's actions (a test checks it). Actions that change an agent
hold that agent's lock for their whole run, so two clients racing on one agent (a move and a prompt) get
one outcome and one clear error, never a half-done mix.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .. import api
from ..diskuse import disk_use
from ..errors import InvalidInput, InvalidState, PalotError
from ..install import Progress
from ..templates import fill
from .bulk import run_bulk
from ..orphans import Sweeper

if TYPE_CHECKING:
    from ..core import Palot
    from .run import Service

Handler = Callable[["Service", Any, Progress], Awaitable[Any]]


def _opts(options: api.ContainerOptions | None) -> dict[str, Any] | None:
    return options.as_dict() if options is not None else None


async def _status(svc: "Service", req: api.Empty, progress: Progress) -> api.ServiceStatus:
    return svc.status()


async def _projects(svc: "Service", req: api.Empty, progress: Progress) -> list[api.Project]:
    return [api.Project(id=p.id, name=p.name, path=p.path, created_at=p.created_at)
            for p in svc.palot.store.list_projects()]


async def _models(svc: "Service", req: api.ModelsRequest, progress: Progress) -> list[str]:
    return await svc.palot.agents.models(req.project)


async def _list(svc: "Service", req: api.ListRequest, progress: Progress) -> list[api.Agent]:
    statuses = [s.value for s in req.status] if req.status else None
    return svc.palot.agents.list(project=req.project, status=statuses, environment=req.environment,
                                 include_archived=req.include_archived, include_external=req.include_external)


async def _get(svc: "Service", req: api.AgentRef, progress: Progress) -> api.Agent:
    return await svc.palot.agents.get(req.agent)


async def _spawn(svc: "Service", req: api.SpawnRequest, progress: Progress) -> api.Agent:
    # A template's prompt is filled (every variable given, and only those) before anything is created; the
    # options the request leaves out come from the template.
    template = await svc.palot.templates.find(req.template, req.project) if req.template is not None else None
    prompt = fill(template, req.vars or {}) if template is not None else req.prompt or ""

    def given(name: str) -> Any:
        value = getattr(req, name)
        return value if value is not None or template is None else getattr(template, name)

    # A budget not given is the project's default, else the fleet's (settings.toml), fixed at spawn.
    usd, tokens = svc.policies.budgets.defaults_for(req.project)
    svc.policies.budgets.check_spawn()
    return await svc.palot.agents.spawn(
        req.project, prompt, title=given("title"), model=given("model"), base_branch=req.base_branch,
        branch=req.branch, setup_script=given("setup_script"), permission_mode=given("permission_mode") or "default",
        environment=given("environment") or "worktree", options=_opts(req.options), budget_usd=req.budget_usd or usd,
        budget_tokens=req.budget_tokens or tokens, template=req.template, progress=progress)


async def _prompt(svc: "Service", req: api.PromptRequest, progress: Progress) -> api.Agent:
    async with svc.agent_lock(req.agent, "prompt") as agent_id:
        svc.policies.budgets.check_prompt(agent_id)  # over budget: refused with the fix, nothing sent
        return await svc.palot.agents.prompt(agent_id, req.text, model=req.model)


async def _abort(svc: "Service", req: api.AgentRef, progress: Progress) -> api.Agent:
    # Not locked: stopping a turn must work whatever else is going on.
    return await svc.palot.agents.abort(req.agent)


async def _reply(svc: "Service", req: api.ReplyRequest, progress: Progress) -> api.Agent:
    async with svc.agent_lock(req.agent, "reply") as agent_id:
        return await svc.palot.agents.reply_permission(agent_id, req.reply, permission_id=req.permission_id,
                                                       message=req.message)


async def _wait(svc: "Service", req: api.WaitRequest, progress: Progress) -> api.Agent:
    return await svc.palot.agents.wait(req.agent, timeout=req.timeout, until=req.until)


async def _activity(svc: "Service", req: api.ActivityRequest, progress: Progress) -> list[api.ActivityItem]:
    return await svc.palot.agents.activity(req.agent, since=req.since)


async def _messages(svc: "Service", req: api.AgentRef, progress: Progress) -> list[api.AgentMessage]:
    return await svc.palot.agents.messages(req.agent)


async def _diff(svc: "Service", req: api.DiffRequest, progress: Progress) -> api.AgentDiff:
    return await svc.palot.agents.diff(req.agent, path=req.path)


async def _apply(svc: "Service", req: api.ApplyRequest, progress: Progress) -> list[str]:
    async with svc.agent_lock(req.agent, "apply") as agent_id:
        return await svc.palot.agents.apply(agent_id, path=req.path)


async def _create_pr(svc: "Service", req: api.PullRequestRequest, progress: Progress) -> api.PullRequest:
    async with svc.agent_lock(req.agent, "create a PR") as agent_id:
        return await svc.palot.agents.create_pr(agent_id, title=req.title, body=req.body, remote=req.remote,
                                                base=req.base)


async def _archive(svc: "Service", req: api.AgentRef, progress: Progress) -> api.Agent:
    async with svc.agent_lock(req.agent, "archive") as agent_id:
        return await svc.palot.agents.archive(agent_id)


async def _pause(svc: "Service", req: api.AgentRef, progress: Progress) -> api.Agent:
    async with svc.agent_lock(req.agent, "pause") as agent_id:
        progress("saving the agent's code and conversation, then stopping its environment")
        return await svc.palot.agents.pause(agent_id)


async def _resume(svc: "Service", req: api.AgentRef, progress: Progress) -> api.Agent:
    async with svc.agent_lock(req.agent, "resume") as agent_id:
        progress("starting the agent's environment and putting its code and conversation back")
        return await svc.palot.agents.resume(agent_id)


async def _destroy(svc: "Service", req: api.DestroyRequest, progress: Progress) -> api.Done:
    async with svc.agent_lock(req.agent, "destroy") as agent_id:
        await svc.palot.agents.destroy(agent_id, force=req.force)
    return api.Done(message=f"destroyed {agent_id}")


async def _environment(svc: "Service", req: api.AgentRef, progress: Progress) -> api.EnvironmentStatus:
    return await svc.palot.agents.environment(req.agent)


async def _move(svc: "Service", req: api.MoveRequest, progress: Progress) -> api.MigrationResult:
    async with svc.agent_lock(req.agent, "move") as agent_id:
        def step(line: str) -> None:
            progress(line)
            svc.bridge.publish(api.Event(type=api.MOVE_PROGRESS, agent_id=agent_id, target=req.target,
                                             message=line))

        title = svc.palot.agents.view(agent_id).title
        try:
            result = await svc.palot.agents.move(agent_id, req.target, options=_opts(req.options),
                                                 resume=req.resume, progress=step)
        except InvalidInput:
            raise  # refused before anything moved: the caller has the error, nobody else needs to hear it
        except PalotError as e:
            svc.policies.outcomes.move_failed(agent_id, title, req.target, str(e))
            raise
        moved = api.MigrationResult.model_validate(result.model_dump())
        svc.policies.outcomes.moved(agent_id, title, moved)
        return moved


async def _moves(svc: "Service", req: api.AgentRef, progress: Progress) -> list[api.MoveRecord]:
    return [api.MoveRecord.model_validate(m.model_dump()) for m in svc.palot.migrations.history(req.agent)]


async def _audit(svc: "Service", req: api.AuditRequest, progress: Progress) -> list[api.AuditEntry]:
    return [api.AuditEntry.model_validate(e) for e in svc.palot.agents.audit_log(req.agent, limit=req.limit)]


async def _budget(svc: "Service", req: api.BudgetRequest, progress: Progress) -> api.Agent:
    agent = svc.palot.agents.set_budget(req.agent, usd=req.usd, tokens=req.tokens)
    svc.policies.budgets.budget_changed(agent)
    return agent


async def _inbox(svc: "Service", req: api.InboxRequest, progress: Progress) -> list[api.InboxItem]:
    return svc.policies.inbox.items(project=req.project)


async def _inbox_reply(svc: "Service", req: api.InboxReplyRequest, progress: Progress) -> list[api.InboxItem]:
    return await svc.policies.inbox.reply_many(req)


async def _settings(svc: "Service", req: api.Empty, progress: Progress) -> api.SettingsView:
    svc.policies.settings.refresh()  # the file as it is now, not as of the last poll
    return svc.policies.settings.view()


async def _templates(svc: "Service", req: api.TemplatesRequest, progress: Progress) -> list[api.Template]:
    return await svc.palot.templates.list(req.project)


async def _template_show(svc: "Service", req: api.TemplateRef, progress: Progress) -> api.Template:
    return await svc.palot.templates.find(req.name, req.project)


async def _template_add(svc: "Service", req: api.TemplateAddRequest, progress: Progress) -> api.TemplateSaved:
    return await svc.palot.templates.add(req)


async def _template_remove(svc: "Service", req: api.TemplateRef, progress: Progress) -> api.Done:
    return await svc.palot.templates.remove(req.name, req.project)


async def _retry(svc: "Service", req: api.AgentRef, progress: Progress) -> api.Agent:
    # A new agent: the old one is left as it is (its branch, conversation and status), and says who retried it.
    agent_id = svc.palot.agents.resolve(req.agent)
    spawn = svc.palot.agents.retry_spawn(agent_id)
    svc.policies.budgets.check_spawn()
    agent = await svc.palot.agents.spawn(**spawn, progress=progress)
    svc.palot.agents.retried(agent_id, agent)
    return agent


async def _request_changes(svc: "Service", req: api.RequestChangesRequest, progress: Progress) -> api.Agent:
    async with svc.agent_lock(req.agent, "request changes") as agent_id:
        svc.policies.budgets.check_prompt(agent_id)  # it is a prompt: over budget is refused, nothing sent
        return await svc.palot.agents.request_changes(agent_id, req.comments, note=req.note)


async def _bulk(svc: "Service", req: api.BulkRequest, progress: Progress) -> api.BulkResult:
    return await run_bulk(svc, req, progress)


async def _du(svc: "Service", req: api.Empty, progress: Progress) -> api.DiskUse:
    return await disk_use(svc.palot)


async def _gc(svc: "Service", req: api.GcRequest, progress: Progress) -> api.GcReport:
    progress("looking for what no agent owns" + (" and removing it" if req.yes else ""))
    return await Sweeper(svc.palot, svc.agent_lock).run(yes=req.yes, force=req.force)


HANDLERS: dict[str, Handler] = {
    "status": _status, "projects": _projects, "models": _models, "list": _list, "get": _get, "spawn": _spawn,
    "prompt": _prompt, "abort": _abort, "reply": _reply, "wait": _wait, "activity": _activity,
    "messages": _messages, "diff": _diff, "apply": _apply, "create_pr": _create_pr, "archive": _archive,
    "pause": _pause, "resume": _resume,    "destroy": _destroy, "environment": _environment, "move": _move, "moves": _moves, "audit": _audit,
    "budget": _budget, "inbox": _inbox, "inbox_reply": _inbox_reply, "settings": _settings,
    "templates": _templates, "template_show": _template_show, "template_add": _template_add,
    "template_remove": _template_remove, "retry": _retry, "request_changes": _request_changes, "bulk": _bulk,
    "du": _du, "gc": _gc,
}


class AgentLocks:
    """One lock per agent for actions that change it; a second changing action is refused, not queued."""

    def __init__(self, palot: "Palot") -> None:
        self._palot = palot
        self._held: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def hold(self, agent_ref: str, action: str) -> AsyncIterator[str]:
        agent_id = self._palot.agents.resolve(agent_ref)
        busy = self._held.get(agent_id)
        if busy is not None:
            raise InvalidState(f"agent {agent_id} is busy: {busy} is in progress",
                               f"try again when it is done (`palot agents show {agent_id}`)")
        self._held[agent_id] = action
        try:
            yield agent_id
        finally:
            self._held.pop(agent_id, None)
            await asyncio.sleep(0)
