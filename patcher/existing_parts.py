"""Decisions shared by the patches of the training chain: is a part missing, already there, or different."""

from __future__ import annotations

import ast

import libcst as cst

from patcher.cst_edits import Edits, append_argument
from patcher.parts import Part, Status
from patcher.python_source import code_of, same_meaning


def resolve(name: str, same: bool, force: bool, detail: str) -> tuple[Part, bool]:
    """Decide what happens to a part that is already present; the returned flag is True when ours must replace it."""
    if same:
        return Part(name, Status.APPLIED), False
    if force:
        return Part(name, Status.REPLACED, detail), True
    return Part(name, Status.CONFLICT, detail), False


def keyword_part(call: cst.Call, keyword: str, value: cst.BaseExpression, force: bool, edits: Edits) -> tuple[Status, str]:
    """Add `keyword=value` to a call, or check the one that is there; return the status and a detail."""
    existing = [argument for argument in call.args if argument.keyword and argument.keyword.value == keyword]
    if not existing:
        argument = cst.Arg(keyword=cst.Name(keyword), value=value, equal=no_space_equal())
        edits.add(call, lambda updated: append_argument(updated, argument))
        return Status.ADDED, ""

    if same_meaning(existing[0].value, value):
        return Status.APPLIED, ""
    detail = f"{keyword}={code_of(existing[0].value).strip()}, this patcher writes {keyword}={code_of(value)}"
    if not force:
        return Status.CONFLICT, detail
    edits.add(existing[0], lambda updated: updated.with_changes(value=value))
    return Status.REPLACED, detail


def merged_part(name: str, statuses: list[tuple[Status, str]]) -> Part:
    """Report one part edited in several places: a conflict anywhere wins, then a replacement, then an addition."""
    for status in (Status.CONFLICT, Status.REPLACED, Status.ADDED, Status.APPLIED):
        details = [detail for found, detail in statuses if found is status]
        if details:
            places = f"in {len(details)} places" if len(details) > 1 and status is not Status.APPLIED else ""
            return Part(name, status, "; ".join(filter(None, [places, *dict.fromkeys(details)])))
    raise ValueError("merged_part needs at least one status")


def literal(node: cst.BaseExpression | None):
    """Return the value of a literal expression, or None when the expression is not a literal."""
    if node is None:
        return None
    try:
        return ast.literal_eval(code_of(node).strip())
    except (ValueError, SyntaxError):
        return None


def no_space_equal() -> cst.AssignEqual:
    return cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
