"""Insert the Reservoir-Augmented Transformer into the target's model file with LibCST.

The patch has five parts, and each is checked for presence before it is added.
They are the imports the RAT classes need, the reservoir fields of the config
dataclass, the `model_type` check in its `__post_init__`, the RAT classes right
after the block class, and the one expression that picks the block class when
the model builds its blocks.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst

from patcher import template_history
from patcher.changeset import validate_python
from patcher.errors import InputError
from patcher.model_shape import RAT_BLOCK, ModelShape, find_model_shape
from patcher.parts import Part, PatchResult, Status
from patcher.plan import FilePatch, Options
from patcher.python_source import (
    blank_lines_above,
    code_of,
    defined_name,
    import_bindings,
    is_docstring,
    is_import,
    parse_python,
    same_meaning,
    with_blank_lines,
)
from patcher.template_source import Template, load_template

DESCRIPTION = "Add the RAT classes, the reservoir config fields and the model_type switch to the model file."
MODEL_FILE_CANDIDATES = ("nanecho_model.py", "NanEcho/nanecho_model.py")

IMPORTS = "imports"
RAT_CLASSES = "RAT classes"
CONFIG_FIELDS = "config fields"
MODEL_TYPE_CHECK = "model_type check"
BLOCK_SELECTION = "block selection"


def locate_model_file(options: Options) -> Path:
    if options.model_file is not None:
        path = options.target / options.model_file
        if not path.is_file():
            raise InputError(str(options.model_file), f"model file given with --model-file not found in {options.target}")
        return path

    for candidate in MODEL_FILE_CANDIDATES:
        path = options.target / candidate
        if path.is_file():
            return path
    raise InputError(
        str(options.target),
        f"no model file found: looked for {' and '.join(MODEL_FILE_CANDIDATES)}; give it with --model-file",
    )


def patch_model(text: str, shown_as: str, force: bool = False, template_directory: Path | None = None) -> PatchResult:
    """Return the model file's new text and the status of each part.

    `template_directory` replaces the shipped templates; the tests use small ones.
    """
    module = parse_python(text, shown_as)
    shape = find_model_shape(module, shown_as)
    template = load_template(template_directory, shape.block_name)
    body = list(module.body)
    parts = []

    config, config_parts = _patch_config(body[shape.config_index], template, force)
    body[shape.config_index] = config
    parts.extend(config_parts)

    model, selection_part = _patch_block_selection(body[shape.model_index], shape, force)
    body[shape.model_index] = model

    body, classes_part = _patch_rat_classes(body, shape, template, force)
    parts.append(classes_part)
    parts.append(selection_part)

    module = module.with_changes(body=body)
    module, imports_part = _patch_imports(module, template, shown_as)
    parts.insert(0, imports_part)
    return PatchResult(new_text=module.code, parts=tuple(parts))


FILE_PATCH = FilePatch(name="model", locate=locate_model_file, apply=patch_model, validator=validate_python)


# --- config fields and the model_type check ---------------------------------------------------------


def _patch_config(config: cst.ClassDef, template: Template, force: bool) -> tuple[cst.ClassDef, list[Part]]:
    statements = list(config.body.body)
    statements, fields_part = _patch_fields(statements, template, force)
    statements, check_part = _patch_check(statements, template, force)
    return config.with_changes(body=config.body.with_changes(body=statements)), [fields_part, check_part]


def _field_index(statements: list[cst.BaseStatement]) -> dict[str, int]:
    index = {}
    for position, statement in enumerate(statements):
        if isinstance(statement, cst.SimpleStatementLine) and isinstance(statement.body[0], cst.AnnAssign):
            index[defined_name(statement)] = position
    return index


def _patch_fields(statements: list, template: Template, force: bool) -> tuple[list, Part]:
    existing = _field_index(statements)
    missing = [field for field in template.fields if defined_name(field) not in existing]
    different = [
        field
        for field in template.fields
        if defined_name(field) in existing and not same_meaning(_bare(statements[existing[defined_name(field)]]), _bare(field))
    ]

    outdated = [field for field in different if template_history.is_earlier_version(code_of(_bare(statements[existing[defined_name(field)]])))]
    conflicting = [field for field in different if field not in outdated]
    if conflicting and not force:
        shown = ", ".join(f"`{code_of(_bare(statements[existing[defined_name(f)]])).strip()}`" for f in conflicting)
        return statements, Part(CONFIG_FIELDS, Status.CONFLICT, f"differs from this version: {shown}")

    for field in different:
        position = existing[defined_name(field)]
        statements[position] = _bare(field).with_changes(leading_lines=statements[position].leading_lines)

    if missing:
        last_field = max(existing.values(), default=-1)
        new_fields = [with_blank_lines(missing[0], 1)] + list(missing[1:])
        statements[last_field + 1 : last_field + 1] = new_fields

    if not missing and not different:
        return statements, Part(CONFIG_FIELDS, Status.APPLIED)
    if conflicting:
        return statements, Part(CONFIG_FIELDS, Status.REPLACED)
    if different:
        return statements, Part(CONFIG_FIELDS, Status.UPDATED)
    return statements, Part(CONFIG_FIELDS, Status.ADDED, ", ".join(defined_name(field) for field in missing))


def _patch_check(statements: list, template: Template, force: bool) -> tuple[list, Part]:
    check = template.post_init.body.body[0]
    position = next(
        (index for index, item in enumerate(statements) if isinstance(item, cst.FunctionDef) and item.name.value == "__post_init__"),
        None,
    )
    if position is None:
        last_field = max(_field_index(statements).values(), default=-1)
        statements.insert(last_field + 1, with_blank_lines(template.post_init, 1))
        return statements, Part(MODEL_TYPE_CHECK, Status.ADDED, "new __post_init__")

    post_init = statements[position]
    body = list(post_init.body.body)
    if any(same_meaning(_bare(item), _bare(check)) for item in body):
        return statements, Part(MODEL_TYPE_CHECK, Status.APPLIED)

    previous = next((index for index, item in enumerate(body) if "model_type" in code_of(item)), None)
    if previous is not None:
        status = Status.UPDATED if template_history.is_earlier_version(code_of(_bare(body[previous]))) else Status.CONFLICT
        if status is Status.CONFLICT and not force:
            return statements, Part(MODEL_TYPE_CHECK, Status.CONFLICT, "__post_init__ already checks model_type differently")
        body[previous] = _bare(check).with_changes(leading_lines=body[previous].leading_lines)
        status = Status.REPLACED if status is Status.CONFLICT else status
    else:
        body.insert(1 if body and is_docstring(body[0]) else 0, _bare(check))
        status = Status.ADDED

    statements[position] = post_init.with_changes(body=post_init.body.with_changes(body=body))
    return statements, Part(MODEL_TYPE_CHECK, status)


# --- the RAT classes ----------------------------------------------------------------------------------


def _patch_rat_classes(body: list, shape: ModelShape, template: Template, force: bool) -> tuple[list, Part]:
    expected = list(template.definitions)
    names = [defined_name(statement) for statement in expected]
    present = {defined_name(statement): index for index, statement in enumerate(body) if defined_name(statement) in names}
    leftovers = _earlier_definitions(body, shape, set(names))

    if not present and not leftovers:
        gap = blank_lines_above(body[shape.block_index]) or 2
        inserted = [with_blank_lines(statement, gap) for statement in expected]
        position = shape.block_index + 1
        return body[:position] + inserted + body[position:], Part(RAT_CLASSES, Status.ADDED, ", ".join(names))

    edited = [name for name, statement in zip(names, expected) if name in present and not same_meaning(body[present[name]], statement)]
    missing = [name for name in names if name not in present]
    if not edited and not missing and not leftovers:
        return body, Part(RAT_CLASSES, Status.APPLIED)

    # Code an earlier patcher version wrote is updated; anything else differing was edited by hand.
    earlier = {name: _is_earlier(body[present[name]], shape) for name in edited}
    outdated = bool(leftovers) or any(earlier.values())
    hand_edited = [name for name, is_earlier in earlier.items() if not is_earlier]
    if (hand_edited or not outdated) and not force:
        detail = f"edited: {', '.join(hand_edited)}" if hand_edited else f"missing: {', '.join(missing)}"
        return body, Part(RAT_CLASSES, Status.CONFLICT, detail)

    positions = {**present, **leftovers}
    status = Status.REPLACED if hand_edited or not outdated else Status.UPDATED
    return _replace_definitions(body, positions, expected), Part(RAT_CLASSES, status)


def _earlier_definitions(body: list, shape: ModelShape, current_names: set[str]) -> dict[str, int]:
    """Top-level definitions that only an earlier template version inserted, found by name and digest."""
    earlier = template_history.earlier_names() - current_names
    return {
        defined_name(statement): index
        for index, statement in enumerate(body)
        if defined_name(statement) in earlier and _is_earlier(statement, shape)
    }


def _is_earlier(statement: cst.CSTNode, shape: ModelShape) -> bool:
    return template_history.is_earlier_version(code_of(with_blank_lines(statement, 0)), shape.block_name)


def _replace_definitions(body: list, present: dict[str, int], expected: list) -> list:
    """Put this version's definitions where the first old one was, keeping that one's blank lines."""
    first = min(present.values())
    gap = blank_lines_above(body[first]) or 2
    remaining = [statement for index, statement in enumerate(body) if index not in present.values()]
    position = first - sum(1 for index in present.values() if index < first)
    return remaining[:position] + [with_blank_lines(statement, gap) for statement in expected] + remaining[position:]


# --- the block selection ------------------------------------------------------------------------------


def _patch_block_selection(model: cst.ClassDef, shape: ModelShape, force: bool) -> tuple[cst.ClassDef, Part]:
    expected = cst.parse_expression(f'({RAT_BLOCK} if {shape.config_argument}.model_type == "RAT" else {shape.block_name})')
    current = shape.block_call.func
    if isinstance(current, cst.Name):
        return _replace_in_method(model, shape, current, expected), Part(BLOCK_SELECTION, Status.ADDED)
    if same_meaning(current, expected):
        return model, Part(BLOCK_SELECTION, Status.APPLIED)
    if not force:
        return model, Part(BLOCK_SELECTION, Status.CONFLICT, f"the block list calls `{code_of(current)}`, expected `{code_of(expected)}`")
    return _replace_in_method(model, shape, current, expected), Part(BLOCK_SELECTION, Status.REPLACED)


def _replace_in_method(model: cst.ClassDef, shape: ModelShape, old: cst.CSTNode, new: cst.CSTNode) -> cst.ClassDef:
    """Replace `old` inside the one method statement that contains it, because a replace over the whole class costs more."""
    members = list(model.body.body)
    position = next(
        index for index, item in enumerate(members) if isinstance(item, cst.FunctionDef) and item.name.value == shape.method_name
    )
    method = members[position]
    statements = list(method.body.body)
    statements[shape.statement_index] = statements[shape.statement_index].deep_replace(old, new)
    members[position] = method.with_changes(body=method.body.with_changes(body=statements))
    return model.with_changes(body=model.body.with_changes(body=members))


# --- imports ------------------------------------------------------------------------------------------


def _patch_imports(module: cst.Module, template: Template, shown_as: str) -> tuple[cst.Module, Part]:
    body = list(module.body)
    bound: dict[str, str] = {}
    for statement in body:
        bound.update(import_bindings(statement))

    needed = []
    for statement in template.imports:
        for name, target in import_bindings(statement).items():
            if name in bound and bound[name] != target:
                raise InputError(shown_as, f"the name `{name}` is bound to {bound[name]}; the RAT classes need it as {target}")
        if any(name not in bound for name in import_bindings(statement)):
            needed.append(with_blank_lines(_only_unbound_names(statement, bound), 0))

    if not needed:
        return module, Part(IMPORTS, Status.APPLIED)

    last_import = max((index for index, statement in enumerate(body) if is_import(statement)), default=None)
    if last_import is None:
        return _insert_first(module, needed), Part(IMPORTS, Status.ADDED, _import_names(needed))
    body[last_import + 1 : last_import + 1] = needed
    return module.with_changes(body=body), Part(IMPORTS, Status.ADDED, _import_names(needed))


def _only_unbound_names(statement: cst.SimpleStatementLine, bound: dict[str, str]) -> cst.SimpleStatementLine:
    """Keep only the names of an import the target does not bind yet: `from typing import Tuple`, not a repeat of Optional."""
    small = statement.body[0]
    if len(statement.body) != 1 or not isinstance(small, (cst.Import, cst.ImportFrom)) or isinstance(small.names, cst.ImportStar):
        return statement

    unbound = [alias for alias in small.names if _bound_name(alias) not in bound]
    unbound[-1] = unbound[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    changes = {"names": unbound}
    if isinstance(small, cst.ImportFrom):
        changes.update(lpar=None, rpar=None)
    return statement.with_changes(body=[small.with_changes(**changes)])


def _bound_name(alias: cst.ImportAlias) -> str:
    if alias.asname is not None:
        return alias.asname.name.value
    return code_of(alias.name).split(".")[0]


def _insert_first(module: cst.Module, statements: list) -> cst.Module:
    """Insert statements before the first one, after a module docstring, keeping the header's comment on its statement."""
    body = list(module.body)
    position = 1 if body and is_docstring(body[0]) else 0
    if position == 0 and body:
        header, attached = _split_header(list(module.header))
        body[0] = body[0].with_changes(leading_lines=attached + list(body[0].leading_lines))
        module = module.with_changes(header=header)
    body[position:position] = statements
    return module.with_changes(body=body)


def _split_header(header: list[cst.EmptyLine]) -> tuple[list, list]:
    """Split a module header into what stays on top and the comment block that belongs to the first statement.

    LibCST keeps a comment above a module's first statement in the header; it
    belongs to that statement unless a blank line separates them.
    """
    end = len(header)
    start = end
    while start > 0 and header[start - 1].comment is not None and not header[start - 1].comment.value.startswith("#!"):
        start -= 1
    return header[:start], header[start:end]


def _import_names(statements: list) -> str:
    return ", ".join(code_of(statement).strip() for statement in statements)


# --- helpers ------------------------------------------------------------------------------------------


def _bare(statement: cst.CSTNode) -> cst.CSTNode:
    return statement.with_changes(leading_lines=())
