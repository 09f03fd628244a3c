"""Tools for prompt templates: list, show, save and remove the reusable prompts agents are spawned from."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from palot import api

from ..arguments import Override
from ..models import TemplateList
from .registry import MODEL, READ_ONLY, ToolsBase, changes, tool


class TemplateTools(ToolsBase):
    """The prompt template tools."""

    @tool("templates", "List prompt templates", READ_ONLY,
          project=Override(description="only the templates usable in this project: its path, name or id"))
    async def list_templates(self, ctx: Context, request: api.TemplatesRequest) -> TemplateList:
        """The reusable prompts agents can be spawned from (spawn_agent with `template` and `vars`): each with
        its project (null: every project), the {variables} it needs and its defaults (title, environment, model,
        permission mode, setup script). With a project, a template of the project hides one of the same name
        for every project."""
        templates = await self._palot.call("templates", request)
        return TemplateList(templates=templates, total=len(templates))

    @tool("template_show", "Get a prompt template", READ_ONLY,
          project=Override(description="the project whose template it is (default: the one for every project, or "
                                       "the only one of that name)"))
    async def get_template(self, ctx: Context, request: api.TemplateRef) -> api.Template:
        """One template: its whole prompt, the {variables} a spawn must give in `vars`, and its defaults."""
        return await self._palot.call("template_show", request)

    @tool("template_add", "Save a prompt template", changes(idempotent=True),
          prompt=Override(description="the prompt, with {variable} placeholders; {{ and }} are literal braces"),
          project=Override(description="the git repository it belongs to (path); default: every project"),
          model=MODEL)
    async def save_template(self, ctx: Context, request: api.TemplateAddRequest) -> api.TemplateSaved:
        """Add a prompt template, or replace the one of that name in that project (`replaced` says which).
        Spawn agents from it with spawn_agent(template=name, vars={...})."""
        return await self._palot.call("template_add", request)

    @tool("template_remove", "Remove a prompt template", changes(destructive=True))
    async def remove_template(self, ctx: Context, request: api.TemplateRef) -> api.Done:
        """Remove a prompt template (agents spawned from it are not touched)."""
        return await self._palot.call("template_remove", request)
