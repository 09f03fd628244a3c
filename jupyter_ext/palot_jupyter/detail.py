"""The right column for one agent: header, environment (and moving it, with the move's options), permission
approval (with a note), tabs (activity, diff, messages, environment, moves, audit), prompt box, actions (abort,
apply, archive, retry, close) and, under "More", create a pull request, wait, set the budget, destroy and
request changes (review comments on the diff).

Every control's fields come from the request model of its action in :mod:`palot.api`. The panel only shows
things and reports clicks; the dashboard performs the actions.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as w
from palot.api import (
    Agent,
    AgentDiff,
    AgentStatus,
    AuditRequest,
    BudgetRequest,
    DiffRequest,
    MoveRequest,
    PromptRequest,
    PullRequestRequest,
    ReplyRequest,
    WaitRequest,
)

from .activity import ActivityStream
from .format import (
    actions,
    can_move,
    detail_header_html,
    diff_html,
    environment_badge,
    esc,
    move_plan_html,
    move_progress_html,
    move_targets,
    permission_html,
)
from .requests import RequestForm

ACTIVITY_TAB, DIFF_TAB, MESSAGES_TAB, ENVIRONMENT_TAB, MOVES_TAB, AUDIT_TAB = range(6)
TAB_TITLES = ("Activity", "Diff", "Messages", "Environment", "Moves", "Audit")
#: The action each record tab shows.
TAB_ACTIONS = {ACTIVITY_TAB: "activity", DIFF_TAB: "diff", MESSAGES_TAB: "messages", ENVIRONMENT_TAB: "environment",
               MOVES_TAB: "moves", AUDIT_TAB: "audit"}
PR_TAB, WAIT_TAB, BUDGET_TAB, DESTROY_TAB, REVIEW_TAB = range(5)


def _loading() -> w.HTML:
    return w.HTML('<div class="palot-muted">Loading…</div>')
MOVE_LABEL, CONFIRM_LABEL = "Move…", "Confirm move"


class DetailPanel:
    def __init__(self, environments: Sequence[str] = ()) -> None:
        self.agent: Agent | None = None
        self.header = w.HTML()
        self._build_move(environments)
        # Permission approval, shown only while the agent waits for one.
        self.permission_text = w.HTML()
        self.approve_button = w.Button(description="Approve once", button_style="success",
                                       tooltip="Allow this request once")
        self.always_button = w.Button(description="Always", tooltip="Allow this and later requests like it")
        self.reject_button = w.Button(description="Reject", button_style="danger",
                                      tooltip="Refuse; the agent pauses until prompted again")
        # The reply's other fields: which request (when several are pending) and a note to the agent.
        pick = w.Dropdown(description="Request", options=[("(the first)", "")], value="",
                          tooltip=ReplyRequest.model_fields["permission_id"].description)
        self.reply_form = RequestForm(ReplyRequest, exclude=("agent", "reply"), widgets={"permission_id": pick})
        self.reply_form.permission_id.layout.display = "none"
        self.permission_box = w.VBox([self.permission_text, self.reply_form.permission_id, self.reply_form.message,
                                      w.HBox([self.approve_button, self.always_button, self.reject_button])],
                                     layout=w.Layout(display="none"))
        self.permission_box.add_class("palot-perm-box")

        self.activity = ActivityStream()
        self.diff = _loading()
        self.diff.add_class("palot-diff-view")
        # The diff of one file only (``api.DiffRequest.path``); blank for every file.
        self.diff_form = RequestForm(DiffRequest, exclude=("agent",))
        self.messages, self.environment, self.moves, self.audit = _loading(), _loading(), _loading(), _loading()
        self.audit_form = RequestForm(AuditRequest, exclude=("agent",))
        self.tabs = w.Tab(children=[self.activity, w.VBox([self.diff_form.path, self.diff]), self.messages,
                                    self.environment, self.moves, w.VBox([self.audit_form.limit, self.audit])],
                          titles=TAB_TITLES)

        self.prompt = w.Textarea(placeholder="Send a message: request changes, answer a question, resume…")
        self.prompt_model = RequestForm(PromptRequest, exclude=("agent", "text")).model
        self.prompt_model.placeholder = "model for this turn (optional)"
        self.prompt_model.description = ""
        self.prompt_model.layout.width = "200px"
        self.send_button = w.Button(description="Send", icon="paper-plane", tooltip="Send the message to the agent")
        prompt_row = w.HBox([self.prompt, w.VBox([self.send_button, self.prompt_model])])
        prompt_row.add_class("palot-prompt")

        self.abort_button = w.Button(description="Abort", icon="stop", tooltip="Stop the current turn (pauses)")
        self.apply_button = w.Button(description="Apply locally", icon="download",
                                     tooltip="Apply the agent's changes to your checkout (uncommitted)")
        self.archive_button = w.Button(description="Archive", icon="archive",
                                       tooltip="Stop the agent and remove its environment; the branch stays")
        self.close_button = w.Button(description="Close", icon="times", tooltip="Back to the overview")
        self.retry_button = w.Button(description="Retry", icon="repeat",
                                     tooltip="A new agent from the same prompt, base commit and options "
                                             "(this one is left as it is)")
        buttons = w.HBox([self.abort_button, self.apply_button, self.archive_button, self.retry_button,
                          self.close_button])
        buttons.add_class("palot-actions")
        self._build_more()
        self.message = w.HTML()
        self.message.add_class("palot-message")
        self.widget = w.VBox([self.header, self.move_box, self.permission_box, self.tabs, prompt_row, buttons,
                              self.more, self.message])
        self._busy = False

    def _build_more(self) -> None:
        """The less frequent actions, folded: create a pull request, wait until settled, budget, destroy, request
        changes, pause and resume (a cloud agent)."""
        self.pr_form = RequestForm(PullRequestRequest, exclude=("agent",))
        self.pr_button = w.Button(description="Push and open PR", icon="code-fork",
                                  tooltip="Push the agent's branch and open a pull request")
        self.wait_form = RequestForm(WaitRequest, exclude=("agent",))
        self.wait_button = w.Button(description="Wait", icon="hourglass",
                                    tooltip="Wait until the agent settles (or reaches the chosen statuses)")
        self.budget_form = RequestForm(BudgetRequest, exclude=("agent",))
        self.budget_button = w.Button(description="Set budget", icon="money",
                                      tooltip="Palot pauses the agent when it reaches its budget; raising it lets a "
                                              "paused agent go on")
        self.destroy_force = w.Checkbox(description="also when the agent has unmerged work", value=False,
                                        indent=False)
        self.destroy_button = w.Button(description="Destroy", icon="trash", button_style="danger",
                                       tooltip="Remove the agent, its environment and its branch")
        self.review_comments = w.Textarea(
            placeholder="One comment a line, on the agent's diff: PATH:LINE:COMMENT or PATH:FIRST-LAST:COMMENT",
            layout=w.Layout(width="100%"))
        self.review_note = w.Text(placeholder="a general note (optional)", layout=w.Layout(width="100%"))
        self.review_button = w.Button(description="Request changes", icon="comments",
                                      tooltip="Send the comments, with the diff lines they are on, as one prompt")
        self.pause_button = w.Button(description="Pause", icon="pause",
                                     tooltip="Save the cloud agent's code and conversation and stop its container")
        self.resume_button = w.Button(description="Resume", icon="play",
                                      tooltip="Start the paused cloud agent again, with its code and conversation")
        self.more = w.Accordion(children=[
            w.VBox([self.pr_form.box(("title", "body", "base", "remote")), self.pr_button]),
            w.VBox([self.wait_form.box(), self.wait_button]),
            w.VBox([self.budget_form.box(), self.budget_button]),
            w.VBox([w.HTML('<div class="palot-muted">Removes the agent, its environment and its branch.</div>'),
                    self.destroy_force, self.destroy_button]),
            w.VBox([self.review_comments, self.review_note, self.review_button]),
            w.VBox([w.HTML('<div class="palot-muted">A paused cloud agent costs no running time.</div>'),
                    w.HBox([self.pause_button, self.resume_button])]),
        ], titles=("Create pull request", "Wait until settled", "Budget", "Destroy", "Request changes",
                   "Pause (cloud)"),
            selected_index=None)

    def _build_move(self, environments: Sequence[str]) -> None:
        """The environment badge, a dropdown of the other environments, Move… (then Confirm move), a status line.

        A move takes a while and may run while another agent is shown: what each agent's move last said is
        kept here, by agent, and shown whenever that agent is.
        """
        self.environments = tuple(environments)
        self.moving: set[str] = set()  # agents with a move running from this dashboard
        self._move_notes: dict[str, str] = {}  # agent id -> the move status line's HTML
        self._confirming: str | None = None  # the target shown for confirmation
        self.environment_badge = w.HTML()
        self.move_target = w.Dropdown(options=[], layout=w.Layout(width="190px"))
        self.move_button = w.Button(description=MOVE_LABEL, icon="exchange",
                                    tooltip="Move the agent, with its code and conversation, to another environment")
        self.move_cancel_button = w.Button(description="Cancel", tooltip="Keep the agent where it is",
                                           layout=w.Layout(display="none"))
        self.move_status = w.HTML()
        self.move_status.add_class("palot-move-status")
        # The move's other fields (``api.MoveRequest``): container options and whether to resume.
        self.move_form = RequestForm(MoveRequest, exclude=("agent", "target"))
        self.move_options_box = w.VBox([self.move_form.options.box()], layout=w.Layout(display="none"))
        self.move_target.observe(lambda _change: self.cancel_move(), names="value")
        self.move_target.observe(lambda _change: self._show_move_options(), names="value")
        self.move_cancel_button.on_click(lambda _b: self.cancel_move())
        row = w.HBox([self.environment_badge, self.move_target, self.move_button, self.move_cancel_button])
        row.add_class("palot-move")
        # Shown with the plan, after the first click on Move…: what the move will do, and how.
        self.move_options_row = w.HBox([self.move_form.resume, self.move_options_box], layout=w.Layout(display="none"))
        self.move_box = w.VBox([row, self.move_options_row, self.move_status])

    def _show_move_options(self) -> None:
        for box, shown in ((self.move_options_row, self._confirming is not None),
                           (self.move_options_box, self.move_target.value == "container")):
            display = None if shown else "none"
            if box.layout.display != display:
                box.layout.display = display

    def move_values(self) -> dict[str, object]:
        """The move's options and resume as the form has them (container options only for a container)."""
        values = self.move_form.values()
        if self.move_target.value != "container":
            values.pop("options", None)
        return values

    @property
    def action_buttons(self) -> dict[str, tuple[w.Button, ...]]:
        return {
            "abort": (self.abort_button,), "apply": (self.apply_button,), "archive": (self.archive_button,),
            "send": (self.send_button,),
            "permission": (self.approve_button, self.always_button, self.reject_button),
            "create_pr": (self.pr_button,), "destroy": (self.destroy_button,), "retry": (self.retry_button,),
            "request_changes": (self.review_button,), "pause": (self.pause_button,),
            "resume": (self.resume_button,),
        }

    def show_agent(self, agent: Agent, now: float, *, fresh: bool = False) -> None:
        """Show ``agent``; ``fresh`` when it was just selected (clears the previous agent's activity and diff)."""
        self.agent = agent
        header = detail_header_html(agent, now)
        if self.header.value != header:
            self.header.value = header
        perms = permission_html(agent)
        if self.permission_text.value != perms:
            self.permission_text.value = perms
        display = None if agent.permissions else "none"
        if self.permission_box.layout.display != display:
            self.permission_box.layout.display = display
        pending = tuple((p.summary or p.permission, p.id) for p in agent.permissions)
        pick = self.reply_form.permission_id
        if tuple(pick.options[1:]) != pending:
            pick.options = (("(the first)", ""), *pending)
            pick.value = ""
        several = None if len(pending) > 1 else "none"
        if pick.layout.display != several:
            pick.layout.display = several
        self._show_environment(agent)
        if fresh:
            self.activity.show([])
            for view in (self.diff, self.messages, self.environment, self.moves, self.audit):
                view.value = '<div class="palot-muted">Loading…</div>'
            self.message.value = ""
            self.prompt.value = ""
            self.reply_form.message.value = ""
            self.budget_form.usd.value = f"{agent.budget_usd:g}" if agent.budget_usd is not None else ""
            self.budget_form.tokens.value = str(agent.budget_tokens) if agent.budget_tokens is not None else ""
            done = agent.status in (AgentStatus.COMPLETED, AgentStatus.ARCHIVED)
            self.tabs.selected_index = DIFF_TAB if done else ACTIVITY_TAB
            self.cancel_move()
        self._enable()

    def _show_environment(self, agent: Agent) -> None:
        badge = f'<span class="palot-muted">Environment</span> {environment_badge(agent.environment.type)}'
        if self.environment_badge.value != badge:
            self.environment_badge.value = badge
        options = move_targets(agent, self.environments)
        if tuple(self.move_target.options) != options:  # a new options list resets the choice: only on change
            self.move_target.options = options
            self.move_target.value = options[0][1] if options else None  # ipywidgets leaves None after []

    # --- moving to another environment ------------------------------------------------

    def confirm_move(self) -> str | None:
        """A click on Move…: the first shows what will happen; the second (Confirm move) returns the target."""
        target = self.move_target.value
        if self.agent is None or target is None:
            return None
        if self._confirming == target:
            self.cancel_move()
            return target
        self._confirming = target
        self.move_status.value = move_plan_html(self.agent, target)
        self.move_button.description = CONFIRM_LABEL
        self.move_button.button_style = "warning"
        self.move_cancel_button.layout.display = None
        self._show_move_options()
        return None

    def cancel_move(self) -> None:
        """Back from the confirmation to what the agent's last move said (if anything)."""
        self._confirming = None
        if self.move_button.description != MOVE_LABEL:
            self.move_button.description = MOVE_LABEL
            self.move_button.button_style = ""
        if self.move_cancel_button.layout.display != "none":
            self.move_cancel_button.layout.display = "none"
        self._show_move_options()
        self._show_move_note()

    def move_started(self, agent_id: str, target: str) -> None:
        self.moving.add(agent_id)
        self._note(agent_id, move_progress_html(target, "checking that it can move"))
        self._enable()

    def move_progress(self, agent_id: str, target: str, message: str) -> None:
        self._note(agent_id, move_progress_html(target, message))

    def move_finished(self, agent_id: str, text: str, *, error: bool = False) -> None:
        self.moving.discard(agent_id)
        self._note(agent_id, f'<div class="{"palot-error" if error else "palot-ok"}">{esc(text)}</div>')
        self._enable()

    def _note(self, agent_id: str, html: str) -> None:
        self._move_notes[agent_id] = html
        if self.agent is not None and self.agent.id == agent_id and self._confirming is None:
            self._show_move_note()

    def _show_move_note(self) -> None:
        note = self._move_notes.get(self.agent.id, "") if self.agent is not None else ""
        if self.move_status.value != note:
            self.move_status.value = note

    def show_diff(self, diff: AgentDiff) -> None:
        text = diff_html(diff)
        if self.diff.value != text:
            self.diff.value = text

    def show_diff_error(self, message: str) -> None:
        self.diff.value = f'<div class="palot-muted">{esc(message)}</div>'

    def say(self, text: str, *, error: bool = False) -> None:
        cls = "palot-error" if error else "palot-ok"
        self.message.value = f'<div class="{cls}">{esc(text)}</div>' if text else ""

    def busy(self, on: bool) -> None:
        self._busy = on
        self._enable()

    def _enable(self) -> None:
        allowed = actions(self.agent) if self.agent else {}
        # A move started here: nothing else until it ends (the "migrating" status may not have arrived yet).
        moving = self.agent is not None and self.agent.id in self.moving
        for name, buttons in self.action_buttons.items():
            disabled = self._busy or moving or not allowed.get(name, False)
            for button in buttons:
                if button.disabled != disabled:
                    button.disabled = disabled
        movable = self.agent is not None and can_move(self.agent) and bool(self.move_target.options)
        disabled = self._busy or moving or not movable
        if disabled and self._confirming is not None:
            self.cancel_move()
        for widget in (self.move_target, self.move_button):
            if widget.disabled != disabled:
                widget.disabled = disabled
