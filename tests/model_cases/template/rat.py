"""A small template for the golden tests, so that their after-files do not follow every template change."""

import torch
import torch.nn as nn

from patcher.templates.target_block import TargetBlock


class EchoReservoir(nn.Module):
    def forward(self, inputs):
        return torch.tanh(inputs)


class RATBlock(TargetBlock):
    def __init__(self, config, layer_idx):
        super().__init__(config, layer_idx)
        self.mlp = nn.Sequential(EchoReservoir())
