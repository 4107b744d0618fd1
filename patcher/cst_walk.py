"""Search a LibCST tree without rebuilding it.

Every LibCST visit, a matcher's `findall` included, builds a new copy of each
node it passes, so a search over a module costs as much as a transform of it.
The walk here reads the nodes' fields instead and constructs nothing. It
skips whitespace, comments, brackets, commas and operator tokens, which no
patch searches for, and meets the other nodes in the order a visitor does:
each node before its children, children in source order.
"""

from __future__ import annotations

from typing import Iterator, TypeVar

import libcst as cst

Node = TypeVar("Node", bound=cst.CSTNode)

# Fields that contain only layout: whitespace, comments, brackets, commas, colons and operator tokens.
_LAYOUT_FIELDS = frozenset(
    {
        "asynchronous", "colon", "comma", "dot", "equal", "first_colon", "footer", "header", "lbrace",
        "lbracket", "leading_lines", "leading_whitespace", "lines_after_decorators", "lpar", "newline",
        "operator", "posonly_ind", "rbrace", "rbracket", "relative", "rpar", "second_colon", "semicolon",
        "separator", "trailing_comma", "trailing_whitespace",
    }
)

# LibCST 1.9.0 declares the fields of these nodes in another order than the source has them.
_SOURCE_ORDER: dict[type, tuple[str, ...]] = {
    cst.Arg: ("keyword", "value"),
    cst.ClassDef: ("decorators", "name", "type_parameters", "bases", "keywords", "body"),
    cst.ExceptHandler: ("type", "name", "body"),
    cst.ExceptStarHandler: ("type", "name", "body"),
    cst.FunctionDef: ("decorators", "name", "type_parameters", "params", "returns", "body"),
    cst.IfExp: ("body", "test", "orelse"),
    cst.MatchCase: ("pattern", "guard", "body"),
    cst.Parameters: ("posonly_params", "params", "star_arg", "kwonly_params", "star_kwarg"),
    cst.TypeAlias: ("name", "type_parameters", "value"),
}

_child_fields: dict[type, tuple[str, ...]] = {}


def _fields_of(kind: type) -> tuple[str, ...]:
    fields = _child_fields.get(kind)
    if fields is None:
        fields = _SOURCE_ORDER.get(kind) or tuple(
            name
            for name in kind.__dataclass_fields__
            if name not in _LAYOUT_FIELDS and not name.startswith("whitespace") and name != "__slots__"
        )
        _child_fields[kind] = fields
    return fields


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """Return the node's children other than layout, in source order."""
    found = []
    for name in _fields_of(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(item for item in value if isinstance(item, cst.CSTNode))
    return found


def walk(node: cst.CSTNode) -> Iterator[tuple[cst.CSTNode, cst.CSTNode | None]]:
    """Yield (node, parent) for the node, parent None, and every node below it that is not layout."""
    stack: list[tuple[cst.CSTNode, cst.CSTNode | None]] = [(node, None)]
    while stack:
        current, parent = stack.pop()
        yield current, parent
        stack.extend((child, current) for child in reversed(children(current)))


def find_all(node: cst.CSTNode, kind: type[Node]) -> list[Node]:
    """Return the node, when it is of the kind, and every node of that kind below it, as `findall` orders them."""
    return [found for found, _ in walk(node) if isinstance(found, kind)]


# Nodes whose children can be statements. An expression never contains one, because even a lambda's body is an expression.
_STATEMENT_HOLDERS = (
    cst.Module,
    cst.BaseCompoundStatement,
    cst.BaseSuite,
    cst.Else,
    cst.Finally,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.MatchCase,
)


def statements(node: cst.CSTNode) -> Iterator[cst.BaseStatement]:
    """Yield the node, when it is a statement, and every statement below it, nested blocks included, in source order.

    Only statements and blocks are entered, so the walk costs little even over a whole module.
    """
    if isinstance(node, cst.BaseStatement):
        yield node
    if isinstance(node, _STATEMENT_HOLDERS):
        for child in children(node):
            yield from statements(child)
