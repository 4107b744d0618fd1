"""Read the injected source out of the template modules shipped as `patcher.templates`."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import libcst as cst

from patcher.python_source import import_bindings, is_docstring, is_import

STAND_IN_MODULE = "patcher.templates.target_block"
STAND_IN_BLOCK = "TargetBlock"
SETTINGS_CLASS = "ReservoirSettings"


@dataclass(frozen=True)
class Template:
    """The parts of the templates that the model patch inserts."""

    imports: tuple[cst.SimpleStatementLine, ...]
    definitions: tuple[cst.BaseCompoundStatement | cst.SimpleStatementLine, ...]
    fields: tuple[cst.SimpleStatementLine, ...]
    post_init: cst.FunctionDef


@functools.lru_cache(maxsize=4)
def load_template(directory: Path | None = None, block_name: str = STAND_IN_BLOCK) -> Template:
    """Read the shipped templates, or those in `directory`, with the stand-in block renamed to `block_name`.

    The rename happens on the text before parsing: one parse, no tree walk.
    """
    rat_source = re.sub(rf"\b{STAND_IN_BLOCK}\b", block_name, _read("rat.py", directory))
    rat = cst.parse_module(rat_source)
    settings = cst.parse_module(_read("settings.py", directory))
    imports = tuple(statement for statement in rat.body if is_import(statement) and not _imports_stand_in(statement))
    definitions = tuple(statement for statement in rat.body if not is_import(statement) and not is_docstring(statement))
    settings_class = next(
        statement
        for statement in settings.body
        if isinstance(statement, cst.ClassDef) and statement.name.value == SETTINGS_CLASS
    )
    fields = tuple(
        statement
        for statement in settings_class.body.body
        if isinstance(statement, cst.SimpleStatementLine) and isinstance(statement.body[0], cst.AnnAssign)
    )
    post_init = next(
        statement
        for statement in settings_class.body.body
        if isinstance(statement, cst.FunctionDef) and statement.name.value == "__post_init__"
    )
    return Template(imports=imports, definitions=definitions, fields=fields, post_init=post_init)


def _read(name: str, directory: Path | None) -> str:
    if directory is None:
        return resources.files("patcher.templates").joinpath(name).read_text(encoding="utf-8")
    return (directory / name).read_text(encoding="utf-8")


def _imports_stand_in(statement: cst.SimpleStatementLine) -> bool:
    return any(target.startswith(STAND_IN_MODULE + ".") for target in import_bindings(statement).values())
