"""API tokens: bearer credentials for the HTTP servers, stored hashed, owned by a named principal.

A token is ``lake_<id>_<secret>``: a 12-hex-digit id (shown by ``lake token list``, safe to log)
and 256 random bits. The catalog keeps only the SHA-256 of the whole text, so a copy of its
database lets nobody in; the text is shown once, when the token is created.

:class:`Authenticator` is what a server asks: is a token required (always, or once any
active token exists), and who is this ``Authorization: Bearer ...`` header? It caches what
it verified for ``cache_seconds`` (a revoked token stops working within that time) so a
feature request pays a dictionary lookup, not a database round trip.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import hmac
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.db import SessionSource
from catalog.errors import AuthenticationError, TokenError, TokenNotFoundError
from catalog.redact import LAKE_TOKEN

AuthMode = Literal["auto", "required"]
PRINCIPAL = re.compile(r"^[\w.@:+\-]{1,255}$")
"""What a principal's name may be: letters, digits and ``_ . @ : + -`` (``alice``, ``svc:training``)."""
LAST_USED_EVERY = dt.timedelta(seconds=60)
"""``last_used_at`` is refreshed at most this often per token."""
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but its secret."""

    id: str
    principal: str
    description: str | None
    created_by: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def status(self, now: dt.datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or m.utcnow()):
            return "expired"
        return "active"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "principal": self.principal, "status": self.status(),
                "description": self.description, "created_by": self.created_by, "created_at": self.created_at,
                "expires_at": self.expires_at, "last_used_at": self.last_used_at, "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class Principal:
    """Who made a request: a token's principal, or ``anonymous`` where no token is required."""

    name: str
    token_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.token_id is None


def _info(row: m.ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.principal, row.description, row.created_by, row.created_at, row.expires_at,
                     row.last_used_at, row.revoked_at)


def digest(token: str) -> str:
    """The stored form of a token: hex SHA-256 of its text."""
    return hashlib.sha256(token.encode()).hexdigest()


def whoami() -> str:
    """``user@host`` of this process, recorded as a token's creator."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def create(session: Session, principal: str, *, expires_at: dt.datetime | None = None,
           description: str | None = None, created_by: str | None = None) -> tuple[TokenInfo, str]:
    """A new token for ``principal``; returns it and its text (the only time the text exists).

    Raises:
        TokenError: the principal's name is not allowed, or the expiry is in the past.
    """
    if not PRINCIPAL.match(principal):
        raise TokenError(f"principal {principal[:80]!r}: use 1-255 letters, digits and _ . @ : + - "
                         "(e.g. alice or svc:training)", principal=principal[:80])
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=dt.UTC)
        if expires_at <= m.utcnow():
            raise TokenError(f"the expiry {expires_at.isoformat()} is in the past")
    token_id = secrets.token_hex(6)
    text = f"lake_{token_id}_{secrets.token_urlsafe(32)}"
    row = m.ApiToken(id=token_id, principal=principal, secret_hash=digest(text), description=description,
                     created_by=created_by or whoami(), created_at=m.utcnow(), expires_at=expires_at)
    session.add(row)
    session.flush()
    return _info(row), text


def listing(session: Session, *, principal: str | None = None, include_inactive: bool = True) -> list[TokenInfo]:
    """Tokens, newest first."""
    q = select(m.ApiToken).order_by(m.ApiToken.created_at.desc(), m.ApiToken.id)
    if principal is not None:
        q = q.where(m.ApiToken.principal == principal)
    if not include_inactive:
        now = m.utcnow()
        q = q.where(m.ApiToken.revoked_at.is_(None),
                    or_(m.ApiToken.expires_at.is_(None), m.ApiToken.expires_at > now))
    return [_info(r) for r in session.scalars(q)]


def revoke(session: Session, token_id: str) -> TokenInfo:
    """Revoke a token by id (revoking it again changes nothing).

    Raises:
        TokenNotFoundError: no token has this id.
    """
    row = session.get(m.ApiToken, token_id.strip())
    if row is None:
        raise TokenNotFoundError(f"no token {token_id[:40]!r}; `lake token list` shows the ids", token=token_id[:40])
    if row.revoked_at is None:
        row.revoked_at = m.utcnow()
    session.flush()
    return _info(row)


def active_count(session: Session) -> int:
    """Tokens neither revoked nor expired."""
    now = m.utcnow()
    return int(session.scalar(select(func.count()).select_from(m.ApiToken).where(
        m.ApiToken.revoked_at.is_(None), or_(m.ApiToken.expires_at.is_(None), m.ApiToken.expires_at > now))) or 0)


def verify(session: Session, token: str) -> TokenInfo:
    """The active token whose text this is (``last_used_at`` refreshed at most once a minute).

    Raises:
        AuthenticationError: the text is not a token, or no such token, or it is revoked or expired.
    """
    match = LAKE_TOKEN.fullmatch(token.strip())
    if match is None:
        raise AuthenticationError("the bearer token is not a lake token (lake_<id>_<secret>)")
    row = session.get(m.ApiToken, match["id"])
    # Compared in constant time, and the same answer whether the id or the secret is wrong.
    if row is None or not hmac.compare_digest(row.secret_hash, digest(token.strip())):
        raise AuthenticationError("the bearer token is not valid")
    info = _info(row)
    status = info.status()
    if status != "active":
        raise AuthenticationError(f"the bearer token {info.id} is {status}; create a new one with "
                                  "`lake token create`", token=info.id)
    now = m.utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        session.execute(update(m.ApiToken).where(m.ApiToken.id == row.id).values(last_used_at=now))
    return info


class Authenticator:
    """Decides who a request comes from, for any HTTP server of the lake.

    Args:
        source: the catalog holding the tokens.
        mode: ``auto`` (a token is required once any active token exists; without one, only
            loopback binding is allowed, see :func:`catalog.http.check_binding`) or ``required``.
        cache_seconds: how long a verified token, and whether any token exists, is trusted
            without asking the database again.
    """

    def __init__(self, source: SessionSource, *, mode: AuthMode = "auto", cache_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in ("auto", "required"):
            raise TokenError(f"authentication mode {mode!r}: use auto or required")
        self.source = source
        self.mode: AuthMode = mode
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._verified: dict[str, tuple[float, TokenInfo]] = {}
        self._required: tuple[float, bool] | None = None

    def require(self) -> None:
        """From now on a token is always required (a server bound beyond loopback calls this)."""
        self.mode = "required"

    def required(self) -> bool:
        """Whether requests need a token: always in ``required`` mode, else once an active token exists."""
        if self.mode == "required":
            return True
        now = self._clock()
        cached = self._required
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        with self.source.reading() as s:
            required = active_count(s) > 0
        self._required = (now, required)
        return required

    def cached(self, authorization: str | None) -> Principal | None:
        """The principal of a header verified within ``cache_seconds`` (no database call), else None.

        Without a token: anonymous if the server was known, within ``cache_seconds``, to need none.
        """
        token = _bearer(authorization)
        if token is None:
            known = self._required
            if (authorization is None and self.mode == "auto" and known is not None and not known[1]
                    and self._clock() - known[0] < self.cache_seconds):
                return Principal(ANONYMOUS)
            return None
        hit = self._verified.get(digest(token))
        if hit is None or self._clock() - hit[0] >= self.cache_seconds:
            return None
        info = hit[1]
        if info.expires_at is not None and info.expires_at <= m.utcnow():
            return None
        return Principal(info.principal, info.id)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization`` header value (None: no header).

        Returns:
            The token's principal; :data:`ANONYMOUS` when no token is required and none was sent.

        Raises:
            AuthenticationError: a token is required and missing, or the one sent is not valid.
        """
        hit = self.cached(authorization)
        if hit is not None:
            return hit
        token = _bearer(authorization)
        if token is None:
            if not self.required():
                return Principal(ANONYMOUS)
            if authorization is not None and authorization.strip():
                raise AuthenticationError("this server takes `Authorization: Bearer <token>`, not "
                                          f"{authorization.strip().split(' ')[0][:20]!r} credentials")
            raise AuthenticationError("this server requires a token: send `Authorization: Bearer <token>` "
                                      "(`lake token create --principal NAME` makes one)")
        with self.source.writing() as s:
            info = verify(s, token)
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[digest(token)] = (self._clock(), info)
        return Principal(info.principal, info.id)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
