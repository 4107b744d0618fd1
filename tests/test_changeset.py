"""The change set: diffs as a reviewer reads them, and writes that are all or nothing."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from patcher import changeset
from patcher.changeset import ChangeSet, FileChange, unified_diff, validate_python
from patcher.errors import InputError


def change(path: Path, after: str) -> FileChange:
    return FileChange(path=path, relative=path.name, before=path.read_text(), after=after)


def test_diff_marks_missing_final_newline(tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_text("x = 1")

    lines = unified_diff(change(path, "x = 2"))

    assert "".join(lines) == (
        "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n"
        "-x = 1\n\\ No newline at end of file\n"
        "+x = 2\n\\ No newline at end of file\n"
    )


def test_colour_only_when_asked(tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    changes = ChangeSet()
    changes.add(change(path, "x = 2\n"))
    plain, coloured = io.StringIO(), io.StringIO()

    changes.write_diff(plain)
    changes.write_diff(coloured, colour=True)

    assert "\033[" not in plain.getvalue()
    assert "\033[32m+x = 2\033[0m" in coloured.getvalue()


def test_failed_rename_restores_every_file(tmp_path: Path, monkeypatch):
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text("a = 1\n")
    second.write_text("b = 1\n")
    changes = ChangeSet()
    changes.add(change(first, "a = 2\n"))
    changes.add(change(second, "b = 2\n"))
    real_replace = os.replace
    calls = []

    def failing_replace(source, destination):
        calls.append(destination)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", failing_replace)

    with pytest.raises(OSError, match="disk full"):
        changes.write()

    assert first.read_text() == "a = 1\n"
    assert second.read_text() == "b = 1\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first.py", "second.py"]


def test_invalid_new_text_stops_before_any_write(tmp_path: Path):
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text("a = 1\n")
    second.write_text("b = 1\n")
    changes = ChangeSet()
    changes.add(change(first, "a = 2\n"), validate_python)
    changes.add(change(second, "b = (\n"), validate_python)

    with pytest.raises(InputError, match="does not compile"):
        changes.write()

    assert first.read_text() == "a = 1\n"
    assert second.read_text() == "b = 1\n"


def test_python_validation_reports_cpython_error():
    with pytest.raises(InputError, match="does not compile") as raised:
        validate_python("a = 1\nb = (\n", "model.py")

    assert raised.value.line == 2


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="this Python compiles 3.12 syntax itself")
def test_python_validation_accepts_newer_syntax():
    """A `type` alias that this interpreter cannot compile is the target's own syntax, which LibCST parses."""
    text = "type Shape = tuple[int, ...]\n\n\nclass Stack[T](list[T]):\n    pass\n"

    validate_python(text, "model.py")


def test_python_validation_rejects_code_error_libcst_parses():
    """`return` outside a function parses in every grammar, so no newer Python would accept it."""
    with pytest.raises(InputError, match="'return' outside function"):
        validate_python("x = 1\nreturn x\n", "model.py")


def test_failed_staging_leaves_no_temporary_file(tmp_path: Path, monkeypatch):
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text("a = 1\n")
    second.write_text("b = 1\n")
    changes = ChangeSet()
    changes.add(change(first, "a = 2\n"))
    changes.add(change(second, "b = 2\n"))
    real_stage = changeset._stage
    calls = []

    def failing_stage(file_change):
        calls.append(file_change)
        if len(calls) == 2:
            raise OSError("no space left on device")
        return real_stage(file_change)

    monkeypatch.setattr(changeset, "_stage", failing_stage)

    with pytest.raises(OSError, match="no space left"):
        changes.write()

    assert sorted(path.name for path in tmp_path.iterdir()) == ["first.py", "second.py"]
    assert first.read_text() == "a = 1\n"
