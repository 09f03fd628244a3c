"""OpenCode's errors as one sentence a person can act on.

OpenCode reports failures as ``{name, data: {message}}``; for unexpected ones the
message carries a Bun stack trace (``at <anonymous> (/$bunfs/root/chunk-….js:…)``).
Users get the cause and the fix; the full detail goes to the log.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

_FRAME = re.compile(r"^\s*at\s")
_WRAPPED = re.compile(r"^([A-Z][A-Za-z]*Error):\s*(.*)$")

#: What to do about the errors a user can fix, by OpenCode's error name.
FIXES = {
    "ProviderModelNotFoundError": "choose a model from your OpenCode config (`palot models` lists them)",
    "ProviderInitError": "check the provider's settings in your OpenCode config",
    "ProviderAuthError": "log in to the provider again (`opencode auth login`) or set its API key",
    "APIError": "check the provider's status and your quota, then prompt the agent again",
    "MessageOutputLengthError": "prompt the agent to continue where it stopped",
    "ContextOverflowError": "start a new agent, or ask this one to summarise and continue",
}


def first_line(text: str) -> str:
    """The message without stack frames or continuation lines."""
    for line in text.splitlines():
        if line.strip() and not _FRAME.match(line):
            return line.strip()
    return ""


def error_sentence(name: str, data: dict[str, Any] | None = None) -> str:
    """One line: what failed, and the fix when Palot knows it. ``MessageAbortedError`` is not a failure and is
    not passed here."""
    data = data or {}
    message = first_line(str(data.get("message") or ""))
    wrapped = _WRAPPED.match(message)
    if wrapped:  # "UnknownError" whose message is "ProviderModelNotFoundError: …"
        name, message = wrapped.group(1), wrapped.group(2)
    if name == "APIError" and data.get("statusCode"):
        message = f"the model provider answered {data['statusCode']}: {message or 'no detail'}"
    text = message or _words(name)
    fix = FIXES.get(name)
    if text != str(data.get("message") or "").strip():
        log.info("OpenCode error %s: %s", name, data)
    return f"{text.rstrip('.')} — {fix}" if fix else text


def http_error_detail(body: str) -> str:
    """The useful part of an error response's body (OpenCode answers ``{name, data: {message}}``)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return first_line(body)[:300]
    if isinstance(parsed, dict) and isinstance(parsed.get("data"), dict) and parsed.get("name"):
        return error_sentence(str(parsed["name"]), parsed["data"])
    if isinstance(parsed, dict) and parsed.get("message"):
        return first_line(str(parsed["message"]))[:300]
    return first_line(body)[:300]


def _words(name: str) -> str:
    """``ProviderAuthError`` → ``provider auth error``."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
