"""The actions: every request a client can send (``POST /v1/<name>``), its response, and the validation of its
arguments. Front ends offer each one, with each of its request's fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import InvalidInput
from .agents import (
    ActivityItem,
    ActivityRequest,
    Agent,
    AgentDiff,
    AgentMessage,
    AgentRef,
    ApplyRequest,
    BudgetRequest,
    DestroyRequest,
    DiffRequest,
    EnvironmentStatus,
    ListRequest,
    PromptRequest,
    PullRequest,
    PullRequestRequest,
    ReplyRequest,
    SpawnRequest,
    WaitRequest,
)
from .housekeeping import BulkRequest, BulkResult, DiskUse, GcReport, GcRequest
from .inbox import InboxItem, InboxReplyRequest, InboxRequest
from .moves import MigrationResult, MoveRecord, MoveRequest
from .review import RequestChangesRequest
from .service import AuditEntry, AuditRequest, ModelsRequest, Project, ServiceStatus, SettingsView
from .templates import Template, TemplateAddRequest, TemplateRef, TemplateSaved, TemplatesRequest
from .words import Done, Empty

class Action(BaseModel):
    """One thing a client can ask the service: ``POST /v1/<name>`` with ``request``, answered with ``response``."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    request: type[BaseModel]
    response: Any  # a model, or list[model]
    summary: str
    changes: bool = False  # changes something (front ends confirm these where that is their way)
    long: bool = False  # may take minutes; the service streams progress


def _a(name: str, request: type[BaseModel], response: Any, summary: str, *, changes: bool = False,
       long: bool = False) -> tuple[str, Action]:
    return name, Action(name=name, request=request, response=response, summary=summary, changes=changes,
                        long=long)


#: Every action of the API. Front ends offer each one, with each of its request's fields.
ACTIONS: dict[str, Action] = dict([
    _a("status", Empty, ServiceStatus, "how the Palot service and its OpenCode server are doing"),
    _a("projects", Empty, list[Project], "the projects Palot knows"),
    _a("models", ModelsRequest, list[str], "the provider/model names agents can use"),
    _a("list", ListRequest, list[Agent], "every agent, newest first, filtered"),
    _a("get", AgentRef, Agent, "one agent, with fresh tokens and cost"),
    _a("spawn", SpawnRequest, Agent, "start an agent on a new branch in a new environment", changes=True, long=True),
    _a("prompt", PromptRequest, Agent, "send an agent a follow-up message", changes=True),
    _a("abort", AgentRef, Agent, "stop the agent's current turn (it is paused)", changes=True),
    _a("reply", ReplyRequest, Agent, "answer a pending permission request", changes=True),
    _a("wait", WaitRequest, Agent, "wait until the agent settles", long=True),
    _a("activity", ActivityRequest, list[ActivityItem], "the agent's structured activity"),
    _a("messages", AgentRef, list[AgentMessage], "the agent's conversation"),
    _a("diff", DiffRequest, AgentDiff, "the agent's changes against its base commit"),
    _a("apply", ApplyRequest, list[str], "apply the agent's changes (or one file's) to your checkout", changes=True),
    _a("create_pr", PullRequestRequest, PullRequest, "push the agent's branch and open a PR", changes=True,
       long=True),
    _a("archive", AgentRef, Agent, "keep the branch, remove the environment", changes=True, long=True),
    _a("pause", AgentRef, Agent, "save a cloud agent's code and conversation and stop its environment (no running "
       "costs)", changes=True, long=True),
    _a("resume", AgentRef, Agent, "start a paused cloud agent again, its code and conversation put back",
       changes=True, long=True),
    _a("destroy", DestroyRequest, Done, "remove the agent, its environment and its branch", changes=True),
    _a("environment", AgentRef, EnvironmentStatus, "where the agent runs and how that is doing"),
    _a("move", MoveRequest, MigrationResult, "move the agent to another environment, code and conversation",
       changes=True, long=True),
    _a("moves", AgentRef, list[MoveRecord], "the agent's moves"),
    _a("audit", AuditRequest, list[AuditEntry], "the audit log, oldest first"),
    _a("budget", BudgetRequest, Agent, "set an agent's budget (USD and/or tokens); a paused agent may go on",
       changes=True),
    _a("inbox", InboxRequest, list[InboxItem], "every pending permission request of every agent, oldest first"),
    _a("inbox_reply", InboxReplyRequest, list[InboxItem], "answer many pending permission requests at once",
       changes=True),
    _a("settings", Empty, SettingsView, "the settings in use (budgets, permission rules, notifications)"),
    _a("templates", TemplatesRequest, list[Template], "the prompt templates (of one project, and those of every "
                                                      "project)"),
    _a("template_show", TemplateRef, Template, "one prompt template, with the variables it needs"),
    _a("template_add", TemplateAddRequest, TemplateSaved, "add a prompt template, or replace one of that name",
       changes=True),
    _a("template_remove", TemplateRef, Done, "remove a prompt template", changes=True),
    _a("retry", AgentRef, Agent, "a new agent from the same prompt, base and options (the old one stays)",
       changes=True, long=True),
    _a("request_changes", RequestChangesRequest, Agent, "send the agent review comments on its diff as one prompt",
       changes=True),
    _a("bulk", BulkRequest, BulkResult, "archive, abort or destroy every agent a filter selects (a dry run first)",
       changes=True, long=True),
    _a("du", Empty, DiskUse, "disk used per agent, project and environment type"),
    _a("gc", GcRequest, GcReport, "find what no agent owns (worktrees, palot/* branches, containers …); "
       "with yes remove what holds no unmerged work", changes=True, long=True),
])


def request_for(action: str, arguments: dict[str, Any]) -> BaseModel:
    """Validate ``arguments`` for ``action``; a clear :class:`InvalidInput` names the field and the fix."""
    spec = ACTIONS.get(action)
    if spec is None:
        raise InvalidInput(f"unknown action '{action}'", f"use one of: {', '.join(ACTIONS)}")
    try:
        return spec.request.model_validate(arguments)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if not where:  # a check of several fields together (e.g. a prompt or a template): its message says which
            raise InvalidInput(f"{action}: {msg}", f"fix the arguments ({len(e.errors())} problem(s) in all)") from None
        raise InvalidInput(f"{action}: {where}: {msg}",
                           f"fix the '{where}' argument ({len(e.errors())} problem(s) in all)") from None
