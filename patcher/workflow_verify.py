"""Check the patched workflow against the original: it parses, and it means what the patch intended and no more.

Three checks, each on the parsed documents rather than on the edited lines:

- the dispatch inputs and the training step carry what the patch adds;
- a run that does not request the RAT resolves the workflow as before: with
  every RAT mark resolved to '' and every gated `if:` back to its original
  condition, the two documents are equal outside the inputs and the training step;
- a RAT run executes no step that names a shared folder without its mark, and
  skips every step that moves a model to or from the Hugging Face Hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from patcher.dispatch_inputs import MAX_DISPATCH_INPUTS, DispatchInput, declared_inputs
from patcher.errors import InputError
from patcher.parts import Part, Status
from patcher.training_step import CONFIG_DATA_DIR, TRAINING_COMMAND, command_lines
from patcher.workflow_parts import (
    MODEL_TYPE_EXPRESSION,
    RAT_SUFFIX,
    TRAINING_COMMAND_PART,
    TRAINING_CONFIG_PART,
    resolve_nanecho,
)
from patcher.workflow_separation import (
    HUB_ACTION,
    HUB_STEPS_PART,
    HUB_TRANSFER,
    SHARED_FOLDERS_PART,
    condition_expression,
    folder_pattern,
    original_condition,
)
from patcher.yaml_text import load_data

_NAME_CHARACTER = re.compile(r"[\w.$-]")


@dataclass(frozen=True)
class TrainingCheck:
    """The expected content of the patched workflow: the training step's flags, env and config, and the shared folders."""

    job: str
    index: int
    command_flags: tuple[str, ...]
    environment: dict[str, str]
    folders: tuple[str, ...]
    config_value: str


def verify(
    before: str,
    after: str,
    check: TrainingCheck,
    additions: dict[str, DispatchInput],
    parts: list[Part],
    shown_as: str,
) -> None:
    """Parse the patched text and check that it means what the patch intended, and nothing else changed.

    Raises InputError when it does not, so that the caller writes nothing.
    """
    conflicting = {part.name for part in parts if part.status is Status.CONFLICT}
    try:
        before_data, after_data = load_data(before, shown_as), load_data(after, shown_as)
        problems = _input_problems(before, after, additions, conflicting, shown_as)
    except InputError as error:
        problems = [f"it does not parse ({error})"]
    else:
        problems += _training_problems(before_data, after_data, check, conflicting)
        forced = any(part.status is Status.REPLACED for part in parts)
        problems += _nanecho_problems(before_data, after_data, check, forced)
        problems += _rat_problems(after_data, check, conflicting)

    if problems:
        raise InputError(shown_as, "the patched workflow failed its own check, so nothing was written: " + "; ".join(problems))




def _input_problems(before: str, after: str, additions: dict, conflicting: set[str], shown_as: str) -> list[str]:
    old, new = declared_inputs(before, shown_as), declared_inputs(after, shown_as)
    problems = []
    for name, definition in additions.items():
        expected = old.get(name) if f"dispatch input {name}" in conflicting else definition
        present = new.get(name)
        if present is None or not present.same_definition(expected):
            problems.append(f"input {name} is {present}, expected {expected}")
    for name, definition in old.items():
        if name not in additions and new.get(name) != definition:
            problems.append(f"input {name} changed")
    if len(new) > MAX_DISPATCH_INPUTS:
        problems.append(f"{len(new)} inputs, more than GitHub's {MAX_DISPATCH_INPUTS}")
    return problems


# --- the training step ------------------------------------------------------------------------------


def _training_problems(before: dict, after: dict, check: TrainingCheck, conflicting: set[str]) -> list[str]:
    old_step, new_step = _step(before, check.job, check.index), _step(after, check.job, check.index)
    old_run, new_run = old_step["run"].split("\n"), new_step["run"].split("\n")
    starts = [index for index, line in enumerate(new_run) if TRAINING_COMMAND.match(line)]
    if len(starts) != 1:
        return [f"{len(starts)} training commands in the patched step"]

    problems = []
    command = command_lines(new_run, starts[0], "patched workflow")
    command_text = " ".join(line.rstrip("\\") for line in new_run[command.start : command.stop])
    if TRAINING_COMMAND_PART not in conflicting:
        problems += [f"the training command lacks `{flag}`" for flag in check.command_flags if flag not in command_text]
        expected_environment = {**(old_step.get("env") or {}), **check.environment}
        if new_step.get("env") != expected_environment:
            problems.append(f"the training step's env is {new_step.get('env')}, expected {expected_environment}")
    if command.stop < len(new_run) and new_run[command.stop - 1].endswith("\\"):
        problems.append("the training command does not end")

    config_lines = [index for index, line in enumerate(new_run) if CONFIG_DATA_DIR.search(line)]
    if TRAINING_CONFIG_PART not in conflicting:
        values = [CONFIG_DATA_DIR.search(new_run[index])["value"] for index in config_lines]
        problems += [f"the config's data_dir is {value!r}" for value in values if value != check.config_value]

    touched = set(command) | set(config_lines)
    untouched_old = [resolve_nanecho(line) for index, line in enumerate(old_run) if not _is_command_or_config(old_run, index)]
    untouched_new = [resolve_nanecho(line) for index, line in enumerate(new_run) if index not in touched]
    if untouched_old != untouched_new:
        problems.append("lines of the training step other than the command and its data_dir changed")
    return problems


def _is_command_or_config(lines: list[str], index: int) -> bool:
    if CONFIG_DATA_DIR.search(lines[index]):
        return True
    for start, line in enumerate(lines):
        if TRAINING_COMMAND.match(line) and index in command_lines(lines, start, "workflow"):
            return True
    return False


# --- a run that does not request the RAT ------------------------------------------------------------


def _nanecho_problems(before: dict, after: dict, check: TrainingCheck, forced: bool) -> list[str]:
    """Compare both documents as such a run resolves them, outside the triggers and the training step.

    After --force replaced model_type expressions written by hand, which this
    check cannot evaluate, every model_type expression is left out on both sides.
    """
    resolve = (lambda text: MODEL_TYPE_EXPRESSION.sub("", text)) if forced else resolve_nanecho
    resolved_before, resolved_after = _as_nanecho_run(before, resolve), _as_nanecho_run(after, resolve)
    for document in (resolved_before, resolved_after):
        document.pop("on", None)
        training = _step(document, check.job, check.index)
        training.pop("run", None)
        training.pop("env", None)

    problems = []
    if resolved_before != resolved_after:
        problems.append("a run without model_type=RAT would resolve some path or condition differently than before")
    if _triggers(before.get("on")) != _triggers(after.get("on")):
        problems.append("triggers other than the new dispatch inputs changed")
    return problems


def _as_nanecho_run(document: dict, resolve) -> dict:
    """Return a copy with every RAT mark resolved to '' and every gated step condition back to the original."""
    # _resolve_strings builds new mappings and lists, so the loop below leaves the shared document as it was.
    resolved = _resolve_strings(document, resolve)
    for step in _all_steps(resolved):
        condition = step.get("if")
        expression = condition_expression(condition) if isinstance(condition, str) else None
        original = original_condition(expression) if expression is not None else None
        if original == "":
            del step["if"]
        elif original is not None:
            step["if"] = original
        elif expression is not None:
            step["if"] = expression
    return resolved


def _resolve_strings(value: object, resolve) -> object:
    if isinstance(value, str):
        return resolve(value)
    if isinstance(value, dict):
        return {key: _resolve_strings(item, resolve) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_strings(item, resolve) for item in value]
    return value


def _triggers(on: object) -> dict:
    """Return the triggers as a mapping, without the inputs this patch adds and with workflow_dispatch present."""
    if isinstance(on, str):
        on = {on: None}
    elif isinstance(on, list):
        on = {event: None for event in on}
    triggers = dict(on or {})
    dispatch = triggers.get("workflow_dispatch") or {}
    inputs = {name: value for name, value in (dispatch.get("inputs") or {}).items() if name not in ("model_type", "data_dir")}
    triggers["workflow_dispatch"] = {**dispatch, "inputs": inputs}
    return triggers


# --- a RAT run ----------------------------------------------------------------------------------------


def _rat_problems(after: dict, check: TrainingCheck, conflicting: set[str]) -> list[str]:
    problems = []
    pattern = folder_pattern(check.folders) if check.folders else None
    training = _step(after, check.job, check.index)
    for step in _all_steps(after):
        name = step.get("name") or step.get("id") or step.get("uses") or "a step"
        if step is not training and _moves_hub_model(step):
            if HUB_STEPS_PART not in conflicting and not _skipped_by_rat(step):
                problems.append(f"a RAT run would still run {name!r}")
            continue
        if pattern is not None and SHARED_FOLDERS_PART not in conflicting and _names_unmarked_folder(step, pattern):
            problems.append(f"a RAT run of {name!r} would still use a shared folder")
    return problems


def _moves_hub_model(step: dict) -> bool:
    run, uses = step.get("run"), step.get("uses")
    if isinstance(run, str) and HUB_TRANSFER.search(run):
        return True
    return isinstance(uses, str) and bool(HUB_ACTION.search(uses))


def _skipped_by_rat(step: dict) -> bool:
    condition = step.get("if")
    expression = condition_expression(condition) if isinstance(condition, str) else None
    return expression is not None and original_condition(expression) is not None


def _names_unmarked_folder(step: dict, pattern: re.Pattern) -> bool:
    """Tell whether the step's script or path, as a RAT run resolves it, names a shared folder itself."""
    texts = [step.get("run"), (step.get("with") or {}).get("path")]
    for text in texts:
        if not isinstance(text, str):
            continue
        for line in text.replace(RAT_SUFFIX, "-rat").split("\n"):
            if line.lstrip().startswith("#"):
                continue
            for match in pattern.finditer(line):
                if not _NAME_CHARACTER.match(line[match.end() : match.end() + 1]):
                    return True
    return False


def _all_steps(document: dict) -> list[dict]:
    jobs = document.get("jobs") or {}
    return [step for job in jobs.values() if isinstance(job, dict) for step in job.get("steps") or [] if isinstance(step, dict)]


def _step(document: dict, job: str, index: int) -> dict:
    return document["jobs"][job]["steps"][index]


def validate_workflow(text: str, shown_as: str) -> None:
    """Check that a workflow is one YAML mapping that loads and stays within GitHub's limit on dispatch inputs.

    The text is loaded as data and not composed, because the patch's own check has loaded the same text already.
    """
    inputs = declared_inputs(text, shown_as)
    if len(inputs) > MAX_DISPATCH_INPUTS:
        raise InputError(shown_as, f"declares {len(inputs)} dispatch inputs; GitHub accepts {MAX_DISPATCH_INPUTS}")
