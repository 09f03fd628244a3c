"""The overview's bulk section: archive, abort or destroy every agent a filter selects.

"Preview" sends the filters as a dry run and lists each selected agent with what would happen (or why it is
skipped); "Confirm" then carries out exactly that list (the plan's agent ids), and the list shows each
agent's outcome. Nothing happens without the confirm click, and the confirm button is there only while a
plan with something to do is shown.
"""

from __future__ import annotations

import ipywidgets as w
from palot.api import BulkRequest, BulkResult

from .format import esc
from .requests import RequestForm

_OUTCOME_CLASS = {"would": "palot-muted", "done": "palot-ok", "skipped": "palot-muted", "failed": "palot-error"}


def bulk_html(result: BulkResult) -> str:
    """Each agent of a plan or an outcome, one a line (titles and messages as text)."""
    if not result.items:
        return '<div class="palot-muted">No agent matches these filters: nothing to do.</div>'
    rows = "".join(
        f'<div class="{_OUTCOME_CLASS[i.outcome]}"><b>{esc(i.agent_id)}</b> {esc(i.status.value)} · '
        f'{esc(i.environment)} · {esc(i.project_name)} “{esc(i.title)}” — {esc(i.message)}</div>' for i in result.items)
    todo = sum(1 for i in result.items if i.outcome == "would")
    head = (f"Plan: {todo} agent(s) to {result.operation}; nothing is done until you confirm."
            if result.dry_run else f"{result.operation.capitalize()}: {result.count('done')} done, "
            f"{result.count('skipped')} skipped, {result.count('failed')} failed.")
    return f'<div class="palot-h">{esc(head)}</div>{rows}'


class BulkForm:
    def __init__(self) -> None:
        self.form = RequestForm(BulkRequest, exclude=("agents", "dry_run"))
        self.preview_button = w.Button(description="Preview", icon="list",
                                       tooltip="List what would happen to the agents these filters select")
        self.confirm_button = w.Button(description="Confirm", icon="check", button_style="warning",
                                       layout=w.Layout(display="none"))
        self.plan: BulkResult | None = None
        self.result = w.HTML()
        self.widget = w.Accordion(children=[w.VBox([
            self.form.box(("operation", "status", "project", "environment", "older_than", "title")),
            w.HBox([self.preview_button, self.confirm_button]), self.result])],
            titles=("Bulk: archive, abort or destroy many agents",), selected_index=None)

    def show(self, result: BulkResult) -> None:
        """A plan (offering to confirm it when it does something) or an outcome."""
        self.plan = result if result.dry_run else None
        todo = sum(1 for i in result.items if i.outcome == "would")
        if result.dry_run and todo:
            self.confirm_button.description = f"Confirm: {result.operation} {todo}"
            self.confirm_button.layout.display = None
        else:
            self.confirm_button.layout.display = "none"
        self.result.value = bulk_html(result)

    def say(self, text: str) -> None:
        self.result.value = f'<div class="palot-error">{esc(text)}</div>'

    def planned(self) -> list[str]:
        """The agent ids the shown plan would act on."""
        return [i.agent_id for i in self.plan.items if i.outcome == "would"] if self.plan else []
