"""The command line as a user runs it: apply, dry run, check, exit statuses and bad input."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from conftest import run_patcher, snapshot

MODEL = "nanecho_model.py"


def test_dry_run_prints_diff_and_writes_nothing(sample_target: Path):
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert f"--- a/{MODEL}\n+++ b/{MODEL}\n" in result.stdout
    assert "+class RATBlock(NanEchoBlock):" in result.stdout
    assert "\033[" not in result.stdout
    assert snapshot(sample_target) == before


def test_apply_then_second_apply_changes_no_byte(sample_target: Path):
    first = run_patcher("apply", sample_target)
    after_first = snapshot(sample_target)
    second = run_patcher("apply", sample_target)

    assert first.returncode == 0, first.stderr
    assert "RAT classes: added" in first.stdout
    assert second.returncode == 0, second.stderr
    assert snapshot(sample_target) == after_first
    assert "RAT classes: already applied" in second.stdout
    assert "block selection: already applied" in second.stdout
    assert "nothing to do" in second.stdout


def test_check_exits_1_with_diff_then_0(sample_target: Path):
    pending = run_patcher("check", sample_target)
    run_patcher("apply", sample_target)
    applied = run_patcher("check", sample_target)

    assert pending.returncode == 1
    assert f"+++ b/{MODEL}" in pending.stdout
    assert f"{MODEL}: RAT classes: would be added" in pending.stderr
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "patcher: every part is applied"


def test_apply_keeps_file_mode(sample_target: Path):
    model = sample_target / MODEL
    model.chmod(0o754)

    run_patcher("apply", sample_target)

    assert model.stat().st_mode & 0o777 == 0o754


def test_apply_leaves_no_temporary_files(sample_target: Path):
    names_before = {path.name for path in sample_target.rglob("*")}

    run_patcher("apply", sample_target)

    assert {path.name for path in sample_target.rglob("*")} == names_before


def test_force_replaces_conflicting_part(sample_target: Path):
    run_patcher("apply", sample_target)
    model = sample_target / MODEL
    model.write_text(model.read_text().replace("reservoir_units: int = ", "reservoir_units: int = 7 + "))

    rejected = run_patcher("apply", sample_target)
    forced = run_patcher("apply", sample_target, "--force")

    assert rejected.returncode == 2
    assert "config fields: conflict" in rejected.stderr
    assert "--force" in rejected.stderr
    assert forced.returncode == 0, forced.stderr
    assert "config fields: replaced" in forced.stdout
    assert "7 + " not in model.read_text()


def test_conflict_writes_nothing(sample_target: Path):
    run_patcher("apply", sample_target)
    model = sample_target / MODEL
    model.write_text(model.read_text().replace("reservoir_units: int = ", "reservoir_units: int = 7 + "))
    edited = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert result.returncode == 2
    assert snapshot(sample_target) == edited


def test_model_file_in_nanecho_folder_is_found(sample_target: Path):
    (sample_target / "NanEcho").mkdir(exist_ok=True)
    shutil.move(sample_target / MODEL, sample_target / "NanEcho" / MODEL)

    result = run_patcher("apply", sample_target, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert f"+++ b/NanEcho/{MODEL}" in result.stdout


def test_model_file_option(sample_target: Path):
    shutil.move(sample_target / MODEL, sample_target / "model.py")

    result = run_patcher("apply", sample_target, "--dry-run", "--model-file", "model.py")

    assert result.returncode == 0, result.stderr
    assert "+++ b/model.py" in result.stdout


def test_dry_run_imports_no_torch_git_or_github(sample_target: Path):
    probe = (
        "import sys\n"
        "from patcher.cli import main\n"
        f"status = main(['apply', {str(sample_target)!r}, '--dry-run'])\n"
        "heavy = sorted({name.split('.')[0] for name in sys.modules} & {'torch', 'git', 'github', 'numpy'})\n"
        "print('HEAVY=' + ','.join(heavy))\n"
        "sys.exit(status)\n"
    )

    result = __import__("subprocess").run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stdout


IGNORED_SHIP_OPTIONS = {
    "watch without dispatch": (["--watch"], "--watch follows a dispatched run"),
    "branch without push": (["--branch", "x"], "--branch only apply with --push or --dispatch"),
    "input without push": (["--input", "model_type=RAT"], "--input only apply with --push or --dispatch"),
    "push with dry run": (["--dry-run", "--push"], "--dry-run writes nothing"),
    "remote without push": (["--remote", "upstream"], "--remote only apply with --push or --dispatch"),
}


@pytest.mark.parametrize("case", sorted(IGNORED_SHIP_OPTIONS))
def test_ship_option_without_effect_is_usage_error(sample_target: Path, case: str):
    options, expected = IGNORED_SHIP_OPTIONS[case]
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target, *options)

    assert result.returncode == 2
    assert expected in result.stderr
    assert snapshot(sample_target) == before


# --- bad input: one line naming the file, exit 2, nothing touched ------------------------------------


def assert_rejected(result, *expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0]


def test_missing_target_folder(tmp_path: Path):
    result = run_patcher("apply", tmp_path / "nowhere")

    assert_rejected(result, "nowhere", "target folder not found")


def test_target_that_is_a_file(tmp_path: Path):
    path = tmp_path / "file.txt"
    path.write_text("x")

    result = run_patcher("apply", path)

    assert_rejected(result, "file.txt", "not a folder")
    assert path.read_text() == "x"


def test_no_model_file(sample_target: Path):
    (sample_target / MODEL).unlink()
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert_rejected(result, "no model file found", "nanecho_model.py and NanEcho/nanecho_model.py", "--model-file")
    assert snapshot(sample_target) == before


BAD_MODELS = {
    "syntax error": ("def broken(:\n    pass\n", [f"{MODEL}:1:", "syntax error"]),
    "tabs and spaces": ("class A:\n    def f(self):\n\tpass\n", [f"{MODEL}:3:", "tabs and spaces"]),
    "no config dataclass": (
        "class Config:\n    n_embd = 8\n",
        ["no config dataclass found", "@dataclass class with an `n_embd` field", "other classes: Config"],
    ),
    "no block list": (
        "from dataclasses import dataclass\n\n@dataclass\nclass C:\n    n_embd: int = 1\n\n"
        "class M:\n    def __init__(self):\n        self.blocks = nn.ModuleList([nn.Linear(2, 2)])\n",
        ["no block list found", "nn.ModuleList([Block(config, i)", "in M"],
    ),
    "block without mlp": (
        "from dataclasses import dataclass\n\n@dataclass\nclass C:\n    n_embd: int = 1\n\n"
        "class B:\n    def __init__(self, config, i):\n        self.ffn = 1\n\n"
        "class M:\n    def __init__(self, config):\n        self.blocks = nn.ModuleList([B(config, i) for i in range(2)])\n",
        ["block class B assigns no `self.mlp`"],
    ),
    "block with other constructor": (
        "from dataclasses import dataclass\n\n@dataclass\nclass C:\n    n_embd: int = 1\n\n"
        "class B:\n    def __init__(self, config):\n        self.mlp = 1\n\n"
        "class M:\n    def __init__(self, config):\n        self.blocks = nn.ModuleList([B(config) for i in range(2)])\n",
        ["block class B has __init__(self, config)", "expected __init__(self, config, layer_idx)"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_model_file_is_rejected_untouched(sample_target: Path, case: str):
    text, expected = BAD_MODELS[case]
    (sample_target / MODEL).write_text(text)
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert_rejected(result, MODEL, *expected)
    assert snapshot(sample_target) == before


def test_model_file_not_utf8(sample_target: Path):
    (sample_target / MODEL).write_bytes(b"# caf\xe9\nimport torch\n")
    before = snapshot(sample_target)

    result = run_patcher("apply", sample_target)

    assert_rejected(result, f"{MODEL}:1:6", "not valid UTF-8")
    assert snapshot(sample_target) == before


def test_check_rejects_bad_input_with_2(sample_target: Path):
    (sample_target / MODEL).write_text("def broken(:\n")

    result = run_patcher("check", sample_target)

    assert_rejected(result, "syntax error")


def test_match_statement_in_model_file(sample_target: Path):
    """A `match` statement anywhere in the model's methods must not break the structural search."""
    model = sample_target / MODEL
    model.write_text(model.read_text() + "\n\nclass Router:\n    def route(self, kind):\n        match kind:\n            case 'a':\n                return 1\n            case _:\n                return 2\n")

    result = run_patcher("apply", sample_target, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "+class RATBlock(NanEchoBlock):" in result.stdout


def test_block_list_inside_if_is_found_once(sample_target: Path):
    model = sample_target / MODEL
    text = model.read_text().replace(
        "        self.blocks = nn.ModuleList([\n            NanEchoBlock(config, i) for i in range(config.n_layer)\n        ])\n",
        "        if config.n_layer > 0:\n            if True:\n                self.blocks = nn.ModuleList([\n                    NanEchoBlock(config, i) for i in range(config.n_layer)\n                ])\n",
    )
    model.write_text(text)

    result = run_patcher("apply", sample_target, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert '(RATBlock if config.model_type == "RAT" else NanEchoBlock)(config, i)' in result.stdout
