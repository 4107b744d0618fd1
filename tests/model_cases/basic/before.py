import torch
import torch.nn as nn
from dataclasses import dataclass


@dataclass
class Config:
    n_embd: int = 8
    n_layer: int = 2  # depth

    def __post_init__(self):
        assert self.n_layer > 0


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.mlp = nn.Linear(config.n_embd, config.n_embd)


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.blocks = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
