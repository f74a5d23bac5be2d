"""Consoles for command output: on a terminal, its width; in a pipe or a log, no width limit, so tables are never
cut at 80 columns and long lines are not wrapped (which would also break YAML and JSON written through them)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleDimensions

#: Width used when the output is not a terminal: wide enough that nothing is cut or wrapped.
PIPE_WIDTH = 10_000


class PipeConsole(Console):
    """A ``rich`` console that is unlimited in width when its file is not a terminal (unless a width is given to
    it: a ``COLUMNS`` variable, which shells and test runners leave behind, describes a terminal, not a pipe)."""

    def __init__(self, *args: Any, width: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, width=width, **kwargs)
        self._given_width = width

    @property
    def size(self) -> ConsoleDimensions:
        if self._given_width is None and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, self._height or 25)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


def make_console(stderr: bool = False) -> Console:
    return PipeConsole(stderr=stderr)
