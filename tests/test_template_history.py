"""Code an earlier patcher version inserted is updated by `apply`; hand edits stay conflicts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from patcher import template_history
from patcher.model_patch import patch_model
from patcher.parts import Status
from patcher.template_source import load_template

PROJECT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).parent / "model_cases"
BEFORE = (CASES / "basic" / "before.py").read_text()


@pytest.fixture
def templates(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """An earlier and a current small template, with the earlier one recorded in the history."""
    earlier = tmp_path / "earlier"
    current = CASES / "template"
    shutil.copytree(current, earlier)
    rat = earlier / "rat.py"
    rat.write_text(rat.read_text().replace("torch.tanh(inputs)", "torch.sigmoid(inputs)") + "\n\nRESERVOIR_VERSION = 1\n")
    settings = earlier / "settings.py"
    settings.write_text(settings.read_text().replace("reservoir_units: int = 8", "reservoir_units: int = 4"))

    digests, names = template_history.version_parts(load_template(earlier))
    current_digests, current_names = template_history.version_parts(load_template(current))
    monkeypatch.setattr(template_history, "_history", lambda: (frozenset(digests - current_digests), frozenset(names - current_names)))
    return earlier, current


def statuses(result) -> dict[str, Status]:
    return {part.name: part.status for part in result.parts}


def test_earlier_version_is_updated(templates):
    earlier, current = templates
    old = patch_model(BEFORE, "model.py", template_directory=earlier).new_text

    result = patch_model(old, "model.py", template_directory=current)

    assert statuses(result)["RAT classes"] is Status.UPDATED
    assert statuses(result)["config fields"] is Status.UPDATED
    assert result.new_text == patch_model(BEFORE, "model.py", template_directory=current).new_text
    assert "RESERVOIR_VERSION" not in result.new_text


def test_edited_earlier_version_is_conflict(templates):
    earlier, current = templates
    old = patch_model(BEFORE, "model.py", template_directory=earlier).new_text
    edited = old.replace("torch.sigmoid(inputs)", "torch.relu(inputs)")

    result = patch_model(edited, "model.py", template_directory=current)

    assert statuses(result)["RAT classes"] is Status.CONFLICT
    assert "edited: EchoReservoir" in result.conflicts[0].detail


def test_recorded_history_is_up_to_date():
    if shutil.which("git") is None or not (PROJECT / ".git").exists():
        pytest.skip("the template history is read from the git history")

    result = subprocess.run(
        [sys.executable, "scripts/record_template_history.py", "--check"], cwd=PROJECT, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
