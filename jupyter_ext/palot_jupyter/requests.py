"""Forms built from :mod:`palot.api`'s request models: one widget per field, named and described as the API does.

The spawn form, the move options, the pull-request form and the other action controls are
:class:`RequestForm` instances, so a field added to a request shows up in the dashboard by itself and no
form can lack one. Values are read back as a plain dict and validated by ``api.request_for`` (its error
names the field and the fix).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from enum import Enum
from typing import Any, Literal, Union

import ipywidgets as w
from pydantic import BaseModel
from pydantic.fields import FieldInfo

_LABEL = {"description_width": "110px"}
#: Fields whose values are long texts.
LONG_TEXT = frozenset({"prompt", "setup_script", "body", "text"})
DEFAULT = ""  # the "(default)" choice of an optional field


def label(name: str) -> str:
    """``base_branch`` → ``Base branch``."""
    return name.replace("_", " ").capitalize()


def _optional(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``None``, and whether ``None`` was allowed."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), len(args) < len(typing.get_args(annotation))
    return annotation, False


def _choices(annotation: Any) -> tuple[str, ...] | None:
    if typing.get_origin(annotation) is Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return tuple(str(m.value) for m in annotation)
    return None


def nested_model(info: FieldInfo) -> type[BaseModel] | None:
    """The request model of a nested field (e.g. ``options: ContainerOptions | None``), if it is one."""
    inner, _ = _optional(info.annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def field_widget(name: str, info: FieldInfo) -> w.Widget:
    """A widget for one request field: choices as a dropdown, flags as a checkbox, the rest as text."""
    inner, optional = _optional(info.annotation)
    tip = info.description or label(name)
    default = None if info.default is None or info.is_required() else info.default
    choices = _choices(inner)
    if choices is not None:
        options: list[tuple[str, str]] = [(c, c) for c in choices]
        if optional or (default is None and not info.is_required()):
            options.insert(0, ("(default)", DEFAULT))
        value = str(default.value if isinstance(default, Enum) else default) if default is not None else (
            options[0][1])
        return w.Dropdown(description=label(name), options=options, value=value, tooltip=tip, style=_LABEL)
    if inner is bool:
        if optional:  # yes / no / let the service decide
            return w.Dropdown(description=label(name), options=[("(default)", DEFAULT), ("yes", "yes"), ("no", "no")],
                              value=DEFAULT, tooltip=tip, style=_LABEL)
        return w.Checkbox(description=tip, value=bool(default), indent=False)
    if typing.get_origin(inner) is list:
        item_choices = _choices(typing.get_args(inner)[0])
        if item_choices is not None:
            return w.SelectMultiple(description=label(name), options=item_choices, rows=min(len(item_choices), 4),
                                    tooltip=tip, style=_LABEL)
        return w.Text(description=label(name), placeholder=f"{tip} (comma-separated)", tooltip=tip, style=_LABEL)
    if name in LONG_TEXT:
        return w.Textarea(description=label(name), placeholder=tip, tooltip=tip, rows=3, style=_LABEL)
    placeholder = tip if default is None else f"{tip} (default {default})"
    value = "" if default is None else str(default)
    return w.Text(description=label(name), placeholder=placeholder, value=value, tooltip=tip, style=_LABEL)


def widget_value(widget: w.Widget, info: FieldInfo) -> Any:
    """The field's value as the API takes it; ``None`` when left blank (the API's default then applies)."""
    inner, _ = _optional(info.annotation)
    value = widget.value
    if isinstance(widget, w.SelectMultiple):
        return list(value) or None
    if isinstance(widget, w.Checkbox):
        return bool(value)
    if isinstance(widget, w.Dropdown) and inner is bool:
        return None if value == DEFAULT else value == "yes"
    if isinstance(value, str):
        if typing.get_origin(inner) is list:
            items = [v.strip() for v in value.split(",") if v.strip()]
            return items or None
        text = value if isinstance(widget, w.Textarea) else value.strip()
        # A required field goes as it is, so the API says what is wrong with it ("the prompt is empty").
        return text if info.is_required() or text.strip() else None
    return value


class RequestForm:
    """Widgets for the fields of ``model`` (less ``exclude``), keyed by field name; nested models are sub-forms.

    ``widgets`` may be given for fields that want a special widget (e.g. the project as a combobox); they are
    read back the same way. Attribute access reaches a field's widget: ``form.prompt.value``.
    """

    def __init__(self, model: type[BaseModel], *, exclude: Iterable[str] = (),
                 widgets: dict[str, w.Widget] | None = None) -> None:
        self.request_model = model
        self.fields: dict[str, FieldInfo] = {n: f for n, f in model.model_fields.items() if n not in set(exclude)}
        self.widgets: dict[str, w.Widget] = {}
        self.forms: dict[str, RequestForm] = {}
        given = widgets or {}
        for name, info in self.fields.items():
            sub = nested_model(info)
            if sub is not None and name not in given:
                self.forms[name] = RequestForm(sub)
                continue
            self.widgets[name] = given.get(name) or field_widget(name, info)

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__
        if name in inner.get("widgets", {}):
            return inner["widgets"][name]
        if name in inner.get("forms", {}):
            return inner["forms"][name]
        raise AttributeError(name)

    def field_names(self) -> set[str]:
        """Every field this form offers, nested ones as ``options.memory``."""
        names = set(self.widgets)
        for name, form in self.forms.items():
            names |= {f"{name}.{n}" for n in form.field_names()}
        return names

    def values(self) -> dict[str, Any]:
        """The filled-in fields (blank ones left out, so the API's defaults apply)."""
        out: dict[str, Any] = {}
        for name, widget in self.widgets.items():
            value = widget_value(widget, self.fields[name])
            if value is not None:
                out[name] = value
        for name, form in self.forms.items():
            nested = form.values()
            if nested:
                out[name] = nested
        return out

    def clear(self, *names: str) -> None:
        for name in names:
            widget = self.widgets[name]
            widget.value = () if isinstance(widget, w.SelectMultiple) else ""

    def box(self, order: Iterable[str] = ()) -> w.VBox:
        """The widgets in ``order`` first, then the rest as the model declares them."""
        first = [n for n in order if n in self.widgets or n in self.forms]
        rest = [n for n in self.fields if n not in first]
        return w.VBox([self.forms[n].box() if n in self.forms else self.widgets[n] for n in first + rest])
