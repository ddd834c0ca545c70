"""Who is asking, what they may do, what they may see: the console's one question to its host.

The console never decides access itself. ``lake ui`` (embedded, loopback only) passes
:class:`OpenAccess`: one anonymous principal that may do everything. ``lake serve`` passes its
own implementation backed by tokens, grants and masking rules.

Actions are ``read``, ``write``, ``manage`` and ``unmask``; objects are ``lake`` (the whole
lake: search, runs), a layer (``bronze``), a dataset (``bronze.trades``), ``feature_view:<name>``,
``feature_service:<name>``, ``training:<name>`` or ``query:<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ACTIONS", "ANONYMOUS", "Access", "Action", "OpenAccess", "TOKEN_COOKIE"]

Action = Literal["read", "write", "manage", "unmask"]
ACTIONS: tuple[str, ...] = ("read", "write", "manage", "unmask")
ANONYMOUS = "anonymous"
TOKEN_COOKIE = "lake_token"
"""The cookie the sign-in page stores the token in (httponly, samesite=strict)."""


class Access(Protocol):
    """What the console asks of its host about every request."""

    def principal(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
        """The caller's principal from the request (e.g. the ``lake_token`` cookie or an
        ``Authorization: Bearer`` header); None when they must sign in first."""
        ...

    def can(self, principal: str | None, action: str, obj: str) -> bool:
        """Whether ``principal`` may do ``action`` (read|write|manage|unmask) on ``obj``."""
        ...

    def mask(self, principal: str | None, table: str, data: pa.Table) -> pa.Table:
        """``data`` (rows of ``table``) as ``principal`` may see them (masked columns nulled or hashed)."""
        ...

    def audit(self, principal: str | None, action: str, obj: str, outcome: str) -> None:
        """Record a decision or an action (``outcome``: allowed, denied, done, failed, signed-in...)."""
        ...


class OpenAccess:
    """The embedded default: one anonymous principal, everything allowed, nothing masked, no audit.

    Only safe where nobody else can connect: ``lake ui`` listens on loopback only.
    """

    def principal(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
        return ANONYMOUS

    def can(self, principal: str | None, action: str, obj: str) -> bool:
        return action in ACTIONS

    def mask(self, principal: str | None, table: str, data: pa.Table) -> pa.Table:
        return data

    def audit(self, principal: str | None, action: str, obj: str, outcome: str) -> None:
        return None
