"""Prompt templates: a project's (or every project's) reusable prompts with ``{variable}`` placeholders,
and the requests that list, show, add and remove them."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

from .words import EnvironmentType, PermissionMode, _Request

#: A template's name: letters, digits, - and _ (unique per project). Its prompt's variables are ``{name}``.
TEMPLATE_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
TEMPLATE_VARIABLE = r"[A-Za-z_][A-Za-z0-9_-]{0,63}"


class Template(BaseModel):
    """A reusable prompt of one project (or of every project), with ``{variable}`` placeholders and defaults
    for the spawn options worth keeping."""

    name: str
    project: str | None = None  # the project's path; None: usable in every project
    prompt: str
    variables: list[str] = Field(default_factory=list)  # the {names} a spawn must fill, in order of first use
    title: str | None = None
    environment: EnvironmentType | None = None
    model: str | None = None
    permission_mode: PermissionMode | None = None
    setup_script: str | None = None
    created_at: float
    updated_at: float


class TemplateSaved(BaseModel):
    """The outcome of ``template_add``: the template as stored, and whether it replaced one of that name."""

    template: Template
    replaced: bool
    message: str


def _template_name(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(TEMPLATE_NAME, v):
        raise ValueError(f"'{v}' is not a template name: use letters, digits, - and _ (e.g. fix-issue)")
    return v


class TemplatesRequest(_Request):
    project: str | None = Field(None, description="only the templates usable in this project (path, name or id)")


class TemplateRef(_Request):
    name: str = Field(description="the template's name")
    project: str | None = Field(None, description="the project it belongs to (default: the one for every project, "
                                                  "or the only one of that name)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _template_name(v) or v


class TemplateAddRequest(_Request):
    name: str = Field(description="the template's name: letters, digits, - and _ (unique per project)")
    prompt: str = Field(description="the prompt, with {variable} placeholders ({{ and }} for literal braces)")
    project: str | None = Field(None, description="the project it belongs to (a git repository's path); "
                                                  "default: every project")
    title: str | None = Field(None, description="the agents' title (default: from the prompt)")
    environment: EnvironmentType | None = Field(None, description="where its agents run (default: worktree)")
    model: str | None = Field(None, description="provider/model its agents use (default: OpenCode's)")
    permission_mode: PermissionMode | None = Field(None, description="default, ask or auto for its agents")
    setup_script: str | None = Field(None, description="shell command run in each new environment first")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _template_name(v) or v

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the prompt is empty: say what the template's agents should work on")
        return v
