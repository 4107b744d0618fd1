"""The dataset that `verify` trains on: the target's own data folder when usable, else a small one built here.

The format is the one the target's training reads: `train.bin` and `val.bin`
contain uint16 token ids, and `metadata.json` contains the vocabulary size and a
`tokenizer` object naming the tokenizer that produced the ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patcher.errors import InputError
from patcher.sample_text import SAMPLE_TEXT

DATA_FILES = ("train.bin", "val.bin", "metadata.json")
# The path of the BPE tokenizer that the echoself repository trained with the `tokenizers` library.
TOKENIZER_FILES = ("NanEcho/dte_tokenizer/tokenizer.json",)
END_OF_TEXT = "<|endoftext|>"
MAX_UINT16 = np.iinfo(np.uint16).max


@dataclass(frozen=True)
class Dataset:
    """A data folder for the training run, and how `verify` found or built it."""

    folder: Path
    vocab_size: int | None
    description: str


def usable_data_folder(folder: Path) -> bool:
    """Check that a folder has non-empty token files and a metadata.json object; the target's training checks the rest."""
    if not all((folder / name).is_file() for name in DATA_FILES):
        return False
    if (folder / "train.bin").stat().st_size == 0 or (folder / "val.bin").stat().st_size == 0:
        return False
    try:
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(metadata, dict)


def declared_vocab_size(folder: Path) -> int | None:
    metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    declared = metadata.get("vocab_size")
    if not isinstance(declared, int) and isinstance(metadata.get("tokenizer"), dict):
        declared = metadata["tokenizer"].get("vocab_size")
    return declared if isinstance(declared, int) else None


def find_tokenizer(target: Path, explicit: Path | None) -> Path | None:
    """Return the target's tokenizer file: the one given on the command line, else the first known path that exists."""
    if explicit is not None:
        path = target / explicit
        if not path.is_file():
            raise InputError(str(explicit), "tokenizer file not found")
        return path
    for relative in TOKENIZER_FILES:
        if (target / relative).is_file():
            return target / relative
    return None


def build_dataset(folder: Path, tokenizer_file: Path | None, shown_as: str | None, min_tokens: int) -> Dataset:
    """Tokenize the sample text into a dataset folder; each split gets at least `min_tokens` ids."""
    if tokenizer_file is None:
        ids, declaration = _byte_tokens(), {"name": "utf-8 bytes", "vocab_size": 256, "eos_token": None, "eos_token_id": None}
        described = "UTF-8 bytes, because the target has no tokenizer.json"
    else:
        ids, declaration = _tokenize(tokenizer_file, shown_as or str(tokenizer_file))
        described = f"the target's tokenizer {shown_as}"

    cut = len(ids) * 9 // 10
    train, val = _repeat(ids[:cut], min_tokens), _repeat(ids[cut:], min_tokens)
    folder.mkdir(parents=True, exist_ok=True)
    np.asarray(train, dtype=np.uint16).tofile(folder / "train.bin")
    np.asarray(val, dtype=np.uint16).tofile(folder / "val.bin")
    metadata = {
        "vocab_size": declaration["vocab_size"],
        "train_tokens": len(train),
        "val_tokens": len(val),
        "dtype": "uint16",
        "tokenizer": declaration,
        "source": "patcher verify sample text",
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return Dataset(folder, declaration["vocab_size"], f"{len(train):,} training tokens of sample text, tokenized with {described}")


def _byte_tokens() -> list[int]:
    return list(SAMPLE_TEXT.encode("utf-8"))


def _tokenize(tokenizer_file: Path, shown_as: str) -> tuple[list[int], dict]:
    # The tokenizers library loads only here: apply and check never need it.
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as error:  # tokenizers 0.23 raises a plain Exception for an invalid file
        raise InputError(shown_as, f"the tokenizers library cannot read this tokenizer: {error}") from None

    vocab_size = tokenizer.get_vocab_size()
    if vocab_size > MAX_UINT16 + 1:
        raise InputError(shown_as, f"vocabulary of {vocab_size} tokens does not fit the uint16 token files")
    eos_token_id = tokenizer.token_to_id(END_OF_TEXT)
    declaration = {
        "name": tokenizer_file.parent.name,
        "vocab_size": vocab_size,
        "eos_token": END_OF_TEXT if eos_token_id is not None else None,
        "eos_token_id": eos_token_id,
        "path": shown_as,
    }
    return tokenizer.encode(SAMPLE_TEXT).ids, declaration


def _repeat(ids: list[int], min_tokens: int) -> list[int]:
    """Repeat a short split until it has `min_tokens` ids: enough windows for a few batches."""
    repeats = -(-min_tokens // max(len(ids), 1))
    return ids * max(repeats, 1)
