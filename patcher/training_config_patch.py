"""Patch the training configuration module (`train_nanecho.py`) so that `model_type` reaches the model config.

Two parts, each found by structure:
- a `model_type` field in the `@dataclass TrainingConfig`, after its model
  architecture fields, so that a `--config` JSON key sets it too;
- `model_type=config.model_type` in every `NanEchoConfig(...)` call that
  names its fields from the training configuration.
"""

from __future__ import annotations

import libcst as cst

from patcher.changeset import validate_python
from patcher.cst_edits import Edits, followed_by, quote_of
from patcher.cst_walk import find_all
from patcher.errors import InputError
from patcher.existing_parts import keyword_part, literal, merged_part, resolve
from patcher.parts import Part, PatchResult, Status
from patcher.plan import FilePatch, Options
from patcher.python_source import calls_class, code_of, dotted_name, parse_python
from patcher.templates.settings import MODEL_TYPES

TRAINING_MODULE = "train_nanecho.py"
TRAINING_CONFIG = "TrainingConfig"
MODEL_CONFIG = "NanEchoConfig"
DEFAULT_MODEL_TYPE = MODEL_TYPES[0]
# The field goes after the last of these, so it sits with the other settings of the model.
ARCHITECTURE_FIELDS = ("vocab_size", "n_embd", "n_head", "n_layer", "block_size", "dropout", "bias")

FIELD_PART = "model_type field in TrainingConfig"
MODEL_CONFIG_PART = "model_type passed to NanEchoConfig"


def patch_training_config(text: str, shown_as: str, force: bool) -> PatchResult:
    """Add the model_type field to TrainingConfig and pass it on where the model configuration is built."""
    module = parse_python(text, shown_as)
    edits = Edits()
    parts = (
        field_part(find_training_config(module, shown_as), force, edits),
        model_config_part(module, shown_as, force, edits),
    )
    return PatchResult(new_text=edits.apply(module).code, parts=parts)


def locate_training_module(options: Options):
    return options.target / TRAINING_MODULE


FILE_PATCH = FilePatch(
    name="training config",
    locate=locate_training_module,
    apply=patch_training_config,
    validator=validate_python,
)


def find_training_config(module: cst.Module, shown_as: str) -> cst.ClassDef:
    for statement in module.body:
        if isinstance(statement, cst.ClassDef) and statement.name.value == TRAINING_CONFIG:
            if not is_dataclass(statement):
                raise InputError(shown_as, f"class {TRAINING_CONFIG} is not a @dataclass; the patch adds a "
                                 "model_type field to the dataclass that train_cached.py builds")
            return statement
    raise InputError(shown_as, f"no top-level class {TRAINING_CONFIG} found; the patch adds a model_type field "
                     "to that dataclass")


def is_dataclass(klass: cst.ClassDef) -> bool:
    for decorator in klass.decorators:
        expression = decorator.decorator.func if isinstance(decorator.decorator, cst.Call) else decorator.decorator
        if (dotted_name(expression) or "").split(".")[-1] == "dataclass":
            return True
    return False


def field_name(statement: cst.CSTNode) -> str | None:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    field = statement.body[0]
    if isinstance(field, cst.AnnAssign) and isinstance(field.target, cst.Name):
        return field.target.value
    return None


def field_part(klass: cst.ClassDef, force: bool, edits: Edits) -> Part:
    statements = klass.body.body
    quote = quote_of(klass)
    ours = cst.parse_statement(
        f"model_type: str = {quote}{DEFAULT_MODEL_TYPE}{quote}"
        f"  # {quote}RAT{quote} trains a Reservoir-Augmented Transformer\n"
    )

    for statement in statements:
        if field_name(statement) == "model_type":
            field = statement.body[0]
            same = dotted_name(field.annotation.annotation) == "str" and literal(field.value) == DEFAULT_MODEL_TYPE
            detail = f"it is {code_of(field).strip()}, this patcher writes {code_of(ours.body[0]).strip()}"
            part, replace = resolve(FIELD_PART, same, force, detail)
            if replace:
                edits.add(statement, lambda existing: ours.with_changes(leading_lines=existing.leading_lines))
            return part

    index = insertion_index(statements)
    edits.add(statements[index], followed_by([ours]))
    return Part(FIELD_PART, Status.ADDED)


def insertion_index(statements) -> int:
    """Return the index of the last architecture field, else of the last field, else of the last statement."""
    fields = [(index, field_name(statement)) for index, statement in enumerate(statements) if field_name(statement)]
    architecture = [index for index, name in fields if name in ARCHITECTURE_FIELDS]
    if architecture:
        return architecture[-1]
    if fields:
        return fields[-1][0]
    return len(statements) - 1


def model_config_part(module: cst.Module, shown_as: str, force: bool, edits: Edits) -> Part:
    calls = [call for call in find_all(module, cst.Call) if calls_class(call, MODEL_CONFIG)]
    built_from_training = [(call, source) for call in calls if (source := training_config_source(call))]
    if not built_from_training:
        found = f"found {len(calls)} {MODEL_CONFIG}(...) call(s), none of them" if calls else f"found no {MODEL_CONFIG}(...) call"
        raise InputError(shown_as, f"{found} naming its fields from the training configuration "
                         f"(n_embd=config.n_embd, ...); the model type must be passed there")

    statuses = [
        keyword_part(call, "model_type", cst.parse_expression(f"{source}.model_type"), force, edits)
        for call, source in built_from_training
    ]
    return merged_part(MODEL_CONFIG_PART, statuses)


def training_config_source(call: cst.Call) -> str | None:
    """Return the expression a call copies its fields from, `config` in `n_embd=config.n_embd`, or None."""
    for argument in call.args:
        if argument.keyword is None or not isinstance(argument.value, cst.Attribute):
            continue
        if argument.value.attr.value == argument.keyword.value and argument.keyword.value in ARCHITECTURE_FIELDS:
            return dotted_name(argument.value.value)
    return None
