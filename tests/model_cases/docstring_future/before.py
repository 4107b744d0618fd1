"""A model file with a docstring and a future import, which must stay first."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class Config:
    """Settings."""
    n_embd: int = 8


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.mlp = nn.Identity()


class Model(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList([
            Block(self.config, i)
            for i in range(4)
        ])
