"""``palot settings`` in the terminal: the file, when it was read, its mistake, and the settings in use as TOML.
Text is built from what users and agents wrote, never markup strings (see README.md)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from rich.text import Text

from .. import api
from ..api import elapsed

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # strings, numbers, booleans and arrays read as TOML


def toml_text(settings: dict[str, Any], prefix: str = "") -> list[str]:
    """Settings as TOML lines (as settings.toml would say them); None values are left out."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    arrays: list[tuple[str, list[dict[str, Any]]]] = []
    for key, value in settings.items():
        name = prefix + _toml_key(str(key))
        if value is None:
            continue
        if isinstance(value, dict):
            tables.append((name, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((name, value))
        else:
            lines.append(f"{_toml_key(str(key))} = {_toml_value(value)}")
    for name, table in tables:
        body = toml_text(table, name + ".")
        if body and body[0]:  # keys of its own (a table of only tables needs no header)
            lines += ["", f"[{name}]"]
        lines += body
    for name, array in arrays:
        for entry in array:
            lines += ["", f"[[{name}]]", *toml_text(entry, name + ".")]
    return lines


def settings_text(view: api.SettingsView) -> Text:
    """``palot settings``: where the file is, when it was read, its mistake (red), the settings in use."""
    loaded = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(view.loaded_at)) + f" ({elapsed(view.loaded_at)} ago)"
              if view.loaded_at else "never: the defaults hold" + ("" if view.error else " (no settings file)"))
    text = Text.assemble(("file      ", "bold"), view.path, "\n", ("loaded    ", "bold"), loaded)
    if view.error:
        text.append("\n")
        text.append("error     ", "bold red")
        text.append(view.error, "red")
    body = "\n".join(toml_text(view.settings)).strip("\n")
    text.append("\n\n" + (body or "# no settings: every default holds"))
    return text
