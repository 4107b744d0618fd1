"""Let the training workflow dispatch a RAT run: inputs, training command and separate outputs.

The patch reads the workflow with ruamel.yaml only to find nodes and to check
its own result. It writes by inserting and editing whole lines at the places
it found, so no other byte of the file changes. Its parts:

- the `model_type` and `data_dir` dispatch inputs;
- the training command (`python train_cached.py ...`), which passes both, with
  the defaults as fallback for events that carry no inputs. The free-text
  `data_dir` reaches the script through the step's `env:` as `$DATA_DIR`, never
  as `${{ }}` inside the script, because Actions pastes an expression's value
  into the script before the shell reads it;
- the `data_dir` of the `training_config.json` the same step writes, because
  train_cached.py lets that file override the command line;
- the step outputs that name the output directory and the cache key, which
  gain a RAT mark that is empty unless the run requests the RAT;
- the shared backup folders, the Hugging Face steps and the fallback output
  directory (see workflow_separation).
"""

from __future__ import annotations

import re
from pathlib import Path

from patcher.dispatch_inputs import DispatchInputsPatch, inputs_to_add
from patcher.errors import InputError
from patcher.parts import Part, PatchResult, Status
from patcher.plan import FilePatch, Options
from patcher.training_step import (
    CONFIG_DATA_DIR,
    TRAINING_COMMAND,
    OutputsStep,
    TrainingStep,
    config_data_dir_line,
    config_heredoc,
    find_outputs_step,
    find_training_step,
    flag_pattern,
    flag_value,
)
from patcher.workflow_parts import (
    MODEL_TYPE_EXPRESSION,
    OUTPUTS_PART,
    RAT_KEY_PREFIX,
    RAT_SUFFIX,
    TRAINING_COMMAND_PART,
    TRAINING_CONFIG_PART,
    combined_part,
    resolve_nanecho,
    value_status,
)
from patcher.workflow_separation import (
    WorkflowSteps,
    patch_fallback_output_dir,
    patch_hub_steps,
    patch_shared_folders,
    shared_folders,
)
from patcher.workflow_verify import TrainingCheck, validate_workflow, verify
from patcher.yaml_text import MAPPING, SCALAR, LineEditor, Node, SourceLines, compose, indent_of, indent_step

DESCRIPTION = "Add the model_type and data_dir inputs to the training workflow and give RAT runs their own outputs."
DEFAULT_WORKFLOW_FILE = Path(".github/workflows/netrain-cached.yml")

# train_cached.py's own --data_dir default, for a workflow that names no data directory.
FALLBACK_DATA_DIR = "data/nanecho"

MODEL_TYPE_VALUE = "${{ inputs.model_type || 'NanEcho' }}"
DATA_DIR_VARIABLE = "DATA_DIR"
DATA_DIR_FLAG_VALUE = f'"${DATA_DIR_VARIABLE}"'
# NOTE: a data_dir with `"` or `\` makes the JSON written by the heredoc invalid, so that training run fails.
CONFIG_DATA_DIR_VALUE = f"${DATA_DIR_VARIABLE}"

_DATA_DIR_EXPRESSION = re.compile(r"\$\{\{ inputs\.data_dir \|\| '(?P<default>(?:[^']|'')*)' \}\}")


def data_dir_expression(default: str) -> str:
    """Return the expression for the data_dir input with the directory as fallback, quoted as GitHub expressions quote."""
    escaped = default.replace("'", "''")
    return f"${{{{ inputs.data_dir || '{escaped}' }}}}"


def locate_workflow(options: Options) -> Path:
    if options.workflow_file is not None:
        path = options.target / options.workflow_file
        if not path.is_file():
            raise InputError(
                str(options.workflow_file),
                f"workflow file given with --workflow-file not found in {options.target}",
            )
        return path

    path = options.target / DEFAULT_WORKFLOW_FILE
    if not path.is_file():
        raise InputError(
            str(options.target),
            f"training workflow {DEFAULT_WORKFLOW_FILE} not found; give it with --workflow-file",
        )
    return path


def patch_workflow(text: str, shown_as: str, force: bool = False) -> PatchResult:
    """Return the workflow's new text and the status of each part."""
    root = compose(text, shown_as)
    if root.kind != MAPPING:
        raise InputError(shown_as, "not a workflow: the document is not a mapping")
    source = SourceLines(text)
    editor = LineEditor(source)

    training = find_training_step(root, source, shown_as)
    outputs_step = find_outputs_step(training, source, shown_as)
    data_dir = current_data_dir(training, source)
    additions = inputs_to_add(data_dir)

    parts = DispatchInputsPatch(root, source, editor, shown_as, force).apply(additions)
    parts.append(patch_command(root, training, source, editor, data_dir, force, shown_as))
    parts.append(patch_config(training, source, editor, force, shown_as))
    parts.append(patch_outputs(outputs_step, source, editor, force, shown_as))

    steps = WorkflowSteps.of(root, training.node)
    folders = shared_folders(output_dirs(outputs_step, source))
    parts.append(patch_shared_folders(steps, folders, source, editor, force))
    parts.append(patch_hub_steps(steps, source, editor, force, shown_as))
    parts.append(patch_fallback_output_dir(root, outputs_step.step_id, outputs_step.output, source, editor, force, shown_as))
    parts = [part for part in parts if part is not None]

    new_text = editor.text() if editor.changed else text
    if new_text != text:
        check = TrainingCheck(
            job=training.job,
            index=training.index,
            command_flags=(f"--model_type {MODEL_TYPE_VALUE}", f"--data_dir {DATA_DIR_FLAG_VALUE}"),
            environment={DATA_DIR_VARIABLE: data_dir_expression(data_dir)},
            folders=folders,
            config_value=CONFIG_DATA_DIR_VALUE,
        )
        verify(text, new_text, check, additions, parts, shown_as)
    return PatchResult(new_text=new_text, parts=tuple(parts))


# --- the data directory ---------------------------------------------------------------------------


def current_data_dir(training: TrainingStep, source: SourceLines) -> str:
    """Return the data directory the workflow trains on.

    A patched step names it as the fallback of its DATA_DIR env. An unpatched
    step names it in the config file, which wins over the flag, or in the flag.
    """
    variable = _environment(training.node).get(DATA_DIR_VARIABLE)
    if variable is not None:
        found = _data_dir_default(variable[1].value)
        if found:
            return found

    config_line = config_data_dir_line(training, source)
    if config_line is not None:
        found = _data_dir_default(CONFIG_DATA_DIR.search(source.lines[config_line])["value"])
        if found:
            return found

    flag = flag_value(training, source, flag_pattern("data_dir"))
    if flag is not None:
        found = _data_dir_default(flag[2].strip("\"'"))
        if found:
            return found
    return FALLBACK_DATA_DIR


def _data_dir_default(value: str) -> str | None:
    """Return a literal directory, or the fallback inside the data_dir expression; None for any other variable."""
    match = _DATA_DIR_EXPRESSION.fullmatch(value)
    if match:
        return match["default"].replace("''", "'")
    return None if "$" in value else value


def _is_older_data_dir(value: str) -> bool:
    """Tell whether a value is the data_dir expression that earlier versions of this patch pasted into the script."""
    return _DATA_DIR_EXPRESSION.fullmatch(value.strip('"')) is not None


def _environment(step: Node) -> dict[str, tuple[Node, Node]]:
    pair = step.get("env")
    if pair is None or pair[1].kind != MAPPING:
        return {}
    return {key.value: (key, value) for key, value in pair[1].pairs if key.kind == SCALAR}


# --- the training command, its env and its config -------------------------------------------------


def patch_command(
    root: Node, training: TrainingStep, source: SourceLines, editor: LineEditor, data_dir: str, force: bool, shown_as: str
) -> Part:
    edited: dict[int, str] = {}
    new_flags: list[str] = []
    statuses = []

    for flag, value in (("model_type", MODEL_TYPE_VALUE), ("data_dir", DATA_DIR_FLAG_VALUE)):
        found = flag_value(training, source, flag_pattern(flag))
        if found is None:
            new_flags.append(f"--{flag} {value}")
            statuses.append(Status.ADDED)
            continue
        line, match, present = found
        is_literal = flag == "data_dir" and "$" not in present
        status = value_status(present, value, is_literal, force, is_older=flag == "data_dir" and _is_older_data_dir(present))
        statuses.append(status)
        if status not in (Status.APPLIED, Status.CONFLICT):
            text = edited.get(line, source.lines[line])
            edited[line] = text[: match.start("value")] + value + text[match.end("value") :]
    environment = environment_status(training, source, data_dir, force, shown_as)
    statuses.append(environment)

    part = combined_part(TRAINING_COMMAND_PART, statuses, "passes --model_type and, through env DATA_DIR, --data_dir")
    if part.status is Status.CONFLICT:
        return part

    if environment is not Status.APPLIED:
        write_environment(root, training, source, editor, data_dir)

    first = training.command.start
    if new_flags and source.lines[first].endswith("\\"):
        following = training.command.start + 1
        indent = indent_of(source.lines[following]) if following in training.command else indent_of(source.lines[first]) + 2
        editor.insert_after(first, [f"{' ' * indent}{flag} \\" for flag in new_flags])
    elif new_flags:
        text = edited.get(first, source.lines[first])
        end = TRAINING_COMMAND.match(text).end()
        edited[first] = text[:end] + "".join(f" {flag}" for flag in new_flags) + text[end:]
    for line, text in edited.items():
        editor.set_line(line, text)
    return part


def environment_status(training: TrainingStep, source: SourceLines, data_dir: str, force: bool, shown_as: str) -> Status:
    """Compare the training step's `env: DATA_DIR` with `<data_dir input, else the directory>`."""
    variable = _environment(training.node).get(DATA_DIR_VARIABLE)
    if variable is not None:
        return value_status(variable[1].value, data_dir_expression(data_dir), is_ours=False, force=force)

    pair = training.node.get("env")
    if pair is not None and (not pair[1].is_block_mapping or not pair[1].pairs):
        raise InputError(
            shown_as,
            "the training step's `env:` is not a block mapping with entries; write it as one to patch it",
            source.line_of(pair[0].start) + 1,
        )
    return Status.ADDED


def write_environment(root: Node, training: TrainingStep, source: SourceLines, editor: LineEditor, data_dir: str) -> None:
    """Write `DATA_DIR: <expression>` into the step's `env:`, creating `env:` above `run:` when the step has none."""
    step, entry = training.node, f"{DATA_DIR_VARIABLE}: {data_dir_expression(data_dir)}"
    variable = _environment(step).get(DATA_DIR_VARIABLE)
    if variable is not None:
        line = source.line_of(variable[0].start)
        editor.set_line(line, source.lines[line][: source.column_of(variable[0].start)] + entry)
        return

    pair = step.get("env")
    if pair is not None:
        env = pair[1]
        column = source.column_of(env.pairs[0][0].start)
        editor.insert_after(source.last_line(env), [f"{' ' * column}{entry}"])
        return

    run_key = step.get("run")[0]
    column = source.column_of(run_key.start)
    lines = [f"{' ' * column}env:", f"{' ' * (column + indent_step(root, source))}{entry}"]
    if step.pairs[0][0] is run_key:
        # `- run:` opens the step, so nothing can go above it; env follows the step's last line instead.
        editor.insert_after(source.last_line(step), lines)
    else:
        editor.insert_after(source.line_of(run_key.start) - 1, lines)


def patch_config(training: TrainingStep, source: SourceLines, editor: LineEditor, force: bool, shown_as: str) -> Part | None:
    found = config_heredoc(training, source)
    if found is None:
        return None
    heredoc, line = found
    text = source.lines[line]
    match = CONFIG_DATA_DIR.search(text)
    present = match["value"]
    status = value_status(present, CONFIG_DATA_DIR_VALUE, "$" not in present, force, is_older=_is_older_data_dir(present))

    if status not in (Status.APPLIED, Status.CONFLICT) and heredoc["quote"]:
        raise InputError(
            shown_as,
            f"the heredoc that writes the training config is quoted (<< {heredoc['quote']}{heredoc['delimiter']}"
            f"{heredoc['quote']}), so the shell would not expand ${DATA_DIR_VARIABLE} in it; unquote the delimiter",
            line + 1,
        )
    if status not in (Status.APPLIED, Status.CONFLICT):
        editor.set_line(line, text[: match.start("value")] + CONFIG_DATA_DIR_VALUE + text[match.end("value") :])
    return combined_part(TRAINING_CONFIG_PART, [status], f"the data_dir input through ${DATA_DIR_VARIABLE}, as the command")


# --- separate outputs for RAT runs ------------------------------------------------------------------


def _output_line(name: str) -> re.Pattern:
    return re.compile(
        rf"^(?P<head>\s*echo\s+\"{name}=)(?P<value>[^\"]*)(?P<tail>\"\s*>>\s*\"?\$GITHUB_OUTPUT\"?\s*)$"
    )


def patch_outputs(outputs: OutputsStep, source: SourceLines, editor: LineEditor, force: bool, shown_as: str) -> Part:
    statuses, edits = [], {}
    for line, name, match in _output_lines(outputs, source):
        plain = MODEL_TYPE_EXPRESSION.sub("", match["value"])
        patched = plain + RAT_SUFFIX if name == outputs.output else RAT_KEY_PREFIX + plain
        statuses.append(value_status(match["value"], patched, is_ours=plain == match["value"], force=force))
        edits[line] = match["head"] + patched + match["tail"]

    if not any(name == outputs.output for _, name, _ in _output_lines(outputs, source)):
        raise InputError(
            shown_as,
            f'the step that sets --out_dir writes no `echo "{outputs.output}=..." >> $GITHUB_OUTPUT` line',
            source.line_of(outputs.run.start) + 1,
        )
    part = combined_part(OUTPUTS_PART, statuses, f"a RAT run writes to <{outputs.output}>-rat with cache key rat-<key>")
    if part.status in (Status.ADDED, Status.REPLACED):
        for line, text in edits.items():
            if text != source.lines[line]:
                editor.set_line(line, text)
    return part


def output_dirs(outputs: OutputsStep, source: SourceLines) -> list[str]:
    """Return the output directories the outputs step sets, as a run that does not request the RAT resolves them."""
    return [
        resolve_nanecho(MODEL_TYPE_EXPRESSION.sub("", match["value"]))
        for _, name, match in _output_lines(outputs, source)
        if name == outputs.output
    ]


def _output_lines(outputs: OutputsStep, source: SourceLines):
    """Yield (line, output name, match) for each `echo "NAME=VALUE" >> $GITHUB_OUTPUT` of the output dir or cache key."""
    patterns = {outputs.output: _output_line(re.escape(outputs.output)), "cache_key": _output_line("cache_key")}
    for line in source.block_lines(outputs.run):
        for name, pattern in patterns.items():
            match = pattern.match(source.lines[line])
            if match:
                yield line, name, match


FILE_PATCH = FilePatch(name="workflow", locate=locate_workflow, apply=patch_workflow, validator=validate_workflow)
