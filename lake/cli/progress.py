"""Progress on the terminal: one transient display on stderr, shown only when stderr is a terminal.

Long commands (ingests and job runs, materialization, exports, drift) report through it: a
message (what the command is doing), or bars with files and rows as the work advances.
Piped or redirected, nothing is drawn (scripts and logs get the command's result only).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from lake.cli.output import err_console


class Bars:
    """Progress bars keyed by name (a job, a feature view...), each with files and rows.

    Example:
        >>> with Bars("ingest") as bars:
        ...     bars.update("ingest", files=(3, 10), rows=1_200)
    """

    def __init__(self, label: str, *, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled and err_console.is_terminal
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Bars:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[files]}"),
                TextColumn("{task.fields[rows]}"), TimeElapsedColumn(), console=err_console, transient=True)
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, key: str | None = None, *, message: str | None = None, files: tuple[int, int] | None = None,
               rows: int | None = None, total_rows: int | None = None, unit: str = "files") -> None:
        """Show how far ``key`` is: a message, files (or other ``unit``) done of a total, rows (of a total,
        when known; the bar follows the rows when no files are given)."""
        if self._progress is None:
            return
        key = key or self.label
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(key, total=None, files="", rows="")
        fields: dict[str, Any] = {}
        if message is not None:
            fields["description"] = f"{key}: {message}"
        if files is not None:
            fields.update(completed=files[0], total=files[1], files=f"{files[0]}/{files[1]} {unit}")
        if rows is not None:
            fields["rows"] = f"{rows:,} rows"
            if files is None:
                fields.update(completed=rows, total=total_rows)
        self._progress.update(self._tasks[key], **fields)

    def job(self, key: str) -> Any:
        """A :data:`lake.pipeline.context.Progress` callback for a job run: messages, and files/rows while
        its files are parsed."""
        def report(event: str) -> None:
            files_done = getattr(event, "files_done", None)
            if files_done is not None:
                self.update(key, message="parsing", files=(files_done, event.files), rows=event.rows)  # type: ignore[attr-defined]
            else:
                self.update(key, message=str(event))
        return report
