"""The web console: search the lake, read a dataset's page, walk its lineage, runs, features,
training sets and drift reports in a browser (``lake ui``, or ``lake serve`` behind its access rules).

Server-rendered pages (Jinja2) with a little JavaScript of our own; no build step, no Node.js.
Every page and JSON endpoint asks an :class:`~lake.console.access.Access` what the caller may
see and do, and sample rows go through its masking.
"""

from __future__ import annotations

DEFAULT_PORT = 8765
"""Where ``lake ui`` listens unless told otherwise (``http://127.0.0.1:8765/``)."""
