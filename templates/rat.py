"""Reservoir-Augmented Transformer classes that the model patch inserts after the target's block class.

`EchoReservoir` is a fixed echo-state network, `CognitiveReadout` its trained
linear readout, and `RATBlock` the target's block with its feed-forward layer
replaced by the two. The patch copies the three classes, renames
`TargetBlock` to the target's block class and drops the import below.
"""

import torch
import torch.nn as nn

from patcher.templates.target_block import TargetBlock


class EchoReservoir(nn.Module):
    """A fixed echo-state reservoir driven by a sequence of vectors.

    The input and recurrent weights are random, seeded and never trained: they
    are buffers, so they are saved in the state_dict and moved by `.to()`, but
    the optimizer and the model's weight initialisation never see them. The
    recurrent matrix is scaled to `spectral_radius`; each step is the leaky
    update h_t = (1 - a) h_{t-1} + a tanh(W_in u_t + W h_{t-1}) with leak rate a.
    """

    def __init__(
        self,
        input_size: int,
        units: int = 512,
        spectral_radius: float = 0.9,
        leak_rate: float = 0.5,
        input_scaling: float = 1.0,
        connectivity: float = 0.1,
        seed: int = 1234,
    ):
        super().__init__()
        if not 0.0 < leak_rate <= 1.0:
            raise ValueError(f"leak_rate must be in (0, 1], got {leak_rate}")
        if not 0.0 < connectivity <= 1.0:
            raise ValueError(f"connectivity must be in (0, 1], got {connectivity}")
        self.units = units
        self.leak_rate = leak_rate

        generator = torch.Generator().manual_seed(seed)
        weight_in = (torch.rand(units, input_size, generator=generator, dtype=torch.float64) * 2 - 1) * input_scaling
        kept = torch.rand(units, units, generator=generator, dtype=torch.float64) < connectivity
        weight = (torch.rand(units, units, generator=generator, dtype=torch.float64) * 2 - 1) * kept
        radius = torch.linalg.eigvals(weight).abs().max()
        if radius > 0:
            weight = weight * (spectral_radius / radius)

        self.register_buffer("weight_in", weight_in.to(torch.get_default_dtype()))
        self.register_buffer("weight", weight.to(torch.get_default_dtype()))

    def forward(self, inputs: torch.Tensor, initial_state: torch.Tensor | None = None):
        """Run the reservoir over `inputs` (batch, time, features); return every state and the last one."""
        batch, steps, _ = inputs.shape
        drive = inputs @ self.weight_in.t()
        state = initial_state
        if state is None:
            state = inputs.new_zeros(batch, self.units)

        states = []
        for step in range(steps):
            update = torch.tanh(drive[:, step] + state @ self.weight.t())
            state = (1 - self.leak_rate) * state + self.leak_rate * update
            states.append(state)
        return torch.stack(states, dim=1), state


class CognitiveReadout(nn.Module):
    """The trained linear map from reservoir states to the model width."""

    def __init__(self, units: int, n_embd: int, bias: bool = True):
        super().__init__()
        self.proj = nn.Linear(units, n_embd, bias=bias)

    def forward(self, reservoir_output) -> torch.Tensor:
        # Inside an nn.Sequential the reservoir hands over its (states, last state) pair.
        states = reservoir_output[0] if isinstance(reservoir_output, tuple) else reservoir_output
        return self.proj(states)


class RATBlock(TargetBlock):
    """The target's block with its feed-forward layer replaced by a reservoir and a trained readout.

    It keeps the block's constructor, forward pass, attention and connection
    masks, so the model builds, grows and checkpoints it like the original
    block. Only `mlp` changes: the forward pass calls its layers in turn.
    """

    def __init__(self, config, layer_idx):
        super().__init__(config, layer_idx)
        self.mlp = nn.Sequential(
            EchoReservoir(
                config.n_embd,
                units=config.reservoir_units,
                spectral_radius=config.reservoir_spectral_radius,
                leak_rate=config.reservoir_leak_rate,
                input_scaling=config.reservoir_input_scaling,
                connectivity=config.reservoir_connectivity,
                seed=config.reservoir_seed + layer_idx,
            ),
            CognitiveReadout(config.reservoir_units, config.n_embd, bias=config.bias),
            nn.Dropout(config.dropout),
        )
