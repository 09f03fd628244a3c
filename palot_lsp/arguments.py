"""A command's arguments: the ``Command`` and ``Arg`` records, their shapes derived from the api's request models,
and the checks of what an editor passes (``parse_arguments``), before the api checks the values (``request``).

The commands themselves and their table are in ``commands.py``; this module names no command
(``command_named`` looks one up in the table when a command runs).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from lsprotocol import types as lsp
from pydantic import BaseModel

from palot import api

if TYPE_CHECKING:
    from .server import PalotLanguageServer

Report = Callable[[str], None]
Run = Callable[["PalotLanguageServer", dict[str, Any], Report], Awaitable[Any]]


def quiet(_line: str) -> None:
    """A ``Report`` that drops the lines: a command run without a progress to show them in."""


#: Older argument names → the api's.
ALIASES = {"permissionMode": "permission_mode", "baseBranch": "base_branch", "setupScript": "setup_script",
           "includeArchived": "include_archived", "includeExternal": "include_external",
           "permission": "permission_id", "permissionId": "permission_id"}


class InvalidArguments(ValueError):
    """A command was called with arguments it cannot use."""


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # "string", "boolean", "number", "array", "object" or "range"
    required: bool = False
    choices: tuple[str, ...] = ()
    api: bool = True  # a field of the action's request (else the editor's own, e.g. uri, range)


@dataclass(frozen=True)
class Command:
    name: str
    action: str  # the api action it runs
    summary: str
    args: tuple[Arg, ...]
    run: Run
    progress: str | None = None  # a work-done progress title, for the long operations

    def signature(self) -> str:
        parts = []
        for arg in self.args:
            kind = "|".join(f'"{c}"' for c in arg.choices) if arg.choices else arg.type
            parts.append(f'"{arg.name}{"" if arg.required else "?"}": {kind}')
        return "{" + ", ".join(parts) + "}"


# --- arguments, derived from the api ---------------------------------------------------------


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    """The JSON kind (and choices) of a request field's type."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if origin is Literal:
        return "string", tuple(str(a) for a in args)
    if origin in (list, tuple):
        return "array", ()
    if origin is dict:
        return "object", ()
    if annotation is bool:
        return "boolean", ()
    if annotation in (int, float):
        return "number", ()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object", ()
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "string", tuple(str(m.value) for m in annotation)
    return "string", ()


def api_args(action: str, *, optional: Sequence[str] = (), first: Sequence[str] = ()) -> tuple[Arg, ...]:
    """Every field of ``action``'s request as an argument (``optional``: defaulted by the editor)."""
    fields = api.ACTIONS[action].request.model_fields
    order = [*first, *(n for n in fields if n not in first)]
    out = []
    for name in order:
        kind, choices = _kind(fields[name].annotation)
        out.append(Arg(name, kind, fields[name].is_required() and name not in optional, choices))
    return tuple(out)


def is_model(action: str, field: str) -> bool:
    """Whether the field is a request model of its own (container ``options``), not a plain mapping (``vars``)."""
    annotation = api.ACTIONS[action].request.model_fields[field].annotation
    return any(isinstance(a, type) and issubclass(a, BaseModel) for a in (annotation, *typing.get_args(annotation)))


def object_model(action: str, field: str) -> type[BaseModel]:
    annotation = api.ACTIONS[action].request.model_fields[field].annotation
    return next(a for a in (annotation, *typing.get_args(annotation))
                if isinstance(a, type) and issubclass(a, BaseModel))


def parse_arguments(command: Command, raw: Sequence[Any] | None) -> dict[str, Any]:
    """Named, shape-checked arguments from ``[{...}]`` or positional ``[...]``; ``InvalidArguments`` otherwise."""
    values = list(raw or [])
    if len(values) == 1 and isinstance(values[0], dict):
        given = {ALIASES.get(k, k) if ALIASES.get(k, k) in _names(command) else k: v for k, v in values[0].items()}
    elif len(values) > len(command.args):
        raise InvalidArguments(f"{command.name} takes at most {len(command.args)} arguments, got {len(values)}; "
                               f"pass one object: {command.signature()}")
    else:
        given = {arg.name: value for arg, value in zip(command.args, values)}
    unknown = [k for k in given if k not in _names(command)]
    if unknown:
        raise InvalidArguments(f"{command.name}: unknown argument {', '.join(repr(k) for k in unknown)}; "
                               f"it takes: {', '.join(a.name for a in command.args)}")
    out: dict[str, Any] = {}
    for arg in command.args:
        value = given.get(arg.name)
        if value is None:
            if arg.required:
                raise InvalidArguments(f"{command.name} needs '{arg.name}'; pass one object: {command.signature()}")
            continue
        out[arg.name] = _check(command, arg, value)
    return out


def _names(command: Command) -> set[str]:
    return {a.name for a in command.args}


def _check(command: Command, arg: Arg, value: Any) -> Any:
    where = f"{command.name}: '{arg.name}'"
    if arg.type == "string":
        if not isinstance(value, str) or not value.strip():
            raise InvalidArguments(f"{where} must be a non-empty string, got {value!r}")
        if arg.choices and value not in arg.choices:
            raise InvalidArguments(f"{where} must be one of {', '.join(arg.choices)}, got {value!r}")
        return value
    if arg.type == "boolean":
        if not isinstance(value, bool):
            raise InvalidArguments(f"{where} must be true or false, got {value!r}")
        return value
    if arg.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArguments(f"{where} must be a number, got {value!r}")
        return value
    if arg.type == "array":
        return [value] if isinstance(value, str) else value  # one status for a list of them; the api checks the rest
    if arg.type == "object":
        # Only the shape is checked here; the api checks the keys and values and names the fix.
        if not isinstance(value, dict):
            raise InvalidArguments(f"{where} must be a JSON object, got {value!r}")
        return value
    if arg.type == "range":
        try:
            start, end = value["start"], value["end"]
            numbers = [start["line"], start["character"], end["line"], end["character"]]
        except (TypeError, KeyError):
            raise InvalidArguments(f"{where} must be an LSP range "
                                   '{"start": {"line", "character"}, "end": {"line", "character"}}') from None
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
            raise InvalidArguments(f"{where} needs non-negative integer lines and characters, got {value!r}")
        return lsp.Range(lsp.Position(numbers[0], numbers[1]), lsp.Position(numbers[2], numbers[3]))
    raise AssertionError(arg.type)


def request(command: Command, a: dict[str, Any], **override: Any) -> BaseModel:
    """The api request of the command's action from its (api) arguments; the api's error when a value is bad."""
    fields = {arg.name: a[arg.name] for arg in command.args if arg.api and arg.name in a}
    return api.request_for(command.action, {**fields, **override})


def dump(value: Any) -> Any:
    """An api answer as JSON for the editor."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value


def command_named(name: str) -> Command:
    """The table's command ``name``, for a command that builds its own request."""
    from .commands import COMMANDS  # at call time: the table imports the modules of the commands

    return COMMANDS[name]
