"""The patched training step run by bash with a stand-in train_cached.py: the data_dir input arrives as text."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from patcher.workflow_patch import patch_workflow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SAMPLE_WORKFLOW = FIXTURES / "echoself" / ".github" / "workflows" / "netrain-cached.yml"

# What the runner pastes for each expression of the sample's training step, for a CI-sized RAT dispatch.
EXPRESSION_VALUES = {
    "steps.params.outputs.n_layer": "2",
    "steps.params.outputs.max_iters": "3",
    "steps.params.outputs.output_dir": ".training-progress/sample-ci-rat",
    "steps.params.outputs.keep_checkpoints": "6",
    "inputs.model_type || 'NanEcho'": "RAT",
    "github.event.inputs.training_type == 'full' && '--device cpu' || ''": "",
}

# Prints the arguments and the config file it was given, and nothing else.
STAND_IN = """
import json, sys
config = sys.argv[sys.argv.index("--config") + 1]
print(json.dumps({"argv": sys.argv[1:], "config": json.load(open(config))}))
"""


def render(script: str) -> str:
    """Paste each `${{ }}` value as the runner does; an expression not in the table fails the test."""
    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", lambda match: EXPRESSION_VALUES[match.group(1)], script)


def patched_training_step() -> dict:
    text = patch_workflow(SAMPLE_WORKFLOW.read_text(encoding="utf-8"), "sample").new_text
    steps = YAML(typ="safe").load(text)["jobs"]["train"]["steps"]
    return next(step for step in steps if step.get("name") == "Run cached training")


def run_training_step(workspace: Path, data_dir: str) -> dict:
    """Run the step's script as a runner would, with its env set to the given data_dir; return what the stand-in saw."""
    step = patched_training_step()
    (workspace / "sample").mkdir()
    (workspace / "sample" / "train_cached.py").write_text(STAND_IN, encoding="utf-8")
    environment = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **{name: data_dir for name in step["env"]},
    }

    completed = subprocess.run(
        ["bash", "-e", "-c", render(step["run"])], cwd=workspace, env=environment, capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


@pytest.mark.parametrize("data_dir", ["data/nanecho_dte", "data/with space", "data/$(touch injected); touch injected #"])
def test_data_dir_input_arrives_as_text(tmp_path: Path, data_dir: str):
    """Command substitution, `;` and `#` in the input stay characters of the path, in the flag and in the config."""
    given = run_training_step(tmp_path, data_dir)

    assert given["argv"][given["argv"].index("--data_dir") + 1] == data_dir
    assert given["config"]["data_dir"] == data_dir
    assert not list(tmp_path.rglob("injected"))


def test_model_type_reaches_command(tmp_path: Path):
    given = run_training_step(tmp_path, "data/sample")

    assert given["argv"][given["argv"].index("--model_type") + 1] == "RAT"
    assert given["argv"][given["argv"].index("--out_dir") + 1] == ".training-progress/sample-ci-rat"
