"""The cheap tree walk the Python patches search with, and the edits that rebuild only what they change."""

from __future__ import annotations

import libcst as cst

from patcher.cst_edits import Edits, quote_of
from patcher.cst_walk import find_all, statements, walk

# Every kind of statement and expression whose LibCST fields are not in source order, and most others.
SAMPLE = '''\
@decorate(1, key="k")
@other
class Shape[T: int = str, *Ts, **P](Base[T], metaclass=Meta, flag=True):
    """Doc."""

    size: int = field(default=3)

    @property
    async def area[U](self, /, first: "A" = 1, *rest: int, only=2, **options: "B") -> dict[str, int]:
        async with open("a") as handle, lock():
            async for item in aiter(handle):
                yield item if item else other(item)
        return {key: value for key, value in pairs() if key}


type Alias[K] = list[K] | None

try:
    value = (lambda x, y=2: x + y)(1)
except* (ValueError, TypeError) as group:
    raise RuntimeError("bad") from group
else:
    pass
finally:
    del value

try:
    pass
except KeyError as error:
    print(f"{error!r:>{width}} and {'nested'}")

match command:
    case Point(x=0, y=y) if y > 0:
        pass
    case [first, *others] | (first, *others):
        pass
    case {"key": value, **rest}:
        pass
    case None | True:
        pass

while (count := count - 1) > 0:
    assert count, "message"
else:
    global total
print(*args, **kwargs, sep="")
result = [a for a in range(3) for b in range(a) if b]
data = {**base, "a": 1, "b": [x async for x in stream()]}
items = a[1:2:3, ::], b[...]
x += -y ** ~z @ w
from ..package.sub import (name1, name2 as other)
import os.path as p, sys
'''

LAYOUT = (
    cst.BaseParenthesizableWhitespace, cst.EmptyLine, cst.TrailingWhitespace, cst.Newline, cst.Comment,
    cst.Comma, cst.LeftParen, cst.RightParen, cst.LeftSquareBracket, cst.RightSquareBracket, cst.LeftCurlyBrace,
    cst.RightCurlyBrace, cst.Colon, cst.Dot, cst.AssignEqual, cst.Semicolon, cst.Asynchronous, cst.ParamSlash,
    cst.BaseBinaryOp, cst.BaseBooleanOp, cst.BaseCompOp, cst.BaseUnaryOp, cst.BaseAugOp,
)


class VisitOrder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.seen.append(node)
        return True


def visit_order(node: cst.CSTNode) -> list[cst.CSTNode]:
    visitor = VisitOrder()
    node.visit(visitor)
    return visitor.seen


def test_walk_meets_nodes_as_visitor():
    module = cst.parse_module(SAMPLE)

    walked = [node for node, _ in walk(module)]

    assert [id(node) for node in walked] == [id(node) for node in visit_order(module) if not isinstance(node, LAYOUT)]


def test_walk_gives_each_node_parent():
    module = cst.parse_module(SAMPLE)

    for node, parent in walk(module):
        if parent is not None:
            assert any(child is node for child in parent.children)


def test_find_all_includes_node_itself():
    call = cst.parse_expression("f(g(1), h())")

    assert [cst.Module([]).code_for_node(found) for found in find_all(call, cst.Call)] == ["f(g(1), h())", "g(1)", "h()"]


def test_statements_match_visitor():
    module = cst.parse_module(SAMPLE)

    expected = [node for node in visit_order(module) if isinstance(node, cst.BaseStatement)]

    assert [id(node) for node in statements(module)] == [id(node) for node in expected]


def test_quote_of_first_plain_string():
    module = cst.parse_module("x = f'{a}' + b'b'\ny = 'single'\nz = \"double\"\n")

    assert quote_of(module) == "'"


def test_edits_keep_untouched_statements():
    module = cst.parse_module("a = f(1)\nb = g(2)\n")
    second_call = find_all(module.body[1], cst.Call)[0]
    edits = Edits()
    edits.add(second_call, lambda call: call.with_changes(func=cst.Name("h")))

    edited = edits.apply(module)

    assert edited.code == "a = f(1)\nb = h(2)\n"
    assert edited.body[0] is module.body[0]


def test_nested_edits_all_land():
    module = cst.parse_module("def main():\n    run(1)\n")
    function = module.body[0]
    call = find_all(function, cst.Call)[0]
    edits = Edits()
    edits.add(call, lambda updated: updated.with_changes(func=cst.Name("start")))
    edits.add(function.body, lambda block: block.with_changes(body=[*block.body, cst.parse_statement("stop()\n")]))

    assert edits.apply(module).code == "def main():\n    start(1)\n    stop()\n"


def test_edit_of_layout_node_lands():
    """The walk skips whitespace, so an edit there falls back to a visit of the whole tree."""
    module = cst.parse_module("x = (1)\n")
    parenthesis = module.body[0].body[0].value.lpar[0]
    edits = Edits()
    edits.add(parenthesis, lambda updated: updated.with_changes(whitespace_after=cst.SimpleWhitespace(" ")))

    assert edits.apply(module).code == "x = ( 1)\n"
