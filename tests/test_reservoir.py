"""The echo-state reservoir: its weights, its dynamics, its gradients and its stateful use."""

from __future__ import annotations

import pytest
import torch

from patcher.templates.rat import EchoReservoir, _ReservoirScan
from patcher.templates.settings import ReservoirSettings

DEFAULTS = ReservoirSettings()


def default_reservoir(input_size: int = 32, **overrides) -> EchoReservoir:
    """A reservoir with the shipped config defaults, as `RATBlock` builds it."""
    settings = {
        "units": DEFAULTS.reservoir_units,
        "spectral_radius": DEFAULTS.reservoir_spectral_radius,
        "leak_rate": DEFAULTS.reservoir_leak_rate,
        "input_scaling": DEFAULTS.reservoir_input_scaling,
        "connectivity": DEFAULTS.reservoir_connectivity,
        "seed": DEFAULTS.reservoir_seed,
        "bias_scaling": DEFAULTS.reservoir_bias_scaling,
    }
    settings.update(overrides)
    return EchoReservoir(input_size, **settings)


def reference_states(reservoir: EchoReservoir, inputs: torch.Tensor, initial_state: torch.Tensor) -> torch.Tensor:
    """The update rule written as a plain loop in float64, for autograd to differentiate."""
    weight_in = reservoir.weight_in.double()
    bias = reservoir.bias.double()
    weight = reservoir.weight.double()
    leak = reservoir.leak_rate
    state = initial_state
    states = []
    for step in range(inputs.size(1)):
        activation = torch.tanh(inputs[:, step] @ weight_in.t() + bias + state @ weight.t())
        state = (1 - leak) * state + leak * activation
        states.append(state)
    return torch.stack(states, dim=1)


def test_same_seed_gives_identical_weights():
    first = EchoReservoir(16, units=64, seed=7)
    second = EchoReservoir(16, units=64, seed=7)

    for name, buffer in first.named_buffers():
        assert torch.equal(buffer, dict(second.named_buffers())[name]), name


def test_other_seed_gives_other_weights():
    first = EchoReservoir(16, units=64, seed=7)
    second = EchoReservoir(16, units=64, seed=8)

    assert not torch.equal(first.weight, second.weight)
    assert not torch.equal(first.weight_in, second.weight_in)


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.2])
def test_spectral_radius_equals_setting(radius):
    reservoir = EchoReservoir(16, units=200, spectral_radius=radius, connectivity=0.2)

    measured = torch.linalg.eigvals(reservoir.weight.double()).abs().max().item()

    assert measured == pytest.approx(radius, abs=1e-3)


@pytest.mark.parametrize("connectivity", [0.05, 0.3, 1.0])
def test_connectivity_is_share_of_nonzero_recurrent_weights(connectivity):
    reservoir = EchoReservoir(16, units=300, connectivity=connectivity)

    share = (reservoir.weight != 0).double().mean().item()

    assert share == pytest.approx(connectivity, abs=0.01)


@pytest.mark.parametrize("leak_rate", [0.1, 0.5, 1.0])
def test_one_step_follows_leaky_update(leak_rate):
    reservoir = EchoReservoir(8, units=16, leak_rate=leak_rate, connectivity=0.5).double()
    inputs = torch.randn(3, 1, 8, dtype=torch.float64)
    previous = torch.rand(3, 16, dtype=torch.float64) * 2 - 1

    states, final_state = reservoir(inputs, previous)

    drive = inputs[:, 0] @ reservoir.weight_in.t() + reservoir.bias
    expected = (1 - leak_rate) * previous + leak_rate * torch.tanh(drive + previous @ reservoir.weight.t())
    torch.testing.assert_close(states[:, 0], expected)
    torch.testing.assert_close(final_state, expected)


@pytest.mark.parametrize("input_scaling", [0.25, 1.0, 2.0])
def test_input_scaling_is_drive_deviation_for_unit_inputs(input_scaling):
    reservoir = EchoReservoir(256, units=128, input_scaling=input_scaling, bias_scaling=0.0)
    inputs = torch.randn(2048, 256)

    drive = inputs @ reservoir.weight_in.t()

    assert drive.std().item() == pytest.approx(input_scaling, rel=0.05)


def test_input_weights_stay_within_documented_bound():
    reservoir = EchoReservoir(64, units=64, input_scaling=0.5)
    bound = 0.5 * (3.0 / 64) ** 0.5

    assert reservoir.weight_in.abs().max().item() <= bound
    assert reservoir.weight_in.abs().max().item() > 0.95 * bound


@pytest.mark.parametrize("bias_scaling", [0.1, 0.7])
def test_bias_is_uniform_within_bias_scaling(bias_scaling):
    reservoir = EchoReservoir(8, units=400, bias_scaling=bias_scaling)

    assert reservoir.bias.abs().max().item() <= bias_scaling
    assert reservoir.bias.abs().max().item() > 0.95 * bias_scaling


def test_zero_bias_makes_states_odd_in_input():
    """Without a bias tanh keeps the sign symmetry; the default bias breaks it, so states carry even features."""
    inputs = torch.randn(2, 20, 16)
    unbiased = EchoReservoir(16, units=64, bias_scaling=0.0)
    biased = EchoReservoir(16, units=64, bias_scaling=0.2)

    torch.testing.assert_close(unbiased(-inputs)[0], -unbiased(inputs)[0])
    assert not torch.allclose(biased(-inputs)[0], -biased(inputs)[0], atol=1e-3)


def test_echo_state_property_holds_at_defaults():
    """Two different initial states driven by the same input converge: the reservoir forgets where it started."""
    reservoir = default_reservoir(input_size=64)
    inputs = torch.randn(1, 300, 64)
    zeros = torch.zeros(1, reservoir.units)
    far_away = torch.rand(1, reservoir.units) * 2 - 1

    from_zeros, _ = reservoir(inputs, zeros)
    from_far_away, _ = reservoir(inputs, far_away)

    first_gap = (from_zeros[:, 0] - from_far_away[:, 0]).norm().item()
    last_gap = (from_zeros[:, -1] - from_far_away[:, -1]).norm().item()
    assert first_gap > 1.0
    assert last_gap < 1e-5 * first_gap


def test_states_stay_bounded_on_long_loud_inputs():
    reservoir = default_reservoir(input_size=16, units=64, spectral_radius=1.5)
    inputs = torch.randn(1, 3000, 16) * 50

    states, _ = reservoir(inputs)

    assert torch.isfinite(states).all()
    assert states.abs().max().item() <= 1.0


def test_gradient_matches_autograd_through_plain_loop():
    reservoir = EchoReservoir(6, units=24, connectivity=0.5).double()
    inputs = torch.randn(2, 15, 6, dtype=torch.float64, requires_grad=True)
    initial_state = torch.rand(2, 24, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 15, 24, dtype=torch.float64)

    states, _ = reservoir(inputs, initial_state)
    (states * weights).sum().backward()
    inputs_grad, initial_grad = inputs.grad.clone(), initial_state.grad.clone()

    inputs.grad, initial_state.grad = None, None
    expected = reference_states(reservoir, inputs, initial_state)
    (expected * weights).sum().backward()

    torch.testing.assert_close(states, expected)
    torch.testing.assert_close(inputs_grad, inputs.grad)
    torch.testing.assert_close(initial_grad, initial_state.grad)


@pytest.mark.parametrize("use_torchscript", [True, False])
def test_scan_passes_gradcheck(use_torchscript):
    generator = torch.Generator().manual_seed(0)
    weight_in = torch.randn(5, 3, dtype=torch.float64, generator=generator)
    bias = torch.randn(5, dtype=torch.float64, generator=generator) * 0.1
    weight = torch.randn(5, 5, dtype=torch.float64, generator=generator) * 0.4
    inputs = torch.randn(2, 6, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    initial_state = torch.randn(2, 5, dtype=torch.float64, generator=generator, requires_grad=True)

    def scan(inputs, initial_state):
        return _ReservoirScan.apply(inputs, initial_state, weight_in, bias, weight, 0.3, use_torchscript)

    assert torch.autograd.gradcheck(scan, (inputs, initial_state))


def test_torchscript_and_eager_scans_agree():
    reservoir = default_reservoir(input_size=16, units=64)
    inputs = torch.randn(2, 40, 16, requires_grad=True)

    scripted, _ = reservoir(inputs)
    scripted.square().sum().backward()
    scripted_grad = inputs.grad.clone()
    inputs.grad = None
    reservoir.use_torchscript = False
    eager, _ = reservoir(inputs)
    eager.square().sum().backward()

    torch.testing.assert_close(scripted, eager)
    torch.testing.assert_close(scripted_grad, inputs.grad)


def test_scan_thread_count_keeps_results_and_restores_threads():
    reservoir = default_reservoir(input_size=16, units=64)
    inputs = torch.randn(2, 40, 16, requires_grad=True)
    threads = torch.get_num_threads()

    single, _ = reservoir(inputs)
    single.square().sum().backward()
    single_grad = inputs.grad.clone()
    inputs.grad = None
    reservoir.scan_threads = 0
    default, _ = reservoir(inputs)
    default.square().sum().backward()

    assert reservoir.scan_threads == 0
    torch.testing.assert_close(default, single)
    torch.testing.assert_close(inputs.grad, single_grad)
    assert torch.get_num_threads() == threads


def test_gradient_reaches_layer_below():
    below = torch.nn.Linear(8, 8)
    reservoir = default_reservoir(input_size=8, units=32)

    states, _ = reservoir(below(torch.randn(2, 10, 8)))
    states.sum().backward()

    assert below.weight.grad is not None
    assert below.weight.grad.abs().sum().item() > 0


def test_buffers_get_no_gradient():
    reservoir = default_reservoir(input_size=8, units=32)
    inputs = torch.randn(2, 10, 8, requires_grad=True)

    states, _ = reservoir(inputs)
    states.sum().backward()

    assert list(reservoir.parameters()) == []
    for name, buffer in reservoir.named_buffers():
        assert not buffer.requires_grad, name
        assert buffer.grad is None, name


def test_split_run_continues_from_final_state():
    reservoir = default_reservoir(input_size=8, units=32)
    inputs = torch.randn(2, 30, 8)

    whole, whole_final = reservoir(inputs)
    first, first_final = reservoir(inputs[:, :12])
    second, second_final = reservoir(inputs[:, 12:], first_final)

    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    torch.testing.assert_close(second_final, whole_final)


def test_last_state_is_detached_final_state():
    reservoir = default_reservoir(input_size=8, units=32)
    inputs = torch.randn(2, 9, 8, requires_grad=True)

    _, final_state = reservoir(inputs)

    torch.testing.assert_close(reservoir.last_state, final_state.detach())
    assert not reservoir.last_state.requires_grad


def test_calls_start_from_zeros_without_carry_state():
    reservoir = default_reservoir(input_size=8, units=32)
    inputs = torch.randn(2, 9, 8)

    first, _ = reservoir(inputs)
    second, _ = reservoir(inputs)

    torch.testing.assert_close(first, second)


def test_carry_state_follows_cropped_generation_window():
    """Windows that grow by one position, then slide at the block size, see the whole history through the state."""
    reservoir = default_reservoir(input_size=8, units=32)
    sequence = torch.randn(1, 30, 8)
    block_size = 10
    whole, _ = reservoir(sequence)

    reservoir.carry_state = True
    for end in range(4, 31):
        window = sequence[:, max(0, end - block_size) : end]
        _, final_state = reservoir(window)
        torch.testing.assert_close(final_state, whole[:, end - 1], msg=f"window ending at {end}")


def test_carry_state_rejects_window_that_skips_positions():
    reservoir = default_reservoir(input_size=8, units=32)
    reservoir.carry_state = True
    reservoir(torch.randn(1, 5, 8))

    with pytest.raises(ValueError, match="add one position"):
        reservoir(torch.randn(1, 8, 8))


def test_carry_state_rejects_other_batch_size():
    reservoir = default_reservoir(input_size=8, units=32)
    reservoir.carry_state = True
    reservoir(torch.randn(1, 5, 8))

    with pytest.raises(ValueError, match="reset_state"):
        reservoir(torch.randn(2, 6, 8))


def test_reset_state_starts_new_sequence_from_zeros():
    reservoir = default_reservoir(input_size=8, units=32)
    inputs = torch.randn(1, 5, 8)
    fresh, _ = reservoir(inputs)
    reservoir.carry_state = True
    reservoir(torch.randn(1, 7, 8))

    reservoir.reset_state()
    restarted, _ = reservoir(inputs)

    torch.testing.assert_close(restarted, fresh)


def test_autocast_runs_scan_in_float32():
    reservoir = default_reservoir(input_size=8, units=32)
    below = torch.nn.Linear(8, 8)
    inputs = torch.randn(2, 10, 8)

    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        states, _ = reservoir(below(inputs))
        loss = states.float().sum()
    loss.backward()

    assert states.dtype == torch.float32
    assert below.weight.grad.abs().sum().item() > 0


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("units", 0, "units must be at least 1"),
        ("spectral_radius", 0.0, "spectral_radius must be positive"),
        ("leak_rate", 0.0, r"leak_rate must be in \(0, 1\]"),
        ("leak_rate", 1.5, r"leak_rate must be in \(0, 1\]"),
        ("connectivity", 0.0, r"connectivity must be in \(0, 1\]"),
        ("input_scaling", -1.0, "must not be negative"),
        ("bias_scaling", -0.1, "must not be negative"),
    ],
)
def test_invalid_setting_raises_value_error(setting, value, message):
    with pytest.raises(ValueError, match=message):
        EchoReservoir(8, **{"units": 16, setting: value})


def test_inputs_without_steps_raise_value_error():
    reservoir = EchoReservoir(8, units=16)

    with pytest.raises(ValueError, match="at least one step"):
        reservoir(torch.randn(2, 0, 8))
