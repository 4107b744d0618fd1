"""The expressions that mark a RAT run in the workflow, and how the edits of one part fold into its status."""

from __future__ import annotations

import re

from patcher.parts import Part, Status

TRAINING_COMMAND_PART = "training command"
TRAINING_CONFIG_PART = "training config data_dir"
OUTPUTS_PART = "RAT output directory and cache key"

# Each expression resolves to '' unless the run requests the RAT, which includes push and schedule
# events: they carry no inputs, and a missing input is null, which equals no string.
RAT_SUFFIX = "${{ inputs.model_type == 'RAT' && '-rat' || '' }}"
# actions/cache restore-keys match by prefix, so the RAT mark leads the key:
# a NanEcho run's `nanecho-training-ci-` must never match a RAT entry.
RAT_KEY_PREFIX = "${{ inputs.model_type == 'RAT' && 'rat-' || '' }}"
# The clause a step's `if:` gains so that a RAT run skips the step and every other run decides as before.
NOT_RAT = "inputs.model_type != 'RAT'"

MODEL_TYPE_EXPRESSION = re.compile(r"\$\{\{[^}]*model_type[^}]*\}\}")


def resolve_nanecho(text: str) -> str:
    """Return the text as a run that does not request the RAT resolves it, with both marks resolved to ''."""
    return text.replace(RAT_SUFFIX, "").replace(RAT_KEY_PREFIX, "")


def value_status(present: str, patched: str, is_ours: bool, force: bool, is_older: bool = False) -> Status:
    """Compare a value the file has with the one this patch writes.

    `is_ours` marks a value the patch may take over, such as a literal it replaces
    with an expression. `is_older` marks the value an earlier version of this patch wrote.
    """
    if present == patched:
        return Status.APPLIED
    if is_ours:
        return Status.ADDED
    if is_older:
        return Status.UPDATED
    return Status.REPLACED if force else Status.CONFLICT


def combined_part(name: str, statuses: list[Status], detail: str) -> Part:
    """Fold the statuses of the edits one part makes into the part's status; any conflict wins."""
    for status in (Status.CONFLICT, Status.REPLACED, Status.UPDATED, Status.ADDED):
        if status in statuses:
            return Part(name, status, detail if status is not Status.CONFLICT else "differs from what this patcher writes")
    return Part(name, Status.APPLIED)
