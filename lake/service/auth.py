"""Who a request to the service comes from: a lake token, or a JWT an OIDC issuer signed.

:class:`ServiceAuthenticator` is the catalog's :class:`~catalog.tokens.Authenticator` (hashed
tokens, expiry, revocation, the short cache) plus two things the service needs:

- once any principal exists, a token is required (no anonymous access), whatever ``[server] auth`` says;
- with ``[service] jwks_url``, a bearer JWT is validated against the issuer's keys (signature,
  ``exp``/``nbf``, ``iss`` and ``aud`` when configured), its ``[service] jwt_claim`` names the
  principal, and its ``[service] jwt_groups_claim`` (when set) lists groups: each that is a group
  principal in the catalog gives its grants to the token's holder, who need not be listed. Those groups
  go with the request that presented the token (:class:`~catalog.access.Claimant`), never with the name:
  the same name signed in otherwise holds only its catalog grants. A JWT whose principal claim names a
  catalog group is refused. Keys are fetched once and refetched when a token names an unknown key id.

Each verification (not each cached hit) is audited as ``token`` with its outcome.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt

from catalog.access import AuditLog, Claimant, Policy
from catalog.db import SessionSource
from catalog.errors import AuthenticationError
from catalog.redact import LAKE_TOKEN
from catalog.tokens import Authenticator, AuthMode, Principal

_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class JWTValidator:
    """Validates bearer JWTs against an issuer's JWKS.

    Args:
        jwks_url: where the issuer publishes its keys.
        issuer: the ``iss`` required (None: not checked).
        audience: the ``aud`` required (None: not checked).
        claim: the claim that names the principal.
        groups_claim: the claim listing the principal's groups (None: groups come from the catalog only).
    """

    def __init__(self, jwks_url: str, *, issuer: str | None = None, audience: str | None = None,
                 claim: str = "sub", groups_claim: str | None = None, timeout: float = 5.0) -> None:
        self.issuer, self.audience, self.claim, self.groups_claim = issuer, audience, claim, groups_claim
        self.keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=int(max(1, timeout)))

    def principal(self, token: str) -> tuple[str, float, frozenset[str]]:
        """The principal a valid JWT names, when it expires (epoch seconds) and the groups it claims.

        The groups claim may be a list of names or one space/comma separated string (both are seen
        in the wild); anything else, or more than 1,000 groups, is refused.

        Raises:
            AuthenticationError: a bad signature, an unknown key, expired, wrong issuer or audience,
                or no principal claim.
        """
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=_ALGORITHMS, issuer=self.issuer, audience=self.audience,
                options={"require": ["exp"], "verify_aud": self.audience is not None,
                         "verify_iss": self.issuer is not None})
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthenticationError(f"the JWT cannot be checked: the issuer's keys are unreachable ({exc})") from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"the JWT is not valid: {exc}") from None
        name = claims.get(self.claim)
        if not isinstance(name, str) or not name.strip():
            raise AuthenticationError(f"the JWT has no {self.claim!r} claim naming a principal")
        return name.strip(), float(claims["exp"]), self._groups(claims)

    def _groups(self, claims: dict[str, Any]) -> frozenset[str]:
        if self.groups_claim is None or claims.get(self.groups_claim) is None:
            return frozenset()
        value = claims[self.groups_claim]
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        if (not isinstance(value, list) or len(value) > 1000
                or not all(isinstance(g, str) and 0 < len(g) <= 255 for g in value)):
            raise AuthenticationError(f"the JWT's {self.groups_claim!r} claim is not a list of group names")
        return frozenset(g.strip() for g in value if g.strip())


class ServiceAuthenticator(Authenticator):
    """Lake tokens and OIDC JWTs; required once principals exist.

    Args:
        source: the catalog (tokens, principals).
        policy: tells whether principals exist.
        audit: where token uses are recorded (None: not recorded).
        jwt_validator: validates JWTs (None: a JWT is refused like any other unknown token).
    """

    def __init__(self, source: SessionSource, policy: Policy, *, audit: AuditLog | None = None,
                 jwt_validator: JWTValidator | None = None, mode: AuthMode = "auto", cache_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(source, mode=mode, cache_seconds=cache_seconds, clock=clock)
        self.policy = policy
        self.audit = audit
        self.jwt = jwt_validator
        self._jwts: dict[str, tuple[str, float, frozenset[str]]] = {}
        self._jwt_lock = threading.Lock()

    def sync(self) -> None:
        """Require a token from now on if any principal exists (it stays required afterwards)."""
        if self.mode != "required" and self.policy.enforced():
            self.require()

    def required(self) -> bool:
        self.sync()
        return super().required()

    def cached(self, authorization: str | None) -> Principal | None:
        self.sync()
        token = _jwt_of(authorization)
        if token is not None:
            hit = self._jwts.get(hashlib.sha256(token.encode()).hexdigest())
            if hit is not None and hit[1] > time.time():
                return Principal(Claimant(hit[0], hit[2]), "jwt")
            return None
        return super().cached(authorization)

    def authenticate(self, authorization: str | None) -> Principal:
        self.sync()
        token = _jwt_of(authorization)
        try:
            if token is not None and self.jwt is not None:
                name, expires, groups = self.jwt.principal(token)
                if self.policy.snapshot().kinds.get(name) == "group":
                    raise AuthenticationError(f"the JWT's {self.jwt.claim!r} claim names a group, not who holds "
                                              f"the token: a group's grants come through the groups claim")
                with self._jwt_lock:
                    if len(self._jwts) > 10_000:
                        self._jwts.clear()
                    self._jwts[hashlib.sha256(token.encode()).hexdigest()] = (name, expires, groups)
                principal = Principal(Claimant(name, groups), "jwt")
            else:
                principal = super().authenticate(authorization)
        except AuthenticationError as exc:
            if self.audit is not None and authorization:
                self.audit.record(None, "token", None, "denied", detail=exc.message)
            raise
        if self.audit is not None and not principal.anonymous:
            claimed = sorted(self.policy.closure(principal.name) - {principal.name}) if token is not None else []
            detail = f"token {principal.token_id}" + (f" (groups: {', '.join(claimed)})" if claimed else "")
            self.audit.record(principal.name, "token", None, "allowed", detail=detail[:500])
        return principal


def _jwt_of(authorization: str | None) -> str | None:
    """The bearer value if it looks like a JWT (three dot-separated parts) and not a lake token."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or value.count(".") != 2 or LAKE_TOKEN.search(value):
        return None
    return value
