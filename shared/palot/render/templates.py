"""Prompt templates in the terminal: the list, one template whole, and the command that spawns from it. Text is
built from what users and agents wrote, never markup strings (see README.md)."""

from __future__ import annotations

from rich.text import Text

from .. import api

_TEMPLATE_DEFAULTS = ("title", "environment", "model", "permission_mode", "setup_script")


def template_scope(template: api.Template) -> str:
    return template.project or "every project"


def template_spawn_command(template: api.Template) -> str:
    """The command line that spawns an agent from the template (PATH stands for the project)."""
    where = template.project or "PATH"
    fills = "".join(f" --var {name}=…" for name in template.variables)
    return f"palot agents spawn {where} --template {template.name}{fills}"


def templates_text(templates: list[api.Template]) -> Text:
    """One block per template: its name and scope, the variables it needs, its prompt's first line."""
    out = Text()
    for t in templates:
        out.append(t.name, "bold")
        out.append(f"  {template_scope(t)}\n", "bright_black")
        out.append("  needs: " + (", ".join(t.variables) if t.variables else "no variables") + "\n")
        lines = t.prompt.strip().splitlines() or [""]
        more = "…" if len(lines[0]) > 100 or len(lines) > 1 else ""
        out.append(f"  {lines[0][:100]}{more}\n", "bright_black")
    return out


def template_text(template: api.Template) -> Text:
    """The whole template: scope, variables, defaults, prompt, and how to spawn from it."""
    out = Text()
    out.append(template.name, "bold")
    out.append(f"  {template_scope(template)}\n", "bright_black")
    out.append("variables: " + (", ".join(template.variables) if template.variables else "none") + "\n")
    for name in _TEMPLATE_DEFAULTS:
        value = getattr(template, name)
        if value is not None:
            out.append(f"{name}: {value}\n")
    out.append("prompt:\n", "bright_black")
    out.append(template.prompt.rstrip("\n") + "\n")
    out.append(f"spawn with: {template_spawn_command(template)}", "bright_black")
    return out
