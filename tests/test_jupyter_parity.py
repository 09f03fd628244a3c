"""Parity: the dashboard offers every action of ``palot.api.ACTIONS``, each with every field of its request.

Pure checks of the dashboard's methods and forms (no service): a field added to a request, or a new action,
fails here until the dashboard offers it.
"""

from __future__ import annotations

import inspect

import pytest
from palot import api
from palot_jupyter import ACTION_CONTROLS, Dashboard
from palot_jupyter.detail import DetailPanel
from palot_jupyter.requests import nested_model
from palot_jupyter.spawn_form import SpawnForm
from pydantic import BaseModel


def field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field of ``model``, nested request models' fields as ``options.memory``."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        sub = nested_model(info)
        out |= field_paths(sub, f"{prefix}{name}.") if sub is not None else {f"{prefix}{name}"}
    return out


def test_every_action_has_a_dashboard_control() -> None:
    assert set(ACTION_CONTROLS) == set(api.ACTIONS)
    for action, method in ACTION_CONTROLS.items():
        assert inspect.iscoroutinefunction(getattr(Dashboard, method)), f"{action}: Dashboard.{method}"


@pytest.mark.parametrize("action", sorted(api.ACTIONS))
def test_each_control_takes_every_field_of_its_request_by_its_api_name(action: str) -> None:
    params = inspect.signature(getattr(Dashboard, ACTION_CONTROLS[action])).parameters
    fields = set(api.ACTIONS[action].request.model_fields)
    assert fields <= set(params), f"Dashboard.{ACTION_CONTROLS[action]} lacks {sorted(fields - set(params))}"
    for name in fields:
        assert params[name].kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def test_the_spawn_form_has_a_widget_per_spawn_request_and_container_option_field() -> None:
    form = SpawnForm()
    expected = field_paths(api.SpawnRequest)
    assert {f"options.{n}" for n in api.ContainerOptions.model_fields} <= expected
    assert set(form.field_widgets()) == expected
    # Labels and tips are the API's words.
    assert form.field_widgets()["options.memory"].tooltip == api.ContainerOptions.model_fields["memory"].description
    assert form.field_widgets()["base_branch"].description == "Base branch"
    assert form.environment.options == tuple(
        (label, env) for label, env in form.environment.options if env in api.TARGET_TYPES)


def test_the_spawn_form_sends_what_it_shows_as_a_valid_spawn_request() -> None:
    form = SpawnForm()
    form.project.value = "/src/app"
    form.prompt.value = "add a greeting module"
    form.environment.value = "container"
    values = {"title": "Greeting", "model": "scripted/demo", "base_branch": "develop", "branch": "palot/greet",
              "setup_script": "cp .env.example .env"}
    for name, value in values.items():
        getattr(form, name).value = value
    form.permission_mode.value = "auto"
    opts = form.form.forms["options"]
    opts.memory.value, opts.cpus.value, opts.pids.value = "2g", "1.5", "256"
    opts.network.value, opts.ports.value = "none", "3000, 8080"
    request = api.request_for("spawn", form.values())
    assert request == api.SpawnRequest(
        project="/src/app", prompt="add a greeting module", environment="container", permission_mode="auto",
        options=api.ContainerOptions(memory="2g", cpus=1.5, pids=256, network="none", ports=[3000, 8080]),
        **values)
    form.environment.value = "worktree"  # container limits only go with a container
    assert "options" not in form.values()


def test_the_detail_panel_offers_the_fields_of_move_reply_prompt_pull_request_wait_diff_and_audit() -> None:
    d = DetailPanel(api.TARGET_TYPES)
    offered = {
        "move": {"target"} | {f"options.{n}" for n in d.move_form.forms["options"].widgets} | set(d.move_form.widgets),
        "reply": {"reply"} | set(d.reply_form.widgets),  # reply: the once / always / reject buttons
        "prompt": {"text", "model"},  # the message box and its model field
        "create_pr": set(d.pr_form.widgets),
        "wait": set(d.wait_form.widgets),
        "diff": set(d.diff_form.widgets),
        "audit": set(d.audit_form.widgets),
        "destroy": {"force"},
    }
    for action, fields in offered.items():
        expected = field_paths(api.ACTIONS[action].request) - {"agent"}  # the agent is the one shown
        assert expected <= fields, f"{action}: the panel lacks {sorted(expected - fields)}"
    d.move_target.options = (("Move to Local Container", "container"),)
    d.move_target.value = "container"
    d.move_form.resume.value = "no"
    d.move_form.forms["options"].ports.value = "8080"
    assert api.request_for("move", {"agent": "a", "target": "container", **d.move_values()}) == api.MoveRequest(
        agent="a", target="container", resume=False, options=api.ContainerOptions(ports=[8080]))
