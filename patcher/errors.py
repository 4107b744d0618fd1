"""Errors that end a command, each with the exit status it maps to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_PENDING = 1
EXIT_BAD_INPUT = 2
EXIT_OUTSIDE_FAILURE = 3


class PatcherError(Exception):
    """An error the command line reports in one line and turns into an exit status."""

    exit_status = EXIT_BAD_INPUT


class InputError(PatcherError):
    """Input the patcher cannot work with: a missing file, a syntax error, an unknown shape.

    `path` is the file as the user should see it; `line` and `column` are 1-based.
    """

    exit_status = EXIT_BAD_INPUT

    def __init__(self, path: str, message: str, line: int | None = None, column: int | None = None):
        self.path = path
        self.message = message
        self.line = line
        self.column = column
        super().__init__(self.location() + ": " + message)

    def location(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where


class OutsideError(PatcherError):
    """A failure outside the patcher's control: git, the network, the GitHub API."""

    exit_status = EXIT_OUTSIDE_FAILURE
