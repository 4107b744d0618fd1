"""The training chain patches: goldens, layout kept, idempotence, conflicts and refusals."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import SAMPLE_TARGET, run_patcher, snapshot
from patcher.entry_point_patch import patch_entry_point
from patcher.errors import InputError
from patcher.parts import Status
from patcher.templates.checkpoint_guard import checkpoints_of_model_type
from patcher.training_config_patch import patch_training_config

CASES = Path(__file__).parent / "training_cases"


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def statuses(result) -> dict[str, Status]:
    return {part.name: part.status for part in result.parts}


# A small entry point with every place the patch edits, in the target's layout.
ENTRY_POINT = source('''
    import argparse

    from train_nanecho import TrainingConfig


    class Trainer:
        def resume(self):
            model_config = {'n_layer': self.config.n_layer}
            checkpoints = self.cache.get_compatible_checkpoints(model_config, {})

            for checkpoint_id in checkpoints:
                self.cache.load_checkpoint(checkpoint_id)

        def save(self):
            model_config = {
                'n_layer': self.config.n_layer,
                'n_embd': self.config.n_embd  # width
            }
            self.cache.save_checkpoint(model_config=model_config)


    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--data_dir", default="data")

        args = parser.parse_args()
        config = TrainingConfig(data_dir=args.data_dir)
''')

TRAINING_MODULE = source('''
    from dataclasses import dataclass


    @dataclass
    class TrainingConfig:
        # Model
        n_embd: int = 64
        bias: bool = True

        # Training
        batch_size: int = 8


    class Trainer:
        def __init__(self, config):
            model_config = NanEchoConfig(
                n_embd=config.n_embd,
                bias=config.bias,
            )
''')


# --- goldens --------------------------------------------------------------------------------------------

def test_sample_entry_point_matches_golden():
    """The sample target's train_cached.py gets exactly the reviewed after-file."""
    before = (SAMPLE_TARGET / "train_cached.py").read_text()

    result = patch_entry_point(before, "train_cached.py", False)

    assert result.new_text == (CASES / "train_cached.after.py").read_text()
    assert set(statuses(result).values()) == {Status.ADDED}


def test_sample_training_module_matches_golden():
    before = (SAMPLE_TARGET / "train_nanecho.py").read_text()

    result = patch_training_config(before, "train_nanecho.py", False)

    assert result.new_text == (CASES / "train_nanecho.after.py").read_text()
    assert set(statuses(result).values()) == {Status.ADDED}


@pytest.fixture(scope="module")
def patched_entry_point() -> str:
    return patch_entry_point(ENTRY_POINT, "train_cached.py", False).new_text


def test_guard_inserted_before_class(patched_entry_point):
    """The helper sits between the imports and the class, two blank lines on each side."""
    assert "from train_nanecho import TrainingConfig\n\n\ndef checkpoints_of_model_type(" in patched_entry_point
    assert "    return kept\n\n\nclass Trainer:" in patched_entry_point


def test_guard_call_follows_lookup(patched_entry_point):
    assert ("checkpoints = self.cache.get_compatible_checkpoints(model_config, {})\n"
            "        checkpoints = checkpoints_of_model_type(self.cache, checkpoints, self.config.model_type)\n\n") in patched_entry_point


def test_option_follows_neighbours_quotes(patched_entry_point):
    assert ('    parser.add_argument("--data_dir", default="data")\n'
            '    parser.add_argument("--model_type", type=str, choices=["NanEcho", "RAT"], default="NanEcho", ') in patched_entry_point


def test_keyword_joins_one_line_call(patched_entry_point):
    assert "config = TrainingConfig(data_dir=args.data_dir, model_type=args.model_type)\n" in patched_entry_point


def test_dict_comment_stays_on_its_line(patched_entry_point):
    assert ("            'n_embd': self.config.n_embd,  # width\n"
            "            'model_type': self.config.model_type\n"
            "        }") in patched_entry_point


def test_resume_fingerprint_left_alone(patched_entry_point):
    """Only model configurations that get saved record the model type, not the one used for lookup."""
    assert "model_config = {'n_layer': self.config.n_layer}\n" in patched_entry_point


def test_training_module_edits_in_place():
    """The field joins the model group; a trailing comma in the call stays trailing."""
    result = patch_training_config(TRAINING_MODULE, "train_nanecho.py", False)

    assert result.new_text == source('''
        from dataclasses import dataclass


        @dataclass
        class TrainingConfig:
            # Model
            n_embd: int = 64
            bias: bool = True
            model_type: str = "NanEcho"  # "RAT" trains a Reservoir-Augmented Transformer

            # Training
            batch_size: int = 8


        class Trainer:
            def __init__(self, config):
                model_config = NanEchoConfig(
                    n_embd=config.n_embd,
                    bias=config.bias,
                    model_type=config.model_type,
                )
    ''')


def test_crlf_line_endings_kept():
    before = TRAINING_MODULE.replace("\n", "\r\n")

    after = patch_training_config(before, "train_nanecho.py", False).new_text

    assert after.count("\r\n") == after.count("\n")
    assert 'model_type: str = "NanEcho"' in after


# --- idempotence ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("patch, name", [(patch_entry_point, "train_cached.py"), (patch_training_config, "train_nanecho.py")])
def test_second_run_changes_nothing(patch, name):
    once = patch((SAMPLE_TARGET / name).read_text(), name, False)

    twice = patch(once.new_text, name, False)

    assert twice.new_text == once.new_text
    assert set(statuses(twice).values()) == {Status.APPLIED}


def test_apply_twice_through_cli(sample_target):
    """The second `apply` reports every training part as already applied and writes no byte."""
    assert run_patcher("apply", sample_target).returncode == 0
    before = snapshot(sample_target)

    second = run_patcher("apply", sample_target)

    assert second.returncode == 0
    assert "train_cached.py: --model_type option: already applied" in second.stdout
    assert "train_nanecho.py: model_type passed to NanEchoConfig: already applied" in second.stdout
    assert snapshot(sample_target) == before


# --- conflicts ------------------------------------------------------------------------------------------

def test_hand_edited_option_conflicts():
    """An option defaulting to RAT would change every push and schedule run: that is a conflict."""
    patched = patch_entry_point(ENTRY_POINT, "train_cached.py", False).new_text
    edited = patched.replace('default="NanEcho", help=', 'default="RAT", help=')

    result = patch_entry_point(edited, "train_cached.py", False)

    assert statuses(result)["--model_type option"] is Status.CONFLICT
    assert result.new_text == edited


def test_forced_option_replaced():
    patched = patch_entry_point(ENTRY_POINT, "train_cached.py", False).new_text
    edited = patched.replace('default="NanEcho", help=', 'default="RAT", help=')

    result = patch_entry_point(edited, "train_cached.py", True)

    assert statuses(result)["--model_type option"] is Status.REPLACED
    assert result.new_text == patched


def test_option_with_reordered_choices_is_applied():
    """The same choices in another order, with another help text, mean the same option."""
    patched = patch_entry_point(ENTRY_POINT, "train_cached.py", False).new_text
    edited = patched.replace('choices=["NanEcho", "RAT"]', 'choices=("RAT", "NanEcho")')

    result = patch_entry_point(edited, "train_cached.py", False)

    assert statuses(result)["--model_type option"] is Status.APPLIED


def test_hand_edited_config_keyword_conflicts():
    edited = ENTRY_POINT.replace("TrainingConfig(data_dir=args.data_dir)", 'TrainingConfig(data_dir=args.data_dir, model_type="RAT")')

    result = patch_entry_point(edited, "train_cached.py", False)

    assert statuses(result)["model_type passed to TrainingConfig"] is Status.CONFLICT
    assert "model_type=\"RAT\"" in result.parts[1].detail


def test_hand_edited_guard_conflicts():
    patched = patch_entry_point(ENTRY_POINT, "train_cached.py", False).new_text
    edited = patched.replace('.get("model_type", "NanEcho")', '.get("model_type", "RAT")')

    result = patch_entry_point(edited, "train_cached.py", False)

    assert statuses(result)["checkpoints_of_model_type() helper"] is Status.CONFLICT


def test_hand_edited_field_conflicts_then_forced():
    patched = patch_training_config(TRAINING_MODULE, "train_nanecho.py", False).new_text
    edited = patched.replace('model_type: str = "NanEcho"', 'model_type: str = "RAT"')

    conflicted = patch_training_config(edited, "train_nanecho.py", False)
    forced = patch_training_config(edited, "train_nanecho.py", True)

    assert statuses(conflicted)["model_type field in TrainingConfig"] is Status.CONFLICT
    assert statuses(forced)["model_type field in TrainingConfig"] is Status.REPLACED
    assert forced.new_text == patched


def test_conflict_stops_apply_and_writes_nothing(sample_target):
    module = sample_target / "train_nanecho.py"
    module.write_text(module.read_text().replace("    bias: bool = True\n", "    bias: bool = True\n    model_type: str = 'RAT'\n", 1))
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert result.returncode == 2
    assert "train_nanecho.py: model_type field in TrainingConfig: conflict" in result.stderr
    assert snapshot(sample_target) == before


# --- refusals -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("old, new, message", [
    ("def main():", "def run():", "no top-level main() function found"),
    ("parser = argparse.ArgumentParser()", "parser = make_parser()", "no `parser = argparse.ArgumentParser(...)`"),
    ("config = TrainingConfig(data_dir=args.data_dir)", "config = load()", "main() builds no TrainingConfig(...)"),
    ("self.cache.get_compatible_checkpoints(", "self.cache.checkpoints(", "found no `checkpoints = cache.get_compatible_checkpoints(...)`"),
    ("self.cache.save_checkpoint(", "self.cache.store(", "found no model configuration dict"),
])
def test_entry_point_shape_missing(old, new, message):
    """A target whose entry point lost a piece the patch needs gets a message naming what was looked for."""
    with pytest.raises(InputError) as raised:
        patch_entry_point(ENTRY_POINT.replace(old, new), "train_cached.py", False)

    assert message in str(raised.value)
    assert str(raised.value).startswith("train_cached.py: ")


@pytest.mark.parametrize("old, new, message", [
    ("@dataclass\n", "", "class TrainingConfig is not a @dataclass"),
    ("class TrainingConfig:", "class Settings:", "no top-level class TrainingConfig found"),
    ("n_embd=config.n_embd,\n            bias=config.bias,", "n_embd=64,", "none of them naming its fields from the training configuration"),
])
def test_training_module_shape_missing(old, new, message):
    with pytest.raises(InputError) as raised:
        patch_training_config(TRAINING_MODULE.replace(old, new), "train_nanecho.py", False)

    assert message in str(raised.value)


def test_missing_entry_point_leaves_every_file(sample_target):
    """Without train_cached.py, apply stops with exit 2 and the model file stays as it was."""
    (sample_target / "train_cached.py").unlink()
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert result.returncode == 2
    assert "train_cached.py: file not found" in result.stderr
    assert snapshot(sample_target) == before


def test_unusable_entry_point_leaves_every_file(sample_target):
    """An entry point without a TrainingConfig call stops apply before the first write."""
    entry_point = sample_target / "train_cached.py"
    entry_point.write_text(entry_point.read_text().replace("config = TrainingConfig(", "config = build_config(", 1))
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert result.returncode == 2
    assert "main() builds no TrainingConfig(...)" in result.stderr
    assert snapshot(sample_target) == before


# --- the inserted resume guard --------------------------------------------------------------------------

def cache_with(**model_types) -> SimpleNamespace:
    """A cache whose metadata maps checkpoint ids to model configs; None means no model type recorded."""
    metadata = {
        checkpoint_id: SimpleNamespace(model_config={} if model_type is None else {"model_type": model_type})
        for checkpoint_id, model_type in model_types.items()
    }
    return SimpleNamespace(metadata=metadata)


def test_guard_keeps_same_model_type(capsys):
    cache = cache_with(a="RAT", b="NanEcho", c="RAT")

    kept = checkpoints_of_model_type(cache, ["a", "b", "c"], "RAT")

    assert kept == ["a", "c"]
    assert "Skipping checkpoint b: it holds a NanEcho model, this run trains a RAT model" in capsys.readouterr().out


def test_guard_reads_unrecorded_type_as_nanecho():
    cache = cache_with(old=None, new="RAT")

    assert checkpoints_of_model_type(cache, ["old", "new"], "NanEcho") == ["old"]
    assert checkpoints_of_model_type(cache, ["old", "new"], "RAT") == ["new"]


def test_two_insertions_in_main_keep_order():
    """The option and the resume guard both go into main(); neither may shift the other."""
    text = source('''
        import argparse

        from train_nanecho import TrainingConfig


        def save(cache, config):
            model_config = {'n_layer': config.n_layer, 'n_embd': config.n_embd}
            cache.save_checkpoint(model_config=model_config)


        def main():
            parser = argparse.ArgumentParser()
            parser.add_argument("--data_dir", default="data")
            args = parser.parse_args()
            config = TrainingConfig(data_dir=args.data_dir)
            print(config.n_layer)
            checkpoints = cache.get_compatible_checkpoints(config)
            for checkpoint in checkpoints:
                print(checkpoint)
    ''')

    lines = patch_entry_point(text, "train_cached.py", False).new_text.splitlines()

    lookup = lines.index("    checkpoints = cache.get_compatible_checkpoints(config)")
    assert lines[lookup + 1] == "    checkpoints = checkpoints_of_model_type(cache, checkpoints, config.model_type)"
    option = lines.index('    parser.add_argument("--data_dir", default="data")')
    assert lines[option + 1].startswith('    parser.add_argument("--model_type"')
