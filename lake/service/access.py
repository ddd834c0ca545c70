"""What the service (and the console it mounts) asks on every request: who, may they, what to mask, audit it.

:class:`ServiceAccess` matches the console's ``Access`` protocol structurally
(``principal``, ``can``, ``mask``, ``audit``) and adds what the REST API needs
(:meth:`ServiceAccess.check` raises 403 and audits, :meth:`ServiceAccess.masks` for SQL).

Objects: ``lake``, a layer, ``layer.name``; a feature view's catalog dataset ``feature.X`` is
``feature_view:X`` and a feature service's ``feature_service.X`` is ``feature_service:X``
(:func:`object_of`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from catalog.access import AuditLog, Policy
from catalog.errors import AuthenticationError, PermissionDeniedError
from lake.features.access import FeatureAccess
from lake.lakehouse import Lake
from lake.masking import mask_table
from lake.naming import FEATURE_SERVICE_PREFIX, FEATURE_VIEW_PREFIX, TABLE_NAME
from lake.service.auth import JWTValidator, ServiceAuthenticator

COOKIE = "lake_token"
"""The cookie the console's sign-in page puts a token in."""


def object_of(dataset: str) -> str:
    """The object grants name for a catalog dataset (``feature.x`` -> ``feature_view:x``)."""
    if dataset.startswith(FEATURE_VIEW_PREFIX):
        return "feature_view:" + dataset[len(FEATURE_VIEW_PREFIX):]
    if dataset.startswith(FEATURE_SERVICE_PREFIX):
        return "feature_service:" + dataset[len(FEATURE_SERVICE_PREFIX):]
    return dataset


def dataset_of(obj: str) -> str:
    """The catalog dataset of an object (``feature_view:x`` -> ``feature.x``); others unchanged."""
    if obj.startswith("feature_view:"):
        return FEATURE_VIEW_PREFIX + obj.split(":", 1)[1]
    if obj.startswith("feature_service:"):
        return FEATURE_SERVICE_PREFIX + obj.split(":", 1)[1]
    return obj


class ServiceAccess:
    """Authentication, grants, masking and the audit trail of one service.

    Args:
        lake: the lake (its catalog holds principals, grants, masks and the audit trail).
        enforce: False turns every check off (everything allowed, nothing masked or audited): the
            benchmark's baseline, never a deployment.
    """

    def __init__(self, lake: Lake, *, enforce: bool = True) -> None:
        settings = lake.settings.service
        catalog = lake.catalog
        self.lake = lake
        self.namespace = lake.settings.catalog.namespace
        self.enforce = enforce
        self.policy = Policy(catalog, cache_seconds=settings.policy_cache_seconds)
        self.audit_log = AuditLog(catalog)
        validator = (JWTValidator(settings.jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                                  claim=settings.jwt_claim, groups_claim=settings.jwt_groups_claim)
                     if settings.jwks_url else None)
        self.authenticator = ServiceAuthenticator(
            catalog, self.policy, audit=self.audit_log, jwt_validator=validator, mode=lake.settings.server.auth,
            cache_seconds=lake.settings.server.token_cache_seconds)
        self.salt = settings.mask_salt.get_secret_value().encode() if settings.mask_salt else None

    def close(self) -> None:
        self.audit_log.close()

    # ------------------------------------------------------------- the protocol

    def principal(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
        """The principal of a request (a bearer header, else the ``lake_token`` cookie); None: must sign in.

        Anonymous (no principal exists and no token was sent) is ``"anonymous"``.
        """
        authorization = headers.get("authorization") or headers.get("Authorization")
        if not authorization and cookies.get(COOKIE):
            authorization = f"Bearer {cookies[COOKIE]}"
        try:
            return self.authenticator.authenticate(authorization).name
        except AuthenticationError:
            return None

    def can(self, principal: str | None, action: str, obj: str) -> bool:
        """Whether ``principal`` may ``action`` (read, write, manage, unmask) on ``obj`` (nothing audited)."""
        return not self.enforce or self.policy.allows(principal, action, obj)

    def mask(self, principal: str | None, table: str, data: pa.Table) -> pa.Table:
        """``data`` read from ``table`` with the columns ``principal`` may not see unmasked masked."""
        masked = self.masks(principal, table)
        return mask_table(data, masked, self.salt) if masked else data

    def audit(self, principal: str | None, action: str, obj: str, outcome: str, *, version: int | None = None,
              detail: str | None = None) -> None:
        """Record one request (written off the request path)."""
        if self.enforce:
            self.audit_log.record(principal, action, obj, outcome, version=version, detail=detail)

    # ---------------------------------------------------------------- the API

    def check(self, principal: str | None, action: str, obj: str, *, audit_as: str | None = None,
              version: int | None = None) -> None:
        """Audit the request and raise :class:`PermissionDeniedError` (403) unless it is allowed."""
        if not self.enforce:
            return
        allowed = self.policy.allows(principal, action, obj)
        self.audit_log.record(principal, audit_as or action, obj, "allowed" if allowed else "denied",
                              version=version, detail=None if allowed else f"no {action} on {obj}")
        if not allowed:
            raise PermissionDeniedError(f"{principal or 'anonymous'} may not {action} {obj}: ask an owner for "
                                        f"`lake grant {action} {obj} --to {principal or 'NAME'}`",
                                        principal=principal, action=action, object=obj)

    def masks(self, principal: str | None, table: str) -> dict[str, str]:
        """``{column: method}`` to mask when ``principal`` reads catalog dataset ``table``."""
        if not self.enforce:
            return {}
        if TABLE_NAME.match(table):  # lake.table reads `Gold.X` as gold.x, and the catalog records it so
            table = table.lower()
        return self.policy.mask_for(principal, table, self.namespace, object_of(table))

    def enforced(self) -> bool:
        return self.enforce and self.policy.enforced()

    def feature_access(self) -> FeatureAccess:
        """Grants and masking for the feature server this service mounts (same policy, same audit trail)."""
        return FeatureAccess(self.policy, self.audit_log, self.salt, namespace=self.namespace, enforce=self.enforce)
