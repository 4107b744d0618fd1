#!/usr/bin/env python3
"""
Sample NanEcho training module for the patcher's tests.

It has the layout of the echoself training module: a TrainingConfig
dataclass, a data loader for train.bin / val.bin / metadata.json, and a
trainer that builds the model configuration by naming each field.
"""

import json
import math
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any, Dict, Tuple

import numpy as np
import torch

from nanecho_model import NanEchoConfig, NanEchoModel

REQUIRED_TOKENIZER_KEYS = ("name", "vocab_size", "eos_token", "eos_token_id")


def validate_dataset_tokenizer(metadata: Dict[str, Any], model_vocab_size: int) -> Dict[str, Any]:
    """Refuse a dataset whose metadata does not say which tokenizer produced it."""
    declared = metadata.get("tokenizer")
    if not isinstance(declared, dict):
        raise ValueError("Dataset metadata has no tokenizer object; rebuild the dataset")
    missing = [key for key in REQUIRED_TOKENIZER_KEYS if key not in declared]
    if missing:
        raise ValueError("Dataset tokenizer declaration is incomplete; missing " + ", ".join(missing))
    if declared["vocab_size"] > model_vocab_size:
        raise ValueError(
            f"Dataset vocabulary ({declared['vocab_size']}) is larger than the model vocabulary ({model_vocab_size})"
        )
    return dict(declared)


@dataclass
class TrainingConfig:
    """Configuration for NanEcho training."""
    # Paths
    data_dir: str = "data/nanecho"
    out_dir: str = "out-nanecho"

    # Model configuration
    vocab_size: int = 512
    n_embd: int = 32
    n_head: int = 2
    n_layer: int = 2
    block_size: int = 32
    dropout: float = 0.1
    bias: bool = True
    model_type: str = "NanEcho"  # "RAT" trains a Reservoir-Augmented Transformer

    # Training configuration
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    max_iters: int = 1000
    warmup_iters: int = 100
    lr_decay_iters: int = 1000
    min_lr: float = 1e-4
    weight_decay: float = 0.1
    grad_clip: float = 1.0

    # Evaluation
    eval_interval: int = 100
    eval_iters: int = 2
    log_interval: int = 10
    checkpoint_interval: int = 500

    # Connection growth
    connection_growth_interval: int = 200  # grow connections every N iterations
    initial_connections: float = 0.5
    connection_growth_rate: float = 0.1
    max_connections: float = 1.0

    # Device configuration
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    dtype: str = "float32"


class DataLoader:
    """Reads the token files of a dataset folder and cuts random batches from them."""

    def __init__(self, config: TrainingConfig):
        self.config = config
        self.train_data = None
        self.val_data = None
        self.tokenizer = None

    def load_data(self) -> Tuple[np.ndarray, np.ndarray]:
        train_path = os.path.join(self.config.data_dir, 'train.bin')
        val_path = os.path.join(self.config.data_dir, 'val.bin')
        metadata_path = os.path.join(self.config.data_dir, 'metadata.json')
        for path in (train_path, val_path, metadata_path):
            if not os.path.exists(path):
                raise FileNotFoundError(f"Dataset file missing: {path}")

        with open(metadata_path, encoding='utf-8') as handle:
            metadata = json.load(handle)
        self.tokenizer = validate_dataset_tokenizer(metadata, self.config.vocab_size)

        self.train_data = np.memmap(train_path, dtype=np.uint16, mode='r')
        self.val_data = np.memmap(val_path, dtype=np.uint16, mode='r')
        for name, data in (('Training', self.train_data), ('Validation', self.val_data)):
            if len(data) <= self.config.block_size:
                raise ValueError(f"{name} data too small: {len(data)} <= {self.config.block_size}")

        print(f"Loaded {len(self.train_data):,} training and {len(self.val_data):,} validation tokens")
        return self.train_data, self.val_data

    def get_batch(self, split: str) -> Tuple[torch.Tensor, torch.Tensor]:
        data = self.train_data if split == 'train' else self.val_data
        starts = torch.randint(len(data) - self.config.block_size, (self.config.batch_size,))
        x = torch.stack([torch.from_numpy(data[i:i + self.config.block_size].astype(np.int64)) for i in starts])
        y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + self.config.block_size].astype(np.int64)) for i in starts])
        device = torch.device(self.config.device)
        return x.to(device), y.to(device)


class NanEchoTrainer:
    """Trains the sample model on a token dataset."""

    def __init__(self, config: TrainingConfig):
        self.config = config
        self.device = torch.device(config.device)

        # Create model
        model_config = NanEchoConfig(
            vocab_size=config.vocab_size,
            n_embd=config.n_embd,
            n_head=config.n_head,
            n_layer=config.n_layer,
            block_size=config.block_size,
            dropout=config.dropout,
            bias=config.bias,
            initial_connections=config.initial_connections,
            connection_growth_rate=config.connection_growth_rate,
            max_connections=config.max_connections,
            model_type=config.model_type
        )
        self.model = NanEchoModel(model_config).to(self.device)

        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            betas=(0.9, 0.95)
        )

        self.data_loader = DataLoader(config)
        self.data_loader.load_data()

        os.makedirs(config.out_dir, exist_ok=True)
        self.iteration = 0
        self.best_loss = float('inf')
        self.ctx = nullcontext()

    def get_lr(self, iteration: int) -> float:
        """Linear warmup, then cosine decay down to min_lr."""
        if iteration < self.config.warmup_iters:
            return self.config.learning_rate * (iteration + 1) / self.config.warmup_iters
        if iteration >= self.config.lr_decay_iters:
            return self.config.min_lr
        decay_ratio = (iteration - self.config.warmup_iters) / (self.config.lr_decay_iters - self.config.warmup_iters)
        coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
        return self.config.min_lr + coeff * (self.config.learning_rate - self.config.min_lr)

    @torch.no_grad()
    def evaluate(self) -> Dict[str, float]:
        self.model.eval()
        losses = []
        for _ in range(self.config.eval_iters):
            x, y = self.data_loader.get_batch('val')
            with self.ctx:
                losses.append(self.model(x, labels=y)['loss'].item())
        self.model.train()
        return {'val_loss': float(np.mean(losses))}

    def save_checkpoint(self, iteration: int, metrics: Dict[str, float]):
        checkpoint = {
            'iteration': iteration,
            'model_state_dict': self.model.state_dict(),
            'optimizer_state_dict': self.optimizer.state_dict(),
            'config': asdict(self.config),
            'model_config': asdict(self.model.config),
            'metrics': metrics,
            'connection_ratio': self.model.connection_ratio,
            'tokenizer': dict(self.data_loader.tokenizer),
        }
        checkpoint_path = os.path.join(self.config.out_dir, f'checkpoint_{iteration}.pt')
        torch.save(checkpoint, checkpoint_path)
        print(f"Saved checkpoint to {checkpoint_path}")
