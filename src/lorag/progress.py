"""Progress reporting for long work, without tying the library to a terminal.

Library functions accept an optional `Progress`; the CLI passes a rich-backed one, tests and flows may pass none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def task(self, description: str, total: int | None) -> _TaskCM: ...


class _TaskCM(Protocol):
    def __enter__(self) -> Advance: ...
    def __exit__(self, *exc: object) -> None: ...


class Advance(Protocol):
    def __call__(self, n: int = 1) -> None: ...


class NullProgress:
    """Reports nothing (tests, Prefect tasks that log instead)."""

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Advance]:
        yield lambda n=1: None


class RichProgress:
    """Rich progress bars on stderr; one bar per task, kept on screen when it finishes."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Advance]:
        task_id = self._progress.add_task(description, total=total)
        try:
            yield lambda n=1: self._progress.advance(task_id, n)
        finally:
            if total is not None:
                self._progress.update(task_id, completed=total)
