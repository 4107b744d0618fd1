"""The set of file changes one command computes: diff, validation and an all-or-nothing write."""

from __future__ import annotations

import ast
import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from patcher.errors import InputError

Validator = Callable[[str, str], None]


@dataclass(frozen=True)
class FileChange:
    """The old and new text of one file; `relative` is its path inside the target."""

    path: Path
    relative: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def validate_python(text: str, shown_as: str) -> None:
    """Compile the text, so that a patch never writes Python that does not load.

    Text that this interpreter cannot parse still passes when LibCST parses
    it, because that is syntax newer than the running Python, such as a 3.12
    `type` alias on 3.11, which the target's own code may use.
    """
    try:
        compile(text, shown_as, "exec", dont_inherit=True)
    except SyntaxError as error:
        if not _is_newer_syntax(text):
            raise InputError(shown_as, f"patched text does not compile: {error.msg}", error.lineno, error.offset) from None


def _is_newer_syntax(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        pass
    else:
        # The grammar is fine, so the error is in the code itself, such as `return` outside a function.
        return False

    # LibCST is imported only here, because most texts compile and the YAML patch uses this module too.
    import libcst

    try:
        libcst.parse_module(text)
    except libcst.ParserSyntaxError:
        return False
    return True


class ChangeSet:
    """File changes that are validated together and written together, or not at all."""

    def __init__(self) -> None:
        self.changes: list[FileChange] = []
        self._validators: list[tuple[FileChange, Validator]] = []

    def add(self, change: FileChange, validator: Validator | None = None) -> None:
        self.changes.append(change)
        if validator is not None:
            self._validators.append((change, validator))

    @property
    def pending(self) -> list[FileChange]:
        return [change for change in self.changes if change.changed]

    def validate(self) -> None:
        for change, validator in self._validators:
            if change.changed:
                validator(change.after, change.relative)

    def write_diff(self, stream: TextIO, colour: bool | None = None) -> None:
        if colour is None:
            colour = stream.isatty() and "NO_COLOR" not in os.environ
        for change in self.pending:
            for line in unified_diff(change):
                stream.write(_colour_line(line) if colour else line)

    def write(self) -> None:
        """Write every pending change, first to temporary files, then rename them all into place.

        When a rename fails, the files already renamed get their old text back.
        """
        self.validate()
        staged: list[tuple[FileChange, str]] = []
        replaced: list[FileChange] = []
        try:
            for change in self.pending:
                staged.append((change, _stage(change)))
            for change, temporary in staged:
                os.replace(temporary, change.path)
                replaced.append(change)
        except BaseException:
            for change in replaced:
                _restore(change)
            for _, temporary in staged:
                Path(temporary).unlink(missing_ok=True)
            raise


def unified_diff(change: FileChange) -> list[str]:
    lines = difflib.unified_diff(
        change.before.splitlines(keepends=True),
        change.after.splitlines(keepends=True),
        fromfile=f"a/{change.relative}",
        tofile=f"b/{change.relative}",
    )
    return [_with_newline(line) for line in lines]


def _with_newline(line: str) -> str:
    if line.endswith("\n"):
        return line
    return line + "\n\\ No newline at end of file\n"


def _colour_line(line: str) -> str:
    if line.startswith(("+++", "---")):
        return f"\033[1m{line.rstrip(chr(10))}\033[0m\n"
    if line.startswith("@@"):
        return f"\033[36m{line.rstrip(chr(10))}\033[0m\n"
    if line.startswith("+"):
        return f"\033[32m{line.rstrip(chr(10))}\033[0m\n"
    if line.startswith("-"):
        return f"\033[31m{line.rstrip(chr(10))}\033[0m\n"
    return line


def _stage(change: FileChange) -> str:
    mode = change.path.stat().st_mode & 0o7777 if change.path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(prefix=f".{change.path.name}.", suffix=".tmp", dir=change.path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(change.after)
        os.chmod(temporary, mode)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def _restore(change: FileChange) -> None:
    with open(change.path, "w", encoding="utf-8", newline="") as stream:
        stream.write(change.before)


