"""The shared YAML load: each text is parsed once, and no patch or check changes what it returns."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from patcher.dispatch_inputs import MAX_DISPATCH_INPUTS
from patcher.errors import InputError
from patcher.workflow_patch import patch_workflow
from patcher.workflow_verify import validate_workflow
from patcher.yaml_text import load_data

SAMPLE_WORKFLOW = Path(__file__).resolve().parent.parent / "fixtures" / "echoself" / ".github" / "workflows" / "netrain-cached.yml"


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as stream:
        return stream.read()


def fresh_load(text: str) -> object:
    return YAML(typ="safe", pure=True).load(text)


def test_same_text_loads_once():
    text = read(SAMPLE_WORKFLOW)

    assert load_data(text, "workflow.yml") is load_data(text, "workflow.yml")


def test_patch_leaves_shared_documents_unchanged():
    """The patch and its own check read the loaded original and patched documents, so a change would leak into the validator."""
    before = read(SAMPLE_WORKFLOW)
    original = copy.deepcopy(load_data(before, "workflow.yml"))

    after = patch_workflow(before, "workflow.yml").new_text

    assert load_data(before, "workflow.yml") == original
    assert load_data(after, "workflow.yml") == fresh_load(after)


def test_invalid_yaml_names_file_and_line():
    with pytest.raises(InputError) as raised:
        load_data("on:\n  push: [\n", "workflow.yml")

    assert raised.value.path == "workflow.yml"
    assert raised.value.line == 3


def test_second_document_rejected():
    with pytest.raises(InputError, match="expected one YAML document") as raised:
        load_data("on: push\n---\njobs: {}\n", "workflow.yml")

    assert raised.value.line == 2


def test_validator_rejects_inputs_over_limit():
    count = MAX_DISPATCH_INPUTS + 1
    inputs = "".join(f"      input_{number}:\n        type: string\n" for number in range(count))
    text = f"on:\n  workflow_dispatch:\n    inputs:\n{inputs}jobs: {{}}\n"

    with pytest.raises(InputError, match=f"declares {count} dispatch inputs"):
        validate_workflow(text, "workflow.yml")
