"""What may be stored: the key policy (nothing whose key looks like a secret, in audit details, journal
details or a migration's manifest), values as JSON, and stable project ids.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from palot.errors import StoreError

# Words that mark a key as secret. Matched per word ("access_token", "apiKey")
# so harmless keys such as "input_tokens" still pass.
_SECRET_WORDS = frozenset({"password", "passwd", "token", "secret", "apikey"})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def _secret_key(key: str) -> bool:
    words = [w.lower() for w in _WORD_SPLIT.split(key) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    # "api_key", "api-key", "ApiKey" split into two words.
    return any(a == "api" and b == "key" for a, b in zip(words, words[1:]))


def _check_no_secrets(value: Any, where: str = "detail") -> None:
    """Refuse secret-looking keys anywhere in a (nested) JSON-like value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(key, str) and _secret_key(key):
                raise StoreError(
                    f"refusing to store audit {where} key {key!r}: it looks like a secret",
                    "leave credentials out of audit details (log a name or a fingerprint instead)",
                )
            _check_no_secrets(inner, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_no_secrets(item, where)


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what} is not JSON-serialisable: {exc}",
            "pass only strings, numbers, booleans, None, lists and dicts",
        ) from exc


def _project_id(path: str) -> str:
    # Stable across processes and runs, short enough to type.
    return "prj_" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:12]
