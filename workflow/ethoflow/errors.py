"""The one exception type for bad input: it always names the offending file."""

from __future__ import annotations

import os


class InputError(ValueError):
    """Bad user input. ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
