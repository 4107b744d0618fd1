"""Keep a RAT run's backups, restores and uploads apart from the NanEcho checkpoints.

The output directory and the cache key carry the RAT mark already (see
workflow_patch). Three other kinds of place in the workflow are shared by
every run, whatever model it trains:

- the folders beside the output directories that steps name literally:
  `checkpoints`, where the backup step copies the best checkpoint as
  latest_checkpoint.pt and writes backup_manifest.json, and `artifacts`, where
  earlier runs' artifacts are downloaded and restored from. Each occurrence in
  a step's `run:` script or `with: path:` gains the RAT mark, so a RAT run uses
  `checkpoints-rat` and `artifacts-rat`;
- the steps that upload a model to or download one from the Hugging Face Hub:
  the upload publishes to the repository that the HFMODEL secret names, and the
  download writes NanEcho weights for the training to start from. Their `if:`
  gains `&& inputs.model_type != 'RAT'`, so a RAT run skips them;
- the env variable that steps fall back to when the parameters step did not
  run (`steps.params.outputs.output_dir || env.DEFAULT_OUTPUT_DIR`), whose
  value gains the RAT mark.

Every mark resolves to '' and every condition to the one it had unless the run
requests the RAT, so such a run resolves each path and condition as before.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from patcher.errors import InputError
from patcher.parts import Part, Status
from patcher.workflow_parts import MODEL_TYPE_EXPRESSION, NOT_RAT, RAT_SUFFIX, combined_part
from patcher.yaml_text import (
    BLOCK_SCALAR_STYLES,
    MAPPING,
    SCALAR,
    SEQUENCE,
    LineEditor,
    Node,
    SourceLines,
    render_flow_scalar,
    scalar_spans,
)

SHARED_FOLDERS_PART = "RAT backup folders"
HUB_STEPS_PART = "Hugging Face steps"
FALLBACK_PART = "RAT fallback output directory"

# Folders that the target's workflow names beside its output directories and uses for every model:
# `checkpoints` contains the backups the commit step pushes, and `artifacts` the downloads the restore step reads.
SHARED_FOLDER_NAMES = ("checkpoints", "artifacts")
# NOTE: other fixed folders, and literal copies of an output directory outside env fallbacks, stay shared.

# A script that uploads to or downloads from the Hub: a script named for it (upload_to_huggingface.py),
# the CLI (huggingface-cli upload) or a huggingface_hub call. Installing huggingface_hub alone is no transfer.
HUB_TRANSFER = re.compile(
    r"(?:upload|download)[\w-]*hugging_?face|hugging_?face[\w-]*\s+(?:upload|download)"
    r"|hf_hub_download|snapshot_download|upload_(?:file|folder)|push_to_hub",
    re.IGNORECASE,
)
HUB_ACTION = re.compile(r"hugging_?face", re.IGNORECASE)
_LEADING_EXPRESSION = re.compile(r"\$\{\{[^}]*\}\}")
_WHOLE_EXPRESSION = re.compile(r"\$\{\{\s*(?P<inner>.*?)\s*\}\}", re.DOTALL)
_NAME_CHARACTER = re.compile(r"[\w.$-]")


@dataclass
class PendingEdits:
    """Line edits of one part, written only when the part is no conflict, so that a conflict leaves its lines alone."""

    lines: dict[int, str] = field(default_factory=dict)
    insertions: list[tuple[int, list[str]]] = field(default_factory=list)

    def write_unless_conflict(self, part: Part, editor: LineEditor) -> Part:
        if part.status is not Status.CONFLICT:
            for line, text in self.lines.items():
                editor.set_line(line, text)
            for line, lines in self.insertions:
                editor.insert_after(line, lines)
        return part


@dataclass(frozen=True)
class WorkflowSteps:
    """Every step of every job, with the steps that transfer models to or from the Hugging Face Hub picked out."""

    steps: list[Node]
    hub_steps: list[Node]

    @classmethod
    def of(cls, root: Node, training_step: Node) -> WorkflowSteps:
        """Find the steps. The training step is never a Hub step, because a RAT run must not skip its training."""
        steps = [step for job in _jobs(root) for step in _steps(job)]
        return cls(steps, [step for step in steps if step is not training_step and transfers_with_hub(step)])

    def run_by_rat(self) -> list[Node]:
        return [step for step in self.steps if all(step is not hub for hub in self.hub_steps)]


def _jobs(root: Node) -> list[Node]:
    pair = root.get("jobs")
    if pair is None or pair[1].kind != MAPPING:
        return []
    return [job for _, job in pair[1].pairs if job.kind == MAPPING]


def _steps(job: Node) -> list[Node]:
    pair = job.get("steps")
    if pair is None or pair[1].kind != SEQUENCE:
        return []
    return [step for step in pair[1].items if step.kind == MAPPING]


def transfers_with_hub(step: Node) -> bool:
    """Tell whether a step's script moves a model to or from the Hugging Face Hub, or its action is a Hub action."""
    run, uses = step.get("run"), step.get("uses")
    if run is not None and run[1].kind == SCALAR and HUB_TRANSFER.search(run[1].value):
        return True
    return uses is not None and uses[1].kind == SCALAR and bool(HUB_ACTION.search(uses[1].value))


# --- the shared folders ---------------------------------------------------------------------------


def shared_folders(output_dirs: list[str]) -> tuple[str, ...]:
    """Return the shared folders beside the output directories, or none when the directories have no common parent."""
    parents = {posixpath.dirname(directory.rstrip("/")) for directory in output_dirs}
    if len(parents) != 1 or "" in parents:
        return ()
    parent = parents.pop()
    return tuple(f"{parent}/{name}" for name in SHARED_FOLDER_NAMES)


def folder_pattern(folders: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"(?<![\w.-])(?:" + "|".join(re.escape(folder) for folder in folders) + ")")


def patch_shared_folders(
    steps: WorkflowSteps, folders: tuple[str, ...], source: SourceLines, editor: LineEditor, force: bool
) -> Part | None:
    """Add the RAT mark after each shared folder named in the steps a RAT run executes."""
    if not folders:
        return None
    pattern = folder_pattern(folders)
    statuses, pending = [], PendingEdits()
    for step in steps.run_by_rat():
        for node in _path_scalars(step):
            for line, start, end in scalar_spans(source, node):
                if node.style in BLOCK_SCALAR_STYLES and source.lines[line].lstrip().startswith("#"):
                    continue
                statuses += _mark_folders(pattern, node.style, (line, start, end), editor, pending, force)
    if not statuses:
        return None
    names = ", ".join(f"{folder}-rat" for folder in folders)
    part = combined_part(SHARED_FOLDERS_PART, statuses, f"a RAT run backs up to and restores from {names}")
    return pending.write_unless_conflict(part, editor)


def _path_scalars(step: Node) -> list[Node]:
    """Return the step's `run:` script and its `with: path:` input, the scalars that name folders."""
    found = []
    run = step.get("run")
    if run is not None and run[1].kind == SCALAR:
        found.append(run[1])
    with_inputs = step.get("with")
    if with_inputs is not None and with_inputs[1].kind == MAPPING:
        path = with_inputs[1].get("path")
        if path is not None and path[1].kind == SCALAR:
            found.append(path[1])
    return found


def _mark_folders(
    pattern: re.Pattern, style: str | None, span: tuple[int, int, int], editor: LineEditor, pending: PendingEdits, force: bool
) -> list[Status]:
    """Mark each folder within one line's span of a scalar; return the status of each occurrence."""
    line, start, end = span
    text = editor.current_line(line)
    end += len(text) - len(editor.source.lines[line])
    mark = render_flow_scalar(RAT_SUFFIX, style)[1:-1] if style == "'" else RAT_SUFFIX
    statuses, insertions = [], []

    for match in pattern.finditer(text, start, end):
        following = text[match.end() : end]
        expression = _LEADING_EXPRESSION.match(following)
        if expression and expression[0] == mark:
            status = Status.APPLIED
        elif expression and "model_type" in expression[0] and not force:
            status = Status.CONFLICT
        elif expression and "model_type" in expression[0]:
            status = Status.REPLACED
            insertions.append((match.end(), match.end() + len(expression[0])))
        elif following and _NAME_CHARACTER.match(following):
            continue  # A longer name such as checkpoints-old or checkpoints$SUFFIX is another folder.
        else:
            status = Status.ADDED
            insertions.append((match.end(), match.end()))
        statuses.append(status)

    for first, last in reversed(insertions):
        text = text[:first] + mark + text[last:]
    if insertions:
        pending.lines[line] = text
    return statuses


# --- the Hugging Face steps -----------------------------------------------------------------------


def gated_condition(condition: str) -> str:
    """Return the condition with the RAT clause; `&&` binds tighter than `||`, so a condition with `||` is bracketed."""
    if "||" in condition:
        return f"({condition}) && {NOT_RAT}"
    return f"{condition} && {NOT_RAT}"


def original_condition(expression: str) -> str | None:
    """Return the condition this patch gated to get `expression`, '' for the bare RAT clause, None for other text."""
    if expression == NOT_RAT:
        return ""
    tail = f" && {NOT_RAT}"
    if not expression.endswith(tail):
        return None
    head = expression[: -len(tail)]
    candidates = [head[1:-1]] if head.startswith("(") and head.endswith(")") else []
    for condition in candidates + [head]:
        if gated_condition(condition) == expression:
            return condition
    return None


def condition_expression(value: str) -> str | None:
    """Return the expression of an `if:` value, with or without `${{ }}`; None when text surrounds an expression."""
    whole = _WHOLE_EXPRESSION.fullmatch(value.strip())
    if whole and "${{" not in whole["inner"] and "}}" not in whole["inner"]:
        return whole["inner"]
    if "${{" in value:
        return None
    return value.strip()


def patch_hub_steps(steps: WorkflowSteps, source: SourceLines, editor: LineEditor, force: bool, shown_as: str) -> Part | None:
    """Add the RAT clause to the `if:` of each Hugging Face step, or give the step `if:` with the clause alone."""
    if not steps.hub_steps:
        return None
    pending = PendingEdits()
    statuses = [_gate_step(step, source, editor, pending, force, shown_as) for step in steps.hub_steps]
    detail = f"a RAT run skips the {len(statuses)} step(s) that upload or download models"
    return pending.write_unless_conflict(combined_part(HUB_STEPS_PART, statuses, detail), editor)


def _gate_step(step: Node, source: SourceLines, editor: LineEditor, pending: PendingEdits, force: bool, shown_as: str) -> Status:
    pair = step.get("if")
    if pair is None:
        key = step.pairs[0][0]
        last = source.last_line(step.pairs[0][1]) or source.line_of(key.start)
        pending.insertions.append((last, [f"{' ' * source.column_of(key.start)}if: {NOT_RAT}"]))
        return Status.ADDED

    node = pair[1]
    line = source.line_of(node.start)
    if node.kind != SCALAR or node.style in BLOCK_SCALAR_STYLES or source.line_of(max(node.end - 1, node.start)) != line:
        raise InputError(shown_as, "the step's `if:` is not a one-line scalar; write it on one line to patch it", line + 1)
    expression = condition_expression(node.value)
    if expression is None:
        raise InputError(shown_as, "the step's `if:` mixes text and `${{ }}`; write one expression to patch it", line + 1)

    if original_condition(expression) is not None:
        return Status.APPLIED
    if "model_type" in expression and not force:
        return Status.CONFLICT

    gated = gated_condition(expression)
    value = f"${{{{ {gated} }}}}" if "${{" in node.value else gated
    text = editor.current_line(line)
    start = source.column_of(node.start)
    pending.lines[line] = text[:start] + render_flow_scalar(value, node.style) + text[start + node.end - node.start :]
    return Status.REPLACED if "model_type" in expression else Status.ADDED


# --- the fallback output directory ------------------------------------------------------------------


def fallback_names(text: str, step_id: str, output: str) -> list[str]:
    """Return the env variables written as the fallback of the output directory: `outputs.<output> || env.NAME`."""
    pattern = re.compile(rf"steps\.{re.escape(step_id)}\.outputs\.{re.escape(output)}\s*\|\|\s*env\.(?P<name>[A-Za-z_][\w-]*)")
    return sorted({match["name"] for match in pattern.finditer(text)})


def patch_fallback_output_dir(
    root: Node, step_id: str, output: str, source: SourceLines, editor: LineEditor, force: bool, shown_as: str
) -> Part | None:
    """Add the RAT mark to the value of each env variable that is the fallback of the output directory."""
    names = fallback_names(source.text, step_id, output)
    statuses, pending = [], PendingEdits()
    for env in _env_mappings(root):
        for key, value in env.pairs:
            if key.kind == SCALAR and key.value in names:
                statuses += _mark_fallback(key, value, source, editor, pending, force, shown_as)
    if not statuses:
        return None
    variables = " and ".join(f"env.{name}" for name in names)
    part = combined_part(FALLBACK_PART, statuses, f"a RAT run appends -rat to {variables}")
    return pending.write_unless_conflict(part, editor)


def _env_mappings(root: Node) -> list[Node]:
    """Return the `env:` mappings of the workflow, of each job and of each step."""
    holders = [root] + _jobs(root) + [step for job in _jobs(root) for step in _steps(job)]
    found = []
    for holder in holders:
        pair = holder.get("env")
        if pair is not None and pair[1].kind == MAPPING:
            found.append(pair[1])
    return found


def _mark_fallback(
    key: Node, value: Node, source: SourceLines, editor: LineEditor, pending: PendingEdits, force: bool, shown_as: str
) -> list[Status]:
    line = source.line_of(value.start)
    if value.kind != SCALAR or value.style in BLOCK_SCALAR_STYLES or source.line_of(max(value.end - 1, value.start)) != line:
        raise InputError(shown_as, f"env {key.value} is not a one-line scalar; write it on one line to patch it", line + 1)
    if not value.value:
        return []

    plain = MODEL_TYPE_EXPRESSION.sub("", value.value)
    patched = plain + RAT_SUFFIX
    if value.value == patched:
        return [Status.APPLIED]
    if plain != value.value and not force:
        return [Status.CONFLICT]

    text = editor.current_line(line)
    start = source.column_of(value.start)
    pending.lines[line] = text[:start] + render_flow_scalar(patched, value.style) + text[start + value.end - value.start :]
    return [Status.REPLACED if plain != value.value else Status.ADDED]
