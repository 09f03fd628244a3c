"""Text from users and agents (titles, branches, paths, model output) inside the Markdown an editor renders.

Hovers are Markdown, so a title like ``fix *all* <b>tests</b>`` would come out
bold and as HTML; these helpers make it show as written. Diagnostics and
messages are plain text in LSP and need none of this.
"""

from __future__ import annotations

import re

#: Characters that start Markdown or HTML inline syntax (emphasis, code, links, tags, entities, tables,
#: strikethrough). CommonMark lets any ASCII punctuation be backslash-escaped.
_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~])")
_BACKTICKS = re.compile(r"`+")


def text(value: str) -> str:
    """``value`` as inline Markdown text, shown as written (on one line)."""
    return _SPECIAL.sub(r"\\\1", " ".join(value.splitlines()))


def code(value: str) -> str:
    """``value`` as an inline code span, whatever backticks it holds."""
    value = " ".join(value.splitlines())
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def code_block(value: str, language: str = "") -> str:
    """``value`` as a fenced code block whose fence no line of ``value`` can close."""
    fence = "`" * max(3, max((len(run) for run in _BACKTICKS.findall(value)), default=0) + 1)
    return f"{fence}{language}\n{value}\n{fence}"
