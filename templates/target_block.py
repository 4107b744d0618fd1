"""A stand-in for the target's transformer block, so that `RATBlock` imports and runs here.

It has the shape the patch expects of the target's block and that `RATBlock`
relies on: a constructor `(config, layer_idx)`, a feed-forward `nn.Sequential`
named `mlp` whose layers the forward pass calls in turn, and a connection mask
beside it. The patch drops the import of this module and makes `RATBlock`
subclass the target's own block class.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from patcher.templates.settings import ReservoirSettings


@dataclass
class TargetConfig(ReservoirSettings):
    vocab_size: int = 64
    n_embd: int = 32
    n_head: int = 2
    n_layer: int = 2
    block_size: int = 32
    dropout: float = 0.0
    bias: bool = True


class TargetBlock(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.attn = nn.MultiheadAttention(config.n_embd, config.n_head, bias=config.bias, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias),
            nn.Dropout(config.dropout),
        )

    def forward(self, x, current_iteration=0, generator=None):
        steps = x.size(1)
        causal = torch.triu(torch.ones(steps, steps, dtype=torch.bool, device=x.device), diagonal=1)
        normed = self.ln1(x)
        x = x + self.attn(normed, normed, normed, attn_mask=causal, need_weights=False)[0]

        hidden = self.ln2(x)
        for layer in self.mlp:
            hidden = F.gelu(hidden) if isinstance(layer, nn.GELU) else layer(hidden)
        return x + hidden
