"""Capture every log record of a test, at DEBUG, to assert secrets never reach the logs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def all_loggers_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger at DEBUG into ``caplog``, also those that set a level or do not propagate.

    Loggers created inside the block inherit the root's DEBUG level.
    """
    caplog.set_level(logging.DEBUG)
    isolated: list[logging.Logger] = []
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        caplog.set_level(logging.DEBUG, logger=name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            isolated.append(logger)
    try:
        yield
    finally:
        for logger in isolated:
            logger.removeHandler(caplog.handler)


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as a handler would print it (message, traceback) and all its fields."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) + " " + repr(vars(record)) for record in caplog.records)
