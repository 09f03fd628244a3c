"""Every action of :data:`palot.api.ACTIONS`, as a coroutine method of the dashboard.

:data:`ACTION_CONTROLS` names the method that runs each action; each method takes its request's fields as
keyword arguments with the API's names (``agent`` defaults to the selected agent), sends them to the
service through ``palot.client`` and shows the answer. The dashboard's buttons and forms call these same
methods, so what a click does and what code does are one path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from palot import api
from palot.api import (
    ActivityItem,
    Agent,
    AgentDiff,
    AgentMessage,
    AgentStatus,
    AuditEntry,
    BulkResult,
    ContainerOptions,
    DiskUse,
    Done,
    EnvironmentStatus,
    GcReport,
    InboxItem,
    MigrationResult,
    MoveRecord,
    Project,
    PullRequest,
    ReviewComment,
    ServiceStatus,
    SettingsView,
    Template,
    TemplateSaved,
)
from palot.client import PalotClient
from palot.errors import InvalidInput, PalotError

from .format import activity_entry, move_result_text
from .records import audit_html, disk_use_html, environment_html, gc_html, messages_html, moves_html, settings_html

if TYPE_CHECKING:
    from .detail import DetailPanel
    from .overview import OverviewPanel
    from .spawn_form import SpawnForm

#: Each API action → the dashboard method that runs it (and that its controls call).
ACTION_CONTROLS: dict[str, str] = {
    "status": "service_status",
    "projects": "load_projects",
    "models": "load_models",
    "list": "reload",
    "get": "refresh",
    "spawn": "spawn",
    "prompt": "prompt",
    "abort": "abort",
    "reply": "reply",
    "wait": "wait",
    "activity": "load_activity",
    "messages": "load_messages",
    "diff": "load_diff",
    "apply": "apply",
    "create_pr": "create_pr",
    "archive": "archive",
    "destroy": "destroy",
    "environment": "load_environment",
    "move": "move",
    "moves": "load_moves",
    "audit": "load_audit",
    "budget": "set_budget",
    "inbox": "load_inbox",
    "inbox_reply": "reply_inbox",
    "settings": "load_settings",
    "templates": "load_templates",
    "template_show": "show_template",
    "template_add": "save_template",
    "template_remove": "remove_template",
    "retry": "retry",
    "request_changes": "request_changes",
    "bulk": "bulk_agents",
    "du": "load_disk_use",
    "gc": "collect_garbage",
}


def _options(options: dict[str, Any] | ContainerOptions | None) -> dict[str, Any] | None:
    if isinstance(options, ContainerOptions):
        return options.as_dict()
    return options or None


class DashboardActions:
    """The action methods of :class:`~palot_jupyter.Dashboard` (a mixin: the widgets live there)."""

    client: PalotClient
    agents: dict[str, Agent]
    selected: str | None
    detail: DetailPanel
    overview: OverviewPanel
    spawn_form: SpawnForm
    service: ServiceStatus | None
    inbox: list[InboxItem]
    settings: SettingsView | None
    projects: list[Project]
    models: list[str]

    if TYPE_CHECKING:  # provided by the dashboard
        def _shown(self, agent: Agent) -> None: ...
        def _forget(self, agent_id: str) -> None: ...
        def _arrange(self, now: float) -> None: ...
        def _load(self, agents: list[Agent], *, complete: bool = True) -> None: ...
        def _show_service(self) -> None: ...

    async def _call(self, action: str, progress: Callable[[str], None] | None = None, **fields: Any) -> Any:
        """Validate ``fields`` as ``action``'s request (a clear error names the field) and send it."""
        return await self.client.call(action, {k: v for k, v in fields.items() if v is not None}, progress=progress)

    def _agent(self, agent: str | None) -> str:
        ref = agent or self.selected
        if ref is None:
            raise InvalidInput("no agent is selected", "click an agent's title in the list, or pass agent=")
        return ref

    # --- the service, projects, models, the list -------------------------------------------

    async def service_status(self) -> ServiceStatus:
        """The service and its OpenCode server, today's spend and the inbox count (shown in the overview)."""
        self.service = await self._call("status")
        self._show_service()
        self._arrange(time.time())  # today's spend and the inbox count in the overview and the sidebar
        return self.service

    async def load_settings(self) -> SettingsView:
        """The settings the service runs with (budgets, permission rules, notifications), at the overview's end;
        a mistake in settings.toml shows in red."""
        self.settings = await self._call("settings")
        _set(self.overview.settings, settings_html(self.settings))
        return self.settings

    # --- housekeeping -----------------------------------------------------------------------

    async def load_disk_use(self) -> DiskUse:
        """Disk used per agent, project and environment type, shown in the overview."""
        use: DiskUse = await self._call("du")
        _set(self.overview.housekeeping, disk_use_html(use))
        return use

    async def collect_garbage(self, *, yes: bool = False, force: bool = False) -> GcReport:
        """What no agent owns, with sizes and why (shown in the overview); ``yes`` removes what holds no work,
        ``force`` (with yes) the rest too."""
        report: GcReport = await self._call("gc", yes=yes, force=force)
        _set(self.overview.housekeeping, gc_html(report))
        return report

    # --- the inbox and budgets --------------------------------------------------------------

    async def load_inbox(self, *, project: str | None = None) -> list[InboxItem]:
        """Every pending permission request (of ``project``), oldest first, each answerable in the overview."""
        items: list[InboxItem] = await self._call("inbox", project=project)
        if project is None:
            self.inbox = items
        self.overview.show_inbox(items)
        return items

    async def reply_inbox(self, *, reply: str, permission_ids: list[str] | None = None, agent: str | None = None,
                          tool: str | None = None, project: str | None = None,
                          message: str | None = None) -> list[InboxItem]:
        """Answer many pending requests at once (by id, all of one agent, all for one tool); the answered ones."""
        answered: list[InboxItem] = await self._call("inbox_reply", reply=reply, permission_ids=permission_ids,
                                                     agent=agent, tool=tool, project=project, message=message)
        await self.load_inbox()
        return answered

    async def set_budget(self, *, agent: str | None = None, usd: float | None = None,
                         tokens: int | None = None) -> Agent:
        """Set the agent's budget (USD and/or tokens); an agent Palot paused for its budget may then go on."""
        view: Agent = await self._call("budget", agent=self._agent(agent), usd=usd, tokens=tokens)
        self._shown(view)
        return view

    async def load_projects(self) -> list[Project]:
        """The projects Palot knows (offered by the spawn form, listed in the overview)."""
        self.projects = await self._call("projects")
        self._show_service()
        self._arrange(time.time())
        return self.projects

    async def load_models(self, *, project: str | None = None) -> list[str]:
        """The models agents can use (offered by the spawn form and the prompt box)."""
        self.models = await self._call("models", project=project)
        self.spawn_form.offer_models(self.models)
        self._show_service()
        return self.models

    async def reload(self, *, project: str | None = None, status: list[str] | None = None,
                     environment: str | None = None, include_archived: bool = True,
                     include_external: bool = True) -> list[Agent]:
        """Re-read the agents (all of them by default; a filtered read only adds and updates rows)."""
        agents = await self._call("list", project=project, status=status, environment=environment,
                                  include_archived=include_archived, include_external=include_external)
        complete = (project, status, environment, include_archived, include_external) == (None, None, None, True, True)
        self._load(agents, complete=complete)
        return agents

    async def refresh(self, *, agent: str | None = None) -> Agent:
        """Re-read one agent, with fresh tokens and cost."""
        view: Agent = await self._call("get", agent=self._agent(agent))
        self._shown(view)
        return view

    # --- spawning and steering -------------------------------------------------------------

    async def spawn(self, *, project: str, prompt: str | None = None, environment: str | None = None,
                    title: str | None = None, model: str | None = None, base_branch: str | None = None,
                    branch: str | None = None, setup_script: str | None = None, permission_mode: str | None = None,
                    options: dict[str, Any] | ContainerOptions | None = None, budget_usd: float | None = None,
                    budget_tokens: int | None = None, template: str | None = None,
                    vars: dict[str, str] | None = None) -> Agent:
        """Start an agent from a prompt, or from a template with its variables; its provisioning steps show under
        the spawn form."""
        form = self.spawn_form
        agent: Agent = await self._call(
            "spawn", progress=lambda line: form.say(line), project=project, prompt=prompt, environment=environment,
            title=title, model=model, base_branch=base_branch, branch=branch, setup_script=setup_script,
            permission_mode=permission_mode, options=_options(options), budget_usd=budget_usd,
            budget_tokens=budget_tokens, template=template, vars=vars)
        self._shown(agent)
        return agent

    # --- prompt templates ------------------------------------------------------------------

    async def load_templates(self, *, project: str | None = None) -> list[Template]:
        """The templates (usable in ``project``), offered by the spawn form."""
        templates: list[Template] = await self._call("templates", project=project)
        self.spawn_form.offer_templates(templates)
        return templates

    async def show_template(self, *, name: str, project: str | None = None) -> Template:
        """One template: its prompt, variables and defaults."""
        return await self._call("template_show", name=name, project=project)

    async def save_template(self, *, name: str, prompt: str, project: str | None = None, title: str | None = None,
                            environment: str | None = None, model: str | None = None,
                            permission_mode: str | None = None, setup_script: str | None = None) -> TemplateSaved:
        """Add a template (or replace the one of that name in that project); the spawn form offers it."""
        saved: TemplateSaved = await self._call(
            "template_add", name=name, prompt=prompt, project=project, title=title, environment=environment,
            model=model, permission_mode=permission_mode, setup_script=setup_script)
        await self.load_templates(project=self.spawn_form.project.value or None)
        return saved

    async def remove_template(self, *, name: str, project: str | None = None) -> Done:
        done: Done = await self._call("template_remove", name=name, project=project)
        await self.load_templates(project=self.spawn_form.project.value or None)
        return done

    async def prompt(self, *, agent: str | None = None, text: str, model: str | None = None) -> Agent:
        view: Agent = await self._call("prompt", agent=self._agent(agent), text=text, model=model)
        self._shown(view)
        return view

    async def abort(self, *, agent: str | None = None) -> Agent:
        view: Agent = await self._call("abort", agent=self._agent(agent))
        self._shown(view)
        return view

    async def reply(self, *, agent: str | None = None, reply: str, permission_id: str | None = None,
                    message: str | None = None) -> Agent:
        """Answer a pending permission request (the first one, unless ``permission_id`` says which)."""
        ref = self._agent(agent)
        if permission_id is None and ref in self.agents and self.agents[ref].permissions:
            permission_id = self.agents[ref].permissions[0].id
        view: Agent = await self._call("reply", agent=ref, reply=reply, permission_id=permission_id,
                                       message=message)
        self._shown(view)
        return view

    async def wait(self, *, agent: str | None = None, timeout: float = 300.0,
                   until: list[AgentStatus] | list[str] | None = None) -> Agent:
        view: Agent = await self._call("wait", agent=self._agent(agent), timeout=timeout, until=until)
        self._shown(view)
        return view

    # --- what an agent did ----------------------------------------------------------------

    async def load_activity(self, *, agent: str | None = None, since: int = 0) -> list[ActivityItem]:
        ref = self._agent(agent)
        items: list[ActivityItem] = await self._call("activity", agent=ref, since=since)
        if ref == self.selected:
            shown = [activity_entry(i) for i in items]
            self.detail.activity.show(shown if since == 0 else [*self.detail.activity.items, *shown])
        return items

    async def load_messages(self, *, agent: str | None = None) -> list[AgentMessage]:
        ref = self._agent(agent)
        messages: list[AgentMessage] = await self._call("messages", agent=ref)
        if ref == self.selected:
            _set(self.detail.messages, messages_html(messages))
        return messages

    async def load_diff(self, *, agent: str | None = None, path: str | None = None) -> AgentDiff:
        ref = self._agent(agent)
        try:
            diff: AgentDiff = await self._call("diff", agent=ref, path=path)
        except PalotError as e:
            if ref == self.selected:
                self.detail.show_diff_error(f"No diff: {e}")
            raise
        if ref == self.selected:
            self.detail.show_diff(diff)
        return diff

    async def load_environment(self, *, agent: str | None = None) -> EnvironmentStatus:
        ref = self._agent(agent)
        env: EnvironmentStatus = await self._call("environment", agent=ref)
        if ref == self.selected:
            _set(self.detail.environment, environment_html(env))
        return env

    async def load_moves(self, *, agent: str | None = None) -> list[MoveRecord]:
        ref = self._agent(agent)
        moves: list[MoveRecord] = await self._call("moves", agent=ref)
        if ref == self.selected:
            _set(self.detail.moves, moves_html(moves))
        return moves

    async def load_audit(self, *, agent: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """The audit log of ``agent`` (the selected one by default; with none selected, the whole log)."""
        ref = agent or self.selected
        entries: list[AuditEntry] = await self._call("audit", agent=ref, limit=limit)
        if ref == self.selected:
            _set(self.detail.audit, audit_html(entries))
        return entries

    # --- finishing -------------------------------------------------------------------------

    async def apply(self, *, agent: str | None = None, path: str | None = None) -> list[str]:
        """Apply the agent's changes (or only ``path``'s) to the project's checkout (uncommitted); the changed
        files."""
        return await self._call("apply", agent=self._agent(agent), path=path)

    async def create_pr(self, *, agent: str | None = None, title: str | None = None, body: str | None = None,
                        remote: str = "origin", base: str | None = None) -> PullRequest:
        ref = self._agent(agent)
        return await self._call("create_pr", progress=lambda line: self._say_for(ref, line), agent=ref,
                                title=title, body=body, remote=remote, base=base)

    async def archive(self, *, agent: str | None = None) -> Agent:
        ref = self._agent(agent)
        view: Agent = await self._call("archive", progress=lambda line: self._say_for(ref, line), agent=ref)
        self._shown(view)
        return view

    async def destroy(self, *, agent: str | None = None, force: bool = False) -> Done:
        ref = self._agent(agent)
        done: Done = await self._call("destroy", agent=ref, force=force)
        self._forget(ref)
        self._arrange(time.time())
        return done

    async def retry(self, *, agent: str | None = None) -> Agent:
        """A new agent from the agent's prompt, base commit and options (the old one is left as it is); the new
        agent is selected."""
        ref = self._agent(agent)
        view: Agent = await self._call("retry", progress=lambda line: self._say_for(ref, line), agent=ref)
        self._shown(view)
        return view

    async def request_changes(self, *, agent: str | None = None,
                              comments: list[dict[str, Any]] | list[ReviewComment] | list[str],
                              note: str | None = None) -> Agent:
        """Send the agent review comments on its diff as one prompt: each a {path, line, end_line?, comment}, or
        a line ``PATH:LINE:COMMENT`` (``PATH:FIRST-LAST:COMMENT``)."""
        ref = self._agent(agent)
        given = [api.review_comment(c) if isinstance(c, str) else c for c in comments]
        view: Agent = await self._call("request_changes", agent=ref, note=note, comments=[
            c.model_dump() if isinstance(c, ReviewComment) else c for c in given])
        self._shown(view)
        return view

    async def bulk_agents(self, *, operation: str, status: list[str] | None = None, project: str | None = None,
                          environment: str | None = None, older_than: str | None = None, title: str | None = None,
                          agents: list[str] | None = None, force: bool = False, dry_run: bool = True) -> BulkResult:
        """Archive, abort or destroy every agent the filters select; a dry run (the default) only lists what
        would happen. The plan (or the outcome) shows in the overview's bulk section."""
        result: BulkResult = await self._call(
            "bulk", operation=operation, status=status or None, project=project, environment=environment,
            older_than=older_than, title=title, agents=agents, force=force, dry_run=dry_run)
        self.overview.bulk.show(result)
        if not dry_run:
            await self.reload()
        return result

    async def move(self, *, agent: str | None = None, target: str,
                   options: dict[str, Any] | ContainerOptions | None = None,
                   resume: bool | None = None) -> MigrationResult:
        """Move the agent; each step, then the outcome (or the service's error), shows under its environment."""
        ref = self._agent(agent)
        detail = self.detail
        if ref not in detail.moving:
            detail.move_started(ref, target)
        text, error = "The move was interrupted.", True
        try:
            result: MigrationResult = await self._call(
                "move", progress=lambda message: detail.move_progress(ref, target, message), agent=ref,
                target=target, options=_options(options), resume=resume)
            text, error = move_result_text(result), False
            return result
        except PalotError as e:
            text = str(e)
            raise
        finally:
            detail.move_finished(ref, text, error=error)

    def _say_for(self, agent_id: str, line: str) -> None:
        if self.selected == agent_id:
            self.detail.say(line)


def _set(widget: Any, value: str) -> None:
    if widget.value != value:
        widget.value = value

