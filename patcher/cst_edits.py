"""Edits to a LibCST tree that keep the layout of the code around them.

The patches find the nodes to change in the tree they parsed, record an edit
for each, and apply them all in one pass, so that edits nested inside each
other all land.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence, TypeVar

import libcst as cst

from patcher.cst_walk import find_all, walk

Node = TypeVar("Node", bound=cst.CSTNode)


class Edits:
    """Functions to apply to given nodes of a tree, keyed by the identity of the parsed node."""

    def __init__(self) -> None:
        self._edits: dict[int, list[Callable[[cst.CSTNode], cst.CSTNode]]] = defaultdict(list)

    def add(self, node: cst.CSTNode, edit: Callable[[cst.CSTNode], cst.CSTNode]) -> None:
        """Record an edit; it receives the node with its children already edited."""
        self._edits[id(node)].append(edit)

    def apply(self, module: cst.Module) -> cst.Module:
        """Apply every edit in one pass that rebuilds only the edited nodes and the nodes that contain them."""
        if not self._edits:
            return module
        return module.visit(_Replacer(self._edits, _paths_to(module, set(self._edits))))


def _paths_to(module: cst.Module, targets: set[int]) -> set[int] | None:
    """Return the ids of the target nodes and of every node above them, or None when a target is not in the tree."""
    parents: dict[int, cst.CSTNode | None] = {}
    for node, parent in walk(module):
        parents[id(node)] = parent
    if not targets <= parents.keys():
        return None

    on_path = set()
    for target in targets:
        node_id = target
        while node_id not in on_path:
            on_path.add(node_id)
            parent = parents[node_id]
            if parent is None:
                break
            node_id = id(parent)
    return on_path


class _Replacer(cst.CSTTransformer):
    """Apply the edits bottom up; a subtree that contains no edited node is passed over as it is."""

    def __init__(self, edits: dict[int, list[Callable[[cst.CSTNode], cst.CSTNode]]], on_path: set[int] | None):
        super().__init__()
        self._edits = edits
        self._on_path = on_path

    def on_visit(self, node: cst.CSTNode) -> bool:
        # Without the paths, for example for an edit to a layout node, every node is visited.
        return self._on_path is None or id(node) in self._on_path

    def on_leave(self, original_node, updated_node):
        for edit in self._edits.get(id(original_node), ()):
            updated_node = edit(updated_node)
        return updated_node


def followed_by(statements: Sequence[cst.BaseStatement]) -> Callable[[cst.CSTNode], cst.CSTNode]:
    """Return an edit that puts `statements` right after the statement it is attached to.

    Anchoring on the statement, not on a position in its block, keeps several
    insertions into one block from shifting each other.
    """
    return lambda statement: cst.FlattenSentinel([statement, *statements])


def preceded_by(statements: Sequence[cst.BaseStatement]) -> Callable[[cst.CSTNode], cst.CSTNode]:
    """Return an edit that puts `statements` right before the statement it is attached to."""
    return lambda statement: cst.FlattenSentinel([*statements, statement])


def append_argument(call: cst.Call, argument: cst.Arg) -> cst.Call:
    """Append a keyword argument after the last one, in the layout of the call's other arguments."""
    if not call.args:
        return call.with_changes(args=[argument])

    last = call.args[-1]
    closing = last.whitespace_after_arg
    separator = _separator(call.args, call.whitespace_before_args)
    if isinstance(last.comma, cst.Comma):
        # A trailing comma stays trailing: it moves to the new last argument.
        old_last = last.with_changes(comma=_keep_comment(separator, last.comma.whitespace_after))
        new_last = argument.with_changes(comma=_without_comment(last.comma), whitespace_after_arg=closing)
    else:
        old_last = last.with_changes(comma=_keep_comment(separator, closing), whitespace_after_arg=cst.SimpleWhitespace(""))
        new_last = argument.with_changes(whitespace_after_arg=_strip_comment(closing))
    return call.with_changes(args=[*call.args[:-1], old_last, new_last])


def append_dict_element(dictionary: cst.Dict, element: cst.DictElement) -> cst.Dict:
    """Append an entry after the last one, in the layout of the dict's other entries."""
    if not dictionary.elements:
        return dictionary.with_changes(elements=[element])

    last = dictionary.elements[-1]
    closing = dictionary.rbrace.whitespace_before
    separator = _separator(dictionary.elements, dictionary.lbrace.whitespace_after)
    if isinstance(last.comma, cst.Comma):
        old_last = last.with_changes(comma=_keep_comment(separator, last.comma.whitespace_after))
        new_last = element.with_changes(comma=_without_comment(last.comma))
        return dictionary.with_changes(elements=[*dictionary.elements[:-1], old_last, new_last])

    old_last = last.with_changes(comma=_keep_comment(separator, closing))
    rbrace = dictionary.rbrace.with_changes(whitespace_before=_strip_comment(closing))
    return dictionary.with_changes(elements=[*dictionary.elements[:-1], old_last, element], rbrace=rbrace)


def _separator(elements, opening: cst.BaseParenthesizableWhitespace) -> cst.Comma:
    """Return the comma, with the whitespace after it, that separates two of these elements."""
    for element in reversed(elements[:-1]):
        if isinstance(element.comma, cst.Comma):
            return element.comma
    if isinstance(opening, cst.ParenthesizedWhitespace):
        # One element on its own line: the next one goes on a line of its own at the same indent.
        return cst.Comma(whitespace_after=opening.with_changes(first_line=cst.TrailingWhitespace()))
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _keep_comment(separator: cst.Comma, trailing) -> cst.Comma:
    """Keep a comment at the end of the old last element's line on that line."""
    if not isinstance(trailing, cst.ParenthesizedWhitespace) or trailing.first_line.comment is None:
        return separator
    if not isinstance(separator.whitespace_after, cst.ParenthesizedWhitespace):
        return separator
    return separator.with_changes(whitespace_after=separator.whitespace_after.with_changes(first_line=trailing.first_line))


def _strip_comment(whitespace):
    if isinstance(whitespace, cst.ParenthesizedWhitespace) and whitespace.first_line.comment is not None:
        return whitespace.with_changes(first_line=cst.TrailingWhitespace())
    return whitespace


def _without_comment(comma: cst.Comma) -> cst.Comma:
    return comma.with_changes(whitespace_after=_strip_comment(comma.whitespace_after))


def quote_of(node: cst.CSTNode, default: str = '"') -> str:
    """Return the quote character of the first plain string literal inside a node, so inserted strings match it."""
    for string in find_all(node, cst.SimpleString):
        if string.prefix == "":
            return string.quote[0]
    return default
