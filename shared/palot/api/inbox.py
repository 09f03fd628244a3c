"""The inbox: every agent's pending permission requests in one place, and answering many at once."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from .words import Reply, _Request

#: The tools OpenCode 1.18 asks permission for (``permission`` of a request), as permission rules name them.
PERMISSION_TOOLS = ("bash", "edit", "read", "glob", "grep", "list", "task", "webfetch", "websearch", "codesearch",
                    "external_directory", "todowrite", "todoread", "lsp", "skill", "doom_loop", "question")


class InboxItem(BaseModel):
    """One pending permission request, as the inbox lists it (oldest first)."""

    permission_id: str
    agent_id: str
    agent_title: str
    project_name: str
    project_path: str
    tool: str  # the permission OpenCode asks for: bash, edit, …
    patterns: list[str] = Field(default_factory=list)  # the exact command(s) or path(s)
    summary: str
    asked_at: float
    # A rule with a timeout that will answer it: "reject in 4m (rule 2: bash 'git push*')".
    deadline: float | None = None
    rule: str | None = None
    # Set when the agent's OpenCode server restarted while the request waited: OpenCode forgot it, Palot
    # did not. Allowing it resumes the agent (its repeat of the request is answered the same way).
    note: str | None = None


class InboxRequest(_Request):
    project: str | None = Field(None, description="only this project's requests (path, name or id)")


class InboxReplyRequest(_Request):
    reply: Reply = Field(description="once, always or reject")
    permission_ids: list[str] | None = Field(None, description="these requests")
    agent: str | None = Field(None, description="every request of this agent (id, prefix or branch)")
    tool: str | None = Field(None, description="every request for this tool, e.g. bash")
    project: str | None = Field(None, description="only requests of this project")
    message: str | None = Field(None, description="a note to the agents with a rejection")

    @model_validator(mode="after")
    def _selected(self) -> "InboxReplyRequest":
        if not self.permission_ids and self.agent is None and self.tool is None:
            raise ValueError("say which requests: permission_ids, agent (all from one agent) and/or tool")
        return self
