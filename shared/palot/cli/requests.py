"""From the command line to a request: which command runs which action of :data:`palot.api.ACTIONS`, and
each request field from the argument of its name (paths made absolute, template variables, review
comments)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .. import api
from ..errors import InvalidInput

#: The command (argv prefix) that runs each action of :data:`palot.api.ACTIONS`; its arguments carry the
#: request's field names (a container option such as ``memory`` stands for ``options.memory``).
ACTION_COMMANDS: dict[str, list[str]] = {
    "status": ["service", "status"],
    "projects": ["projects"],
    "models": ["models"],
    "list": ["agents", "list"],
    "get": ["agents", "show"],
    "spawn": ["agents", "spawn"],
    "prompt": ["agents", "prompt"],
    "abort": ["agents", "abort"],
    "reply": ["agents", "reply"],
    "wait": ["agents", "wait"],
    "activity": ["agents", "activity"],
    "messages": ["agents", "messages"],
    "diff": ["agents", "diff"],
    "apply": ["agents", "apply"],
    "create_pr": ["agents", "pr"],
    "archive": ["agents", "archive"],
    "pause": ["agents", "pause"],
    "resume": ["agents", "resume"],
    "destroy": ["agents", "destroy"],
    "environment": ["agents", "env"],
    "move": ["agents", "move"],
    "moves": ["agents", "moves"],
    "audit": ["agents", "audit"],
    "budget": ["agents", "budget"],
    "inbox": ["inbox"],
    "inbox_reply": ["inbox", "reply"],
    "settings": ["settings"],
    "templates": ["templates", "list"],
    "template_show": ["templates", "show"],
    "template_add": ["templates", "add"],
    "template_remove": ["templates", "remove"],
    "retry": ["agents", "retry"],
    "request_changes": ["agents", "request-changes"],
    "bulk": ["agents", "bulk"],
    "du": ["du"],
    "gc": ["gc"],
}
#: The nested request field whose own fields are separate arguments.
NESTED = {"options": api.ContainerOptions}


def request_args(action: str, args: argparse.Namespace) -> dict[str, Any]:
    """The request of ``action`` from the parsed command line: each field from the argument of its name."""
    values: dict[str, Any] = {}
    for name in api.ACTIONS[action].request.model_fields:
        if name in NESTED:
            nested = {f: getattr(args, f, None) for f in NESTED[name].model_fields}
            values[name] = {k: v for k, v in nested.items() if v not in (None, [])} or None
        else:
            values[name] = getattr(args, name, None)
    # The service runs elsewhere (its own working directory): paths are sent absolute.
    if action in ("spawn", "models"):
        values["project"] = os.path.abspath(os.path.expanduser(values.get("project") or "."))
    elif values.get("project") and os.path.exists(os.path.expanduser(values["project"])):
        values["project"] = os.path.abspath(os.path.expanduser(values["project"]))
    if action == "spawn":
        values["vars"] = _vars(values.get("vars") or [])
    if action == "template_add" and values.get("prompt") == "-":
        values["prompt"] = sys.stdin.read()
    if action == "inbox_reply" and not values.get("permission_ids"):
        values["permission_ids"] = None  # `palot inbox reply once --tool bash`: no ids given
    if action == "request_changes":
        values["comments"] = _comments(args)
    if action == "bulk":
        values["operation"] = getattr(args, "operation", None) or args.action
        if values.get("project") and os.path.exists(os.path.expanduser(values["project"])):
            values["project"] = os.path.abspath(os.path.expanduser(values["project"]))
        values["dry_run"] = True if values.get("dry_run") is None else values["dry_run"]
        values["force"] = bool(values.get("force"))
    return values


def _var(text: str) -> tuple[str, str]:
    """``--var name=value``: one template variable."""
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=VALUE (e.g. --var issue=42)")
    return name.strip(), value


def _vars(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values:
            raise InvalidInput(f"--var {name} is given twice", f"give each variable once (--var {name}=VALUE)")
        values[name] = value
    return values or None


def _comments(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--comment PATH:LINE[-END]:TEXT`` (repeated) and ``--comments-file`` (a JSON list) as review comments."""
    out: list[dict[str, Any]] = []
    for text in getattr(args, "comments", None) or []:
        out.append(api.review_comment(text).model_dump())
    if getattr(args, "comments_file", None):
        path = Path(args.comments_file).expanduser()
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise InvalidInput(f"cannot read the comments of {path}: {e}",
                               'give a JSON list: [{"path": "src/app.py", "line": 12, "comment": "…"}]') from None
        if not isinstance(loaded, list):
            raise InvalidInput(f"{path} holds no list of comments",
                               'give a JSON list: [{"path": "src/app.py", "line": 12, "comment": "…"}]')
        out += loaded
    return out


def _help(model: type[Any], field: str) -> str:
    """The API's own description of a request field, as an argument's help."""
    return model.model_fields[field].description or ""
