"""OpenCode configuration for pointing it at a scripted model server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["provider_config"]


def provider_config(
    base_url: str,
    *,
    provider: str = "palot-scripted",
    model: str = "scripted",
    api_key: str = "scripted",
    cost: Mapping[str, float] | tuple[float, float] | None = None,
    context: int = 100_000,
    output: int = 4096,
) -> dict[str, Any]:
    """Return the OpenCode config fragment that uses the scripted server.

    Pass it (JSON-encoded) as ``OPENCODE_CONFIG_CONTENT``. The provider uses
    the built-in ``@ai-sdk/openai-compatible`` adapter, is the only enabled
    provider, and is both ``model`` and ``small_model`` (title generation).

    ``cost`` is USD per million tokens, either ``{"input": 3, "output": 15}``
    (``cache_read`` / ``cache_write`` keys allowed) or ``(input, output)``;
    with it OpenCode reports a non-zero session cost.
    """
    entry: dict[str, Any] = {
        "name": "Palot scripted model",
        "tool_call": True,
        "attachment": False,
        "reasoning": False,
        "temperature": True,
        "limit": {"context": context, "output": output},
    }
    if cost is not None:
        if isinstance(cost, Mapping):
            allowed = {"input", "output", "cache_read", "cache_write"}
            unknown = set(cost) - allowed
            if unknown:
                raise ValueError(f"unknown cost keys: {sorted(unknown)}")
            entry["cost"] = {k: float(v) for k, v in cost.items()}
        else:
            inp, out = cost
            entry["cost"] = {"input": float(inp), "output": float(out)}
    ref = f"{provider}/{model}"
    return {
        "provider": {
            provider: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Palot scripted",
                "options": {"baseURL": base_url, "apiKey": api_key},
                "models": {model: entry},
            }
        },
        "model": ref,
        "small_model": ref,
        "enabled_providers": [provider],
        "autoupdate": False,
        "share": "disabled",
    }
