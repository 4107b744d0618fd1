"""The RAT block on its own and inside the sample model, patched by the model patch as a user would get it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from patcher.model_patch import patch_model
from patcher.templates.rat import CognitiveReadout, EchoReservoir, RATBlock
from patcher.templates.target_block import TargetBlock, TargetConfig

SAMPLE_MODEL = Path(__file__).resolve().parent.parent / "fixtures" / "echoself" / "nanecho_model.py"


def small_config(**overrides) -> TargetConfig:
    settings = {"model_type": "RAT", "n_embd": 32, "n_head": 2, "reservoir_units": 48}
    settings.update(overrides)
    return TargetConfig(**settings)


def target_weight_init(module: nn.Module) -> None:
    """Re-initialise weights the way the target's model does for every module it reaches."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


@pytest.fixture(scope="module")
def patched_model_module(tmp_path_factory):
    """The sample model file after the model patch, imported as a module."""
    result = patch_model(SAMPLE_MODEL.read_text(encoding="utf-8"), "nanecho_model.py")
    path = tmp_path_factory.mktemp("patched") / "nanecho_model.py"
    path.write_text(result.new_text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("patched_nanecho_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_rat_model(module, block_size: int = 8):
    torch.manual_seed(0)
    config = module.NanEchoConfig(
        vocab_size=40, n_embd=32, n_head=2, n_layer=2, block_size=block_size, model_type="RAT", reservoir_units=48
    )
    return module.NanEchoModel(config)


def generate_like_target(model, prompt: torch.Tensor, new_tokens: int) -> list[torch.Tensor]:
    """Greedy generation that re-runs the cropped context window on every step, as the target's `generate` does."""
    tokens = prompt
    last_logits = []
    with torch.no_grad():
        for _ in range(new_tokens):
            logits = model(tokens[:, -model.config.block_size :])["logits"][:, -1]
            last_logits.append(logits)
            tokens = torch.cat([tokens, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return last_logits


def test_block_replaces_feed_forward_with_reservoir_and_readout():
    block = RATBlock(small_config(), layer_idx=0)

    assert isinstance(block, TargetBlock)
    assert [type(layer) for layer in block.mlp] == [EchoReservoir, CognitiveReadout, nn.Dropout]
    assert block.reservoir is block.mlp[0]
    assert block.reservoir.units == 48


def test_block_keeps_target_forward_signature_and_shape():
    block = RATBlock(small_config(), layer_idx=1)
    hidden = torch.randn(2, 7, 32)

    output = block(hidden, 3, generator=None)

    assert output.shape == hidden.shape


def test_reservoir_buffers_are_in_state_dict():
    block = RATBlock(small_config(), layer_idx=0)

    keys = set(block.state_dict())

    assert {"mlp.0.weight_in", "mlp.0.bias", "mlp.0.weight", "mlp.1.proj.weight"} <= keys


def test_fixed_weights_survive_target_weight_init():
    block = RATBlock(small_config(), layer_idx=0)
    before = {name: buffer.clone() for name, buffer in block.reservoir.named_buffers()}

    block.apply(target_weight_init)

    for name, buffer in block.reservoir.named_buffers():
        assert torch.equal(buffer, before[name]), name


def test_layers_get_different_reservoirs():
    first = RATBlock(small_config(), layer_idx=0)
    second = RATBlock(small_config(), layer_idx=1)
    first_again = RATBlock(small_config(), layer_idx=0)

    assert not torch.equal(first.reservoir.weight, second.reservoir.weight)
    assert torch.equal(first.reservoir.weight, first_again.reservoir.weight)


def test_gradient_reaches_attention_through_reservoir():
    block = RATBlock(small_config(), layer_idx=0)
    hidden = torch.randn(2, 6, 32, requires_grad=True)

    block(hidden).square().sum().backward()

    assert block.ln2.weight.grad.abs().sum().item() > 0
    assert block.mlp[1].proj.weight.grad.abs().sum().item() > 0
    for name, buffer in block.reservoir.named_buffers():
        assert buffer.grad is None, name


def test_carry_state_is_off_by_default():
    block = RATBlock(small_config(), layer_idx=0)

    assert block.reservoir.carry_state is False


def test_patched_model_loss_goes_down(patched_model_module):
    model = small_rat_model(patched_model_module, block_size=16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    tokens = torch.randint(0, 40, (4, 16), generator=torch.Generator().manual_seed(1))

    losses = []
    for _ in range(25):
        loss = model(tokens, labels=tokens)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert losses[-1] < 0.7 * losses[0]


def test_model_blocks_expose_last_states(patched_model_module):
    model = small_rat_model(patched_model_module)

    model(torch.randint(0, 40, (3, 5)))

    for block in model.blocks:
        assert block.reservoir.last_state.shape == (3, 48)


def test_generation_without_carry_is_repeatable(patched_model_module):
    model = small_rat_model(patched_model_module)
    prompt = torch.randint(0, 40, (1, 3), generator=torch.Generator().manual_seed(2))

    first = generate_like_target(model, prompt, new_tokens=10)
    second = generate_like_target(model, prompt, new_tokens=10)

    for step, (one, other) in enumerate(zip(first, second)):
        torch.testing.assert_close(one, other, msg=f"step {step}")


def test_carried_state_matters_only_after_window_slides(patched_model_module):
    """While the window grows, carrying changes nothing. Once it slides, the reservoir keeps the dropped tokens."""
    model = small_rat_model(patched_model_module, block_size=8)
    prompt = torch.randint(0, 40, (1, 3), generator=torch.Generator().manual_seed(3))
    plain = generate_like_target(model, prompt, new_tokens=10)

    for block in model.blocks:
        block.reservoir.carry_state = True
    carried = generate_like_target(model, prompt, new_tokens=10)

    growing_steps = 8 - 3 + 1
    for step in range(growing_steps):
        torch.testing.assert_close(carried[step], plain[step], msg=f"step {step}")
    assert not torch.allclose(carried[-1], plain[-1])
