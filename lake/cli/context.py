"""What every command shares: the settings, resolved once, and the lake."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from lake.config import Settings
    from lake.lakehouse import Lake


@dataclass
class State:
    """Global options of the ``lake`` command."""

    root: str | None = None
    config_file: Path | None = None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _lake: Lake | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from lake.config import load_settings  # deferred: `lake --help` loads no settings code

            overrides: dict[str, Any] = {"root": self.root}
            self._settings = load_settings(overrides, config_file=self.config_file)
        return self._settings

    def lake(self) -> Lake:
        if self._lake is None:
            # deferred: pyarrow, pandas and the catalog load only when a command needs the lake
            from lake.lakehouse import Lake

            self._lake = Lake(self.settings())
        return self._lake


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()
