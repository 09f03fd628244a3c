"""The spawn form, one dialog with no wizard: a widget per field of ``api.SpawnRequest`` (and, for a container,
of ``api.ContainerOptions``), the prompt the largest. Built from the API's models, so it offers every option
the other front ends offer."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
from palot.api import TARGET_TYPES, SpawnRequest

from .format import ENVIRONMENT_BADGE, esc
from .requests import RequestForm, label

_LABEL = {"description_width": "110px"}
PERMISSION_CHOICES = (
    ("OpenCode's defaults", "default"),
    ("ask before edits and commands", "ask"),
    ("allow everything", "auto"),
)
#: The fields shown first; the rest follow as ``api.SpawnRequest`` declares them.
FIRST = ("project", "environment", "prompt", "title", "model", "base_branch", "branch", "permission_mode",
         "setup_script")
PLACEHOLDERS = {"project": "path to a git repository", "prompt": "What should this agent work on?"}


def _environment_label(env: str) -> str:
    icon, word = ENVIRONMENT_BADGE.get(env, ("·", env))
    return f"{icon} {word}"


class SpawnForm:
    def __init__(self, environments: tuple[str, ...] = TARGET_TYPES) -> None:
        fields = SpawnRequest.model_fields
        special: dict[str, w.Widget] = {
            "project": w.Combobox(description="Project", placeholder=PLACEHOLDERS["project"], ensure_option=False,
                                  tooltip=fields["project"].description, style=_LABEL),
            "environment": w.ToggleButtons(description="Environment", style=_LABEL,
                                           options=[(_environment_label(e), e) for e in environments],
                                           value="worktree", tooltips=[fields["environment"].description or ""]),
            "prompt": w.Textarea(placeholder=PLACEHOLDERS["prompt"], rows=6, tooltip=fields["prompt"].description),
            "model": w.Combobox(description="Model", placeholder=fields["model"].description, ensure_option=False,
                                tooltip=fields["model"].description, style=_LABEL),
            "permission_mode": w.Dropdown(description="Permissions", options=PERMISSION_CHOICES, value="default",
                                          tooltip=fields["permission_mode"].description, style=_LABEL),
        }
        self.form = RequestForm(SpawnRequest, widgets=special)
        self.options: RequestForm = self.form.forms["options"]
        self.heading = w.HTML('<div class="palot-h">NEW AGENT</div>')
        self.options_box = w.VBox([w.HTML(f'<div class="palot-side-h">{label("container options").upper()}</div>'),
                                   self.options.box()], layout=w.Layout(display="none"))
        self.environment.observe(lambda _c: self._show_options(), names="value")
        self.launch_button = w.Button(description="Launch", button_style="primary", icon="rocket")
        self.cancel_button = w.Button(description="Cancel")
        self.message = w.HTML()
        self.message.add_class("palot-message")
        rest = [self.form.widgets[n] for n in self.form.widgets if n not in FIRST]
        self.widget = w.VBox([
            self.heading, *(self.form.widgets[n] for n in FIRST), *rest, self.options_box,
            w.HBox([self.cancel_button, self.launch_button]), self.message,
        ])
        self.widget.add_class("palot-form")
        self._show_options()

    def __getattr__(self, name: str) -> Any:
        form = self.__dict__.get("form")
        if form is not None and name in form.widgets:
            return form.widgets[name]
        raise AttributeError(name)

    def field_widgets(self) -> dict[str, w.Widget]:
        """Every field's widget, by its ``api`` name (``options.memory`` for a container option)."""
        out = dict(self.form.widgets)
        out.update({f"options.{n}": wd for n, wd in self.options.widgets.items()})
        return out

    def _show_options(self) -> None:
        self.options_box.layout.display = None if self.environment.value == "container" else "none"

    def offer_projects(self, paths: list[str], default: str | None) -> None:
        options = tuple(paths)
        if tuple(self.project.options) != options:
            self.project.options = options
        if not self.project.value and default:
            self.project.value = default

    def offer_models(self, models: list[str]) -> None:
        if tuple(self.model.options) != tuple(models):
            self.model.options = tuple(models)

    def values(self) -> dict[str, Any]:
        """The request as the form has it (container options only for a container)."""
        values = self.form.values()
        if values.get("environment") != "container":
            values.pop("options", None)
        return values

    def busy(self, on: bool) -> None:
        self.launch_button.disabled = on
        self.launch_button.description = "Launching…" if on else "Launch"

    def say(self, text: str, *, error: bool = False) -> None:
        cls = "palot-error" if error else "palot-ok"
        self.message.value = f'<div class="{cls}">{esc(text)}</div>' if text else ""

    def clear(self) -> None:
        self.form.clear("prompt", "title", "branch")
        self.message.value = ""

