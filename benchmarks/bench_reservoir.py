"""Measure the RAT's reservoir layer and training step against the feed-forward layer and model it replaces.

Run from the project root, with the project's virtual environment:

    .venv/bin/python benchmarks/bench_reservoir.py
    .venv/bin/python benchmarks/bench_reservoir.py --target ~/echoself   # a clone already patched by `apply`

Each section prints one table whose rows were measured side by side in the
same run, interleaved repetition by repetition, so that load from other
processes hits every row alike:

- layer: the reservoir and readout against the 4x-wide feed-forward layer,
  forward and forward plus backward, at 256 and 1024 time steps;
- step: a whole training step (forward, backward, AdamW) of the RAT and the
  original model at the target's CI settings, with tokens per second and
  peak memory;
- profile: where the RAT's training step spends its time;
- learning: validation loss of a small RAT and a small original model trained
  on the shipped corpus, against predicting tokens by frequency alone.

Without `--target`, the models come from the sample model under
fixtures/echoself, patched by the model patch into a temporary folder. The
sample model is lighter than the real one, whose blocks carry extra modules.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from patcher.model_patch import MODEL_FILE_CANDIDATES, patch_model  # noqa: E402
from patcher.templates.rat import CognitiveReadout, EchoReservoir  # noqa: E402

SAMPLE_MODEL = PROJECT / "fixtures" / "echoself" / "nanecho_model.py"
CORPUS = PROJECT / "benchmarks" / "corpus"

# The target workflow's CI settings, and the GPT-2 vocabulary its data uses.
CI_LAYERS, CI_HEADS, CI_WIDTH, CI_BATCH, CI_DROPOUT = 4, 4, 256, 2, 0.1
GPT2_VOCABULARY = 50257
RESERVOIR_UNITS = 512
BLOCK_SIZES = (256, 1024)
MODEL_TYPES = ("NanEcho", "RAT")
TORCH_THREADS_SCAN = "scan_threads=0"


# --- measuring ---------------------------------------------------------------------------------------


def interleaved_times(candidates: dict, repeats: int, warmup: int = 2) -> dict:
    """Time each callable `repeats` times, one of each per round; return (median, minimum) seconds per name.

    The minimum is the run least disturbed by other processes, so it shows
    the cost on an idle machine better than the median does on a busy one.
    """
    for run in candidates.values():
        for _ in range(warmup):
            run()

    times = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(values), min(values)) for name, values in times.items()}


def milliseconds(times: tuple) -> str:
    median, minimum = times
    return f"{median * 1e3:.1f} ({minimum * 1e3:.1f})"


def ratio(times: tuple, baseline: tuple) -> str:
    return f"{times[0] / baseline[0]:.2f} ({times[1] / baseline[1]:.2f})"


def print_table(header: tuple, rows: list) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    print()


def describe_machine() -> None:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average {load}")
    print()


# --- the layer ---------------------------------------------------------------------------------------


def plain_loop_reservoir(reservoir: EchoReservoir, inputs: torch.Tensor) -> torch.Tensor:
    """The update rule as a Python loop under autograd: the first version of the template, kept for comparison."""
    drive = nn.functional.linear(inputs, reservoir.weight_in, reservoir.bias)
    state = inputs.new_zeros(inputs.size(0), reservoir.units)
    states = []
    for step in range(inputs.size(1)):
        update = torch.tanh(drive[:, step] + state @ reservoir.weight.t())
        state = (1 - reservoir.leak_rate) * state + reservoir.leak_rate * update
        states.append(state)
    return torch.stack(states, dim=1)


def layer_candidates(steps: int) -> tuple[dict, dict]:
    """Forward and forward-plus-backward runs of each layer on the same input and output gradient."""
    torch.manual_seed(0)
    inputs = torch.randn(CI_BATCH, steps, CI_WIDTH, requires_grad=True)
    grad_output = torch.randn(CI_BATCH, steps, CI_WIDTH)
    feed_forward = nn.Sequential(nn.Linear(CI_WIDTH, 4 * CI_WIDTH), nn.GELU(), nn.Linear(4 * CI_WIDTH, CI_WIDTH))
    reservoir = EchoReservoir(CI_WIDTH, units=RESERVOIR_UNITS)
    readout = CognitiveReadout(RESERVOIR_UNITS, CI_WIDTH)

    def reservoir_layer(use_torchscript: bool, scan_threads: int = 1):
        def run():
            reservoir.use_torchscript = use_torchscript
            reservoir.scan_threads = scan_threads
            return readout(reservoir(inputs))

        return run

    layers = {
        "feed-forward 256-1024-256": lambda: feed_forward(inputs),
        "reservoir+readout, TorchScript scan": reservoir_layer(True),
        f"reservoir+readout, TorchScript scan, {TORCH_THREADS_SCAN}": reservoir_layer(True, scan_threads=0),
        "reservoir+readout, eager scan": reservoir_layer(False),
        "reservoir+readout, plain loop + autograd": lambda: readout(plain_loop_reservoir(reservoir, inputs)),
    }
    forward = dict(layers)
    both = {name: (lambda layer=layer: layer().backward(grad_output)) for name, layer in layers.items()}
    return forward, both


def bench_layers(repeats: int) -> None:
    print(f"Layer: batch {CI_BATCH}, width {CI_WIDTH}, {RESERVOIR_UNITS} reservoir units; median (minimum) ms")
    rows = []
    for steps in BLOCK_SIZES:
        forward, both = layer_candidates(steps)
        forward_times = interleaved_times(forward, repeats)
        both_times = interleaved_times(both, repeats)
        baseline = both_times["feed-forward 256-1024-256"]
        for name in forward:
            rows.append(
                (steps, name, milliseconds(forward_times[name]), milliseconds(both_times[name]), ratio(both_times[name], baseline))
            )
    print_table(("T", "layer", "forward", "fwd+bwd", "fwd+bwd / feed-forward"), rows)


# --- the models --------------------------------------------------------------------------------------


def model_file(target: Path | None, scratch: Path) -> Path:
    """Return the patched model file: the target's own, or the sample model patched into `scratch`."""
    if target is None:
        patched = scratch / "nanecho_model.py"
        patched.write_text(patch_model(SAMPLE_MODEL.read_text(encoding="utf-8"), "nanecho_model.py").new_text)
        return patched

    for candidate in MODEL_FILE_CANDIDATES:
        path = target.expanduser() / candidate
        if path.is_file():
            if "class RATBlock" not in path.read_text(encoding="utf-8"):
                sys.exit(f"{path} has no RATBlock: run `python -m patcher apply {target}` first")
            return path
    sys.exit(f"no model file in {target}: looked for {' and '.join(MODEL_FILE_CANDIDATES)}")


def import_model_module(path: Path):
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("benchmarked_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_model(module, model_type: str, block_size: int, vocab_size: int, **overrides):
    torch.manual_seed(0)
    settings = dict(
        vocab_size=vocab_size,
        n_layer=CI_LAYERS,
        n_head=CI_HEADS,
        n_embd=CI_WIDTH,
        block_size=block_size,
        dropout=CI_DROPOUT,
        model_type=model_type,
    )
    settings.update(overrides)
    model = module.NanEchoModel(module.NanEchoConfig(**settings))
    # The target's trainer uses these AdamW settings.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, betas=(0.9, 0.95))
    return model, optimizer


def training_step(model, optimizer, tokens: torch.Tensor) -> float:
    loss = model(tokens, labels=tokens)["loss"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def peak_memory_mib(path: Path, model_type: str, block_size: int, vocab_size: int) -> float:
    """Run three training steps in a fresh process; return how far its peak RSS rose above the built model's."""
    command = [sys.executable, __file__, "--memory-probe", str(path), model_type, str(block_size), str(vocab_size)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(completed.stdout.strip().splitlines()[-1])


def memory_probe(path: str, model_type: str, block_size: str, vocab_size: str) -> None:
    module = import_model_module(Path(path))
    model, optimizer = build_model(module, model_type, int(block_size), int(vocab_size))
    tokens = torch.randint(0, int(vocab_size), (CI_BATCH, int(block_size)))
    built = peak_rss_kib()
    for _ in range(3):
        training_step(model, optimizer, tokens)
    print((peak_rss_kib() - built) / 1024)


def peak_rss_kib() -> int:
    """Return this process's peak resident set size in KiB, from Linux's VmHWM.

    Not ru_maxrss: Linux carries the parent's peak over into a child through
    fork and exec, so a child of a large benchmark process reports the parent's.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("VmHWM not found in /proc/self/status: peak memory needs Linux")


def bench_steps(path: Path, module, repeats: int, vocab_size: int) -> None:
    print(
        f"Training step: {CI_LAYERS} layers, {CI_HEADS} heads, width {CI_WIDTH}, batch {CI_BATCH}, "
        f"vocabulary {vocab_size}, dropout {CI_DROPOUT}, AdamW; {path.name}"
    )
    rows = []
    for block_size in BLOCK_SIZES:
        tokens = torch.randint(0, vocab_size, (CI_BATCH, block_size), generator=torch.Generator().manual_seed(0))
        models = {kind: build_model(module, kind, block_size, vocab_size) for kind in MODEL_TYPES}
        models[f"RAT, {TORCH_THREADS_SCAN}"] = build_model(module, "RAT", block_size, vocab_size)
        for block in models[f"RAT, {TORCH_THREADS_SCAN}"][0].blocks:
            block.reservoir.scan_threads = 0
        steps = {kind: (lambda pair=pair: training_step(*pair, tokens)) for kind, pair in models.items()}
        times = interleaved_times(steps, repeats)
        peaks = {kind: peak_memory_mib(path, kind, block_size, vocab_size) for kind in MODEL_TYPES}
        # The thread count changes no allocation, so the row with torch's threads shares the RAT's peak.
        peaks[f"RAT, {TORCH_THREADS_SCAN}"] = peaks["RAT"]
        for kind in models:
            peak = peaks[kind]
            tokens_per_second = CI_BATCH * block_size / times[kind][0]
            rows.append(
                (
                    block_size,
                    kind,
                    milliseconds(times[kind]),
                    ratio(times[kind], times["NanEcho"]),
                    f"{tokens_per_second:.0f}",
                    f"{peak:.0f}",
                )
            )
        del models, steps
    print_table(
        ("block", "model", "step ms, median (min)", "/ original", "tokens/s at median", "peak MiB above model"), rows
    )


def bench_profile(module, vocab_size: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    block_size = BLOCK_SIZES[-1]
    model, optimizer = build_model(module, "RAT", block_size, vocab_size)
    tokens = torch.randint(0, vocab_size, (CI_BATCH, block_size))
    training_step(model, optimizer, tokens)

    steps = 2
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            training_step(model, optimizer, tokens)
    events = profiler.key_averages()
    total = sum(event.self_cpu_time_total for event in events) / steps / 1e3

    print(f"Profile of the RAT training step at block size {block_size}: {total:.0f} ms of CPU time per step")
    scan_rows = []
    for name in ("_ReservoirScan", "_ReservoirScanBackward"):
        matching = [event for event in events if event.key == name]
        if matching:
            milliseconds = matching[0].cpu_time_total / steps / 1e3
            scan_rows.append((name, f"{milliseconds:.0f}", f"{milliseconds / total:.0%}"))
    print_table(("reservoir scan (all layers)", "ms per step", "share"), scan_rows)

    top = sorted(events, key=lambda event: event.self_cpu_time_total, reverse=True)[:12]
    rows = [
        (event.key, event.count // steps, f"{event.self_cpu_time_total / steps / 1e3:.1f}",
         f"{event.self_cpu_time_total / steps / 1e3 / total:.0%}")
        for event in top
    ]
    print_table(("operator", "calls per step", "self ms per step", "share"), rows)


# --- learning ----------------------------------------------------------------------------------------


def corpus_tokens(vocab_size: int) -> list[int]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    files = sorted(str(path) for path in CORPUS.glob("*.txt"))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train(files, trainer)
    text = "\n".join(Path(file).read_text(encoding="utf-8") for file in files)
    return tokenizer.encode(text).ids


def unigram_loss(train: torch.Tensor, validation: torch.Tensor, vocab_size: int) -> float:
    """Cross-entropy of predicting each validation token by its training frequency, with add-one smoothing."""
    counts = torch.bincount(train, minlength=vocab_size).double() + 1.0
    log_probabilities = (counts / counts.sum()).log()
    return -log_probabilities[validation].mean().item()


def validation_loss(model, validation: torch.Tensor, block_size: int) -> float:
    model.eval()
    windows = validation[: (len(validation) // block_size) * block_size].view(-1, block_size)
    with torch.no_grad():
        loss = model(windows, labels=windows)["loss"].item()
    model.train()
    return loss


def bench_learning(module, steps: int, evaluate_every: int) -> None:
    vocab_size, block_size, batch = 512, 64, 16
    tokens = torch.tensor(corpus_tokens(vocab_size))
    split = int(0.9 * len(tokens))
    train, validation = tokens[:split], tokens[split:]
    baseline = unigram_loss(train, validation, vocab_size)
    print(
        f"Learning: {len(tokens)} tokens from {CORPUS.relative_to(PROJECT)}, BPE vocabulary {vocab_size}, "
        f"2 layers, width 64, block {block_size}, batch {batch}, AdamW lr 3e-3"
    )
    print(f"Frequency-only baseline: validation loss {baseline:.3f} (uniform: {math.log(vocab_size):.3f})")

    runs = {
        kind: build_model(
            module, kind, block_size, vocab_size, n_layer=2, n_embd=64, n_head=4, reservoir_units=256
        )
        for kind in MODEL_TYPES
    }
    for model, optimizer in runs.values():
        for group in optimizer.param_groups:
            group["lr"] = 3e-3

    # Small models gain nothing from a second thread, and on a loaded machine waiting threads slow every step.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    sampler = torch.Generator().manual_seed(0)
    rows = []
    for step in range(steps + 1):
        if step % evaluate_every == 0:
            losses = [validation_loss(model, validation, block_size) for model, _ in runs.values()]
            rows.append((step, *(f"{loss:.3f}" for loss in losses)))
        if step == steps:
            break
        starts = torch.randint(0, len(train) - block_size, (batch,), generator=sampler)
        windows = torch.stack([train[start : start + block_size] for start in starts])
        for model, optimizer in runs.values():
            training_step(model, optimizer, windows)
    torch.set_num_threads(threads)
    print_table(("step", *(f"{kind} validation loss" for kind in runs)), rows)


# --- main --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=Path, help="an echoself clone already patched by `python -m patcher apply`")
    parser.add_argument("--sections", default="layer,step,profile,learning", help="comma-separated sections to run")
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions per row (default 7)")
    parser.add_argument("--vocab-size", type=int, default=GPT2_VOCABULARY, help="vocabulary of the step section")
    parser.add_argument("--learning-steps", type=int, default=300, help="training steps of the learning section")
    parser.add_argument("--memory-probe", nargs=4, help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    if arguments.memory_probe:
        memory_probe(*arguments.memory_probe)
        return

    sections = set(arguments.sections.split(","))
    describe_machine()
    with tempfile.TemporaryDirectory() as scratch:
        path = model_file(arguments.target, Path(scratch))
        module = import_model_module(path)
        if "layer" in sections:
            bench_layers(arguments.repeats)
        if "step" in sections:
            bench_steps(path, module, arguments.repeats, arguments.vocab_size)
        if "profile" in sections:
            bench_profile(module, arguments.vocab_size)
        if "learning" in sections:
            bench_learning(module, arguments.learning_steps, evaluate_every=50)
    describe_machine()


if __name__ == "__main__":
    main()
