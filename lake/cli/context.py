"""What every command shares: the settings, resolved once, and the lake."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from lake.config import Settings, load_settings
from lake.lakehouse import Lake


@dataclass
class State:
    """Global options of the ``lake`` command."""

    root: str | None = None
    config_file: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _lake: Lake | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            overrides: dict[str, Any] = {"root": self.root}
            self._settings = load_settings(overrides, config_file=self.config_file)
        return self._settings

    def lake(self) -> Lake:
        if self._lake is None:
            self._lake = Lake(self.settings())
        return self._lake


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()
