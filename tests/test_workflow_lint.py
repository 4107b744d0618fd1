"""Every workflow the patch produces in the tests passes actionlint and GitHub's workflow schema, offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from patcher.workflow_patch import patch_workflow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WORKFLOWS = FIXTURES / "workflows"
SAMPLE_WORKFLOW = FIXTURES / "echoself" / ".github" / "workflows" / "netrain-cached.yml"


def tool(name: str) -> str:
    """Find a console script of the test extra: beside this Python first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found; install the test extra: pip install -e '.[test]'")
    return found


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as stream:
        return stream.read()


def hand_edited(text: str) -> str:
    """The sample with a hand-made RAT mark on a backup folder, a Hub condition and the fallback directory."""
    return (
        text.replace("mkdir -p .training-progress/checkpoints\n", "mkdir -p .training-progress/checkpoints${{ inputs.model_type }}\n")
        .replace("if: vars.START_FROM_HUB == 'true'", "if: inputs.model_type == 'NanEcho'")
        .replace("sample-ci\n\n    steps:", "sample-ci${{ inputs.model_type }}\n\n    steps:")
    )


@pytest.fixture(scope="module")
def produced_workflows(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The patched sample workflow, its CRLF form, forced replacements, and every golden after-file the patch tests use."""
    folder = tmp_path_factory.mktemp("produced")
    sample = read(SAMPLE_WORKFLOW)
    produced = {
        "sample.yml": patch_workflow(sample, "sample.yml").new_text,
        "sample-crlf.yml": patch_workflow(sample.replace("\n", "\r\n"), "sample-crlf.yml").new_text,
        "model-type-conflict-forced.yml": patch_workflow(
            read(WORKFLOWS / "model-type-conflict.yml"), "conflict.yml", force=True
        ).new_text,
        "hand-edits-forced.yml": patch_workflow(hand_edited(sample), "hand-edits.yml", force=True).new_text,
    }
    for golden in sorted((WORKFLOWS / "expected").glob("*.yml")):
        produced[golden.name] = read(golden)

    paths = []
    for name, text in produced.items():
        path = folder / name
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    return paths


def test_produced_workflows_pass_actionlint(produced_workflows: list[Path]):
    # No shellcheck or pyflakes: their findings would be about the target's scripts, and depend on the machine.
    result = subprocess.run(
        [tool("actionlint"), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, produced_workflows)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_produced_workflows_match_github_schema(produced_workflows: list[Path]):
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, produced_workflows)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_undeclared_input(tmp_path: Path):
    """The lint test can fail: a command naming an input the workflow does not declare is reported."""
    text = patch_workflow(read(SAMPLE_WORKFLOW), "sample.yml").new_text.replace("inputs.model_type ||", "inputs.model_kind ||")
    path = tmp_path / "undeclared.yml"
    path.write_text(text, encoding="utf-8")

    result = subprocess.run(
        [tool("actionlint"), "-no-color", "-shellcheck=", "-pyflakes=", str(path)], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 1
    assert "model_kind" in result.stdout
