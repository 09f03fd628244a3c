"""The spawn form, one dialog with no wizard: project, environment, prompt (the largest field), model."""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as w

from .format import ENVIRONMENT_BADGE, esc

_LABEL = {"description_width": "88px"}
PERMISSION_CHOICES = (
    ("OpenCode's defaults", "default"),
    ("ask before edits and commands", "ask"),
    ("allow everything", "auto"),
)


@dataclass(frozen=True)
class SpawnRequest:
    project: str
    prompt: str
    environment: str
    model: str | None
    title: str | None
    permission_mode: str


class SpawnForm:
    def __init__(self, environments: list[str]) -> None:
        self.heading = w.HTML('<div class="palot-h">NEW AGENT</div>')
        self.project = w.Combobox(description="Project", placeholder="path to a git repository",
                                  ensure_option=False, style=_LABEL)
        self.environment = w.ToggleButtons(
            description="Environment", style=_LABEL,
            options=[(f"{ENVIRONMENT_BADGE.get(e, ('·', e))[0]} {ENVIRONMENT_BADGE.get(e, ('·', e))[1]}", e)
                     for e in environments],
        )
        self.prompt = w.Textarea(placeholder="What should this agent work on?", rows=6)
        self.model = w.Text(description="Model", placeholder="provider/model (default: OpenCode's)", style=_LABEL)
        self.title = w.Text(description="Title", placeholder="optional (default: from the prompt)", style=_LABEL)
        self.permission = w.Dropdown(description="Permissions", options=PERMISSION_CHOICES, value="default",
                                     style=_LABEL)
        self.launch_button = w.Button(description="Launch", button_style="primary", icon="rocket")
        self.cancel_button = w.Button(description="Cancel")
        self.message = w.HTML()
        self.message.add_class("palot-message")
        self.widget = w.VBox([
            self.heading, self.project, self.environment, self.prompt, self.model, self.title, self.permission,
            w.HBox([self.cancel_button, self.launch_button]), self.message,
        ])
        self.widget.add_class("palot-form")

    def offer_projects(self, paths: list[str], default: str | None) -> None:
        options = tuple(paths)
        if tuple(self.project.options) != options:
            self.project.options = options
        if not self.project.value and default:
            self.project.value = default

    def request(self) -> SpawnRequest:
        return SpawnRequest(
            project=self.project.value.strip(), prompt=self.prompt.value, environment=self.environment.value,
            model=self.model.value.strip() or None, title=self.title.value.strip() or None,
            permission_mode=self.permission.value,
        )

    def busy(self, on: bool) -> None:
        self.launch_button.disabled = on
        self.launch_button.description = "Launching…" if on else "Launch"

    def say(self, text: str, *, error: bool = False) -> None:
        cls = "palot-error" if error else "palot-ok"
        self.message.value = f'<div class="{cls}">{esc(text)}</div>' if text else ""

    def clear(self) -> None:
        self.prompt.value = ""
        self.title.value = ""
        self.message.value = ""
