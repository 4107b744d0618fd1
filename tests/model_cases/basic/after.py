import torch
import torch.nn as nn
from dataclasses import dataclass


@dataclass
class Config:
    n_embd: int = 8
    n_layer: int = 2  # depth

    # RAT settings
    model_type: str = "NanEcho"
    reservoir_units: int = 8

    def __post_init__(self):
        if self.model_type not in ("NanEcho", "RAT"):
            raise ValueError("unknown model_type")
        assert self.n_layer > 0


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.mlp = nn.Linear(config.n_embd, config.n_embd)


class EchoReservoir(nn.Module):
    def forward(self, inputs):
        return torch.tanh(inputs)


class RATBlock(Block):
    def __init__(self, config, layer_idx):
        super().__init__(config, layer_idx)
        self.mlp = nn.Sequential(EchoReservoir())


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.blocks = nn.ModuleList([(RATBlock if config.model_type == "RAT" else Block)(config, i) for i in range(config.n_layer)])
