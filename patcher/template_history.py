"""Recognise RAT code written by an earlier version of the patcher, so that `apply` updates it.

A part that matches an earlier version of the templates is outdated, not a
conflict: nobody edited it by hand, the patcher wrote it. Each entry is the
digest of one top-level definition, field or statement as an earlier version
inserted it, compared by its Python AST so that formatting does not matter.
"""

from __future__ import annotations

import ast
import hashlib
import textwrap

EARLIER_VERSIONS: frozenset[str] = frozenset()


def digest(code: str) -> str:
    tree = ast.parse(textwrap.dedent(code))
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def is_earlier_version(code: str) -> bool:
    try:
        return digest(code) in EARLIER_VERSIONS
    except SyntaxError:
        return False
