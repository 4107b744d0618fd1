"""Patch the training entry point (`train_cached.py`) so that `--model_type` reaches the training configuration.

Four parts, each found by structure:
- the `--model_type` option, added after the last `parser.add_argument(...)` in `main()`;
- `model_type=args.model_type` in the `TrainingConfig(...)` call in `main()`;
- the model type in every model configuration dict saved with a checkpoint;
- a resume guard: the list that `get_compatible_checkpoints` returns loses
  the checkpoints of the other model type before the resume logic loads any.
"""

from __future__ import annotations

import functools
from importlib import resources

import libcst as cst

from patcher.changeset import validate_python
from patcher.cst_edits import Edits, append_dict_element, followed_by, preceded_by, quote_of
from patcher.cst_walk import find_all, statements
from patcher.errors import InputError
from patcher.existing_parts import keyword_part, literal, merged_part, resolve
from patcher.parts import Part, PatchResult, Status
from patcher.plan import FilePatch, Options
from patcher.python_source import calls_class, code_of, dotted_name, parse_python, same_meaning
from patcher.templates.settings import MODEL_TYPES

ENTRY_POINT = "train_cached.py"
DEFAULT_MODEL_TYPE = MODEL_TYPES[0]
GUARD_FUNCTION = "checkpoints_of_model_type"
ARCHITECTURE_KEYS = ("n_layer", "n_embd")


def patch_entry_point(text: str, shown_as: str, force: bool) -> PatchResult:
    """Add the --model_type option and carry it through the training configuration and the checkpoints."""
    module = parse_python(text, shown_as)
    main = find_main(module, shown_as)
    edits = Edits()

    parts = (
        option_part(main, shown_as, force, edits),
        training_config_part(main, shown_as, force, edits),
        *saved_model_config_parts(module, shown_as, force, edits),
        *resume_guard_parts(module, shown_as, force, edits),
    )
    return PatchResult(new_text=edits.apply(module).code, parts=parts)


def locate_entry_point(options: Options):
    return options.target / ENTRY_POINT


FILE_PATCH = FilePatch(
    name="training entry point",
    locate=locate_entry_point,
    apply=patch_entry_point,
    validator=validate_python,
)


def find_main(module: cst.Module, shown_as: str) -> cst.FunctionDef:
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value == "main":
            return statement
    raise InputError(shown_as, "no top-level main() function found; the --model_type option goes into the "
                     "argparse parser that main() builds")


# --- the --model_type option -------------------------------------------------------------------------------

OPTION = "--model_type"
OPTION_PART = "--model_type option"


def option_part(main: cst.FunctionDef, shown_as: str, force: bool, edits: Edits) -> Part:
    parser = parser_name(main, shown_as)
    statements = main.body.body
    existing = [statement for statement in statements if is_add_argument(statement, parser, OPTION)]
    quote = quote_of(next((s for s in statements if is_add_argument(s, parser)), main))
    ours = option_statement(parser, quote)

    if existing:
        same = option_matches(existing[0])
        detail = "its choices, default or type differ from " + code_of(ours.body[0]).strip()
        part, replace = resolve(OPTION_PART, same, force, detail)
        if replace:
            edits.add(existing[0], lambda statement: ours.with_changes(leading_lines=statement.leading_lines))
        return part

    index = last_index(statements, lambda statement: is_add_argument(statement, parser))
    if index is None:
        index = last_index(statements, lambda statement: assigns_call(statement, "ArgumentParser"))
    edits.add(statements[index], followed_by([ours]))
    return Part(OPTION_PART, Status.ADDED)


def parser_name(main: cst.FunctionDef, shown_as: str) -> str:
    for statement in main.body.body:
        if assigns_call(statement, "ArgumentParser"):
            return statement.body[0].targets[0].target.value
    raise InputError(shown_as, "main() has no `parser = argparse.ArgumentParser(...)` statement at its top level; "
                     "the --model_type option needs the parser that main() builds")


def assigns_call(statement: cst.CSTNode, callee: str) -> bool:
    """Tell whether a statement is `name = ...callee(...)`, with `callee` the last part of the called name."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    assignment = statement.body[0]
    if not isinstance(assignment, cst.Assign) or len(assignment.targets) != 1:
        return False
    if not isinstance(assignment.targets[0].target, cst.Name):
        return False
    value = assignment.value
    return isinstance(value, cst.Call) and (dotted_name(value.func) or "").split(".")[-1] == callee


def is_add_argument(statement: cst.CSTNode, parser: str, option: str | None = None) -> bool:
    """Tell whether a statement is `parser.add_argument(...)`, for the given option string when one is given."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    expression = statement.body[0]
    if not isinstance(expression, cst.Expr) or not isinstance(expression.value, cst.Call):
        return False
    call = expression.value
    if dotted_name(call.func) != f"{parser}.add_argument":
        return False
    if option is None:
        return True
    return any(literal(argument.value) == option for argument in call.args if argument.keyword is None)


def option_statement(parser: str, quote: str) -> cst.SimpleStatementLine:
    choices = ", ".join(f"{quote}{model_type}{quote}" for model_type in MODEL_TYPES)
    help_text = "Model architecture: NanEcho, or RAT for a Reservoir-Augmented Transformer"
    return cst.parse_statement(
        f"{parser}.add_argument({quote}{OPTION}{quote}, type=str, choices=[{choices}], "
        f"default={quote}{DEFAULT_MODEL_TYPE}{quote}, help={quote}{help_text}{quote})\n"
    )


def option_matches(statement: cst.SimpleStatementLine) -> bool:
    """Tell whether an existing --model_type option accepts the model types and defaults to the original model."""
    keywords = {argument.keyword.value: argument.value for argument in statement.body[0].value.args if argument.keyword}
    choices = literal(keywords["choices"]) if "choices" in keywords else None
    type_name = dotted_name(keywords.get("type")) if "type" in keywords else "str"
    return (
        isinstance(choices, (list, tuple))
        and sorted(choices) == sorted(MODEL_TYPES)
        and literal(keywords.get("default")) == DEFAULT_MODEL_TYPE
        and type_name == "str"
    )


def last_index(statements, predicate) -> int | None:
    indexes = [index for index, statement in enumerate(statements) if predicate(statement)]
    return indexes[-1] if indexes else None


# --- model_type on the training configuration -----------------------------------------------------------------

TRAINING_CONFIG_PART = "model_type passed to TrainingConfig"


def training_config_part(main: cst.FunctionDef, shown_as: str, force: bool, edits: Edits) -> Part:
    calls = [call for call in find_all(main, cst.Call) if calls_class(call, "TrainingConfig")]
    if not calls:
        raise InputError(shown_as, "main() builds no TrainingConfig(...); the --model_type value must be set on the "
                         "training configuration there")

    value = cst.parse_expression(f"{parsed_arguments_name(main, shown_as)}.model_type")
    statuses = [keyword_part(call, "model_type", value, force, edits) for call in calls]
    return merged_part(TRAINING_CONFIG_PART, statuses)


def parsed_arguments_name(main: cst.FunctionDef, shown_as: str) -> str:
    for statement in main.body.body:
        if assigns_call(statement, "parse_args"):
            return statement.body[0].targets[0].target.value
    raise InputError(shown_as, "main() has no `args = parser.parse_args()` statement at its top level")


# --- the model type in saved checkpoints ----------------------------------------------------------------------

SAVED_CONFIG_PART = "model type recorded in saved checkpoints"


def saved_model_config_parts(module: cst.Module, shown_as: str, force: bool, edits: Edits) -> tuple[Part, ...]:
    """Add `'model_type': <config>.model_type` to each model configuration dict that a function saves."""
    dictionaries = [
        dictionary
        for function in statements(module)
        if isinstance(function, cst.FunctionDef) and saves_checkpoint(function)
        for dictionary in find_all(function, cst.Dict)
        if ARCHITECTURE_KEYS[0] in dict_keys(dictionary) and ARCHITECTURE_KEYS[1] in dict_keys(dictionary)
    ]
    if not dictionaries:
        raise InputError(shown_as, "found no model configuration dict ({'n_layer': ..., 'n_embd': ...}) in a function "
                         "that saves checkpoints; the model type must be recorded there")

    statuses = [model_type_entry(dictionary, shown_as, force, edits) for dictionary in dictionaries]
    return (merged_part(SAVED_CONFIG_PART, statuses),)


def saves_checkpoint(function: cst.FunctionDef) -> bool:
    for call in find_all(function.body, cst.Call):
        name = dotted_name(call.func) or ""
        if name == "torch.save" or name.endswith(".save_checkpoint"):
            return True
    return False


def dict_keys(dictionary: cst.Dict) -> dict[str, cst.DictElement]:
    keys = {}
    for element in dictionary.elements:
        if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
            keys[element.key.evaluated_value] = element
    return keys


def model_type_entry(dictionary: cst.Dict, shown_as: str, force: bool, edits: Edits) -> tuple[Status, str]:
    template = dict_keys(dictionary)[ARCHITECTURE_KEYS[0]]
    if not isinstance(template.value, cst.Attribute):
        raise InputError(shown_as, f"cannot tell which configuration the model configuration dict reads: its "
                         f"'{ARCHITECTURE_KEYS[0]}' entry is {code_of(template.value).strip()}, expected config.n_layer")
    value = template.value.with_changes(attr=cst.Name("model_type"))

    existing = dict_keys(dictionary).get("model_type")
    if existing is None:
        quote = template.key.quote
        entry = template.with_changes(
            key=cst.SimpleString(f"{quote}model_type{quote}"), value=value, comma=cst.MaybeSentinel.DEFAULT
        )
        edits.add(dictionary, lambda updated: append_dict_element(updated, entry))
        return Status.ADDED, ""

    if same_meaning(existing.value, value):
        return Status.APPLIED, ""
    detail = f"'model_type' is {code_of(existing.value).strip()}, this patcher writes {code_of(value)}"
    if not force:
        return Status.CONFLICT, detail
    edits.add(existing, lambda updated: updated.with_changes(value=value))
    return Status.REPLACED, detail


# --- the resume guard -----------------------------------------------------------------------------------------

GUARD_FUNCTION_PART = f"{GUARD_FUNCTION}() helper"
GUARD_CALL_PART = "resume skips checkpoints of the other model type"


@functools.lru_cache(maxsize=1)
def guard_template() -> cst.FunctionDef:
    source = resources.files("patcher.templates").joinpath("checkpoint_guard.py").read_text(encoding="utf-8")
    return next(
        statement
        for statement in cst.parse_module(source).body
        if isinstance(statement, cst.FunctionDef) and statement.name.value == GUARD_FUNCTION
    )


def resume_guard_parts(module: cst.Module, shown_as: str, force: bool, edits: Edits) -> tuple[Part, Part]:
    owner_index, function, index = find_compatible_checkpoints_assignment(module, shown_as)
    return (
        guard_function_part(module, owner_index, force, edits),
        guard_call_part(function, index, shown_as, force, edits),
    )


def find_compatible_checkpoints_assignment(module: cst.Module, shown_as: str) -> tuple[int, cst.FunctionDef, int]:
    """Find `name = <cache>.get_compatible_checkpoints(...)` at the top level of a function or method.

    Returns the index of the top-level statement (class or function) that contains
    it, the function, and the index of the assignment in the function's body.
    """
    for owner_index, owner in enumerate(module.body):
        for function in statements(owner):
            if not isinstance(function, cst.FunctionDef):
                continue
            for index, statement in enumerate(function.body.body):
                if assigns_call(statement, "get_compatible_checkpoints"):
                    return owner_index, function, index
    raise InputError(shown_as, "found no `checkpoints = cache.get_compatible_checkpoints(...)` statement; the resume "
                     "logic must skip checkpoints of the other model type before it loads one")


def guard_function_part(module: cst.Module, owner_index: int, force: bool, edits: Edits) -> Part:
    ours = guard_template()
    for index, statement in enumerate(module.body):
        if isinstance(statement, cst.FunctionDef) and statement.name.value == GUARD_FUNCTION:
            detail = "its body differs from the function this patcher writes"
            part, replace = resolve(GUARD_FUNCTION_PART, same_meaning(statement, ours), force, detail)
            if replace:
                edits.add(statement, lambda existing: ours.with_changes(leading_lines=existing.leading_lines))
            return part

    inserted = ours.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
    edits.add(module.body[owner_index], preceded_by([inserted]))
    return Part(GUARD_FUNCTION_PART, Status.ADDED)


def guard_call_part(function: cst.FunctionDef, index: int, shown_as: str, force: bool, edits: Edits) -> Part:
    assignment = function.body.body[index].body[0]
    checkpoints = assignment.targets[0].target.value
    cache = code_of(assignment.value.func.value).strip()
    config = configuration_expression(function, shown_as)
    ours = cst.parse_statement(f"{checkpoints} = {GUARD_FUNCTION}({cache}, {checkpoints}, {config}.model_type)\n")

    existing = [
        statement
        for statement in function.body.body
        if any(isinstance(call.func, cst.Name) and call.func.value == GUARD_FUNCTION for call in find_all(statement, cst.Call))
    ]
    if existing:
        detail = "it differs from " + code_of(ours).strip()
        part, replace = resolve(GUARD_CALL_PART, same_meaning(existing[0], ours), force, detail)
        if replace:
            edits.add(existing[0], lambda statement: ours.with_changes(leading_lines=statement.leading_lines))
        return part

    edits.add(function.body.body[index], followed_by([ours]))
    return Part(GUARD_CALL_PART, Status.ADDED)


def configuration_expression(function: cst.FunctionDef, shown_as: str) -> str:
    """The expression the function reads the architecture from, such as `self.config` in `self.config.n_layer`."""
    for attribute in find_all(function, cst.Attribute):
        base = dotted_name(attribute.value)
        if attribute.attr.value == ARCHITECTURE_KEYS[0] and base is not None:
            return base
    raise InputError(shown_as, f"the function {function.name.value}() that looks up compatible checkpoints never "
                     f"reads config.{ARCHITECTURE_KEYS[0]}, so the patch cannot tell where the model type is")
