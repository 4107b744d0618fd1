"""The patched sample model under torch: the default is unchanged and a RAT trains."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from patcher.model_patch import patch_model  # noqa: E402

SAMPLE_MODEL = Path(__file__).parent.parent / "fixtures" / "echoself" / "nanecho_model.py"
_names = itertools.count()


def load_module(path: Path):
    name = f"patched_model_{next(_names)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The unpatched and the patched sample model modules."""
    folder = tmp_path_factory.mktemp("models")
    original = folder / "original.py"
    patched = folder / "patched.py"
    original.write_text(SAMPLE_MODEL.read_text())
    patched.write_text(patch_model(SAMPLE_MODEL.read_text(), "nanecho_model.py").new_text)
    return load_module(original), load_module(patched)


def small_config(module, **settings):
    return module.NanEchoConfig(vocab_size=64, n_embd=32, n_head=4, n_layer=2, block_size=16, **settings)


def shapes(model) -> dict[str, tuple]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def test_default_model_has_unpatched_state_dict(models):
    original, patched = models
    torch.manual_seed(0)
    before = original.NanEchoModel(small_config(original))
    after = patched.NanEchoModel(small_config(patched))

    assert shapes(after) == shapes(before)
    after.load_state_dict(before.state_dict(), strict=True)
    tokens = torch.randint(0, 64, (2, 8))
    torch.testing.assert_close(after(tokens)["logits"], before(tokens)["logits"])


def test_rat_model_uses_rat_blocks(models):
    _, patched = models

    model = patched.NanEchoModel(small_config(patched, model_type="RAT", reservoir_units=24))

    assert [type(block).__name__ for block in model.blocks] == ["RATBlock", "RATBlock"]
    assert isinstance(model.blocks[0], patched.NanEchoBlock)


def test_unknown_model_type_lists_valid_ones(models):
    _, patched = models

    with pytest.raises(ValueError, match="'NanEcho' and 'RAT'"):
        small_config(patched, model_type="GPT")


def reservoir_buffers(model) -> dict[str, "torch.Tensor"]:
    return {name: buffer.clone() for name, buffer in model.named_buffers() if ".mlp.0." in name}


def test_reservoir_weights_are_buffers_not_parameters(models):
    _, patched = models
    model = patched.NanEchoModel(small_config(patched, model_type="RAT", reservoir_units=24))

    buffers = reservoir_buffers(model)
    parameter_names = {name for name, _ in model.named_parameters()}

    assert buffers, "the RAT model has no reservoir buffers"
    assert all(name in model.state_dict() for name in buffers)
    assert not any(".mlp.0." in name for name in parameter_names)
    assert any(".mlp.1." in name for name in parameter_names), "the readout must be trained"


def test_weight_initialisation_keeps_seeded_reservoir(models):
    """The model's _init_weights runs after the blocks are built; seeded buffers must come out the same."""
    _, patched = models
    torch.manual_seed(1)
    first = reservoir_buffers(patched.NanEchoModel(small_config(patched, model_type="RAT", reservoir_units=24)))
    torch.manual_seed(2)
    second = reservoir_buffers(patched.NanEchoModel(small_config(patched, model_type="RAT", reservoir_units=24)))

    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name])


def test_to_moves_reservoir_buffers(models):
    _, patched = models
    model = patched.NanEchoModel(small_config(patched, model_type="RAT", reservoir_units=24))

    model.to(torch.float64)

    assert {buffer.dtype for buffer in reservoir_buffers(model).values()} == {torch.float64}


def test_rat_model_trains_on_cpu(models):
    _, patched = models
    torch.manual_seed(0)
    model = patched.NanEchoModel(small_config(patched, model_type="RAT", reservoir_units=24))
    buffers_before = reservoir_buffers(model)
    readout_before = model.blocks[0].mlp[1].proj.weight.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    # A fixed pattern the model can learn quickly: each token is the previous one plus one.
    tokens = (torch.arange(16).repeat(4, 1) + torch.arange(4).unsqueeze(1)) % 64

    losses = []
    for _ in range(30):
        loss = model(tokens, labels=tokens)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.grow_connections()

    assert losses[-1] < 0.8 * losses[0], losses
    for name, buffer in reservoir_buffers(model).items():
        torch.testing.assert_close(buffer, buffers_before[name])
    assert not torch.equal(model.blocks[0].mlp[1].proj.weight, readout_before)
