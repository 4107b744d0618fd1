"""`patcher verify`: the patched training runs in a temporary folder, passes or reports why not, and leaves the target alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conftest import run_patcher, snapshot
from patcher.verify import target_message
from patcher.verify_data import build_dataset, usable_data_folder

TOKENIZER = Path("NanEcho/dte_tokenizer/tokenizer.json")


def test_unpatched_target_passes_untouched(sample_target):
    """verify patches a copy, trains a RAT and reads its checkpoint; the target keeps every byte."""
    before = snapshot(sample_target)

    result = run_patcher("verify", sample_target)

    assert result.returncode == 0, result.stderr
    assert "patched a temporary copy" in result.stdout
    assert "verify: passed: RAT trained, validation loss" in result.stdout
    assert "holds 2 reservoir(s)" in result.stdout
    assert snapshot(sample_target) == before


def test_patched_target_passes(sample_target):
    """On a target where apply already ran, verify trains it as it is."""
    assert run_patcher("apply", sample_target).returncode == 0
    before = snapshot(sample_target)

    result = run_patcher("verify", sample_target)

    assert result.returncode == 0, result.stderr
    assert "is already patched" in result.stdout
    assert "verify: passed" in result.stdout
    assert snapshot(sample_target) == before


def test_target_data_folder_used_read_only(sample_target):
    """A usable data/nanecho is trained on in place, and nothing is written into it."""
    build_dataset(sample_target / "data" / "nanecho", sample_target / TOKENIZER, TOKENIZER.as_posix(), min_tokens=512)
    before = snapshot(sample_target)

    result = run_patcher("verify", sample_target)

    assert result.returncode == 0, result.stderr
    assert "data: the target's own data/nanecho" in result.stdout
    assert snapshot(sample_target) == before


def test_refused_data_reports_target_message(sample_target):
    """When the target's training rejects the data, verify shows the target's own message and exits 3."""
    data = sample_target / "data" / "nanecho"
    build_dataset(data, sample_target / TOKENIZER, TOKENIZER.as_posix(), min_tokens=512)
    metadata = json.loads((data / "metadata.json").read_text())
    del metadata["tokenizer"]
    (data / "metadata.json").write_text(json.dumps(metadata))

    result = run_patcher("verify", sample_target)

    assert result.returncode == 3
    assert "the training command exited with status 1" in result.stderr
    assert "ValueError: Dataset metadata has no tokenizer object; rebuild the dataset" in result.stderr
    assert "last line of the target's own code it ran: train_nanecho.py:" in result.stderr
    assert "train_cached.py --config" in result.stderr
    assert "--model_type RAT" in result.stderr


def test_timeout_stops_training(sample_target):
    """A run over the time limit is stopped and reported as timed out."""
    result = run_patcher("verify", sample_target, "--timeout", "0.5")

    assert result.returncode == 3
    assert "verify: failed: timed out after 0.5 s" in result.stderr


def test_non_rat_checkpoint_fails(sample_target):
    """A hand edit that throws the flag away trains the original model: no reservoir buffers, exit 3."""
    assert run_patcher("apply", sample_target).returncode == 0
    entry_point = sample_target / "train_cached.py"
    text = entry_point.read_text()
    entry_point.write_text(text.replace("    trainer = CachedNanEchoTrainer(", "    config.model_type = 'NanEcho'\n    trainer = CachedNanEchoTrainer(", 1))

    result = run_patcher("verify", sample_target)

    assert result.returncode == 3
    assert "holds no reservoir buffers" in result.stderr


def test_conflicting_target_rejected_before_training(sample_target):
    """A hand-edited part is a conflict: verify stops with exit 2 and trains nothing."""
    module = sample_target / "train_nanecho.py"
    module.write_text(module.read_text().replace("    bias: bool = True\n", "    bias: bool = True\n    model_type: str = 'RAT'\n", 1))

    result = run_patcher("verify", sample_target)

    assert result.returncode == 2
    assert "train_nanecho.py" in result.stderr
    assert "model_type field in TrainingConfig: conflict" in result.stderr
    assert "training a RAT" not in result.stdout


def test_missing_target_rejected(tmp_path):
    result = run_patcher("verify", tmp_path / "nowhere")

    assert result.returncode == 2
    assert "target folder not found" in result.stderr


def test_dataset_without_tokenizer_uses_bytes(tmp_path):
    """A target with no tokenizer.json still gets a dataset, of UTF-8 bytes, declared as such."""
    dataset = build_dataset(tmp_path, None, None, min_tokens=100)
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    train = np.fromfile(tmp_path / "train.bin", dtype=np.uint16)

    assert dataset.vocab_size == 256
    assert metadata["tokenizer"]["name"] == "utf-8 bytes"
    assert train.max() < 256
    assert len(train) >= 100


def test_dataset_with_target_tokenizer(sample_target, tmp_path):
    """With the target's tokenizer, ids stay inside its vocabulary and its end-of-text token is declared."""
    dataset = build_dataset(tmp_path, sample_target / TOKENIZER, TOKENIZER.as_posix(), min_tokens=100)
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    val = np.fromfile(tmp_path / "val.bin", dtype=np.uint16)

    assert dataset.vocab_size == 320
    assert metadata["tokenizer"]["eos_token"] == "<|endoftext|>"
    assert metadata["tokenizer"]["eos_token_id"] == 1
    assert val.max() < 320
    assert len(val) >= 100
    assert usable_data_folder(tmp_path)


def test_data_folder_without_metadata_unusable(tmp_path):
    build_dataset(tmp_path, None, None, min_tokens=100)
    (tmp_path / "metadata.json").unlink()

    assert not usable_data_folder(tmp_path)


def test_target_message_is_last_exception_line():
    output = [
        "Loaded 10 tokens",
        "Traceback (most recent call last):",
        '  File "train.py", line 3, in <module>',
        "    raise ValueError('first')",
        "RuntimeError: inner",
        "During handling of the above exception, another exception occurred:",
        "tokenizer.errors.TokenizerError: vocabulary mismatch: 320 != 50257",
    ]

    assert target_message(output) == "tokenizer.errors.TokenizerError: vocabulary mismatch: 320 != 50257"
    assert target_message(["all good"]) is None
