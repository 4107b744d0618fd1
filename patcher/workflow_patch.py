"""Let the training workflow dispatch a RAT run: inputs, training command and separate outputs.

The patch reads the workflow with ruamel.yaml only to find nodes and to check
its own result. It writes by inserting and editing whole lines at the places
it found, so no other byte of the file changes. Four parts:

- the `model_type` and `data_dir` dispatch inputs;
- the training command (`python train_cached.py ...`), which passes both, with
  the defaults as fallback for events that carry no inputs;
- the `data_dir` of the `training_config.json` the same step writes, because
  train_cached.py lets that file override the command line;
- the step outputs that name the output directory and the cache key, which
  gain a RAT mark that is empty unless the run requests the RAT.

NOTE: steps that write fixed paths instead of the output directory are not
separated. In the target's workflow, the backup copy to
.training-progress/checkpoints/latest_checkpoint.pt and the model upload to
the Hugging Face repository run the same way for a RAT run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from patcher.dispatch_inputs import (
    MAX_DISPATCH_INPUTS,
    DispatchInput,
    DispatchInputsPatch,
    declared_inputs,
    inputs_to_add,
)
from patcher.errors import InputError
from patcher.parts import Part, PatchResult, Status
from patcher.plan import FilePatch, Options
from patcher.yaml_text import (
    BLOCK_SCALAR_STYLES,
    MAPPING,
    SCALAR,
    SEQUENCE,
    LineEditor,
    Node,
    SourceLines,
    compose,
    indent_of,
    yaml_error,
)

DESCRIPTION = "Add the model_type and data_dir inputs to the training workflow and give RAT runs their own outputs."
DEFAULT_WORKFLOW_FILE = Path(".github/workflows/netrain-cached.yml")

# train_cached.py's own --data_dir default, for a workflow that names no data directory.
FALLBACK_DATA_DIR = "data/nanecho"

MODEL_TYPE_VALUE = "${{ inputs.model_type || 'NanEcho' }}"
OUTPUT_DIR_SUFFIX = "${{ inputs.model_type == 'RAT' && '-rat' || '' }}"
# actions/cache restore-keys match by prefix, so the RAT mark leads the key:
# a NanEcho run's `nanecho-training-ci-` must never match a RAT entry.
CACHE_KEY_PREFIX = "${{ inputs.model_type == 'RAT' && 'rat-' || '' }}"

TRAINING_COMMAND_PART = "training command"
TRAINING_CONFIG_PART = "training config data_dir"
OUTPUTS_PART = "RAT output directory and cache key"

_TRAINING_COMMAND = re.compile(r"^\s*python3?\s+(?:-\S+\s+)*train_cached\.py(?=\s|$)")
_VALUE = r"(?:\$\{\{.*?\}\}|\"[^\"]*\"|'[^']*'|[^\s\"'\\])+"
_STEP_OUTPUT = re.compile(r"^\$\{\{\s*steps\.(?P<step>[\w-]+)\.outputs\.(?P<output>[\w-]+)\s*\}\}$")
_MODEL_TYPE_EXPRESSION = re.compile(r"\$\{\{[^}]*model_type[^}]*\}\}")
_CONFIG_DATA_DIR = re.compile(r'(?P<head>"data_dir"\s*:\s*")(?P<value>[^"]*)(?P<tail>")')
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<delimiter>\w+)\1")


def flag_pattern(flag: str) -> re.Pattern:
    return re.compile(rf"(?P<flag>--{flag})(?P<separator>=|[ \t]+)(?P<value>{_VALUE})")


def data_dir_value(default: str) -> str:
    return f"\"${{{{ inputs.data_dir || '{default}' }}}}\""


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


@dataclass(frozen=True)
class TrainingStep:
    """The step that runs train_cached.py: its job, its place in `steps:` and its command lines."""

    job: str
    steps: Node
    index: int
    run: Node
    command: range


@dataclass(frozen=True)
class OutputsStep:
    """The earlier step whose output the training command uses as --out_dir, and the name of that output."""

    index: int
    run: Node
    output: str


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
    parts.append(patch_command(training, source, editor, data_dir, force))
    config_part = patch_config(training, source, editor, data_dir, force)
    if config_part is not None:
        parts.append(config_part)
    parts.append(patch_outputs(outputs_step, source, editor, force, shown_as))

    new_text = editor.text() if editor.changed else text
    if new_text != text:
        verify(text, new_text, training, outputs_step, additions, parts, shown_as)
    return PatchResult(new_text=new_text, parts=tuple(parts))


# --- finding the training step ----------------------------------------------------------------------


def find_training_step(root: Node, source: SourceLines, shown_as: str) -> TrainingStep:
    found = []
    for job, steps in _job_steps(root):
        for index, step in enumerate(steps.items):
            pair = step.get("run") if step.kind == MAPPING else None
            if pair is None or pair[1].kind != SCALAR:
                continue
            run = pair[1]
            if run.style not in BLOCK_SCALAR_STYLES:
                if _TRAINING_COMMAND.search(run.value):
                    line = source.line_of(run.start) + 1
                    raise InputError(shown_as, "the training command's `run:` is not a block scalar (`run: |`)", line)
                continue
            for line in source.block_lines(run):
                if _TRAINING_COMMAND.match(source.lines[line]):
                    found.append(TrainingStep(job, steps, index, run, command_lines(source.lines, line, shown_as)))

    if not found:
        raise InputError(
            shown_as,
            "no training command found: looked for a line starting with `python train_cached.py` "
            "in the `run: |` block of a step under jobs.<job>.steps",
        )
    if len(found) > 1:
        lines = ", ".join(str(step.command.start + 1) for step in found)
        raise InputError(shown_as, f"{len(found)} training commands found (lines {lines}); expected one")
    return found[0]


def _job_steps(root: Node):
    pair = root.get("jobs")
    if pair is None or pair[1].kind != MAPPING:
        return
    for job_key, job in pair[1].pairs:
        steps = job.get("steps") if job.kind == MAPPING else None
        if steps is not None and steps[1].kind == SEQUENCE:
            yield job_key.value, steps[1]


def command_lines(lines: list[str], first: int, shown_as: str) -> range:
    """Return the lines of the shell command that starts at `first` and continues over trailing backslashes."""
    last = first
    while last < len(lines):
        line = lines[last]
        if line.rstrip().endswith("\\") and not line.endswith("\\"):
            raise InputError(
                shown_as,
                "the training command's backslash is followed by a space, so the shell command ends on this line; "
                "remove the trailing whitespace",
                last + 1,
                len(line.rstrip()),
            )
        if not line.endswith("\\"):
            break
        last += 1
    return range(first, min(last, len(lines) - 1) + 1)


def find_outputs_step(training: TrainingStep, source: SourceLines, shown_as: str) -> OutputsStep:
    out_dir = _flag_value(training, source, flag_pattern("out_dir"))
    line = training.command.start + 1
    match = _STEP_OUTPUT.match(out_dir[2]) if out_dir else None
    if match is None:
        raise InputError(
            shown_as,
            "the training command's --out_dir is not a step output (`--out_dir ${{ steps.<id>.outputs.<name> }}`), "
            "so a RAT run cannot get an output directory of its own",
            line,
        )

    for index, step in enumerate(training.steps.items[: training.index]):
        step_id = step.get("id") if step.kind == MAPPING else None
        run = step.get("run") if step_id else None
        if step_id and step_id[1].value == match["step"] and run and run[1].style in BLOCK_SCALAR_STYLES:
            return OutputsStep(index, run[1], match["output"])
    raise InputError(
        shown_as,
        f"no earlier step with `id: {match['step']}` and a `run: |` block sets the training command's --out_dir",
        line,
    )


def _flag_value(training: TrainingStep, source: SourceLines, pattern: re.Pattern) -> tuple[int, re.Match, str] | None:
    for line in training.command:
        match = pattern.search(source.lines[line])
        if match:
            return line, match, match["value"]
    return None


# --- the data directory ---------------------------------------------------------------------------


def current_data_dir(training: TrainingStep, source: SourceLines) -> str:
    """Return the data directory the workflow trains on: the config file's, which wins, else the flag's."""
    config_line = _config_data_dir_line(training, source)
    if config_line is not None:
        value = _CONFIG_DATA_DIR.search(source.lines[config_line])["value"]
        found = _data_dir_literal(value)
        if found:
            return found

    flag = _flag_value(training, source, flag_pattern("data_dir"))
    if flag is not None:
        found = _data_dir_literal(flag[2].strip("\"'"))
        if found:
            return found
    return FALLBACK_DATA_DIR


def _data_dir_literal(value: str) -> str | None:
    """Return a literal directory, or the fallback inside this patch's own expression; None for other expressions."""
    match = re.fullmatch(r"\$\{\{ inputs\.data_dir \|\| '(?P<default>[^']*)' \}\}", value)
    if match:
        return match["default"]
    return None if "${{" in value else value


def _config_data_dir_line(training: TrainingStep, source: SourceLines) -> int | None:
    """Return the `"data_dir": ...` line of the heredoc that writes the command's --config file."""
    config = _flag_value(training, source, flag_pattern("config"))
    if config is None:
        return None
    name = re.escape(config[2].strip("\"'"))
    writes_config = re.compile(rf">\s*['\"]?{name}['\"]?(\s|$)")

    lines = list(source.block_lines(training.run))
    for position, line in enumerate(lines):
        heredoc = _HEREDOC.search(source.lines[line])
        if not heredoc or not writes_config.search(source.lines[line]):
            continue
        for body_line in lines[position + 1 :]:
            if source.lines[body_line].strip() == heredoc["delimiter"]:
                break
            if _CONFIG_DATA_DIR.search(source.lines[body_line]):
                return body_line
    return None


# --- the training command and its config ------------------------------------------------------------


def patch_command(training: TrainingStep, source: SourceLines, editor: LineEditor, data_dir: str, force: bool) -> Part:
    edited: dict[int, str] = {}
    new_flags: list[str] = []
    statuses = []

    for flag, value in (("model_type", MODEL_TYPE_VALUE), ("data_dir", data_dir_value(data_dir))):
        found = _flag_value(training, source, flag_pattern(flag))
        if found is None:
            new_flags.append(f"--{flag} {value}")
            statuses.append(Status.ADDED)
            continue
        line, match, present = found
        status = _value_status(present, value, is_ours=flag == "data_dir" and "${{" not in present, force=force)
        statuses.append(status)
        if status in (Status.ADDED, Status.REPLACED):
            text = edited.get(line, source.lines[line])
            edited[line] = text[: match.start("value")] + value + text[match.end("value") :]

    part = _combined(TRAINING_COMMAND_PART, statuses, "passes --model_type and --data_dir from the inputs")
    if part.status is Status.CONFLICT:
        return part

    first = training.command.start
    if new_flags and source.lines[first].endswith("\\"):
        following = training.command.start + 1
        indent = indent_of(source.lines[following]) if following in training.command else indent_of(source.lines[first]) + 2
        editor.insert_after(first, [f"{' ' * indent}{flag} \\" for flag in new_flags])
    elif new_flags:
        text = edited.get(first, source.lines[first])
        end = _TRAINING_COMMAND.match(text).end()
        edited[first] = text[:end] + "".join(f" {flag}" for flag in new_flags) + text[end:]
    for line, text in edited.items():
        editor.replace(line, line, [text])
    return part


def _value_status(present: str, patched: str, is_ours: bool, force: bool) -> Status:
    """Compare a value the file has with the one this patch writes; `is_ours` marks a value it may take over."""
    if present == patched:
        return Status.APPLIED
    if is_ours:
        return Status.ADDED
    return Status.REPLACED if force else Status.CONFLICT


def patch_config(training: TrainingStep, source: SourceLines, editor: LineEditor, data_dir: str, force: bool) -> Part | None:
    line = _config_data_dir_line(training, source)
    if line is None:
        return None
    text = source.lines[line]
    match = _CONFIG_DATA_DIR.search(text)
    patched = data_dir_value(data_dir).strip('"')
    status = _value_status(match["value"], patched, is_ours="${{" not in match["value"], force=force)
    if status in (Status.ADDED, Status.REPLACED):
        editor.replace(line, line, [text[: match.start("value")] + patched + text[match.end("value") :]])
    return _combined(TRAINING_CONFIG_PART, [status], "the data_dir input, the same as the command")


# --- separate outputs for RAT runs ------------------------------------------------------------------


def _output_line(name: str) -> re.Pattern:
    return re.compile(
        rf"^(?P<head>\s*echo\s+\"{name}=)(?P<value>[^\"]*)(?P<tail>\"\s*>>\s*\"?\$GITHUB_OUTPUT\"?\s*)$"
    )


def patch_outputs(outputs: OutputsStep, source: SourceLines, editor: LineEditor, force: bool, shown_as: str) -> Part:
    statuses, edits = [], {}
    for line, name, match in _output_lines(outputs, source):
        plain = _MODEL_TYPE_EXPRESSION.sub("", match["value"])
        patched = plain + OUTPUT_DIR_SUFFIX if name == outputs.output else CACHE_KEY_PREFIX + plain
        statuses.append(_value_status(match["value"], patched, is_ours=plain == match["value"], force=force))
        edits[line] = match["head"] + patched + match["tail"]

    if not any(name == outputs.output for _, name, _ in _output_lines(outputs, source)):
        raise InputError(
            shown_as,
            f'the step that sets --out_dir writes no `echo "{outputs.output}=..." >> $GITHUB_OUTPUT` line',
            source.line_of(outputs.run.start) + 1,
        )
    part = _combined(OUTPUTS_PART, statuses, f"a RAT run writes to <{outputs.output}>-rat with cache key rat-<key>")
    if part.status in (Status.ADDED, Status.REPLACED):
        for line, text in edits.items():
            if text != source.lines[line]:
                editor.replace(line, line, [text])
    return part


def _output_lines(outputs: OutputsStep, source: SourceLines):
    """Yield (line, output name, match) for each `echo "NAME=VALUE" >> $GITHUB_OUTPUT` of the output dir or cache key."""
    patterns = {outputs.output: _output_line(re.escape(outputs.output)), "cache_key": _output_line("cache_key")}
    for line in source.block_lines(outputs.run):
        for name, pattern in patterns.items():
            match = pattern.match(source.lines[line])
            if match:
                yield line, name, match


def _combined(name: str, statuses: list[Status], detail: str) -> Part:
    """Fold the statuses of the edits one part makes into the part's status; any conflict wins."""
    for status in (Status.CONFLICT, Status.REPLACED, Status.ADDED):
        if status in statuses:
            return Part(name, status, detail if status is not Status.CONFLICT else "differs from what this patcher writes")
    return Part(name, Status.APPLIED)


# --- checking the result ----------------------------------------------------------------------------


def verify(
    before: str,
    after: str,
    training: TrainingStep,
    outputs: OutputsStep,
    additions: dict[str, DispatchInput],
    parts: list[Part],
    shown_as: str,
) -> None:
    """Parse the patched text and check that it means what the patch intended, and nothing else changed.

    Raises InputError when it does not, so that the caller writes nothing.
    """
    conflicting = {part.name for part in parts if part.status is Status.CONFLICT}
    try:
        before_data, after_data = _load(before, shown_as), _load(after, shown_as)
        problems = _input_problems(before, after, additions, conflicting, shown_as)
    except InputError as error:
        problems = [f"it does not parse ({error})"]
    else:
        problems += _run_problems(before_data, after_data, training, outputs, additions, conflicting)
        problems += _other_problems(before_data, after_data, training, outputs)

    if problems:
        raise InputError(shown_as, "the patched workflow failed its own check, so nothing was written: " + "; ".join(problems))


def _load(text: str, shown_as: str) -> dict:
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as error:
        raise yaml_error(error, shown_as) from None


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


def _run_problems(before: dict, after: dict, training: TrainingStep, outputs: OutputsStep, additions, conflicting) -> list[str]:
    problems = []
    old_run = _step(before, training.job, training.index)["run"].split("\n")
    new_run = _step(after, training.job, training.index)["run"].split("\n")
    starts = [index for index, line in enumerate(new_run) if _TRAINING_COMMAND.match(line)]
    if len(starts) != 1:
        return [f"{len(starts)} training commands in the patched step"]

    command = command_lines(new_run, starts[0], "patched workflow")
    command_text = " ".join(line.rstrip("\\") for line in new_run[command.start : command.stop])
    if TRAINING_COMMAND_PART not in conflicting:
        expected_flags = [f"--model_type {MODEL_TYPE_VALUE}", f"--data_dir {data_dir_value(additions['data_dir'].default)}"]
        problems += [f"the training command lacks `{flag}`" for flag in expected_flags if flag not in command_text]
    if command.stop < len(new_run) and new_run[command.stop - 1].endswith("\\"):
        problems.append("the training command does not end")

    touched = set(command) | {index for index, line in enumerate(new_run) if _CONFIG_DATA_DIR.search(line)}
    untouched_old = [line for index, line in enumerate(old_run) if not _is_command_or_config(old_run, index)]
    untouched_new = [line for index, line in enumerate(new_run) if index not in touched]
    if untouched_old != untouched_new:
        problems.append("lines of the training step other than the command and its data_dir changed")

    old_outputs = _step(before, training.job, outputs.index)["run"].split("\n")
    new_outputs = _step(after, training.job, outputs.index)["run"].split("\n")
    changed = [new for old, new in zip(old_outputs, new_outputs) if old != new]
    if len(old_outputs) != len(new_outputs) or any("${{ inputs.model_type ==" not in line for line in changed):
        problems.append(f"the {outputs.output} step changed other lines than its {outputs.output} and cache_key outputs")
    return problems


def _is_command_or_config(lines: list[str], index: int) -> bool:
    if _CONFIG_DATA_DIR.search(lines[index]):
        return True
    for start, line in enumerate(lines):
        if _TRAINING_COMMAND.match(line) and index in command_lines(lines, start, "workflow"):
            return True
    return False


def _other_problems(before: dict, after: dict, training: TrainingStep, outputs: OutputsStep) -> list[str]:
    """Compare everything but the dispatch inputs and the two edited `run:` blocks."""
    problems = []
    for index in (training.index, outputs.index):
        _step(after, training.job, index)["run"] = _step(before, training.job, index)["run"]
    rest_before = {key: value for key, value in before.items() if key != "on"}
    rest_after = {key: value for key, value in after.items() if key != "on"}
    if rest_before != rest_after:
        problems.append("keys outside the triggers and the two edited steps changed")
    if _triggers(before.get("on")) != _triggers(after.get("on")):
        problems.append("triggers other than the new dispatch inputs changed")
    return problems


def _step(document: dict, job: str, index: int) -> dict:
    return document["jobs"][job]["steps"][index]


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


def validate_workflow(text: str, shown_as: str) -> None:
    """Check that a workflow parses and stays within GitHub's limit on dispatch inputs."""
    compose(text, shown_as)
    inputs = declared_inputs(text, shown_as)
    if len(inputs) > MAX_DISPATCH_INPUTS:
        raise InputError(shown_as, f"declares {len(inputs)} dispatch inputs; GitHub accepts {MAX_DISPATCH_INPUTS}")


FILE_PATCH = FilePatch(name="workflow", locate=locate_workflow, apply=patch_workflow, validator=validate_workflow)
