"""The workflow through `python -m patcher apply/check` on a copy of the sample target."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_patcher, snapshot
from patcher.dispatch_inputs import declared_inputs
from patcher.workflow_patch import patch_workflow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WORKFLOWS = FIXTURES / "workflows"
WORKFLOW = ".github/workflows/netrain-cached.yml"


def test_apply_patches_workflow(sample_target: Path):
    before = (sample_target / WORKFLOW).read_text(encoding="utf-8")

    result = run_patcher("apply", sample_target)

    assert result.returncode == 0, result.stderr
    assert f"{WORKFLOW}: dispatch input model_type: added" in result.stdout
    assert (sample_target / WORKFLOW).read_text(encoding="utf-8") == patch_workflow(before, WORKFLOW).new_text


def test_second_apply_changes_no_workflow_byte(sample_target: Path):
    run_patcher("apply", sample_target)
    after_first = snapshot(sample_target)

    second = run_patcher("apply", sample_target)

    assert second.returncode == 0, second.stderr
    assert snapshot(sample_target) == after_first
    assert f"{WORKFLOW}: training command: already applied" in second.stdout


def test_apply_reports_rat_separation(sample_target: Path):
    result = run_patcher("apply", sample_target)

    assert result.returncode == 0, result.stderr
    assert f"{WORKFLOW}: RAT backup folders: added" in result.stdout
    assert f"{WORKFLOW}: Hugging Face steps: added (a RAT run skips the 2 step(s)" in result.stdout
    assert f"{WORKFLOW}: RAT fallback output directory: added" in result.stdout


def test_hand_edited_hub_condition_exits_2(sample_target: Path):
    workflow = sample_target / WORKFLOW
    text = workflow.read_text(encoding="utf-8")
    workflow.write_text(text.replace("if: vars.START_FROM_HUB == 'true'", "if: inputs.model_type == 'NanEcho'"), encoding="utf-8")
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert result.returncode == 2
    assert f"{WORKFLOW}: Hugging Face steps: conflict" in result.stderr
    assert snapshot(sample_target) == before


def test_check_reports_unpatched_workflow(sample_target: Path):
    run_patcher("apply", sample_target)
    (sample_target / WORKFLOW).write_bytes((FIXTURES / "echoself" / WORKFLOW).read_bytes())

    result = run_patcher("check", sample_target)

    assert result.returncode == 1
    assert f"+++ b/{WORKFLOW}" in result.stdout
    assert "+      model_type:" in result.stdout


def test_check_passes_after_apply(sample_target: Path):
    run_patcher("apply", sample_target)

    result = run_patcher("check", sample_target)

    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_writes_nothing(sample_target: Path):
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert f"--- a/{WORKFLOW}\n+++ b/{WORKFLOW}\n" in result.stdout
    assert "+          --model_type ${{ inputs.model_type || 'NanEcho' }} \\\n" in result.stdout
    assert snapshot(sample_target) == before


def test_conflicting_input_exits_2_writes_nothing(sample_target: Path):
    shutil.copyfile(WORKFLOWS / "model-type-conflict.yml", sample_target / WORKFLOW)
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert result.returncode == 2
    assert f"{WORKFLOW}: dispatch input model_type: conflict" in result.stderr
    assert "--force" in result.stderr
    assert snapshot(sample_target) == before


def test_force_replaces_conflicting_input(sample_target: Path):
    shutil.copyfile(WORKFLOWS / "model-type-conflict.yml", sample_target / WORKFLOW)

    result = run_patcher("apply", sample_target, "--force")

    assert result.returncode == 0, result.stderr
    assert "dispatch input model_type: replaced (--force)" in result.stdout
    inputs = declared_inputs((sample_target / WORKFLOW).read_text(encoding="utf-8"))
    assert inputs["model_type"].options == ("NanEcho", "RAT")


@pytest.mark.parametrize(
    "name, message",
    [
        ("broken-continuation.yml", f"{WORKFLOW}:23:37: the training command's backslash is followed by a space"),
        ("invalid-yaml.yml", f"{WORKFLOW}:8:8: not valid YAML"),
        ("no-training-command.yml", "no training command found: looked for a line starting with `python train_cached.py`"),
        ("inputs-at-limit.yml", "would exceed GitHub's limit of 25 inputs"),
    ],
)
def test_bad_workflow_leaves_files_untouched(sample_target: Path, name: str, message: str):
    shutil.copyfile(WORKFLOWS / name, sample_target / WORKFLOW)
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(sample_target) == before


def test_workflow_file_option_patches_that_file(sample_target: Path):
    other = sample_target / "ci" / "train.yml"
    other.parent.mkdir()
    (sample_target / WORKFLOW).rename(other)

    result = run_patcher("apply", sample_target, "--workflow-file", "ci/train.yml")

    assert result.returncode == 0, result.stderr
    assert "model_type" in declared_inputs(other.read_text(encoding="utf-8"))


def test_missing_workflow_named_in_message(sample_target: Path):
    (sample_target / WORKFLOW).unlink()
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert result.returncode == 2
    assert WORKFLOW in result.stderr
    assert "--workflow-file" in result.stderr
    assert snapshot(sample_target) == before


def test_missing_workflow_file_option_named(sample_target: Path):
    result = run_patcher("apply", sample_target, "--workflow-file", "ci/absent.yml")

    assert result.returncode == 2
    assert "ci/absent.yml" in result.stderr
    assert "--workflow-file" in result.stderr
