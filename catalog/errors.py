"""The project's one exception root, and the catalog's branch of it.

``LakeError`` lives here, in the lowest layer, because the catalog may import
neither ``lake`` nor ``jobs``; ``lake.errors`` re-exports it so users write
``from lake.errors import LakeError``.
"""

from __future__ import annotations

from typing import Any

from catalog.redact import redact, redact_text


class LakeError(Exception):
    """Root of every error the project raises on purpose.

    Each carries a message that says what is wrong and what to do next (credentials in it
    are masked by :func:`catalog.redact.redact_text`), plus optional context fields (``table``, ``version``, ``job``, ``source_file``,
    ``line``, ``column``) that callers and the CLI can show.
    """

    def __init__(self, message: str, **context: Any) -> None:
        # Messages and context often quote what a user gave (a URL, a name): never a secret in them.
        message = redact_text(message)
        super().__init__(message)
        self.message = message
        self.context = {k: redact(v) for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        return self.message


class CatalogError(LakeError):
    """Something went wrong in the metadata catalog."""


class DatasetNotFoundError(CatalogError, LookupError):
    """No dataset with that name is registered in the catalog."""


class RunNotFoundError(CatalogError, LookupError):
    """No run with that id is recorded in the catalog."""


class CatalogConnectionError(CatalogError, ConnectionError):
    """The catalog database cannot be reached or opened."""


class TrainingDatasetNotFoundError(CatalogError, LookupError):
    """No training dataset with that id or name."""


class SavedQueryNotFoundError(CatalogError, LookupError):
    """No saved query with that name."""


class CatalogInputError(CatalogError, ValueError):
    """A value the catalog cannot store as given (e.g. a NUL character, which PostgreSQL refuses)."""


class LineageEventError(CatalogError, ValueError):
    """An OpenLineage event is malformed; ``source_file``/``line`` or ``path`` say where."""


class SearchQueryError(CatalogError, ValueError):
    """A search query the catalog cannot run as given."""


class TokenError(CatalogError):
    """Creating, listing or revoking an API token failed."""


class TokenNotFoundError(TokenError, LookupError):
    """No API token with that id."""


class RequestError(CatalogError, ValueError):
    """An HTTP request a server refuses: ``status`` is the 4xx to answer, the message its reason."""

    def __init__(self, status: int, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.status = status


class AuthenticationError(RequestError, PermissionError):
    """An HTTP request without a valid bearer token where one is required (401)."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(401, message, **context)


class UnsafeBindError(CatalogError, PermissionError):
    """A server asked to listen beyond loopback while anyone could use it (no token exists)."""


class AccessError(CatalogError, ValueError):
    """A principal, grant, masking policy or audit query the catalog cannot take as given."""


class PrincipalNotFoundError(AccessError, LookupError):
    """No principal with that name."""


class PermissionDeniedError(RequestError, PermissionError):
    """A principal lacks the grant an action needs (403); ``principal``, ``action`` and ``object`` say which."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(403, message, **context)
