"""Prompt templates: reusable prompts per project, with ``{variable}`` placeholders and spawn defaults.

A template belongs to one project (its repository root) or, given no project, to every project; its name is
unique within that scope. A spawn in a project finds the project's own template of that name first, then the
one for every project. Variables are ``{name}``; ``{{`` and ``}}`` write literal braces, and any other brace
is refused when the template is added, so a prompt never fills differently from how it reads.

Filling checks the variables both ways before anything is created: every one the prompt needs must be given
(a missing one is named with the fix), and none it does not know (a typo would otherwise be dropped silently).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path

from . import api, git
from .errors import InvalidInput, TemplateNotFound
from .store import Store, TemplateRecord

_NAME = re.compile(api.TEMPLATE_NAME)
_VARIABLE = re.compile(api.TEMPLATE_VARIABLE)
# "{{" and "}}" are literal braces; "{...}" a placeholder; any other brace is a mistake.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_BRACES_FIX = "write {name} for a variable, and {{ or }} for a literal brace"
_LIST_FIX = "see them with `palot templates list`; add one with `palot templates add NAME --prompt TEXT`"


def check_name(name: str) -> None:
    """Refuse a template name that is not letters, digits, - and _."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"'{name}' is not a template name", "use letters, digits, - and _ (e.g. fix-issue)")


def _scan(text: str, values: Mapping[str, str] | None) -> tuple[list[str], str]:
    """The variables of ``text`` (in order of first use) and, with ``values``, the text filled in."""
    names: list[str] = []
    out: list[str] = []
    end = 0
    for m in _TOKEN.finditer(text):
        out.append(text[end:m.start()])
        end = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            out.append(token[0])
            continue
        name = m.group(1)
        if name is None:
            raise InvalidInput(f"the prompt has a lone '{token}' at character {m.start() + 1}", _BRACES_FIX)
        if not _VARIABLE.fullmatch(name):
            raise InvalidInput(f"'{token}' in the prompt is not a variable name", _BRACES_FIX
                               + "; a variable's name is letters, digits, - and _")
        if name not in names:
            names.append(name)
        if values is not None:
            out.append(values.get(name, ""))
    out.append(text[end:])
    return names, "".join(out)


def variables(prompt: str) -> list[str]:
    """The ``{variables}`` of a template's prompt, in order of first use; a stray brace is an error."""
    return _scan(prompt, None)[0]


def fill(template: api.Template, values: Mapping[str, str]) -> str:
    """The template's prompt with ``values`` filled in; every variable must be given, and only those."""
    needed = variables(template.prompt)
    missing = [n for n in needed if n not in values]
    unknown = sorted(set(values) - set(needed))
    problems = []
    if missing:
        problems.append(f"needs a value for {', '.join(missing)}")
    if unknown:
        problems.append(f"has no variable {', '.join(unknown)}")
    if problems:
        fixes = [f"give {' '.join(f'--var {n}=VALUE' for n in missing)}"] if missing else []
        if unknown:
            fixes.append("drop " + ", ".join(unknown) + (f" (its variables: {', '.join(needed)})" if needed
                                                          else " (it has no variables)"))
        raise InvalidInput(f"template '{template.name}' {' and '.join(problems)}", "; ".join(fixes))
    return _scan(template.prompt, values)[1]


def view(rec: TemplateRecord) -> api.Template:
    """The API's view of a stored template (its environment and mode were checked by the request that added it)."""
    return api.Template.model_validate({
        "name": rec.name, "project": rec.project_path or None, "prompt": rec.prompt,
        "variables": variables(rec.prompt), "title": rec.title, "environment": rec.environment, "model": rec.model,
        "permission_mode": rec.permission_mode, "setup_script": rec.setup_script, "created_at": rec.created_at,
        "updated_at": rec.updated_at})


class Templates:
    """The templates in the store: add, list, show, remove, and the one a spawn uses."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def project_path(self, project: str | None) -> str:
        """The scope a project reference names: a repository's root path, or "" for every project.

        A path is a git repository's (any folder in it); otherwise a project Palot knows, by name or id."""
        if not project:
            return ""
        path = Path(project).expanduser()
        if path.is_absolute() or path.exists():
            return str(await git.repo_root(path))
        for rec in self.store.list_projects():
            if project in (rec.id, rec.name):
                return rec.path
        raise InvalidInput(f"unknown project '{project}'",
                           "pass the path of a git repository (or a project's name or id, see `palot projects`)")

    async def add(self, req: api.TemplateAddRequest) -> api.TemplateSaved:
        check_name(req.name)
        variables(req.prompt)  # a stray brace is refused now, not at the first spawn
        if req.model is not None and not re.fullmatch(r"[^/\s]+/\S+", req.model):
            raise InvalidInput(f"model '{req.model}' is not of the form provider/model",
                               "e.g. anthropic/claude-sonnet-4-5, as in your OpenCode config")
        scope = await self.project_path(req.project)
        now = time.time()
        rec, replaced = self.store.put_template(TemplateRecord(
            name=req.name, project_path=scope, prompt=req.prompt, title=req.title, environment=req.environment,
            model=req.model, permission_mode=req.permission_mode, setup_script=req.setup_script,
            created_at=now, updated_at=now))
        where = f"for {scope}" if scope else "for every project"
        verb = "replaced" if replaced else "added"
        self.store.audit(f"template_{verb}", template=req.name, project=scope or None)
        return api.TemplateSaved(template=view(rec), replaced=replaced, message=f"{verb} template '{req.name}' {where}")

    async def list(self, project: str | None = None) -> list[api.Template]:
        """Every template; with ``project``, those a spawn there can use (its own hide same-named ones of every
        project)."""
        every = self.store.list_templates()
        if not project:
            return [view(t) for t in every]
        scope = await self.project_path(project)
        own = {t.name for t in every if t.project_path == scope}
        return [view(t) for t in every if t.project_path == scope or (not t.project_path and t.name not in own)]

    async def find(self, name: str, project: str | None = None, *, exact: bool = False) -> api.Template:
        """The template ``name``: of ``project`` (then, unless ``exact``, the one for every project); without a
        project, the one for every project, else the only one of that name."""
        check_name(name)
        scope = await self.project_path(project)
        if scope:
            rec = self.store.get_template(scope, name) or (None if exact else self.store.get_template("", name))
            if rec is None:
                raise TemplateNotFound(f"no template '{name}' for {scope}"
                                       + ("" if exact else " or for every project"), _LIST_FIX)
            return view(rec)
        named = self.store.list_templates(name=name)
        general = [t for t in named if not t.project_path]
        if general:
            return view(general[0])
        if len(named) == 1:
            return view(named[0])
        if named:
            raise InvalidInput(f"template '{name}' is in {len(named)} projects: "
                               + ", ".join(t.project_path for t in named), "say which with --project PATH")
        raise TemplateNotFound(f"no template '{name}'", _LIST_FIX)

    async def remove(self, name: str, project: str | None = None) -> api.Done:
        template = await self.find(name, project, exact=True)
        self.store.delete_template(template.project or "", name)
        self.store.audit("template_removed", template=name, project=template.project)
        where = f"of {template.project}" if template.project else "for every project"
        return api.Done(message=f"removed template '{name}' {where}")
