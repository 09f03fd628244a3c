"""The spawn form, one dialog with no wizard: a widget per field of ``api.SpawnRequest`` (and, for a container,
of ``api.ContainerOptions``), the prompt the largest. Built from the API's models, so it offers every option
the other front ends offer.

A prompt template can stand in for the prompt: picking one shows its prompt, a box per ``{variable}`` it needs,
and sets the other fields to its defaults."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
from palot.api import TARGET_TYPES, SpawnRequest, Template

from .format import ENVIRONMENT_BADGE, esc
from .requests import RequestForm, label

_LABEL = {"description_width": "110px"}
PERMISSION_CHOICES = (
    ("OpenCode's defaults", "default"),
    ("ask before edits and commands", "ask"),
    ("allow everything", "auto"),
)
#: The fields shown first; the rest follow as ``api.SpawnRequest`` declares them.
FIRST = ("project", "environment", "template", "vars", "prompt", "title", "model", "base_branch", "branch",
         "permission_mode", "setup_script")
NO_TEMPLATE = ("(none: write the prompt)", "")
#: The template's defaults the form takes on when it is picked.
TEMPLATE_DEFAULTS = ("environment", "title", "model", "permission_mode", "setup_script")


class VariablesBox(w.VBox):
    """One text box per variable of the picked template; ``value`` is what the request's ``vars`` takes."""

    def __init__(self, tooltip: str) -> None:
        super().__init__([], tooltip=tooltip)
        self.boxes: dict[str, w.Text] = {}

    def show(self, names: list[str]) -> None:
        kept = {n: self.boxes.get(n) or w.Text(description=n, placeholder=f"the value of {{{n}}}", style=_LABEL)
                for n in names}
        self.boxes = kept
        self.children = tuple(kept.values())

    @property
    def value(self) -> dict[str, str] | None:
        # Every box goes, blank ones too: the service names a variable left empty rather than guessing.
        return {n: box.value for n, box in self.boxes.items() if box.value != ""} or None
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
            "template": w.Dropdown(description="Template", options=[NO_TEMPLATE], value="",
                                   tooltip=fields["template"].description, style=_LABEL),
            "vars": VariablesBox(fields["vars"].description or ""),
        }
        self.templates: dict[str, Template] = {}
        self.template_prompt = w.HTML()
        self.form = RequestForm(SpawnRequest, widgets=special)
        self.options: RequestForm = self.form.forms["options"]
        self.heading = w.HTML('<div class="palot-h">NEW AGENT</div>')
        self.options_box = w.VBox([w.HTML(f'<div class="palot-side-h">{label("container options").upper()}</div>'),
                                   self.options.box()], layout=w.Layout(display="none"))
        self.environment.observe(lambda _c: self._show_options(), names="value")
        self.template.observe(lambda _c: self._template_picked(), names="value")
        self.launch_button = w.Button(description="Launch", button_style="primary", icon="rocket")
        self.cancel_button = w.Button(description="Cancel")
        self.message = w.HTML()
        self.message.add_class("palot-message")
        rest = [self.form.widgets[n] for n in self.form.widgets if n not in FIRST]
        self.widget = w.VBox([
            self.heading, *(self.form.widgets[n] for n in FIRST[:4]), self.template_prompt,
            *(self.form.widgets[n] for n in FIRST[4:]), *rest, self.options_box,
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

    def offer_templates(self, templates: list[Template]) -> None:
        """The templates usable in the chosen project (the picked one stays picked while it is offered)."""
        self.templates = {t.name: t for t in templates}
        options = (NO_TEMPLATE, *((f"{t.name} ({t.project.rsplit('/', 1)[-1] if t.project else 'every project'})",
                                   t.name) for t in templates))
        if tuple(self.template.options) != options:
            picked = self.template.value
            self.template.options = options
            self.template.value = picked if picked in self.templates else ""

    def _template_picked(self) -> None:
        """A template stands in for the prompt: its text is shown, its variables get boxes, its defaults the
        fields."""
        template = self.templates.get(self.template.value or "")
        self.prompt.layout.display = "none" if template else None
        self.vars.show(template.variables if template else [])
        self.template_prompt.value = (f'<div class="palot-muted">Prompt of {esc(template.name)}:</div>'
                                      f'<pre class="palot-template">{esc(template.prompt)}</pre>') if template else ""
        for name in TEMPLATE_DEFAULTS if template else ():
            value = getattr(template, name)
            if value is not None:
                getattr(self, name).value = value

    def offer_models(self, models: list[str]) -> None:
        if tuple(self.model.options) != tuple(models):
            self.model.options = tuple(models)

    def values(self) -> dict[str, Any]:
        """The request as the form has it (container options only for a container)."""
        values = self.form.values()
        if values.get("environment") != "container":
            values.pop("options", None)
        if values.get("template"):
            values.pop("prompt", None)  # the template's prompt is the agent's
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

