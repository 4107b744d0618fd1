"""Reservoir-Augmented Transformer classes that the model patch inserts after the target's block class.

`EchoReservoir` is a fixed echo-state network, `CognitiveReadout` its trained
linear readout, and `RATBlock` the target's block with its feed-forward layer
replaced by the two. The patch copies every top-level statement below the
imports, renames `TargetBlock` to the target's block class and drops the
import of the stand-in.
"""

import math
from typing import Optional, Tuple

import torch
import torch.nn as nn

from patcher.templates.target_block import TargetBlock


def _reservoir_scan_forward(
    activations: torch.Tensor, initial_state: torch.Tensor, weight_t: torch.Tensor, leak_rate: float
) -> torch.Tensor:
    """Run h_t = (1 - a) h_{t-1} + a tanh(drive_t + h_{t-1} W^T) over time and return the states.

    `activations` (time, batch, units), contiguous, contains the drive on entry and
    is overwritten in place with the tanh values, which the backward pass
    needs. `weight_t` is W^T, contiguous. Each step is three in-place
    operations, because the loop's cost is per-operation overhead (allocation,
    copies, dispatch) more than arithmetic.
    """
    states = torch.empty_like(activations)
    state = initial_state
    for step in range(activations.size(0)):
        activation = activations[step]
        activation.addmm_(state, weight_t)
        activation.tanh_()
        state = torch.lerp(state, activation, leak_rate, out=states[step])
    return states


def _reservoir_scan_backward(
    grad_states: torch.Tensor, tanhs: torch.Tensor, weight: torch.Tensor, leak_rate: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Backpropagate through time by hand and return the gradients of the drive and of the initial state.

    With g_t the gradient reaching h_t from the outputs and from step t + 1,
    the drive gets q_t = a (1 - tanh_t^2) g_t and h_{t-1} gets
    (1 - a) g_t + q_t W. The recurrent weight is fixed, so it needs no gradient.
    """
    # The slopes a (1 - tanh^2) are turned into the drive's gradient in place, step by step.
    grad_drive = tanhs.square().mul_(-leak_rate).add_(leak_rate)
    carried = torch.zeros_like(grad_drive[0])
    for step in range(grad_drive.size(0) - 1, -1, -1):
        grad_state = carried.add_(grad_states[step])
        grad_activation = grad_drive[step].mul_(grad_state)
        carried = grad_state.addmm_(grad_activation, weight, beta=1.0 - leak_rate)
    return grad_drive, carried


# The TorchScript versions of the two scans, compiled on first use.
_RESERVOIR_SCAN_KERNELS: dict = {}


def _reservoir_scan_kernels(scripted: bool = True) -> tuple:
    """Return the forward and backward scans, compiled with TorchScript on first use when `scripted` is set.

    TorchScript removes part of the interpreter overhead of each step: on a
    2-core CPU the scans took about 15 to 25% less time than in eager Python.
    If scripting fails, the eager functions run instead, with the same results.
    """
    # NOTE: torch 2.13 warns that torch.jit.script is deprecated. The eager fallback runs if scripting goes away.
    kernels = _RESERVOIR_SCAN_KERNELS
    if not scripted or kernels.get("failed"):
        return _reservoir_scan_forward, _reservoir_scan_backward
    if "forward" not in kernels:
        try:
            kernels["forward"] = torch.jit.script(_reservoir_scan_forward)
            kernels["backward"] = torch.jit.script(_reservoir_scan_backward)
        except (AttributeError, OSError, RuntimeError):
            kernels["failed"] = True
            return _reservoir_scan_forward, _reservoir_scan_backward
    return kernels["forward"], kernels["backward"]


def _reservoir_run_with_threads(threads: int, kernel, *arguments):
    """Run `kernel` with torch's thread count set to `threads` (0 leaves it), then restore the count.

    Each step's matrix product is small, so a second thread that another
    process keeps busy stalls every step: on a loaded 2-core machine one thread
    ran the scan several times faster than two.
    """
    default_threads = torch.get_num_threads()
    if threads <= 0 or threads == default_threads:
        return kernel(*arguments)

    torch.set_num_threads(threads)
    try:
        return kernel(*arguments)
    finally:
        torch.set_num_threads(default_threads)


class _ReservoirScan(torch.autograd.Function):
    """The reservoir's input projection and time loop, with a hand-written backward pass through time.

    Autograd over a Python loop records several nodes per step and replays
    them one by one. Here the forward keeps only the tanh values, and the
    backward is one tight loop. Inputs: inputs (batch, time, features), the
    initial state (batch, units), the fixed W_in, bias and W, the leak rate,
    whether to use TorchScript and the scan's thread count (0 for torch's).
    Output: the states (time, batch, units). Only the inputs and the initial
    state get gradients, because the weights are constants.
    """

    @staticmethod
    def forward(ctx, inputs, initial_state, weight_in, bias, weight, leak_rate, use_torchscript, threads=1):
        batch, steps, features = inputs.shape
        # Time-major rows, so that each step's drive is one contiguous (batch, units) block.
        time_major = inputs.transpose(0, 1).reshape(steps * batch, features)
        activations = torch.addmm(bias, time_major, weight_in.t()).view(steps, batch, -1)

        scan_forward, _ = _reservoir_scan_kernels(use_torchscript)
        states = _reservoir_run_with_threads(
            threads, scan_forward, activations, initial_state, weight.t().contiguous(), leak_rate
        )

        ctx.save_for_backward(activations, weight_in, weight)
        ctx.leak_rate = leak_rate
        ctx.use_torchscript = use_torchscript
        ctx.threads = threads
        return states

    @staticmethod
    def backward(ctx, grad_states):
        tanhs, weight_in, weight = ctx.saved_tensors
        steps, batch, units = tanhs.shape
        _, scan_backward = _reservoir_scan_kernels(ctx.use_torchscript)

        with torch.autocast(device_type=tanhs.device.type, enabled=False):
            grad_drive, grad_initial = _reservoir_run_with_threads(
                ctx.threads, scan_backward, grad_states.to(tanhs.dtype), tanhs, weight, ctx.leak_rate
            )
            grad_inputs = (grad_drive.view(steps * batch, units) @ weight_in).view(steps, batch, -1).transpose(0, 1)

        if not ctx.needs_input_grad[1]:
            grad_initial = None
        return grad_inputs, grad_initial, None, None, None, None, None, None


class EchoReservoir(nn.Module):
    """A fixed echo-state reservoir driven by a sequence of vectors.

    The input weights, bias and recurrent weights are random, seeded and never
    trained. They are buffers, so they are saved in the state_dict and moved by
    `.to()`, while the optimizer and the model's weight initialisation never
    see them. For inputs u of shape (batch, time, input_size) the drive
    W_in u_t + b is one matrix product over all steps; then each step is the
    leaky update h_t = (1 - a) h_{t-1} + a tanh(W_in u_t + b + W h_{t-1}).

    - `input_scaling`: W_in is uniform on [-s, s] with s = input_scaling * sqrt(3 / input_size),
      so inputs of unit variance give a drive whose standard deviation is `input_scaling`.
    - `bias_scaling`: b is uniform on [-bias_scaling, bias_scaling].
    - `connectivity`: the share of nonzero entries of W, drawn uniform on [-1, 1] and
      then scaled so that the largest eigenvalue modulus of W is `spectral_radius`.
    - `leak_rate`: a in (0, 1]; 1 keeps no trace of the previous state except through W.

    `scan_threads` is torch's thread count while the time loop runs; 0 leaves
    torch's own. The default is 1: each step's matrix product is small, and on
    a loaded 2-core machine a second thread stalled every step, while on a
    quiet one it saved 8 to 15% of the layer's time.

    Stateful use: `forward` takes an optional initial state and returns the
    final state. `last_state` is a detached copy of the final state of the
    latest call. With `carry_state` set, a call without an initial state
    continues from the previous call, see `carried_initial_state`.
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
        bias_scaling: float = 0.2,
    ):
        super().__init__()
        self._check_settings(input_size, units, spectral_radius, leak_rate, input_scaling, connectivity, bias_scaling)
        self.units = units
        self.leak_rate = leak_rate
        self.spectral_radius = spectral_radius
        self.use_torchscript = True
        self.scan_threads = 1
        self.carry_state = False
        self.last_state: Optional[torch.Tensor] = None
        self._window: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

        generator = torch.Generator(device="cpu").manual_seed(seed)
        weight_in = self._uniform((units, input_size), generator) * (input_scaling * math.sqrt(3.0 / input_size))
        bias = self._uniform((units,), generator) * bias_scaling
        weight = self._recurrent_weight(units, spectral_radius, connectivity, generator)

        dtype = torch.get_default_dtype()
        self.register_buffer("weight_in", weight_in.to(dtype))
        self.register_buffer("bias", bias.to(dtype))
        self.register_buffer("weight", weight.to(dtype))

    @staticmethod
    def _check_settings(input_size, units, spectral_radius, leak_rate, input_scaling, connectivity, bias_scaling):
        if input_size < 1 or units < 1:
            raise ValueError(f"input_size and units must be at least 1, got {input_size} and {units}")
        if not spectral_radius > 0.0:
            raise ValueError(f"spectral_radius must be positive, got {spectral_radius}")
        if not 0.0 < leak_rate <= 1.0:
            raise ValueError(f"leak_rate must be in (0, 1], got {leak_rate}")
        if not 0.0 < connectivity <= 1.0:
            raise ValueError(f"connectivity must be in (0, 1], got {connectivity}")
        if input_scaling < 0.0 or bias_scaling < 0.0:
            raise ValueError(f"input_scaling and bias_scaling must not be negative, got {input_scaling} and {bias_scaling}")

    @staticmethod
    def _uniform(shape, generator: torch.Generator) -> torch.Tensor:
        # Drawn in float64 on the CPU so that a seed gives the same weights on every device and default dtype.
        return torch.rand(shape, generator=generator, dtype=torch.float64, device="cpu") * 2.0 - 1.0

    @classmethod
    def _recurrent_weight(cls, units, spectral_radius, connectivity, generator) -> torch.Tensor:
        nonzero = torch.rand((units, units), generator=generator, dtype=torch.float64, device="cpu") < connectivity
        weight = cls._uniform((units, units), generator) * nonzero
        radius = torch.linalg.eigvals(weight).abs().max().item()
        if radius == 0.0:
            raise ValueError(
                f"the recurrent weight drawn with {units} units and connectivity {connectivity} has no nonzero "
                "eigenvalue, so it cannot be scaled to a spectral radius: raise units or connectivity"
            )
        return weight * (spectral_radius / radius)

    def forward(
        self, inputs: torch.Tensor, initial_state: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the reservoir over `inputs` (batch, time, input_size).

        Returns every state (batch, time, units) and the final state (batch,
        units). Without `initial_state` the run starts from zeros, or from the
        carried state when `carry_state` is set.
        """
        if inputs.dim() != 3 or inputs.size(1) == 0:
            raise ValueError(f"inputs must be (batch, time, features) with at least one step, got shape {tuple(inputs.shape)}")
        if initial_state is None:
            initial_state = self.carried_initial_state(inputs.size(0), inputs.size(1), inputs.device)

        # The scan runs in the buffers' precision (float32 by default), because its in-place steps need one dtype.
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            states = _ReservoirScan.apply(
                inputs.to(self.weight.dtype),
                initial_state.to(self.weight.dtype),
                self.weight_in,
                self.bias,
                self.weight,
                self.leak_rate,
                self.use_torchscript,
                self.scan_threads,
            ).transpose(0, 1)
        final_state = states[:, -1]

        self.last_state = final_state.detach().clone()
        if self.carry_state:
            self._window = (states.detach(), initial_state.detach())
        return states, final_state

    def carried_initial_state(self, batch: int, steps: int, device: torch.device) -> torch.Tensor:
        """Return the state a call of `steps` positions starts from: zeros, or the carried state.

        `carry_state` follows a generation loop that re-runs its context window
        on every call with one new token at the end, and crops the window to the
        block size from the front. A window one position longer than the last
        starts from the same state as the last. A window that lost k positions
        at the front starts from the state the last call reached after them.
        The inputs of those lost positions came from the previous window's
        layers below, so the carried state is that window's view of them.
        """
        zeros = torch.zeros(batch, self.units, dtype=self.weight.dtype, device=device)
        if not self.carry_state or self._window is None:
            return zeros

        previous_states, previous_start = self._window
        previous_steps = previous_states.size(1)
        dropped = previous_steps + 1 - steps
        if previous_states.size(0) != batch or not 0 <= dropped <= previous_steps:
            raise ValueError(
                f"carry_state expects each call to add one position to the previous window: got batch {batch} with "
                f"{steps} positions after batch {previous_states.size(0)} with {previous_steps}; "
                "call reset_state() before a new sequence"
            )
        if dropped == 0:
            return previous_start
        return previous_states[:, dropped - 1]

    def reset_state(self) -> None:
        """Forget the carried state and `last_state`, so the next call starts from zeros."""
        self._window = None
        self.last_state = None


class CognitiveReadout(nn.Module):
    """The trained linear map from reservoir states to the model width."""

    def __init__(self, units: int, n_embd: int, bias: bool = True):
        super().__init__()
        self.proj = nn.Linear(units, n_embd, bias=bias)

    def forward(self, reservoir_output) -> torch.Tensor:
        # Inside an nn.Sequential the reservoir hands over its (states, final state) pair.
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
                bias_scaling=config.reservoir_bias_scaling,
            ),
            CognitiveReadout(config.reservoir_units, config.n_embd, bias=config.bias),
            nn.Dropout(config.dropout),
        )

    @property
    def reservoir(self) -> EchoReservoir:
        """The block's reservoir, the entry point for stateful use and introspection.

        `block.reservoir.last_state` is the final state (batch, units) of the
        latest forward pass. Setting `block.reservoir.carry_state = True` makes
        each call continue from the state the previous call reached, for a
        generation loop that re-runs its cropped context window.
        `block.reservoir.reset_state()` starts a new sequence. Both are off the
        training path: with `carry_state` unset every call starts from zeros.
        """
        return self.mlp[0]
