"""Parse Python with LibCST and compare nodes by meaning, for the patches that edit Python files."""

from __future__ import annotations

import ast
import re
import textwrap

import libcst as cst

from patcher.errors import InputError

_EMPTY_MODULE = cst.Module(body=[])


def parse_python(text: str, shown_as: str) -> cst.Module:
    """Parse with LibCST, reporting a syntax error with CPython's line and column when it has them."""
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        libcst_message = str(error.message).strip()

    try:
        compile(text, shown_as, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise InputError(shown_as, f"syntax error: {error.msg}", error.lineno, error.offset) from None

    # CPython accepts the file but LibCST does not: most often tabs and spaces mixed across blocks.
    line = _first_tab_indented_line(text) if "tabs and spaces" in libcst_message else None
    raise InputError(
        shown_as,
        f"LibCST cannot parse this file ({libcst_message}); re-indent it with spaces only",
        line,
    )


def _first_tab_indented_line(text: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(r"[ ]*\t", line) and line.strip():
            return number
    return None


def code_of(node: cst.CSTNode) -> str:
    return _EMPTY_MODULE.code_for_node(node)


def same_meaning(first: cst.CSTNode, second: cst.CSTNode) -> bool:
    """Compare two nodes by their Python AST, so that formatting and comments do not count."""
    return ast_dump(first) == ast_dump(second)


def ast_dump(node: cst.CSTNode) -> str:
    code = code_of(node)
    if isinstance(node, cst.BaseExpression):
        tree = ast.parse(code.strip(), mode="eval")
    else:
        tree = ast.parse(textwrap.dedent(code))
    return ast.dump(tree)


def dotted_name(node: cst.BaseExpression | None) -> str | None:
    """Return the text of a Name or an Attribute chain such as `torch.nn.Module`, or None for any other node."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def calls_class(call: cst.Call, name: str) -> bool:
    """Tell whether a call calls the class `name`, directly or as an attribute, as in `module.name(...)`."""
    func = call.func
    if isinstance(func, cst.Attribute):
        func = func.attr
    return isinstance(func, cst.Name) and func.value == name


def import_bindings(statement: cst.CSTNode) -> dict[str, str]:
    """Map each name a top-level import statement binds to what it refers to, such as nn -> torch.nn."""
    bindings: dict[str, str] = {}
    if not isinstance(statement, cst.SimpleStatementLine):
        return bindings
    for small in statement.body:
        if isinstance(small, cst.Import):
            for alias in small.names:
                full = dotted_name(alias.name)
                if alias.asname is not None:
                    bindings[alias.asname.name.value] = full
                else:
                    bindings[full.split(".")[0]] = full.split(".")[0]
        elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
            module = "." * len(small.relative) + (dotted_name(small.module) or "")
            for alias in small.names:
                name = alias.name.value
                bound = alias.asname.name.value if alias.asname is not None else name
                bindings[bound] = f"{module}.{name}"
    return bindings


def is_import(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
    )


def defined_name(statement: cst.CSTNode) -> str | None:
    """The name a top-level class, function or simple assignment defines."""
    if isinstance(statement, (cst.ClassDef, cst.FunctionDef)):
        return statement.name.value
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            return dotted_name(small.targets[0].target)
        if isinstance(small, cst.AnnAssign):
            return dotted_name(small.target)
    return None


def is_docstring(statement: cst.CSTNode) -> bool:
    """Tell whether a statement is a bare string literal, as a module, class or function docstring is."""
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def with_blank_lines(statement: cst.CSTNode, count: int) -> cst.CSTNode:
    """Give a statement exactly `count` blank lines above it, keeping the comments that lead it."""
    comments = list(statement.leading_lines)
    while comments and comments[0].comment is None:
        comments.pop(0)
    return statement.with_changes(leading_lines=[cst.EmptyLine(indent=False)] * count + comments)


def blank_lines_above(statement: cst.CSTNode) -> int:
    count = 0
    for line in statement.leading_lines:
        if line.comment is not None:
            break
        count += 1
    return count
