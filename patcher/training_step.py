"""Find the step that runs train_cached.py, its command lines and flags, and the step that sets its --out_dir."""

from __future__ import annotations

import re
from dataclasses import dataclass

from patcher.errors import InputError
from patcher.yaml_text import BLOCK_SCALAR_STYLES, MAPPING, SCALAR, SEQUENCE, Node, SourceLines

TRAINING_COMMAND = re.compile(r"^\s*python3?\s+(?:-\S+\s+)*train_cached\.py(?=\s|$)")
_VALUE = r"(?:\$\{\{.*?\}\}|\"[^\"]*\"|'[^']*'|[^\s\"'\\])+"
_STEP_OUTPUT = re.compile(r"^\$\{\{\s*steps\.(?P<step>[\w-]+)\.outputs\.(?P<output>[\w-]+)\s*\}\}$")
CONFIG_DATA_DIR = re.compile(r'(?P<head>"data_dir"\s*:\s*")(?P<value>[^"]*)(?P<tail>")')
_HEREDOC = re.compile(r"<<-?\s*(?P<quote>['\"]?)(?P<delimiter>\w+)(?P=quote)")


def flag_pattern(flag: str) -> re.Pattern:
    return re.compile(rf"(?P<flag>--{flag})(?P<separator>=|[ \t]+)(?P<value>{_VALUE})")


@dataclass(frozen=True)
class TrainingStep:
    """The step that runs train_cached.py: its job, its place in `steps:` and its command lines."""

    job: str
    steps: Node
    index: int
    run: Node
    command: range

    @property
    def node(self) -> Node:
        return self.steps.items[self.index]


@dataclass(frozen=True)
class OutputsStep:
    """The earlier step whose output the training command uses as --out_dir: its place, `id` and output name."""

    index: int
    step_id: str
    run: Node
    output: str


def find_training_step(root: Node, source: SourceLines, shown_as: str) -> TrainingStep:
    found = []
    for job, steps in _job_steps(root):
        for index, step in enumerate(steps.items):
            pair = step.get("run") if step.kind == MAPPING else None
            if pair is None or pair[1].kind != SCALAR:
                continue
            run = pair[1]
            if run.style not in BLOCK_SCALAR_STYLES:
                if TRAINING_COMMAND.search(run.value):
                    line = source.line_of(run.start) + 1
                    raise InputError(shown_as, "the training command's `run:` is not a block scalar (`run: |`)", line)
                continue
            for line in source.block_lines(run):
                if TRAINING_COMMAND.match(source.lines[line]):
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
    out_dir = flag_value(training, source, flag_pattern("out_dir"))
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
            return OutputsStep(index, match["step"], run[1], match["output"])
    raise InputError(
        shown_as,
        f"no earlier step with `id: {match['step']}` and a `run: |` block sets the training command's --out_dir",
        line,
    )


def flag_value(training: TrainingStep, source: SourceLines, pattern: re.Pattern) -> tuple[int, re.Match, str] | None:
    for line in training.command:
        match = pattern.search(source.lines[line])
        if match:
            return line, match, match["value"]
    return None


def config_data_dir_line(training: TrainingStep, source: SourceLines) -> int | None:
    """Return the `"data_dir": ...` line of the heredoc that writes the command's --config file."""
    found = config_heredoc(training, source)
    return found[1] if found else None


def config_heredoc(training: TrainingStep, source: SourceLines) -> tuple[re.Match, int] | None:
    """Return the heredoc that writes the command's --config file and the index of its `"data_dir"` line."""
    config = flag_value(training, source, flag_pattern("config"))
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
            if CONFIG_DATA_DIR.search(source.lines[body_line]):
                return heredoc, body_line
    return None
