"""The patches that run on a target, the files they edit, and the change set they produce together."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from patcher.changeset import ChangeSet, FileChange, Validator
from patcher.errors import InputError
from patcher.parts import Part, PatchResult
from patcher.textio import read_text

log = logging.getLogger("patcher")


@dataclass(frozen=True)
class Options:
    """Command-line choices shared by every patch."""

    target: Path
    force: bool = False
    model_file: Path | None = None
    workflow_file: Path | None = None


@dataclass(frozen=True)
class FilePatch:
    """One patch and how it finds its file; `locate` raises InputError when the target has no such file."""

    name: str
    locate: Callable[[Options], Path]
    apply: Callable[[str, str, bool], PatchResult]
    validator: Validator | None = None


@dataclass(frozen=True)
class PlannedFile:
    patch: FilePatch
    change: FileChange
    result: PatchResult


def file_patches() -> list[FilePatch]:
    """Return every patch in the order the diff shows them; importing them here keeps start-up cheap."""
    from patcher import entry_point_patch, model_patch, training_config_patch, workflow_patch

    return [
        model_patch.FILE_PATCH,
        workflow_patch.FILE_PATCH,
        training_config_patch.FILE_PATCH,
        entry_point_patch.FILE_PATCH,
    ]


def plan(options: Options) -> tuple[ChangeSet, list[PlannedFile]]:
    """Compute every file's new text without writing anything."""
    check_target_folder(options.target)
    changes = ChangeSet()
    planned = []
    with cyclic_collector_paused():
        for patch in file_patches():
            path = patch.locate(options)
            relative = shown_path(path, options.target)
            log.debug("%s patch: reading %s", patch.name, relative)
            started = time.perf_counter()
            before = read_text(path, relative)
            result = patch.apply(before, relative, options.force)
            log.debug("%s patch: %d parts in %.0f ms", patch.name, len(result.parts), (time.perf_counter() - started) * 1000)
            change = FileChange(path=path, relative=relative, before=before, after=result.new_text)
            changes.add(change, patch.validator)
            planned.append(PlannedFile(patch, change, result))
    return changes, planned


@contextlib.contextmanager
def cyclic_collector_paused():
    """Pause Python's cyclic garbage collector while the patches parse and rebuild their trees.

    Syntax trees are many small objects without cycles, which reference
    counting frees. The collector would only scan them again and again, which
    took about 40 ms of a dry run on the real target (timed with gc.callbacks
    on a loaded 2-core x86_64 machine). Cycles made meanwhile are collected
    once the collector runs again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def plan_conflicts(planned: list[PlannedFile]) -> list[tuple[str, Part]]:
    """Return every conflicting part of a plan, with the path of its file."""
    return [(item.change.relative, part) for item in planned for part in item.result.conflicts]


def check_target_folder(target: Path) -> None:
    if not target.exists():
        raise InputError(str(target), "target folder not found")
    if not target.is_dir():
        raise InputError(str(target), "not a folder; give the path of a clone of the echoself repository")


def shown_path(path: Path, target: Path) -> str:
    """Return the path relative to the target, as diffs and messages show it, or absolute when it lies outside."""
    try:
        return path.resolve().relative_to(target.resolve()).as_posix()
    except ValueError:
        return str(path)
