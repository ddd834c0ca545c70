"""The project's one exception root, and the catalog's branch of it.

``LakeError`` lives here, in the lowest layer, because the catalog may import
neither ``lake`` nor ``jobs``; ``lake.errors`` re-exports it so users write
``from lake.errors import LakeError``.
"""

from __future__ import annotations

from typing import Any


class LakeError(Exception):
    """Root of every error the project raises on purpose.

    Each carries a message that says what is wrong and what to do next, plus
    optional context fields (``table``, ``version``, ``job``, ``source_file``,
    ``line``, ``column``) that callers and the CLI can show.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

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
