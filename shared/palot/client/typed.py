"""``PalotClient``: one typed method per action of :data:`palot.api.ACTIONS`, on top of the connection
(:class:`~palot.client.connection.ServiceConnection`). Paths are sent absolute: the service runs in its own
working directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .. import api
from .connection import Progress, ServiceConnection


def _absolute(path: str | Path) -> str:
    """A project path as the service must see it: it runs in its own working directory."""
    return str(Path(path).expanduser().absolute())


def _project_ref(project: str | Path | None) -> str | None:
    """A project given by path is sent absolute (the service has its own working directory); a name or id as is."""
    if project is None:
        return None
    return _absolute(project) if isinstance(project, Path) or Path(project).expanduser().exists() else str(project)


class PalotClient(ServiceConnection):
    """The typed client of the Palot service of one ``PALOT_HOME`` (``home``, or ``$PALOT_HOME``, or the
    default): each method runs one action and returns its typed answer."""

    async def status(self) -> api.ServiceStatus:
        return await self.call("status")

    async def projects(self) -> list[api.Project]:
        return await self.call("projects")

    async def models(self, project: str | Path | None = None) -> list[str]:
        return await self.call("models", {"project": _absolute(project) if project else None})

    async def list(self, *, project: str | None = None, status: str | list[str] | None = None,
                   environment: str | None = None, include_archived: bool = False,
                   include_external: bool = True) -> list[api.Agent]:
        statuses = [status] if isinstance(status, str) else status
        return await self.call("list", {"project": project, "status": statuses, "environment": environment,
                                        "include_archived": include_archived, "include_external": include_external})

    async def get(self, agent: str) -> api.Agent:
        return await self.call("get", {"agent": agent})

    async def spawn(self, project: str | Path, prompt: str | None = None, *, environment: str | None = None,
                    title: str | None = None, model: str | None = None, base_branch: str | None = None,
                    branch: str | None = None, setup_script: str | None = None, permission_mode: str | None = None,
                    options: dict[str, Any] | api.ContainerOptions | None = None,
                    budget_usd: float | None = None, budget_tokens: int | None = None,
                    template: str | None = None, vars: dict[str, str] | None = None,
                    progress: Progress | None = None) -> api.Agent:
        """Start an agent from ``prompt``, or from ``template`` with its ``vars`` filled in."""
        opts = options.model_dump(exclude_none=True) if isinstance(options, api.ContainerOptions) else options
        return await self.call("spawn", {
            "project": _absolute(project), "prompt": prompt, "environment": environment, "title": title,
            "model": model, "base_branch": base_branch, "branch": branch, "setup_script": setup_script,
            "permission_mode": permission_mode, "options": opts or None, "budget_usd": budget_usd,
            "budget_tokens": budget_tokens, "template": template, "vars": vars or None}, progress=progress)

    async def prompt(self, agent: str, text: str, *, model: str | None = None) -> api.Agent:
        return await self.call("prompt", {"agent": agent, "text": text, "model": model})

    async def abort(self, agent: str) -> api.Agent:
        return await self.call("abort", {"agent": agent})

    async def reply(self, agent: str, reply: str, *, permission_id: str | None = None,
                    message: str | None = None) -> api.Agent:
        return await self.call("reply", {"agent": agent, "reply": reply, "permission_id": permission_id,
                                         "message": message})

    async def wait(self, agent: str, *, timeout: float = 300.0,
                   until: list[api.AgentStatus] | list[str] | None = None) -> api.Agent:
        return await self.call("wait", {"agent": agent, "timeout": timeout,
                                        "until": [api.AgentStatus(u) for u in until] if until else None})

    async def activity(self, agent: str, *, since: int = 0) -> list[api.ActivityItem]:
        return await self.call("activity", {"agent": agent, "since": since})

    async def messages(self, agent: str) -> list[api.AgentMessage]:
        return await self.call("messages", {"agent": agent})

    async def diff(self, agent: str, *, path: str | None = None) -> api.AgentDiff:
        return await self.call("diff", {"agent": agent, "path": path})

    async def apply(self, agent: str, *, path: str | None = None) -> list[str]:
        return await self.call("apply", {"agent": agent, "path": path})

    async def create_pr(self, agent: str, *, title: str | None = None, body: str | None = None,
                        remote: str = "origin", base: str | None = None,
                        progress: Progress | None = None) -> api.PullRequest:
        return await self.call("create_pr", {"agent": agent, "title": title, "body": body, "remote": remote,
                                             "base": base}, progress=progress)

    async def archive(self, agent: str, *, progress: Progress | None = None) -> api.Agent:
        return await self.call("archive", {"agent": agent}, progress=progress)

    async def pause(self, agent: str, *, progress: Progress | None = None) -> api.Agent:
        """Save a cloud agent's code and conversation and stop its environment (no running costs)."""
        return await self.call("pause", {"agent": agent}, progress=progress)

    async def resume(self, agent: str, *, progress: Progress | None = None) -> api.Agent:
        """Start a paused cloud agent again, its code and conversation put back."""
        return await self.call("resume", {"agent": agent}, progress=progress)

    async def destroy(self, agent: str, *, force: bool = False) -> api.Done:
        return await self.call("destroy", {"agent": agent, "force": force})

    async def environment(self, agent: str) -> api.EnvironmentStatus:
        return await self.call("environment", {"agent": agent})

    async def move(self, agent: str, target: str, *, options: dict[str, Any] | api.ContainerOptions | None = None,
                   resume: bool | None = None, progress: Progress | None = None) -> api.MigrationResult:
        opts = options.model_dump(exclude_none=True) if isinstance(options, api.ContainerOptions) else options
        return await self.call("move", {"agent": agent, "target": target, "options": opts or None,
                                        "resume": resume}, progress=progress)

    async def moves(self, agent: str) -> list[api.MoveRecord]:
        return await self.call("moves", {"agent": agent})

    async def audit(self, agent: str | None = None, *, limit: int = 200) -> list[api.AuditEntry]:
        return await self.call("audit", {"agent": agent, "limit": limit})

    async def budget(self, agent: str, usd: float | None = None, *, tokens: int | None = None) -> api.Agent:
        return await self.call("budget", {"agent": agent, "usd": usd, "tokens": tokens})

    async def inbox(self, *, project: str | None = None) -> list[api.InboxItem]:
        return await self.call("inbox", {"project": project})

    async def inbox_reply(self, reply: str, *, permission_ids: list[str] | None = None, agent: str | None = None,
                          tool: str | None = None, project: str | None = None,
                          message: str | None = None) -> list[api.InboxItem]:
        return await self.call("inbox_reply", {"reply": reply, "permission_ids": permission_ids, "agent": agent,
                                               "tool": tool, "project": project, "message": message})

    async def retry(self, agent: str, *, progress: Progress | None = None) -> api.Agent:
        """A new agent from the agent's prompt, base commit and options; the old one is left as it is."""
        return await self.call("retry", {"agent": agent}, progress=progress)

    async def request_changes(self, agent: str, comments: list[dict[str, Any]] | list[api.ReviewComment], *,
                              note: str | None = None) -> api.Agent:
        """Send the agent one prompt built from review comments ({path, line, end_line?, comment}) on its diff."""
        return await self.call("request_changes", {"agent": agent, "comments": [
            c.model_dump() if isinstance(c, BaseModel) else c for c in comments], "note": note})

    async def bulk(self, operation: str, *, status: str | list[str] | None = None, project: str | None = None,
                   environment: str | None = None, older_than: str | None = None, title: str | None = None,
                   agents: list[str] | None = None, force: bool = False, dry_run: bool = True,
                   progress: Progress | None = None) -> api.BulkResult:
        """Archive, abort or destroy every agent the filters select; ``dry_run`` (the default) only lists what
        would happen."""
        statuses = [status] if isinstance(status, str) else status
        return await self.call("bulk", {"operation": operation, "status": statuses, "project": project,
                                        "environment": environment, "older_than": older_than, "title": title,
                                        "agents": agents, "force": force, "dry_run": dry_run}, progress=progress)

    async def settings(self) -> api.SettingsView:
        return await self.call("settings")

    async def templates(self, *, project: str | Path | None = None) -> list[api.Template]:
        return await self.call("templates", {"project": _project_ref(project)})

    async def template_show(self, name: str, *, project: str | Path | None = None) -> api.Template:
        return await self.call("template_show", {"name": name, "project": _project_ref(project)})

    async def template_add(self, name: str, prompt: str, *, project: str | Path | None = None,
                           title: str | None = None, environment: str | None = None, model: str | None = None,
                           permission_mode: str | None = None, setup_script: str | None = None) -> api.TemplateSaved:
        """Add a template (or replace the one of that name in that project); no project: for every project."""
        return await self.call("template_add", {
            "name": name, "prompt": prompt, "project": _project_ref(project), "title": title,
            "environment": environment, "model": model, "permission_mode": permission_mode,
            "setup_script": setup_script})

    async def template_remove(self, name: str, *, project: str | Path | None = None) -> api.Done:
        return await self.call("template_remove", {"name": name, "project": _project_ref(project)})

    async def du(self) -> api.DiskUse:
        return await self.call("du")

    async def gc(self, *, yes: bool = False, force: bool = False, progress: Progress | None = None) -> api.GcReport:
        return await self.call("gc", {"yes": yes, "force": force}, progress=progress)
