"""Grants and masking on online features: the feature server asks this per request.

Once principals exist (see :mod:`catalog.access`), a request for a feature service needs
``read`` on ``feature_service:NAME``; a request naming features needs ``read`` on each
``feature_view:VIEW``. A feature whose column carries a masked tag (directly, or derived
from a tagged gold column through the lineage ``lake features apply`` records) is masked
unless the principal holds ``unmask`` on the service (or the view). Decisions come from the
policy snapshot in memory and are cached per (principal, request shape) until it is reloaded,
so a request pays a dictionary lookup; each request is audited off the request path.
"""

from __future__ import annotations

from typing import Any

from catalog.access import AuditLog, Policy, Snapshot, claimed_groups
from catalog.errors import PermissionDeniedError
from lake.features.online import OnlineResult
from lake.features.online_plan import Plan
from lake.masking import mask_value
from lake.naming import feature_view_dataset


class FeatureAccess:
    """Who may read which features, and what they see masked.

    Args:
        policy: the grants and masks.
        audit: where each request is recorded (None: not recorded).
        salt: the secret of ``hash`` masking.
        namespace: the catalog namespace of the feature view datasets.
        enforce: False allows everything and masks nothing (a benchmark's baseline).
    """

    def __init__(self, policy: Policy, audit: AuditLog | None, salt: bytes | None, *, namespace: str = "lake",
                 enforce: bool = True) -> None:
        self.policy, self.audit, self.salt, self.namespace, self.enforce = policy, audit, salt, namespace, enforce
        self._decided: dict[tuple[str | None, frozenset[str], str | None, tuple[str, ...]],
                            tuple[str | None, dict[int, str]]] = {}
        self._snapshot: Snapshot | None = None

    def decide(self, principal: str | None, plan: Plan) -> dict[int, str]:
        """``{output position among the features: method}`` to mask; raises 403 when not allowed."""
        if not self.enforce:
            return {}
        snapshot = self.policy.snapshot()
        if not snapshot.kinds:  # no principal defined: an embedded lake, nothing to enforce or audit
            return {}
        if snapshot is not self._snapshot:
            self._decided.clear()
            self._snapshot = snapshot
        key = (principal, claimed_groups(principal), plan.service, tuple(plan.refs))  # a JWT's groups decide too
        hit = self._decided.get(key)
        if hit is None:
            hit = self._decided[key] = self._decide(principal, plan)
            if len(self._decided) > 10_000:
                self._decided.clear()
        denied, masked = hit
        obj = f"feature_service:{plan.service}" if plan.service else ",".join(plan.refs)[:512]
        if self.audit is not None:
            self.audit.record(principal, "features", obj, "denied" if denied else "allowed", detail=denied)
        if denied:
            raise PermissionDeniedError(denied, principal=principal, object=obj)
        return masked

    def _decide(self, principal: str | None, plan: Plan) -> tuple[str | None, dict[int, str]]:
        views = {ref.split(":", 1)[0] for ref in plan.refs}
        names = {v.alias: v.name for v in plan.views}
        if plan.service:
            scope = [f"feature_service:{plan.service}"]
        else:
            scope = sorted(f"feature_view:{names.get(v, v)}" for v in views)
        for obj in scope:
            if not self.policy.allows(principal, "read", obj):
                return (f"{principal or 'anonymous'} may not read {obj}: ask an owner for "
                        f"`lake grant read {obj} --to {principal or 'NAME'}`"), {}
        masked: dict[int, str] = {}
        for i, ref in enumerate(plan.refs):
            alias, _, feature = ref.partition(":")
            view = names.get(alias, alias)
            method = self.policy.masked_columns(feature_view_dataset(view), self.namespace).get(feature)
            if method is None:
                continue
            unmasked = any(self.policy.allows(principal, "unmask", o) for o in [*scope, f"feature_view:{view}"])
            if not unmasked:
                masked[i] = method
        return None, masked

    def mask(self, result: OnlineResult, masked: dict[int, str]) -> OnlineResult:
        """``result`` with the masked feature columns replaced (in place; returned for chaining)."""
        return mask_result(result, masked, self.salt)


def mask_result(result: OnlineResult, masked: dict[int, str], salt: bytes | None) -> OnlineResult:
    """Replace the feature columns at the positions of ``masked`` by their masks (in place)."""
    for i, method in masked.items():
        col = result.keys + i
        if col >= len(result.values):
            continue
        if result.protos[col]:
            values: list[Any] = result.to_dict()[result.names[col]]
            result.protos[col] = False
        else:
            values = result.values[col]
        result.values[col] = [mask_value(v, method, salt) for v in values]
    return result
