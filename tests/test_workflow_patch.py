"""The workflow patch on text: golden before/after pairs, refusals, conflicts and zero noise."""

from __future__ import annotations

import difflib
import io
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from patcher import dispatch_inputs
from patcher.dispatch_inputs import MAX_DISPATCH_INPUTS, declared_inputs
from patcher.errors import InputError
from patcher.parts import Status
from patcher.workflow_parts import RAT_KEY_PREFIX, RAT_SUFFIX
from patcher.workflow_patch import patch_workflow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WORKFLOWS = FIXTURES / "workflows"
EXPECTED = WORKFLOWS / "expected"
SAMPLE_WORKFLOW = FIXTURES / "echoself" / ".github" / "workflows" / "netrain-cached.yml"
GOLDEN = sorted(path.name for path in EXPECTED.glob("*.yml") if path.name != "model-type-conflict.yml")


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as stream:
        return stream.read()


def patched(text: str, force: bool = False) -> str:
    return patch_workflow(text, "workflow.yml", force).new_text


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def removed_and_added(before: str, after: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return [line[2:] for line in diff if line.startswith("- ")], [line[2:] for line in diff if line.startswith("+ ")]


# --- golden pairs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN)
def test_patch_matches_golden_file(name: str):
    """Each situation (on: forms, comments, anchors, chomping, long lines) gives its reviewed after-file."""
    assert patched(read(WORKFLOWS / name)) == read(EXPECTED / name)


@pytest.mark.parametrize("name", GOLDEN)
def test_second_apply_changes_nothing(name: str):
    result = patch_workflow(read(EXPECTED / name), name)

    assert result.new_text == read(EXPECTED / name)
    assert {part.status for part in result.parts} == {Status.APPLIED}


def test_sample_workflow_parts_added_then_applied():
    text = read(SAMPLE_WORKFLOW)
    first = patch_workflow(text, "netrain-cached.yml")
    second = patch_workflow(first.new_text, "netrain-cached.yml")

    assert [part.name for part in first.parts] == [
        "dispatch input model_type",
        "dispatch input data_dir",
        "training command",
        "training config data_dir",
        "RAT output directory and cache key",
        "RAT backup folders",
        "Hugging Face steps",
        "RAT fallback output directory",
    ]
    assert {part.status for part in first.parts} == {Status.ADDED}
    assert {part.status for part in second.parts} == {Status.APPLIED}


def test_new_inputs_precede_trailing_comments():
    """ruamel attaches trailing comments to the last input; the new inputs still go before them."""
    lines = patched(read(WORKFLOWS / "comments-between-inputs.yml")).splitlines()

    data_dir_end = lines.index('        type: string', lines.index("      data_dir:"))
    assert lines[data_dir_end + 1] == "    # Inputs end here; triggers follow."
    assert lines[lines.index("      model_type:") - 1] == '        default: "500"'


def test_new_inputs_copy_neighbour_style():
    """Quotes, the spelling of false and the indentation of options follow the existing inputs."""
    text = patched(read(WORKFLOWS / "comments-between-inputs.yml"))

    assert '        description: "Training data directory, relative to the repository root"' in text
    assert "        options:\n        - NanEcho\n        - RAT\n" in text
    assert "        required: False\n" in patched(read(SAMPLE_WORKFLOW))


# --- line endings and final newline -----------------------------------------------------------------


def test_crlf_kept_on_new_lines():
    before = crlf(read(WORKFLOWS / "comments-between-inputs.yml"))

    after = patched(before)

    assert after == crlf(read(EXPECTED / "comments-between-inputs.yml"))
    assert "\n" not in after.replace("\r\n", "")


def test_end_insert_keeps_missing_newline():
    """Inserting after the last line adds the line break it needs and no final newline."""
    text = read(WORKFLOWS / "document-marker.yml")
    head, jobs = text.split("\njobs:")
    triggers_last = head.replace("'on':", "jobs:" + jobs.rstrip("\n") + "\n\n'on':", 1).rstrip("\n")

    after = patched(triggers_last)

    assert after.endswith("        default: 'data/nanecho'\n        type: string")
    assert "        default: '500'\n        type: string\n      model_type:\n" in after
    assert declared_inputs(after)["data_dir"].type == "string"


# --- the inputs a dispatch may name --------------------------------------------------------------------


def test_dispatch_names_only_declared_inputs():
    """`-f training_type=full -f model_type=RAT -f data_dir=data/nanecho_dte` must pass GitHub's check."""
    inputs = declared_inputs(patched(read(SAMPLE_WORKFLOW)))

    assert {"training_type", "model_type", "data_dir"} <= set(inputs)
    assert inputs["model_type"].type == "choice"
    assert inputs["model_type"].options == ("NanEcho", "RAT")
    assert inputs["model_type"].default == "NanEcho"
    assert inputs["model_type"].required is False
    assert inputs["data_dir"].type == "string"
    assert inputs["data_dir"].default == "data/sample"
    assert "full" in inputs["training_type"].options


def test_declared_inputs_empty_without_dispatch():
    assert declared_inputs(read(WORKFLOWS / "on-scalar.yml")) == {}


def test_data_dir_default_from_config():
    """The config file the step writes overrides --data_dir, so its directory is the one trained on."""
    text = read(SAMPLE_WORKFLOW).replace('"data_dir": "data/sample"', '"data_dir": "data/from-config"')

    inputs = declared_inputs(patched(text))

    assert inputs["data_dir"].default == "data/from-config"


# --- the training command ---------------------------------------------------------------------------


def command_of(text: str) -> list[str]:
    lines = text.splitlines()
    first = next(index for index, line in enumerate(lines) if line.strip().startswith("python train_cached.py"))
    last = first
    while lines[last].endswith("\\"):
        last += 1
    return lines[first : last + 1]


def training_step(text: str) -> dict:
    steps = YAML(typ="safe").load(text)["jobs"]["train"]["steps"]
    return next(step for step in steps if step.get("name") == "Run cached training")


def test_command_passes_inputs_with_fallbacks():
    command = " ".join(command_of(patched(read(SAMPLE_WORKFLOW))))

    assert "--model_type ${{ inputs.model_type || 'NanEcho' }}" in command
    assert '--data_dir "$DATA_DIR"' in command


def test_data_dir_reaches_script_through_env():
    """Actions pastes a `${{ }}` value into the script before bash reads it, so free text must come through env."""
    step = training_step(patched(read(SAMPLE_WORKFLOW)))

    assert step["env"] == {"DATA_DIR": "${{ inputs.data_dir || 'data/sample' }}"}
    assert "inputs.data_dir" not in step["run"]


def test_data_dir_env_joins_existing_env():
    text = read(SAMPLE_WORKFLOW).replace(
        "    - name: Run cached training\n", "    - name: Run cached training\n      env:\n        TORCH_HOME: /tmp/torch\n"
    )

    step = training_step(patched(text))

    assert step["env"] == {"TORCH_HOME": "/tmp/torch", "DATA_DIR": "${{ inputs.data_dir || 'data/sample' }}"}


def test_other_data_dir_env_is_conflict():
    text = read(SAMPLE_WORKFLOW).replace(
        "    - name: Run cached training\n", "    - name: Run cached training\n      env:\n        DATA_DIR: data/other\n"
    )

    result = patch_workflow(text, "workflow.yml")

    command = next(part for part in result.parts if part.name == "training command")
    assert command.status is Status.CONFLICT
    assert "--data_dir data/sample" in result.new_text


def test_quoted_config_heredoc_rejected():
    """In `<< 'EOL'` the shell expands nothing, so `$DATA_DIR` would reach the config file as text."""
    text = read(SAMPLE_WORKFLOW).replace("cat > training_config.json << EOL", "cat > training_config.json << 'EOL'")

    with pytest.raises(InputError) as raised:
        patch_workflow(text, "workflow.yml")

    assert "unquote the delimiter" in raised.value.message
    assert raised.value.line == text.splitlines().index('          "data_dir": "data/sample",') + 1


def test_older_inline_data_dir_updated():
    """A workflow patched by a version that pasted the input into the script moves to the env form."""
    golden = read(EXPECTED / "anchors.yml")
    older = golden.replace("        env:\n          DATA_DIR: ${{ inputs.data_dir || 'data/nanecho' }}\n", "").replace(
        '--data_dir "$DATA_DIR"', "--data_dir \"${{ inputs.data_dir || 'data/nanecho' }}\""
    )

    result = patch_workflow(older, "anchors.yml")

    assert result.new_text == golden
    assert [part.status for part in result.parts if part.name == "training command"] == [Status.UPDATED]


def test_command_stays_one_shell_command():
    before = command_of(read(SAMPLE_WORKFLOW))
    after = command_of(patched(read(SAMPLE_WORKFLOW)))

    assert len(after) == len(before) + 1
    assert all(line.endswith(" \\") for line in after[:-1])
    assert not after[-1].endswith("\\")
    assert after[-1] == before[-1]


def test_config_file_uses_same_data_dir():
    text = patched(read(SAMPLE_WORKFLOW))

    assert '"data_dir": "$DATA_DIR",' in text


# --- separate outputs for RAT runs -------------------------------------------------------------------


def resolve(text: str, model_type: str | None) -> str:
    """Evaluate the patch's two expressions the way GitHub does for the given input (None: no inputs)."""
    rat = model_type == "RAT"
    return text.replace(RAT_SUFFIX, "-rat" if rat else "").replace(RAT_KEY_PREFIX, "rat-" if rat else "")


def output_values(text: str, name: str) -> list[str]:
    return re.findall(rf'echo "{name}=([^"]*)" >> \$GITHUB_OUTPUT', text)


@pytest.mark.parametrize("model_type", [None, "NanEcho"])
def test_nanecho_run_resolves_paths_as_before(model_type: str | None):
    before = read(SAMPLE_WORKFLOW)

    after = resolve(patched(before), model_type)

    assert output_values(after, "output_dir") == output_values(before, "output_dir")
    assert output_values(after, "cache_key") == output_values(before, "cache_key")


def test_rat_run_gets_own_outputs():
    before = read(SAMPLE_WORKFLOW)
    after = resolve(patched(before), "RAT")

    rat_dirs, rat_keys = output_values(after, "output_dir"), output_values(after, "cache_key")

    assert rat_dirs == [directory + "-rat" for directory in output_values(before, "output_dir")]
    assert not set(rat_dirs) & set(output_values(before, "output_dir"))
    # restore-keys match by prefix: no NanEcho key may be a prefix of a RAT key.
    for nanecho_key in output_values(before, "cache_key"):
        assert not any(f"training-{key}-".startswith(f"training-{nanecho_key}-") for key in rat_keys)


# --- zero noise -------------------------------------------------------------------------------------


def ruamel_round_trip(text: str) -> str:
    yaml = YAML()
    yaml.preserve_quotes = True
    stream = io.StringIO()
    yaml.dump(yaml.load(text), stream)
    return stream.getvalue()


QUIRKS = [
    "    branches: [ main, master ]",
    "        required: False",
    "      fail-fast: False",
    "        ",
    "        description: 'How many cached checkpoints to keep between runs of this workflow, oldest pruned first'",
]


def test_plain_round_trip_rewrites_quirky_lines():
    """A ruamel load and dump rewrites lines the patch must leave alone, which is why the patch edits text."""
    text = read(SAMPLE_WORKFLOW)

    removed, _ = removed_and_added(text, ruamel_round_trip(text))

    assert len(removed) >= 10
    assert set(QUIRKS) <= set(removed)


def test_patch_removes_only_edited_lines():
    text = read(SAMPLE_WORKFLOW)

    removed, added = removed_and_added(text, patched(text))

    assert sorted(line.strip() for line in removed) == sorted(
        [f'echo "output_dir=.training-progress/sample-{mode}" >> $GITHUB_OUTPUT' for mode in ("ci", "scheduled", "full")]
        + [f'echo "cache_key={mode}" >> $GITHUB_OUTPUT' for mode in ("ci", "scheduled", "full")]
        + ['"data_dir": "data/sample",', "--data_dir data/sample \\"]
        + ["FALLBACK_OUTPUT_DIR: .training-progress/sample-ci"]
        + ["if: vars.START_FROM_HUB == 'true'", "if: always()"]
        + [
            "path: sample/.training-progress/artifacts",
            'FOUND=".training-progress/artifacts"',
            "mkdir -p .training-progress/checkpoints",
            'cp "$BEST" .training-progress/checkpoints/latest_checkpoint.pt',
            'cp "$BEST" ".training-progress/checkpoints/checkpoint_${STAMP}.pt"',
            'echo "{\\"run\\": \\"${{ github.run_id }}\\"}" > .training-progress/checkpoints/backup_manifest.json',
            "sample/.training-progress/checkpoints/",
        ]
    )
    # The new inputs (13 lines), the --model_type flag and the training step's env (3), and one line per removed line.
    assert len(added) == 13 + 3 + len(removed)
    assert not set(QUIRKS) & set(removed)


def test_patch_keeps_space_lines_and_emoji():
    text = read(SAMPLE_WORKFLOW)
    after = patched(text)

    for line in text.splitlines():
        if not line.strip() or any(ord(character) > 0xFFFF for character in line):
            assert line in after.splitlines()


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message, line",
    [
        ("broken-continuation.yml", "backslash is followed by a space", 23),
        ("invalid-yaml.yml", "not valid YAML", 8),
        ("no-training-command.yml", "looked for a line starting with `python train_cached.py`", None),
        ("inputs-at-limit.yml", f"GitHub's limit of {MAX_DISPATCH_INPUTS} inputs", 6),
        ("inputs-alias.yml", "is an alias (*shared_inputs)", 12),
        ("inputs-anchor-shared.yml", "shared through the anchor &shared_inputs", 5),
        ("on-flow-mapping.yml", "flow mapping", 3),
        ("out-dir-literal.yml", "--out_dir is not a step output", 18),
    ],
)
def test_unpatchable_workflow_rejected(name: str, message: str, line: int | None):
    with pytest.raises(InputError) as raised:
        patch_workflow(read(WORKFLOWS / name), name)

    assert message in raised.value.message
    assert raised.value.line == line


def test_invalid_yaml_message_has_column():
    with pytest.raises(InputError) as raised:
        patch_workflow(read(WORKFLOWS / "invalid-yaml.yml"), "invalid-yaml.yml")

    assert str(raised.value).startswith("invalid-yaml.yml:8:8: not valid YAML")


def test_inputs_one_below_limit_accepted():
    text = read(WORKFLOWS / "inputs-at-limit.yml")
    first_input = text.index("      setting_01:")
    text = text[:first_input] + text[text.index("      setting_02:") :]

    assert len(declared_inputs(patched(text))) == MAX_DISPATCH_INPUTS


# --- existing inputs ---------------------------------------------------------------------------------


def test_existing_same_definition_counts_as_applied():
    result = patch_workflow(read(WORKFLOWS / "model-type-same-definition.yml"), "workflow.yml")

    assert result.parts[0].name == "dispatch input model_type"
    assert result.parts[0].status is Status.APPLIED


def test_existing_different_definition_is_conflict():
    text = read(WORKFLOWS / "model-type-conflict.yml")

    result = patch_workflow(text, "workflow.yml")

    assert result.parts[0].status is Status.CONFLICT
    assert "Hybrid" in result.parts[0].detail
    assert declared_inputs(result.new_text)["model_type"].options == ("NanEcho", "RAT", "Hybrid")


def test_forced_conflict_is_replaced():
    result = patch_workflow(read(WORKFLOWS / "model-type-conflict.yml"), "workflow.yml", force=True)

    assert result.parts[0].status is Status.REPLACED
    assert result.new_text == read(EXPECTED / "model-type-conflict.yml")


def test_other_model_type_flag_is_conflict():
    text = read(SAMPLE_WORKFLOW).replace("--config training_config.json", "--model_type RAT --config training_config.json")

    result = patch_workflow(text, "workflow.yml")

    command = next(part for part in result.parts if part.name == "training command")
    assert command.status is Status.CONFLICT
    assert "--model_type RAT --config" in result.new_text


# --- checking its own output ------------------------------------------------------------------------


def test_wrong_rendering_fails_own_check(monkeypatch: pytest.MonkeyPatch):
    """When the rendered inputs do not parse back to the intended definition, nothing is returned."""
    render = dispatch_inputs.InputStyle.render
    monkeypatch.setattr(
        dispatch_inputs.InputStyle,
        "render",
        lambda style, name, definition, indent: [line for line in render(style, name, definition, indent) if "- RAT" not in line],
    )

    with pytest.raises(InputError) as raised:
        patch_workflow(read(SAMPLE_WORKFLOW), "workflow.yml")

    assert "failed its own check" in raised.value.message
    assert "input model_type" in raised.value.message
