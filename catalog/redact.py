"""Credentials never reach the catalog, lineage events or logs: redact them first.

Applied to everything the catalog stores or emits that a user or a job supplied:
URLs (``scheme://user:password@host``), query-string secrets (``?password=...``),
and mapping keys that name a secret (``AWS_SECRET_ACCESS_KEY``, ``password``, ``token``...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "****"
_SECRET_KEY = re.compile(r"(secret|passw|pwd|token|credential|api[_-]?key|access[_-]?key|private[_-]?key|auth)", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]*)@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;\s](?:password|passwd|pwd|secret|token|api_key|apikey|access_key|secret_key|sig|signature)=)"
    r"(?P<val>[^&;\s]+)",
    re.I,
)


def redact_url(url: str) -> str:
    """Replace the password of a URL (``scheme://user:pw@host``) with ``****``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return redact_text(url)
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return redact_text(urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}")))


def redact_text(text: str) -> str:
    """Mask passwords inside any text: URLs with user info and secret query parameters."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a credential."""
    return bool(_SECRET_KEY.search(key))


def redact(value: Any) -> Any:
    """Redact a JSON-like value recursively (mappings, lists, strings)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
