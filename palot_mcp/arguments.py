"""Tool arguments derived from the API's request models, so a tool cannot lack (or misname) an option.

A tool is written as ``async def tool(self, ctx, request: <the action's request model>, *extras)``.
``tool_function`` turns it into the function the MCP SDK reads: its signature has every field of the
request model as an argument (same name, type, constraints, default and description, or an
:class:`Override` of them), then the tool's own extra arguments (e.g. ``limit``). A call's arguments are
validated into the request model itself (its validators too), so a tool gets exactly what the service
would accept; a ``ValidationError`` says which argument is wrong.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field
from pydantic_core import PydanticUndefined

from palot import api

_KEEP: Any = object()


@dataclass(frozen=True)
class Override:
    """How a tool shows one request field differently: a narrower type, another default, a longer description;
    ``coerce`` turns the tool's value into the request's (e.g. one status into a list of one)."""

    annotation: Any = _KEEP
    default: Any = _KEEP
    description: str | None = None
    coerce: Callable[[Any], Any] | None = None


def request_parameters(model: type[BaseModel], overrides: Mapping[str, Override]) -> list[inspect.Parameter]:
    """One keyword argument per field of ``model``, in the model's order."""
    params = []
    for name, field in model.model_fields.items():
        o = overrides.get(name, Override())
        annotation = field.annotation if o.annotation is _KEEP else o.annotation
        metadata = list(field.metadata) if o.annotation is _KEEP else []  # ge, le, … of the API's type
        description = o.description or field.description
        if description:
            metadata.append(Field(description=description))
        if metadata:
            annotation = Annotated[(annotation, *metadata)]
        default = field.default if o.default is _KEEP else o.default
        if default is PydanticUndefined:
            default = inspect.Parameter.empty
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    return params


def _plain(value: Any) -> Any:
    """Enum members as their values, so the request model (which may take plain strings) accepts them."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def tool_function(action: str, impl: Callable[..., Awaitable[Any]],
                  overrides: Mapping[str, Override]) -> Callable[..., Awaitable[Any]]:
    """The MCP tool function of ``impl`` (a bound method taking ``ctx, request, *extras``) for ``action``."""
    model = api.ACTIONS[action].request
    signature = inspect.signature(impl, eval_str=True)
    extras = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in list(signature.parameters.values())[2:]]
    fields = set(model.model_fields)
    coerce = {name: o.coerce for name, o in overrides.items() if o.coerce is not None}

    def value(name: str, v: Any) -> Any:
        return _plain(coerce[name](v) if name in coerce else v)

    @functools.wraps(impl)
    async def run(ctx: Context, **arguments: Any) -> Any:
        request = model.model_validate({k: value(k, v) for k, v in arguments.items() if k in fields})
        return await impl(ctx, request, **{k: v for k, v in arguments.items() if k not in fields})

    ctx = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context)
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [ctx, *request_parameters(model, overrides), *extras], return_annotation=signature.return_annotation)
    run.__annotations__ = {"ctx": Context, "return": signature.return_annotation}
    del run.__wrapped__  # type: ignore[attr-defined]  # the signature above is the tool's, not impl's
    return run


def argument_names(fn: Callable[..., Any]) -> frozenset[str]:
    """The arguments a tool function takes from the client (its context is the SDK's)."""
    return frozenset(name for name, p in inspect.signature(fn, eval_str=True).parameters.items()
                     if p.annotation is not Context)
