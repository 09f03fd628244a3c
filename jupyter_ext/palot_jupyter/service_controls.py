"""The dashboard's action methods about the service as a whole: its status and settings, housekeeping, the
inbox, projects and models, the list, prompt templates and bulk operations."""

from __future__ import annotations

import time

from palot.api import (
    Agent,
    BulkResult,
    DiskUse,
    Done,
    GcReport,
    InboxItem,
    Project,
    ServiceStatus,
    SettingsView,
    Template,
    TemplateSaved,
)

from .control_base import ControlsBase, show_html
from .records import disk_use_html, gc_html, settings_html


class ServiceControls(ControlsBase):
    """Actions that are not about one agent (see :data:`palot_jupyter.controls.ACTION_CONTROLS`)."""

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
        show_html(self.overview.settings, settings_html(self.settings))
        return self.settings

    # --- housekeeping -----------------------------------------------------------------------

    async def load_disk_use(self) -> DiskUse:
        """Disk used per agent, project and environment type, shown in the overview."""
        use: DiskUse = await self._call("du")
        show_html(self.overview.housekeeping, disk_use_html(use))
        return use

    async def collect_garbage(self, *, yes: bool = False, force: bool = False) -> GcReport:
        """What no agent owns, with sizes and why (shown in the overview); ``yes`` removes what holds no work,
        ``force`` (with yes) the rest too."""
        report: GcReport = await self._call("gc", yes=yes, force=force)
        show_html(self.overview.housekeeping, gc_html(report))
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
