"""The workflow inputs of a dispatch: what the workflow declares, and the values the user gave."""

from __future__ import annotations

from pathlib import Path

from patcher.dispatch_inputs import DispatchInput
from patcher.errors import InputError
from patcher.textio import read_text

DEFAULT_WORKFLOW_FILE = Path(".github/workflows/netrain-cached.yml")
DEFAULT_INPUTS = {"model_type": "RAT"}
BOOLEAN_VALUES = ("true", "false")


def workflow_path(arguments) -> Path:
    """Return the workflow file's path relative to the target, as given or the default."""
    return Path(arguments.workflow_file) if arguments.workflow_file else DEFAULT_WORKFLOW_FILE


def workflow_text_after_patch(arguments, planned) -> tuple[str, str]:
    """Return the patched workflow text and its shown path: the plan's new text, else the file on disk."""
    for item in planned:
        if item.patch.name == "workflow":
            return item.change.after, item.change.relative

    relative = workflow_path(arguments)
    return read_text(Path(arguments.target) / relative, relative.as_posix()), relative.as_posix()


def parse_input_arguments(pairs: list[str]) -> dict[str, str]:
    """Turn repeated `--input KEY=VALUE` into a dict, with model_type=RAT unless given."""
    values = dict(DEFAULT_INPUTS)
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise InputError("--input", f"invalid value {pair!r}: expected KEY=VALUE, for example model_type=RAT")
        values[key.strip()] = value
    return values


def checked_inputs(values: dict[str, str], declared: dict[str, DispatchInput], shown_as: str) -> dict[str, str]:
    """Check every value against the declared inputs and return the values to send.

    Raises InputError for an undeclared input, a choice outside its options, a
    boolean or number that does not parse, and a required input with no value.
    """
    undeclared = sorted(set(values) - set(declared))
    if undeclared:
        names = ", ".join(sorted(declared)) or "none"
        raise InputError(shown_as, f"input {', '.join(undeclared)} is not declared by the workflow; declared inputs: {names}")

    checked = {name: _checked_value(name, declared[name], value, shown_as) for name, value in values.items()}

    for name, spec in declared.items():
        if spec.required and spec.default in (None, "") and name not in checked:
            raise InputError(shown_as, f"input {name} is required and has no default; pass --input {name}=VALUE")
    return checked


def _checked_value(name: str, spec: DispatchInput, value: str, shown_as: str) -> str:
    if spec.type == "choice" and value not in spec.options:
        raise InputError(
            shown_as, f"invalid value {value!r} for input {name}: expected one of {', '.join(spec.options)}"
        )

    if spec.type == "boolean":
        if value.lower() not in BOOLEAN_VALUES:
            raise InputError(shown_as, f"invalid value {value!r} for boolean input {name}: expected true or false")
        return value.lower()

    if spec.type == "number":
        try:
            float(value)
        except ValueError:
            raise InputError(shown_as, f"invalid value {value!r} for number input {name}: expected a number") from None
    return value
