"""The right column for one agent: header, permission approval, activity and diff, prompt box, actions.

The panel only shows things and reports clicks; the dashboard performs the actions.
"""

from __future__ import annotations

import ipywidgets as w

from palot.agents import Agent, AgentDiff, AgentStatus

from .activity import ActivityStream
from .format import actions, detail_header_html, diff_html, esc, permission_html

ACTIVITY_TAB, DIFF_TAB = 0, 1


class DetailPanel:
    def __init__(self) -> None:
        self.agent: Agent | None = None
        self.header = w.HTML()
        # Permission approval, shown only while the agent waits for one.
        self.permission_text = w.HTML()
        self.approve_button = w.Button(description="Approve once", button_style="success",
                                       tooltip="Allow this request once")
        self.always_button = w.Button(description="Always", tooltip="Allow this and later requests like it")
        self.reject_button = w.Button(description="Reject", button_style="danger",
                                      tooltip="Refuse; the agent pauses until prompted again")
        self.permission_box = w.VBox([self.permission_text,
                                      w.HBox([self.approve_button, self.always_button, self.reject_button])],
                                     layout=w.Layout(display="none"))
        self.permission_box.add_class("palot-perm-box")

        self.activity = ActivityStream()
        self.diff = w.HTML('<div class="palot-muted">Loading…</div>')
        self.diff.add_class("palot-diff-view")
        self.tabs = w.Tab(children=[self.activity, self.diff], titles=("Activity", "Diff"))

        self.prompt = w.Textarea(placeholder="Send a message: request changes, answer a question, resume…")
        self.send_button = w.Button(description="Send", icon="paper-plane", tooltip="Send the message to the agent")
        prompt_row = w.HBox([self.prompt, self.send_button])
        prompt_row.add_class("palot-prompt")

        self.abort_button = w.Button(description="Abort", icon="stop", tooltip="Stop the current turn (pauses)")
        self.apply_button = w.Button(description="Apply locally", icon="download",
                                     tooltip="Apply the agent's changes to your checkout (uncommitted)")
        self.archive_button = w.Button(description="Archive", icon="archive",
                                       tooltip="Stop the agent and remove its environment; the branch stays")
        self.close_button = w.Button(description="Close", icon="times", tooltip="Back to the overview")
        buttons = w.HBox([self.abort_button, self.apply_button, self.archive_button, self.close_button])
        buttons.add_class("palot-actions")
        self.message = w.HTML()
        self.message.add_class("palot-message")
        self.widget = w.VBox([self.header, self.permission_box, self.tabs, prompt_row, buttons, self.message])
        self._busy = False

    @property
    def action_buttons(self) -> dict[str, tuple[w.Button, ...]]:
        return {
            "abort": (self.abort_button,), "apply": (self.apply_button,), "archive": (self.archive_button,),
            "send": (self.send_button,),
            "permission": (self.approve_button, self.always_button, self.reject_button),
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
        if fresh:
            self.activity.show([])
            self.diff.value = '<div class="palot-muted">Loading…</div>'
            self.message.value = ""
            self.prompt.value = ""
            done = agent.status in (AgentStatus.COMPLETED, AgentStatus.ARCHIVED)
            self.tabs.selected_index = DIFF_TAB if done else ACTIVITY_TAB
        self._enable()

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
        for name, buttons in self.action_buttons.items():
            disabled = self._busy or not allowed.get(name, False)
            for button in buttons:
                if button.disabled != disabled:
                    button.disabled = disabled
