"""The patched sample target trained end to end: the workflow's own scripts for both model types, then resume.

A copy of the sample target is patched with `patcher apply` and given a small
dataset. The workflow tests render and run the "Pick training parameters"
and "Run cached training" steps of the patched workflow with bash, so the
training command is exactly the one a runner would execute for that event.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import SAMPLE_TARGET, run_patcher
from patcher.verify_data import build_dataset
from workflow_run import event_contexts, load_workflow, run_step

WORKFLOW = Path(".github/workflows/netrain-cached.yml")
TOKENIZER = Path("NanEcho/dte_tokenizer/tokenizer.json")
DATA = Path("data/sample")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Train with one thread: the tiny models gain nothing from more, and parallel test runs contend less."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A runner's workspace: the patched sample target checked out as `sample`, with its dataset in data/sample."""
    workspace = tmp_path_factory.mktemp("runner")
    sample = workspace / "sample"
    shutil.copytree(SAMPLE_TARGET, sample)
    applied = run_patcher("apply", sample)
    assert applied.returncode == 0, applied.stderr
    build_dataset(sample / DATA, sample / TOKENIZER, TOKENIZER.as_posix(), min_tokens=512)
    return workspace


def run_workflow_training(workspace: Path, event: str, inputs: dict[str, str] | None = None) -> tuple[Path, str]:
    """Run the parameter and training steps for an event; return the output folder and the training output."""
    workflow = load_workflow(workspace / "sample" / WORKFLOW)
    contexts = event_contexts(workflow, event, inputs)

    params = run_step(workflow, "params", contexts, workspace)
    assert params.returncode == 0, params.stderr
    training = run_step(workflow, "Run cached training", contexts, workspace)
    assert training.returncode == 0, training.stdout[-3000:] + training.stderr[-3000:]

    out_dir = workspace / "sample" / contexts["steps"]["params"]["outputs"]["output_dir"]
    return out_dir, training.stdout


def newest_checkpoint(out_dir: Path) -> dict:
    paths = sorted((out_dir / "cache" / "checkpoints").glob("*.pt"), key=lambda path: path.stat().st_mtime)
    assert paths, f"no checkpoint under {out_dir}"
    return torch.load(paths[-1], map_location="cpu", weights_only=False)


def unpatched_state_shapes(model_config: dict) -> dict[str, tuple[int, ...]]:
    """The state_dict keys and shapes of the sample model before any patch, built with the same settings."""
    spec = importlib.util.spec_from_file_location("unpatched_nanecho_model", SAMPLE_TARGET / "nanecho_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings = {key: value for key, value in model_config.items() if key in module.NanEchoConfig.__dataclass_fields__}
    model = module.NanEchoModel(module.NanEchoConfig(**settings))
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


@pytest.fixture(scope="module")
def push_run(workspace) -> Path:
    """The output folder of the workflow's training on a push event."""
    return run_workflow_training(workspace, "push")[0]


@pytest.fixture(scope="module")
def rat_dispatch_run(workspace) -> Path:
    """The output folder of the workflow's training on a full dispatch with model_type=RAT."""
    inputs = {"training_type": "full", "max_iters": "3", "model_type": "RAT"}
    return run_workflow_training(workspace, "workflow_dispatch", inputs)[0]


def test_push_event_trains_the_original_model(push_run):
    """A push carries no inputs: the run must build the model it built before the patch."""
    out_dir = push_run
    checkpoint = newest_checkpoint(out_dir)

    shapes = {key: tuple(value.shape) for key, value in checkpoint["model_state_dict"].items()}
    assert shapes == unpatched_state_shapes(checkpoint["model_config"])
    assert checkpoint["model_config"]["model_type"] == "NanEcho"
    assert out_dir.name == "sample-ci"


def test_rat_dispatch_trains_a_rat(rat_dispatch_run):
    """A dispatch with model_type=RAT trains reservoir blocks and records the model type."""
    out_dir = rat_dispatch_run
    checkpoint = newest_checkpoint(out_dir)
    state = checkpoint["model_state_dict"]

    layers = checkpoint["model_config"]["n_layer"]
    assert layers == 6
    for layer in range(layers):
        assert f"blocks.{layer}.mlp.0.weight_in" in state
        assert f"blocks.{layer}.mlp.0.weight" in state
    assert checkpoint["model_config"]["model_type"] == "RAT"
    assert out_dir.name == "sample-full-rat"


def test_rat_export_records_model_type(rat_dispatch_run):
    """The exported best model carries the model type too, so a consumer can rebuild the right model."""
    exported = torch.load(rat_dispatch_run / "best_model_export.pt", map_location="cpu", weights_only=False)

    assert exported["model_config"]["model_type"] == "RAT"


def train(entry_point: Path, data_dir: Path, out_dir: Path, *options: str) -> str:
    """Run a training entry point for one iteration; return its output."""
    command = [sys.executable, str(entry_point), "--data_dir", str(data_dir), "--out_dir", str(out_dir),
               "--max_iters", "1", "--device", "cpu", *options]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=entry_point.parent)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


@pytest.fixture(scope="module")
def resume_sequence(workspace, tmp_path_factory) -> dict[str, str]:
    """Four runs into one output folder, each output under its name.

    The unpatched sample target writes a checkpoint that records no model type,
    then the patched one trains a RAT, a RAT again and the default model.
    """
    folder = tmp_path_factory.mktemp("resume")
    original = folder / "original"
    shutil.copytree(SAMPLE_TARGET, original)
    patched = workspace / "sample" / "train_cached.py"
    data_dir, out_dir = workspace / "sample" / DATA, folder / "out"

    outputs = {"before the patch": train(original / "train_cached.py", data_dir, out_dir)}
    outputs["first RAT"] = train(patched, data_dir, out_dir, "--model_type", "RAT")
    outputs["second RAT"] = train(patched, data_dir, out_dir, "--model_type", "RAT")
    outputs["NanEcho"] = train(patched, data_dir, out_dir)
    return outputs


def test_rat_run_skips_checkpoint_from_before_the_patch(resume_sequence):
    """A checkpoint without a model type is a NanEcho one: a RAT must neither resume from nor half-load it."""
    output = resume_sequence["first RAT"]

    assert "it holds a NanEcho model, this run trains a RAT model" in output
    assert "No compatible checkpoints found" in output
    assert "Resumed from checkpoint" not in output


def test_rat_run_resumes_from_rat_checkpoint(resume_sequence):
    """The guard skips only the other model type: a second RAT run continues the first."""
    output = resume_sequence["second RAT"]

    assert "Resumed from checkpoint" in output


def test_nanecho_run_skips_rat_checkpoints(resume_sequence):
    """The default model must not resume from a RAT checkpoint."""
    assert "it holds a RAT model, this run trains a NanEcho model" in resume_sequence["NanEcho"]


def test_nanecho_run_resumes_from_before_the_patch(resume_sequence):
    """Checkpoints written before the patch keep working for the default model."""
    output = resume_sequence["NanEcho"]

    assert "Resumed from checkpoint" in output


def test_config_file_key_selects_rat(workspace, tmp_path):
    """A `model_type` key in the --config JSON selects the model like the flag does."""
    config = tmp_path / "training_config.json"
    config.write_text('{"model_type": "RAT"}\n', encoding="utf-8")
    entry_point, data_dir = workspace / "sample" / "train_cached.py", workspace / "sample" / DATA

    train(entry_point, data_dir, tmp_path / "out", "--config", str(config))

    assert newest_checkpoint(tmp_path / "out")["model_config"]["model_type"] == "RAT"
