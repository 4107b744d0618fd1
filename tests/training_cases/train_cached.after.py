#!/usr/bin/env python3
"""
Sample cached training entry point for the patcher's tests.

Like the echoself entry point, it resumes from the best compatible checkpoint
in its cache, trains, saves checkpoints into the cache and exports the best
one at the end.
"""

import argparse
import json
import os
import time
from typing import Optional

import torch

from training_cache import CacheConfig, TrainingCache
from train_nanecho import NanEchoTrainer, TrainingConfig


def checkpoints_of_model_type(cache, checkpoint_ids, model_type):
    """Return the checkpoints that a `model_type` model can resume from, printing a line for each one skipped.

    A checkpoint of the other model type has other weights under the same
    names, and a failed `load_state_dict` still copies the weights that do
    match, so the skip happens before any load. Checkpoints saved before the
    model type was recorded are NanEcho checkpoints.
    """
    kept = []
    for checkpoint_id in checkpoint_ids:
        saved_type = cache.metadata[checkpoint_id].model_config.get("model_type", "NanEcho")
        if saved_type != model_type:
            print(f"⏭️  Skipping checkpoint {checkpoint_id}: it holds a {saved_type} model, this run trains a {model_type} model")
            continue
        kept.append(checkpoint_id)
    return kept


class CachedNanEchoTrainer(NanEchoTrainer):
    """The trainer, with resume from and saves into a checkpoint cache."""

    def __init__(self, config: TrainingConfig, cache_config: CacheConfig, force_fresh_start: bool = False):
        super().__init__(config)
        self.cache = TrainingCache(cache_config)
        self.starting_iteration = 0
        self.resumed_from_checkpoint = False

        if not force_fresh_start:
            self._attempt_resume_from_cache()

    def _attempt_resume_from_cache(self) -> bool:
        """Resume from the best compatible checkpoint; on failure try the next one."""
        print("Looking for compatible checkpoints to resume from...")

        model_config = {
            'n_layer': self.config.n_layer,
            'n_head': self.config.n_head,
            'n_embd': self.config.n_embd,
            'vocab_size': self.config.vocab_size,
            'block_size': self.config.block_size
        }
        data_config = {
            'data_dir': self.config.data_dir,
            'block_size': self.config.block_size
        }

        compatible_checkpoints = self.cache.get_compatible_checkpoints(model_config, data_config)
        compatible_checkpoints = checkpoints_of_model_type(self.cache, compatible_checkpoints, self.config.model_type)

        if not compatible_checkpoints:
            print("No compatible checkpoints found - starting fresh training")
            return False

        for checkpoint_id in compatible_checkpoints:
            try:
                checkpoint_data, metadata = self.cache.load_checkpoint(
                    checkpoint_id, model=self.model, optimizer=self.optimizer, device=self.config.device
                )
            except Exception as error:
                print(f"Failed to resume from checkpoint {checkpoint_id}: {error}")
                continue
            self.starting_iteration = metadata.iteration
            self.best_loss = metadata.val_loss
            self.model.current_iteration = checkpoint_data.get('current_iteration', metadata.iteration)
            self.resumed_from_checkpoint = True
            print(f"Resumed from checkpoint {checkpoint_id} at iteration {self.starting_iteration}")
            return True

        print("Every compatible checkpoint failed to load - starting fresh training")
        return False

    def save_training_checkpoint(self, iteration: int, train_loss: float, val_loss: float) -> Optional[str]:
        model_config = {
            'n_layer': self.config.n_layer,
            'n_head': self.config.n_head,
            'n_embd': self.config.n_embd,
            'vocab_size': self.config.vocab_size,
            'block_size': self.config.block_size,
            'dropout': self.config.dropout,
            'bias': self.config.bias,
            'model_type': self.config.model_type
        }
        training_config = {
            'learning_rate': self.config.learning_rate,
            'batch_size': self.config.batch_size,
            'max_iters': self.config.max_iters,
        }
        data_config = {
            'data_dir': self.config.data_dir,
            'block_size': self.config.block_size
        }
        return self.cache.save_checkpoint(
            model=self.model,
            optimizer=self.optimizer,
            iteration=iteration,
            train_loss=train_loss,
            val_loss=val_loss,
            model_config=model_config,
            training_config=training_config,
            data_config=data_config,
            tags=['nanecho'],
        )

    def train(self):
        """Run max_iters new iterations after the resumed one, then save and export."""
        print(f"Training {sum(p.numel() for p in self.model.parameters()):,} parameters on {self.config.device}")
        self.model.train()
        start_iteration = self.starting_iteration
        end_iteration = start_iteration + self.config.max_iters
        start_time = time.time()
        loss_value = 0.0

        for iteration in range(start_iteration, end_iteration):
            self.model.current_iteration = iteration
            lr = self.get_lr(iteration)
            for group in self.optimizer.param_groups:
                group['lr'] = lr

            if iteration > 0 and iteration % self.config.connection_growth_interval == 0:
                self.model.grow_connections()

            self.optimizer.zero_grad(set_to_none=True)
            for _ in range(self.config.gradient_accumulation_steps):
                x, y = self.data_loader.get_batch('train')
                with self.ctx:
                    loss = self.model(x, labels=y)['loss'] / self.config.gradient_accumulation_steps
                loss.backward()
                loss_value = loss.item() * self.config.gradient_accumulation_steps
            if self.config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()

            if iteration % self.config.log_interval == 0:
                print(f"Iter {iteration:5d} | Loss: {loss_value:.4f} | LR: {lr:.2e}")

            if iteration % self.config.eval_interval == 0:
                val_loss = self.evaluate()['val_loss']
                print(f"Iter {iteration:5d} | Val Loss: {val_loss:.4f}")
                self.save_training_checkpoint(iteration, loss_value, val_loss)

        final_val_loss = self.evaluate()['val_loss']
        self.save_training_checkpoint(end_iteration, loss_value, final_val_loss)

        export_path = os.path.join(self.config.out_dir, 'best_model_export.pt')
        try:
            self.cache.export_best_checkpoint(export_path)
        except ValueError as error:
            print(f"Could not export the best checkpoint ({error}); exporting the current model")
            torch.save({
                'model_state_dict': self.model.state_dict(),
                'model_config': {
                    'n_layer': self.config.n_layer,
                    'n_head': self.config.n_head,
                    'n_embd': self.config.n_embd,
                    'vocab_size': self.config.vocab_size,
                    'block_size': self.config.block_size,
                    'model_type': self.config.model_type,
                },
            }, export_path)

        print(f"Training complete in {time.time() - start_time:.1f}s; final validation loss {final_val_loss:.4f}")
        print(f"Outputs saved to: {self.config.out_dir}")


def main():
    """Main entry point for cached training."""
    parser = argparse.ArgumentParser(description='Train the sample NanEcho model with a checkpoint cache')
    parser.add_argument('--config', type=str, help='Path to a JSON file of TrainingConfig values')
    parser.add_argument('--data_dir', type=str, default='data/nanecho', help='Data directory')
    parser.add_argument('--out_dir', type=str, default='out-nanecho-cached', help='Output directory')
    parser.add_argument('--cache_dir', type=str, help='Cache directory (default: out_dir/cache)')
    parser.add_argument('--max_iters', type=int, default=1000, help='Iterations to train in this session')
    parser.add_argument('--batch_size', type=int, default=8, help='Batch size')
    parser.add_argument('--learning_rate', type=float, default=1e-3, help='Learning rate')
    parser.add_argument('--device', type=str, default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--force_fresh_start', action='store_true', help='Ignore cached checkpoints')
    parser.add_argument('--max_checkpoints', type=int, default=10, help='Maximum cached checkpoints')
    parser.add_argument('--max_cache_size_gb', type=float, default=20.0, help='Maximum cache size in GB')
    parser.add_argument('--model_type', type=str, choices=['NanEcho', 'RAT'], default='NanEcho', help='Model architecture: NanEcho, or RAT for a Reservoir-Augmented Transformer')

    args = parser.parse_args()

    # Create training configuration
    config = TrainingConfig(
        data_dir=args.data_dir,
        out_dir=args.out_dir,
        max_iters=args.max_iters,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        device=args.device,
        eval_interval=100,
        checkpoint_interval=200,
        model_type=args.model_type
    )

    cache_config = CacheConfig(
        cache_dir=args.cache_dir or os.path.join(args.out_dir, "cache"),
        max_checkpoints=args.max_checkpoints,
        max_cache_size_gb=args.max_cache_size_gb
    )

    # A JSON config overrides every TrainingConfig attribute it names
    if args.config and os.path.exists(args.config):
        with open(args.config, 'r') as f:
            config_dict = json.load(f)
            for key, value in config_dict.items():
                if hasattr(config, key):
                    setattr(config, key, value)

    trainer = CachedNanEchoTrainer(config, cache_config=cache_config, force_fresh_start=args.force_fresh_start)
    trainer.train()


if __name__ == "__main__":
    main()
