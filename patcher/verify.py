"""`patcher verify`: train the patched target as a RAT for a few iterations on this machine, before any CI run.

The run happens on a patched copy of the target in a temporary folder, with a
tiny model on the CPU, under a time limit. Its output folder, cache and
evaluation folder are inside that temporary folder, so the target's own
training output is never touched. Afterwards the newest checkpoint must hold
reservoir buffers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from patcher.errors import EXIT_OK, EXIT_OUTSIDE_FAILURE, InputError
from patcher.plan import Options, check_target_folder, plan, plan_conflicts
from patcher.verify_data import Dataset, build_dataset, declared_vocab_size, find_tokenizer, usable_data_folder

log = logging.getLogger("patcher.verify")

ENTRY_POINT = "train_cached.py"
MODEL_TYPE = "RAT"
TAIL_LINES = 20
FRAME = re.compile(r'\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
# The training reads its dataset from the target itself; history and checkpoints would only slow the copy.
# NOTE: a target that loads a *.pt or *.bin file from its own tree at start-up would not find it in the copy.
NOT_COPIED = (".git", "node_modules", "__pycache__", "*.pt", "*.pth", "*.bin", "*.safetensors", "*.ckpt")


@dataclass(frozen=True)
class TinyModel:
    """The model and schedule of the verification run: small enough for a few seconds per iteration on a CPU."""

    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    block_size: int = 32
    batch_size: int = 2


def run(arguments: argparse.Namespace) -> int:
    """Patch a copy of the target, train it as a RAT for a few iterations and check the checkpoint it wrote."""
    check_target_folder(arguments.target)
    work = Path(tempfile.mkdtemp(prefix="patcher-verify-"))
    try:
        return verify_in(work, arguments)
    finally:
        if arguments.keep:
            print(f"verify: kept the temporary folder {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def verify_in(work: Path, arguments: argparse.Namespace) -> int:
    target = arguments.target
    copy = patched_copy(target, work / "target", arguments)
    dataset = find_or_build_dataset(target, work / "data", arguments)
    print(f"verify: data: {dataset.description}")

    out_dir = work / "out"
    config_file = write_training_config(work, dataset, arguments.max_iters)
    command = training_command(arguments.python, copy / ENTRY_POINT, config_file, dataset.folder, out_dir, arguments.max_iters)
    print(f"verify: training a {MODEL_TYPE} for {arguments.max_iters} iterations on the CPU "
          f"(time limit {arguments.timeout:g} s); this can take a minute")
    log.info("running %s in %s", shlex.join(command), work)

    started = time.monotonic()
    outcome = run_training(command, work, arguments.timeout)
    elapsed = time.monotonic() - started
    if outcome.failure is not None:
        return report_failure(command, outcome, copy)

    return check_checkpoint(out_dir, command, outcome, elapsed, copy)


def patched_copy(target: Path, copy: Path, arguments: argparse.Namespace) -> Path:
    """Copy the target's code to `copy` and apply every patch there; the target itself is only read."""
    shutil.copytree(target, copy, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    options = Options(target=copy, model_file=arguments.model_file, workflow_file=arguments.workflow_file)
    changes, planned = plan(options)
    conflicts = plan_conflicts(planned)
    if conflicts:
        relative, part = conflicts[0]
        raise InputError(relative, f"{part.describe()}; resolve it with `patcher apply --force` or by hand, "
                         "then run verify again")

    changes.write()
    if changes.pending:
        print(f"verify: patched a temporary copy of {target} ({len(changes.pending)} file(s) changed)")
    else:
        print(f"verify: {target} is already patched; training a temporary copy of it")
    return copy


def find_or_build_dataset(target: Path, folder: Path, arguments: argparse.Namespace) -> Dataset:
    own = target / arguments.data_dir
    if usable_data_folder(own):
        return Dataset(own.resolve(), declared_vocab_size(own), f"the target's own {arguments.data_dir.as_posix()}")

    tokenizer = find_tokenizer(target, arguments.tokenizer)
    tokenizer_shown_as = tokenizer.relative_to(target).as_posix() if tokenizer is not None else None
    print(f"verify: {arguments.data_dir.as_posix()} has no train.bin, val.bin and metadata.json; "
          "building a small dataset instead")
    return build_dataset(folder, tokenizer, tokenizer_shown_as, min_tokens=16 * TinyModel.block_size)


def write_training_config(work: Path, dataset: Dataset, max_iters: int) -> Path:
    """Write the `--config` JSON: every key the target's TrainingConfig has overrides its value."""
    model = TinyModel()
    values = {
        "n_layer": model.n_layer,
        "n_head": model.n_head,
        "n_embd": model.n_embd,
        "block_size": model.block_size,
        "batch_size": model.batch_size,
        "dropout": 0.0,
        "gradient_accumulation_steps": 1,
        "max_iters": max_iters,
        "warmup_iters": 0,
        "lr_decay_iters": max_iters,
        "eval_interval": max_iters,
        "eval_iters": 2,
        "log_interval": 1,
        "checkpoint_interval": max_iters,
        "connection_growth_interval": max_iters + 1,
        "enable_introspection": False,
        "eval_dir": str(work / "eval"),
        "device": "cpu",
        "dtype": "float32",
        "compile_model": False,
        "model_type": MODEL_TYPE,
    }
    if dataset.vocab_size is not None:
        values["vocab_size"] = dataset.vocab_size
    path = work / "training_config.json"
    path.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    return path


def training_command(python: str, entry_point: Path, config_file: Path, data_dir: Path, out_dir: Path,
                     max_iters: int) -> list[str]:
    """Build the command line the patched workflow runs, with the verification run's paths and sizes."""
    return [
        python, str(entry_point),
        "--config", str(config_file),
        "--data_dir", str(data_dir),
        "--out_dir", str(out_dir),
        "--max_iters", str(max_iters),
        "--batch_size", str(TinyModel.batch_size),
        "--learning_rate", "1e-3",
        "--device", "cpu",
        "--model_type", MODEL_TYPE,
    ]


@dataclass(frozen=True)
class Outcome:
    output: str
    failure: str | None


def run_training(command: list[str], work: Path, timeout: float) -> Outcome:
    """Run the training in its own process group, so that a timeout stops everything it started."""
    log_path = work / "training.log"
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    # The tiny model gains nothing from more threads, and on a busy machine they only contend.
    environment.setdefault("OMP_NUM_THREADS", "1")
    with open(log_path, "w+b") as output:
        try:
            process = subprocess.Popen(command, cwd=work, stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=environment, start_new_session=True)
        except OSError as error:
            return Outcome("", f"cannot start {command[0]}: {error.strerror}")
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return Outcome(_read(log_path), f"timed out after {timeout:g} s")
    text = _read(log_path)
    return Outcome(text, None if status == 0 else f"the training command exited with status {status}")


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def report_failure(command: list[str], outcome: Outcome, copy: Path) -> int:
    lines = outcome.output.rstrip().splitlines()
    print(f"verify: failed: {outcome.failure}", file=sys.stderr)
    print(f"command: {shlex.join(command)}", file=sys.stderr)
    message = target_message(lines)
    if message:
        print(f"the target's training stopped with: {message}", file=sys.stderr)
        if message.startswith("ModuleNotFoundError"):
            print(
                "the target's own requirements are missing: install its requirements.txt into the interpreter "
                "that runs the training, or give one that has them with --python",
                file=sys.stderr,
            )
    frame = target_frame(lines, copy)
    if frame:
        print(f"last line of the target's own code it ran: {frame}", file=sys.stderr)
    print(f"last {min(TAIL_LINES, len(lines))} lines of its output:", file=sys.stderr)
    for line in lines[-TAIL_LINES:]:
        print(f"  {line}", file=sys.stderr)
    return EXIT_OUTSIDE_FAILURE


def target_message(lines: list[str]) -> str | None:
    """Return the last `SomeError: message` line of a Python traceback, as the target wrote it."""
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if ":" in line and not line.startswith(" ") and head.replace(".", "").isidentifier() and head.endswith(("Error", "Exception", "Exit")):
            return line.strip()
    return None


def target_frame(lines: list[str], copy: Path) -> str | None:
    """Return the innermost traceback frame in the target's own files, as `file:line in function`."""
    root = str(copy) + os.sep
    for line in reversed(lines):
        match = FRAME.match(line)
        if match and match["path"].startswith(root):
            return f"{match['path'][len(root):]}:{match['line']} in {match['function']}"
    return None


def check_checkpoint(out_dir: Path, command: list[str], outcome: Outcome, elapsed: float, copy: Path) -> int:
    # torch loads only here, after the training ran in its own process.
    from patcher.verify_checkpoint import inspect_newest_checkpoint

    result = inspect_newest_checkpoint(out_dir)
    if result.problem is not None:
        return report_failure(command, Outcome(outcome.output, result.problem), copy)

    loss = "no validation loss recorded"
    if result.val_loss is not None:
        loss = f"validation loss {result.val_loss:.4f}"
    if result.first_val_loss is not None:
        loss = f"validation loss {result.first_val_loss:.4f} -> {result.val_loss:.4f}"
    print(f"verify: passed: {MODEL_TYPE} trained, {loss}, {elapsed:.1f} s; "
          f"{result.path.relative_to(out_dir).as_posix()} holds {result.reservoirs} reservoir(s)")
    return EXIT_OK
