"""Find, by structure, the parts of a model file the model patch edits.

The config is the `@dataclass` class with an `n_embd` field. The blocks are
built by `nn.ModuleList([...])` from a comprehension that calls a class of the
same file, and that class is the block. Nothing depends on names or line
numbers, so the patch survives upstream edits. When something is missing, the
error names what was looked for and what was found instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from patcher.cst_walk import statements
from patcher.errors import InputError
from patcher.python_source import code_of, dotted_name

CONFIG_FIELD = "n_embd"
RAT_BLOCK = "RATBlock"


@dataclass(frozen=True)
class ModelShape:
    """Positions of the config, the block class and the block list in a model file's top-level body."""

    config_index: int
    block_index: int
    model_index: int
    block_name: str
    block_call: cst.Call
    config_argument: str
    # The statement of the model's method that holds the block list, and where it is.
    method_name: str
    statement_index: int


def find_model_shape(module: cst.Module, shown_as: str) -> ModelShape:
    classes = {statement.name.value: index for index, statement in enumerate(module.body) if isinstance(statement, cst.ClassDef)}
    config_index = _find_config(module, classes, shown_as)
    found = _find_block_list(module, classes, shown_as)
    block_index = classes[found.block_name]
    _check_block_constructor(module.body[block_index], shown_as)
    return ModelShape(
        config_index=config_index,
        block_index=block_index,
        model_index=found.class_index,
        block_name=found.block_name,
        block_call=found.block_call,
        config_argument=code_of(found.block_call.args[0].value),
        method_name=found.method_name,
        statement_index=found.statement_index,
    )


def is_dataclass(statement: cst.ClassDef) -> bool:
    for decorator in statement.decorators:
        target = decorator.decorator
        if isinstance(target, cst.Call):
            target = target.func
        if dotted_name(target) in ("dataclass", "dataclasses.dataclass"):
            return True
    return False


def field_names(statement: cst.ClassDef) -> list[str]:
    return [
        line.body[0].target.value
        for line in statement.body.body
        if isinstance(line, cst.SimpleStatementLine)
        and isinstance(line.body[0], cst.AnnAssign)
        and isinstance(line.body[0].target, cst.Name)
    ]


def _find_config(module: cst.Module, classes: dict[str, int], shown_as: str) -> int:
    dataclasses = [name for name, index in classes.items() if is_dataclass(module.body[index])]
    matches = [name for name in dataclasses if CONFIG_FIELD in field_names(module.body[classes[name]])]
    if len(matches) == 1:
        return classes[matches[0]]

    if matches:
        raise InputError(
            shown_as,
            f"found several config dataclasses with an `{CONFIG_FIELD}` field ({', '.join(matches)}); "
            "expected exactly one",
        )
    raise InputError(
        shown_as,
        f"no config dataclass found: looked for a top-level @dataclass class with an `{CONFIG_FIELD}` field; "
        f"found dataclasses: {_names_or_none(dataclasses)}; other classes: "
        f"{_names_or_none([name for name in classes if name not in dataclasses])}",
    )


@dataclass(frozen=True)
class _BlockList:
    class_index: int
    method_name: str
    statement_index: int
    block_call: cst.Call
    block_name: str


def _find_block_list(module: cst.Module, classes: dict[str, int], shown_as: str) -> _BlockList:
    found = []
    seen = []
    for class_name, class_index in classes.items():
        for method in _methods(module.body[class_index]):
            for statement_index, statement in enumerate(method.body.body):
                for call in _module_list_calls(statement):
                    seen.append(f"`{_shorten(code_of(call))}` in {class_name}")
                    block_call = _comprehension_call(call)
                    block_name = _block_name(block_call) if block_call is not None else None
                    if block_name in classes:
                        found.append(_BlockList(class_index, method.name.value, statement_index, block_call, block_name))

    if len(found) == 1:
        return found[0]
    if found:
        raise InputError(shown_as, f"found {len(found)} block lists built from comprehensions; expected exactly one")
    raise InputError(
        shown_as,
        "no block list found: looked for `nn.ModuleList([Block(config, i) for i in range(...)])` calling a "
        f"class defined in this file; found ModuleList calls: {_names_or_none(seen)}",
    )


def _methods(class_def: cst.ClassDef) -> list[cst.FunctionDef]:
    return [item for item in class_def.body.body if isinstance(item, cst.FunctionDef)]


def _module_list_calls(statement: cst.CSTNode) -> list[cst.Call]:
    """The `ModuleList(...)` calls assigned or evaluated by a method statement, in nested blocks too.

    A walk over statements only, much cheaper than a LibCST visitor over the whole class.
    """
    calls = []
    if isinstance(statement, cst.SimpleStatementLine):
        for small in statement.body:
            value = getattr(small, "value", None)
            if isinstance(value, cst.Call) and (dotted_name(value.func) or "").split(".")[-1] == "ModuleList":
                calls.append(value)
    elif isinstance(statement, cst.BaseCompoundStatement):
        # The walk yields nested statements at every depth, so only simple statements are read here.
        for child in statements(statement):
            if isinstance(child, cst.SimpleStatementLine):
                calls.extend(_module_list_calls(child))
    return calls


def _comprehension_call(module_list: cst.Call) -> cst.Call | None:
    if len(module_list.args) != 1:
        return None
    argument = module_list.args[0].value
    if not isinstance(argument, (cst.ListComp, cst.GeneratorExp)):
        return None
    if not isinstance(argument.elt, cst.Call) or not argument.elt.args:
        return None
    return argument.elt


def _block_name(call: cst.Call) -> str | None:
    """Return the block class a comprehension calls, also when the patch already chose between it and RATBlock."""
    if isinstance(call.func, cst.Name):
        return call.func.value
    if isinstance(call.func, cst.IfExp) and isinstance(call.func.orelse, cst.Name):
        return call.func.orelse.value
    return None


def _check_block_constructor(block: cst.ClassDef, shown_as: str) -> None:
    init = next(
        (item for item in block.body.body if isinstance(item, cst.FunctionDef) and item.name.value == "__init__"),
        None,
    )
    if init is None:
        raise InputError(shown_as, f"block class {block.name.value} has no __init__; expected __init__(self, config, layer_idx)")

    parameters = init.params
    positional = [*parameters.posonly_params, *parameters.params]
    if len(positional) != 3 or parameters.star_arg is not cst.MaybeSentinel.DEFAULT or parameters.kwonly_params:
        raise InputError(
            shown_as,
            f"block class {block.name.value} has __init__({code_of(parameters)}); "
            "expected __init__(self, config, layer_idx), which RATBlock keeps",
        )

    if not any(_assigns_self_mlp(statement) for statement in init.body.body):
        raise InputError(
            shown_as,
            f"block class {block.name.value} assigns no `self.mlp` in __init__; RATBlock replaces that feed-forward layer",
        )


def _assigns_self_mlp(statement: cst.CSTNode) -> bool:
    if isinstance(statement, cst.BaseCompoundStatement):
        return any(_assigns_self_mlp(child) for child in statements(statement) if isinstance(child, cst.SimpleStatementLine))
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    return any(
        isinstance(small, (cst.Assign, cst.AnnAssign))
        and any(dotted_name(target) == "self.mlp" for target in _assign_targets(small))
        for small in statement.body
    )


def _assign_targets(small: cst.Assign | cst.AnnAssign) -> list[cst.BaseExpression]:
    if isinstance(small, cst.AnnAssign):
        return [small.target]
    return [target.target for target in small.targets]


def _shorten(code: str, limit: int = 60) -> str:
    flat = " ".join(code.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _names_or_none(names: list[str]) -> str:
    return ", ".join(names) if names else "none"
