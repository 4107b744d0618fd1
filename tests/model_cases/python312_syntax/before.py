import torch
import torch.nn as nn
from dataclasses import dataclass

type Shape = tuple[int, ...]


@dataclass
class Config:
    n_embd: int = 8


class Stack[T](list[T]):
    pass


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.mlp = nn.Identity()


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.blocks = nn.ModuleList([Block(config, i) for i in range(2)])
