"""The prompts code actions give agents, and the file context added to a prompt (pure)."""

from __future__ import annotations

from .changes import lines_label

ASK = "Explain what this code does and point out anything that looks wrong. Answer only; do not change any file."
FIX = "Fix the problems in this code."


def fix_diagnostic(message: str, source: str | None) -> str:
    by = f" reported by {source}" if source else ""
    return f"Fix this problem{by}: {message}"


def with_context(prompt: str, path: str, start: int, end: int, text: str, language: str | None = None) -> str:
    """``prompt`` followed by the named lines of ``path`` (1-based, inclusive) as a fenced block."""
    fence = "````" if "```" in text else "```"
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{prompt.rstrip()}\n\n{path}, {lines_label(start, end)}:\n{fence}{language or ''}\n{body}{fence}\n"
