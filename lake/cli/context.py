"""What every command shares: the settings, resolved once, and the lake."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lake.cli.output import err_console
from lake.errors import ConfigError

if TYPE_CHECKING:
    from lake.config import Settings
    from lake.lakehouse import Lake


@dataclass
class State:
    """Global options of the ``lake`` command."""

    root: str | None = None
    config_file: Path | None = None
    verbose: bool = False
    create: bool = False
    """``--create``: make the lake root if it does not exist (writes make it anyway)."""
    _settings: Settings | None = field(default=None, repr=False)
    _lake: Lake | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from lake.config import load_settings  # deferred: `lake --help` loads no settings code

            # Quiet unless --verbose: the Spark JVM's startup lines and logs go to a file, not the terminal.
            overrides: dict[str, Any] = {"root": self.root, "spark": {"quiet": not self.verbose}}
            self._settings = load_settings(overrides, config_file=self.config_file)
        return self._settings

    def lake(self, *, write: bool = False, catalog_only: bool = False) -> Lake:
        """The lake; a local root that does not exist is refused unless the command writes (or ``--create``).

        A mistyped ``--root`` must not silently become a new, empty lake (with a stray catalog).
        ``catalog_only``: the command uses only the catalog, so an explicit ``catalog.url`` is enough.
        """
        if self._lake is None:
            self.check_root(write=write, catalog_only=catalog_only)
            # deferred: pyarrow, pandas and the catalog load only when a command needs the lake
            from lake.lakehouse import Lake

            self._lake = Lake(self.settings())
        return self._lake

    def check_root(self, *, write: bool = False, catalog_only: bool = False) -> Settings:
        """The settings, once the lake root is known to exist (see :meth:`lake`); loads no engine."""
        settings = self.settings()
        root = Path(settings.root_uri)
        if not settings.is_s3 and not root.is_dir():
            if root.exists():
                raise ConfigError(f"the lake root {root} is a file, not a folder", root=str(root))
            if catalog_only and settings.catalog.url is not None:
                pass  # the catalog is elsewhere: nothing is read or made under the root
            elif not (write or self.create):
                raise ConfigError(f"no lake at {root}: check --root, LAKE_ROOT or root in {self._where(settings)}; "
                                  "`lake init` starts a project, --create makes an empty lake there")
            else:
                root.mkdir(parents=True)
                err_console.print(f"created the lake root {root}", style="dim", highlight=False, markup=False)
        return settings

    @staticmethod
    def _where(settings: Settings) -> str:
        return settings.source_file or "lake.toml"


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()
