"""Recognise RAT code written by an earlier version of the patcher, so that `apply` updates it.

A part that matches an earlier version of the templates is outdated, not a
conflict, because the patcher wrote it and no one edited it since. `template_history.json`
contains the digest of every definition, field and statement that an earlier
committed version of the templates inserted, and the names those versions
defined; `scripts/record_template_history.py` writes it from the git history.
Digests compare the Python AST, so formatting and comments do not count.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
import textwrap
from importlib import resources

STAND_IN_BLOCK = "TargetBlock"


def digest(code: str, block_name: str = STAND_IN_BLOCK) -> str:
    """Digest of the code's AST, with the target's block class named like the stand-in."""
    if block_name != STAND_IN_BLOCK:
        code = re.sub(rf"\b{re.escape(block_name)}\b", STAND_IN_BLOCK, code)
    tree = ast.parse(textwrap.dedent(code))
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _history() -> tuple[frozenset[str], frozenset[str]]:
    source = resources.files("patcher").joinpath("template_history.json")
    if not source.is_file():
        return frozenset(), frozenset()
    recorded = json.loads(source.read_text(encoding="utf-8"))
    return frozenset(recorded["digests"]), frozenset(recorded["names"])


def is_earlier_version(code: str, block_name: str = STAND_IN_BLOCK) -> bool:
    try:
        return digest(code, block_name) in _history()[0]
    except SyntaxError:
        return False


def earlier_names() -> frozenset[str]:
    """Top-level names that earlier template versions inserted."""
    return _history()[1]


def version_parts(template) -> tuple[set[str], set[str]]:
    """The digests and top-level names of what one template version inserts."""
    from patcher.python_source import code_of, defined_name, with_blank_lines

    statements = [*template.definitions, *template.fields, *template.post_init.body.body]
    digests = {digest(code_of(with_blank_lines(statement, 0))) for statement in statements}
    names = {defined_name(statement) for statement in template.definitions}
    return digests, names
