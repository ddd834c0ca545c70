"""The driver program ``spark-submit`` runs: the ``lake`` CLI with the submitted arguments."""

from __future__ import annotations

import sys

from lake.cli.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
