"""Credentials never reach the catalog, lineage events, logs or the terminal: redact them first.

One function per shape of value, all built on :func:`redact_text`:

- :func:`redact_text` masks secrets inside any text: the password of a URL
  (``scheme://user:password@host``, also when the password holds ``@``, ``/`` or ``:``),
  a bare ``user:password@host``, ``key=value`` pairs whose key names a secret
  (``password=``, ``pw=``, ``pass=``, ``token=``... in query strings, DSNs and messages),
  JSON ``"key": "value"`` pairs likewise, ``Authorization``-style ``Bearer``/``Basic``
  credentials, and the lake's own API tokens (``lake_<id>_<secret>``: the id stays).
- :func:`redact` walks JSON-like values: a mapping key that names a secret masks its
  value; every other string (keys included) goes through :func:`redact_text`.
- :func:`is_secret_key` decides whether a key names a secret by its *words*
  (``dbPassword``, ``AWS_SECRET_ACCESS_KEY``, ``x-api-key``, ``pw``), so ``author`` or
  ``passenger`` are not masked.

Redaction errs on the side of masking: a URL whose path holds an ``@`` after a port
(``http://host:8080/a@b``) loses the text between the port and the ``@``.
The catalog applies :func:`redact_text` to every parameter it sends to its database
(``catalog.db``), so nothing unredacted is stored even where a caller forgot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "****"

# A key names a secret when one of its words is one of these...
_SECRET_WORDS = frozenset({
    "password", "passwd", "passwort", "pass", "pw", "pwd", "passphrase", "secret", "secrets", "token", "tokens",
    "credential", "credentials", "creds", "apikey", "apikeys", "auth", "authorization", "bearer", "cookie",
    "signature", "sig", "privatekey", "secretkey", "accesskey", "sas", "jwt", "otp", "pin",
})
# ... or two consecutive words are one of these.
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"),
                           ("client", "secret"), ("session", "key"), ("account", "key"), ("master", "key"),
                           ("encryption", "key"), ("signing", "key"), ("session", "id"), ("set", "cookie")})
_KEY_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

_SCHEME = r"[a-zA-Z][a-zA-Z0-9+.\-]*://"
# scheme://user:password@host: the password runs to the last '@' of the URL (it may hold '@', '/', ':').
_URL_USERINFO = re.compile(
    rf"(?P<head>{_SCHEME}(?P<user>[^\s:/@'\"<>]*)):(?P<pw>[^\s'\"<>]*)@(?P<host>[^\s@'\"<>]*)(?=[\s'\"<>]|$)")
# user:password@host without a scheme (mailto:x@y is an address, not a credential).
_BARE_USERINFO = re.compile(
    r"(?<![\w/:.@%+\-])(?P<user>[\w.+\-]+):(?P<pw>[^\s@:/'\"<>][^\s@:'\"<>]*(?:@[^\s@'\"<>]+)*?)@"
    r"(?P<host>[\w\-]+(?:\.[\w\-]+)*(?::\d+)?)(?=[\s/'\"<>,;)]|$)")
# key=value (query strings, DSNs, messages) and "key": "value" (JSON text).
# The key is a whole word of at most 64 characters (never the tail of a base64 run such as a
# serialized protobuf), and '=' padding is never a value.
_ASSIGN = re.compile(
    r"(?<![\w.\-/+])(?P<key>[A-Za-z_][\w.\-]{0,63})(?![\w.\-/+])(?P<sep>\s*=\s*)"
    r"(?P<val>'[^']*'|\"[^\"]*\"|[^\s&;,'\"<>)\]}=][^\s&;,'\"<>)\]}]*)")
_JSON_PAIR = re.compile(
    r"\"(?P<key>[^\"\\]{1,64})\"(?P<sep>\s*:\s*)(?P<val>\"(?:[^\"\\]|\\.)*\"|-?\d[\d.eE+\-]*)")
# "Authorization: Basic dXNlcjpwdw==", or a long credential after "Bearer" anywhere.
_HTTP_AUTH = re.compile(
    r"(?P<head>\b(?:Proxy-)?Authorization\s*[:=]\s*(?:Bearer|Basic|Token|Digest)\s+|\bBearer\s+(?=\S{16,}))"
    r"(?P<val>[A-Za-z0-9._~+/=\-]+)", re.I)
LAKE_TOKEN = re.compile(r"\blake_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_\-]{16,})")
"""The lake's API tokens (``lake_<12 hex id>_<secret>``)."""
_HINTS = (":", "=", "@", "lake_", "earer")
# Words that name a secret even inside a longer lower-case word (``dbpassword``, ``adminsecret``).
_SECRET_INSIDE = ("password", "passwd", "secret", "token", "apikey", "credential", "privatekey", "accesskey")


def key_words(key: str) -> list[str]:
    """The lower-case words of a key: ``dbPassword`` -> db, password; ``X-API-Key`` -> x, api, key."""
    return [w.lower() for w in _KEY_WORDS.findall(key)]


def is_secret_key(key: str) -> bool:
    """Whether a mapping key (or a ``key=``) names a credential, judged by its words."""
    words = key_words(key)
    if any(w in _SECRET_WORDS or any(s in w for s in _SECRET_INSIDE) for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False))


def _mask_url(match: re.Match[str]) -> str:
    return f"{match['head']}:{MASK}@{match['host']}"


def _mask_bare(match: re.Match[str]) -> str:
    if match["user"].lower() in ("mailto", "xmpp", "sip", "tel"):
        return match.group(0)
    return f"{match['user']}:{MASK}@{match['host']}"


def _mask_assign(match: re.Match[str]) -> str:
    if not is_secret_key(match["key"]) or match["val"] in ("''", '""', MASK):
        return match.group(0)
    return f"{match['key']}{match['sep']}{MASK}"


def _mask_json(match: re.Match[str]) -> str:
    if not is_secret_key(match["key"]) or match["val"] == '""':
        return match.group(0)
    return f"\"{match['key']}\"{match['sep']}\"{MASK}\""


def redact_text(text: str) -> str:
    """Mask every credential inside ``text`` (see the module's docstring for what is recognized)."""
    if not any(h in text for h in _HINTS):
        return text
    # Each pattern runs only where the text could hold it (plain substring checks are cheap; every
    # parameter the catalog stores comes through here, serialized JSON included).
    if "@" in text:
        if "://" in text:
            text = _URL_USERINFO.sub(_mask_url, text)
        if ":" in text:
            text = _BARE_USERINFO.sub(_mask_bare, text)
    if ("=" in text or '"' in text) and _may_name_a_secret(text):
        if "=" in text:
            text = _ASSIGN.sub(_mask_assign, text)
        if '"' in text:
            text = _JSON_PAIR.sub(_mask_json, text)
    if "earer" in text or "uthorization" in text:
        text = _HTTP_AUTH.sub(lambda m: f"{m['head']}{MASK}", text)
    if "lake_" in text:
        text = LAKE_TOKEN.sub(lambda m: f"lake_{m['id']}_{MASK}", text)
    return text


# Substrings every key that names a secret contains (lower-cased): a text without any has no such key.
_KEY_HINTS = ("pass", "pw", "secret", "token", "cred", "key", "auth", "bearer", "cookie", "sig", "jwt", "otp",
              "pin", "sas", "session")


def _may_name_a_secret(text: str) -> bool:
    low = text.lower()
    return any(h in low for h in _KEY_HINTS)


def redact_url(url: str) -> str:
    """A URL with its password masked (``scheme://user:****@host/...``); same as :func:`redact_text`."""
    return redact_text(url)


def redact(value: Any) -> Any:
    """Redact a JSON-like value recursively: mappings (keys too), lists, strings."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = redact_text(k) if isinstance(k, str) else k
            secret = isinstance(k, str) and is_secret_key(k) and v not in (None, "", MASK)
            out[key] = MASK if secret else redact(v)
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
