"""Inspect the checkpoint a verification run wrote: does it hold a RAT, with its reservoir buffers?"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

# EchoReservoir keeps its fixed input and recurrent weights as buffers with these names.
RESERVOIR_INPUT_WEIGHT = "weight_in"
RESERVOIR_RECURRENT_WEIGHT = "weight"


@dataclass(frozen=True)
class Inspection:
    path: Path | None = None
    reservoirs: int = 0
    val_loss: float | None = None
    first_val_loss: float | None = None
    problem: str | None = None


def inspect_newest_checkpoint(out_dir: Path) -> Inspection:
    """Find the newest checkpoint with a model state under `out_dir` and count the reservoirs in it."""
    candidates = sorted(out_dir.rglob("*.pt"), key=lambda path: path.stat().st_mtime, reverse=True)
    # weights_only=False: the files were written moments ago by the run verify started, and they
    # hold numpy scalars and plain dicts that the weights-only loader rejects.
    checkpoints = [(path, torch.load(path, map_location="cpu", weights_only=False)) for path in candidates]
    checkpoints = [(path, data) for path, data in checkpoints if isinstance(data, dict) and "model_state_dict" in data]
    if not checkpoints:
        return Inspection(problem=f"the training wrote no checkpoint with a model_state_dict under {out_dir.name}/")

    # An exported model may carry no loss: take it from the checkpoints that record one, newest first.
    losses = [loss for _, data in checkpoints if (loss := recorded_val_loss(data)) is not None]
    path, newest = checkpoints[0]
    inspection = inspect(path, newest, losses[0] if losses else None)
    if len(losses) > 1:
        inspection = replace(inspection, first_val_loss=losses[-1])
    return inspection


def recorded_val_loss(checkpoint: dict) -> float | None:
    loss = checkpoint.get("val_loss", (checkpoint.get("metrics") or {}).get("val_loss"))
    return float(loss) if loss is not None else None


def inspect(path: Path, checkpoint: dict, val_loss: float | None) -> Inspection:
    state = checkpoint["model_state_dict"]
    reservoirs = sorted(
        key[: -len(RESERVOIR_INPUT_WEIGHT) - 1]
        for key in state
        if key.endswith("." + RESERVOIR_INPUT_WEIGHT) and f"{key[: -len(RESERVOIR_INPUT_WEIGHT)]}{RESERVOIR_RECURRENT_WEIGHT}" in state
    )
    model_type = (checkpoint.get("model_config") or {}).get("model_type")

    if not reservoirs:
        problem = (f"checkpoint {path.name} holds no reservoir buffers (no *.{RESERVOIR_INPUT_WEIGHT} with a "
                   f"*.{RESERVOIR_RECURRENT_WEIGHT} beside it): the model that trained is not a RAT")
        return Inspection(path, 0, val_loss, problem=problem)
    if model_type != "RAT":
        problem = f"checkpoint {path.name} records model_type {model_type!r} in its model_config, expected 'RAT'"
        return Inspection(path, len(reservoirs), val_loss, problem=problem)
    return Inspection(path, len(reservoirs), val_loss)
