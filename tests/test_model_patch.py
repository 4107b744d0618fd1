"""The model patch as a pure function: golden after-files, idempotence and conflicts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from patcher.errors import InputError
from patcher.model_patch import patch_model
from patcher.parts import Status

CASES = Path(__file__).parent / "model_cases"
SMALL_TEMPLATE = CASES / "template"


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def patch(text: str, force: bool = False):
    return patch_model(text, "nanecho_model.py", force=force, template_directory=SMALL_TEMPLATE)


def statuses(result) -> dict[str, Status]:
    return {part.name: part.status for part in result.parts}


GOLDEN_CASES = {
    "basic": "fields go after the last field, the check first in __post_init__, the classes after the block",
    "header_comment": "a comment above the block class, kept by LibCST in the module header, stays on the class",
    "docstring_future": "imports the template needs go after the last import: the docstring and __future__ stay first",
    "no_post_init": "a config without __post_init__ gets one holding the model_type check",
    "tabs_one_blank_line": "inserted code follows the file's tab indentation and its one blank line between classes",
    "crlf_no_final_newline": "CRLF line endings are used on new lines and a missing final newline stays missing",
    "python312_syntax": "a file using type aliases and generic classes parses and patches",
    "missing_torch_import": "an import the RAT classes need and the file lacks is added",
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_after_file(case: str):
    result = patch(read(CASES / case / "before.py"))

    assert result.new_text == read(CASES / case / "after.py"), GOLDEN_CASES[case]
    assert not result.conflicts


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_patched_file_is_already_applied(case: str):
    after = read(CASES / case / "after.py")

    result = patch(after)

    assert result.new_text == after
    assert set(statuses(result).values()) == {Status.APPLIED}


def test_only_added_lines_and_the_block_expression_change():
    before = read(CASES / "basic" / "before.py")

    after = patch(before).new_text

    removed = [line for line in before.splitlines() if line not in after.splitlines()]
    assert removed == ["        self.blocks = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])"]


def test_edited_rat_class_is_conflict():
    after = read(CASES / "basic" / "after.py").replace("torch.tanh(inputs)", "torch.relu(inputs)")

    result = patch(after)

    assert statuses(result)["RAT classes"] is Status.CONFLICT
    assert "EchoReservoir" in result.conflicts[0].detail


def test_force_replaces_edited_rat_class():
    edited = read(CASES / "basic" / "after.py").replace("torch.tanh(inputs)", "torch.relu(inputs)")

    result = patch(edited, force=True)

    assert statuses(result)["RAT classes"] is Status.REPLACED
    assert result.new_text == read(CASES / "basic" / "after.py")


def test_missing_rat_class_is_conflict():
    after = read(CASES / "basic" / "after.py")
    without_reservoir = after.replace(
        "class EchoReservoir(nn.Module):\n    def forward(self, inputs):\n        return torch.tanh(inputs)\n\n\n", ""
    )
    assert without_reservoir != after

    result = patch(without_reservoir)

    assert statuses(result)["RAT classes"] is Status.CONFLICT
    assert "missing: EchoReservoir" in result.conflicts[0].detail


def test_changed_field_default_is_conflict():
    edited = read(CASES / "basic" / "after.py").replace("reservoir_units: int = 8", "reservoir_units: int = 64")

    result = patch(edited)

    assert statuses(result)["config fields"] is Status.CONFLICT
    assert "reservoir_units: int = 64" in result.conflicts[0].detail


def test_hand_written_block_selection_is_conflict():
    edited = read(CASES / "basic" / "after.py").replace(
        '(RATBlock if config.model_type == "RAT" else Block)', '(RATBlock if config.use_rat else Block)'
    )

    result = patch(edited)

    assert statuses(result)["block selection"] is Status.CONFLICT
    assert "config.use_rat" in result.conflicts[0].detail


def test_reformatted_rat_class_counts_as_applied():
    """Formatting and comments do not make a part differ: only its meaning does."""
    after = read(CASES / "basic" / "after.py")
    reformatted = after.replace("        return torch.tanh(inputs)\n", "        # squash\n        return torch.tanh( inputs )\n")

    result = patch(reformatted)

    assert result.new_text == reformatted
    assert not result.conflicts


def test_different_model_type_check_is_conflict():
    edited = read(CASES / "basic" / "after.py").replace('("NanEcho", "RAT")', '("NanEcho", "RAT", "GPT")')

    result = patch(edited)

    assert statuses(result)["model_type check"] is Status.CONFLICT


def test_name_bound_elsewhere_is_rejected():
    before = read(CASES / "basic" / "before.py").replace("import torch.nn as nn\n", "import torch.nn as nn\nimport numpy as torch\n")

    with pytest.raises(InputError, match="`torch` is bound to numpy"):
        patch(before)


def test_real_templates_patch_sample_model():
    """The shipped templates patch the sample model, and the result patches to itself."""
    sample = read(Path(__file__).parent.parent / "fixtures" / "echoself" / "nanecho_model.py")

    first = patch_model(sample, "nanecho_model.py")
    second = patch_model(first.new_text, "nanecho_model.py")

    assert first.new_text != sample
    assert second.new_text == first.new_text
    assert {part.status for part in second.parts} == {Status.APPLIED}


def test_import_adds_only_unbound_names(tmp_path: Path):
    template = tmp_path / "template"
    shutil.copytree(SMALL_TEMPLATE, template)
    rat = template / "rat.py"
    rat.write_text(rat.read_text().replace("import torch\n", "from typing import Optional, Tuple\n\nimport torch\n", 1))
    before = read(CASES / "basic" / "before.py").replace("import torch\n", "from typing import Optional\nimport torch\n", 1)

    result = patch_model(before, "nanecho_model.py", template_directory=template)

    assert "from typing import Optional\nimport torch\nimport torch.nn as nn\nfrom dataclasses import dataclass\nfrom typing import Tuple\n" in result.new_text
    assert statuses(result)["imports"] is Status.ADDED
