"""Errors of the feature store: one branch of :class:`~lake.errors.LakeError`.

The serving errors carry ``status``, the HTTP status the feature server answers with.
"""

from __future__ import annotations

from lake.errors import LakeError

__all__ = ["FeatureError", "OnlineRequestError", "OnlineStoreError", "ServingError", "UnknownFeatureError"]


class FeatureError(LakeError):
    """A feature store problem; the message names the feature view, feature or entity."""


class ServingError(FeatureError):
    """An online request that cannot be answered; ``status`` is the HTTP status it maps to."""

    status = 400


class UnknownFeatureError(ServingError, LookupError):
    """A feature, feature view or feature service the registry does not know (HTTP 404)."""

    status = 404


class OnlineRequestError(ServingError, ValueError):
    """A malformed request: a missing join key, entity columns of different lengths... (HTTP 422)."""

    status = 422


class OnlineStoreError(ServingError, ConnectionError):
    """The online store or the registry cannot be reached (HTTP 503)."""

    status = 503
