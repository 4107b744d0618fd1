"""A RAT run's backups, restores and Hub steps kept apart from NanEcho's, and every other run left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from patcher import workflow_patch, workflow_separation
from patcher.errors import InputError
from patcher.parts import Status
from patcher.workflow_parts import NOT_RAT, RAT_KEY_PREFIX, RAT_SUFFIX
from patcher.workflow_patch import patch_workflow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WORKFLOWS = FIXTURES / "workflows"
EXPECTED = WORKFLOWS / "expected"
SAMPLE_WORKFLOW = FIXTURES / "echoself" / ".github" / "workflows" / "netrain-cached.yml"
EDGE_CASES = "backup-and-hub-steps.yml"
HUB_STEPS = {"Fetch starting weights from the Hub", "Publish the model to the Hub"}


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as stream:
        return stream.read()


def patched(text: str, force: bool = False) -> str:
    return patch_workflow(text, "workflow.yml", force).new_text


def part(text: str, name: str, force: bool = False):
    return next(part for part in patch_workflow(text, "workflow.yml", force).parts if part.name == name)


def resolve(text: str, model_type: str | None) -> str:
    """Evaluate the patch's expressions as GitHub does for the given input; None is an event without inputs."""
    rat = model_type == "RAT"
    return (
        text.replace(RAT_SUFFIX, "-rat" if rat else "")
        .replace(RAT_KEY_PREFIX, "rat-" if rat else "")
        .replace(NOT_RAT, "false" if rat else "true")
    )


def steps_by_name(text: str) -> dict[str, dict]:
    return {step["name"]: step for step in YAML(typ="safe").load(text)["jobs"]["train"]["steps"]}


def job_env(text: str) -> dict:
    return YAML(typ="safe").load(text)["jobs"]["train"]["env"]


# --- a RAT run ----------------------------------------------------------------------------------------


def test_rat_backup_goes_to_own_folder():
    step = steps_by_name(resolve(patched(read(SAMPLE_WORKFLOW)), "RAT"))["Back up the best checkpoint"]

    assert "cp \"$BEST\" .training-progress/checkpoints-rat/latest_checkpoint.pt" in step["run"]
    assert "> .training-progress/checkpoints-rat/backup_manifest.json" in step["run"]
    assert ".training-progress/checkpoints/" not in step["run"]


def test_rat_uploads_own_backup_folder():
    step = steps_by_name(resolve(patched(read(SAMPLE_WORKFLOW)), "RAT"))["Upload the backup folder"]

    assert step["with"]["path"] == "sample/.training-progress/checkpoints-rat/\n"


def test_rat_restores_from_own_artifacts():
    steps = steps_by_name(resolve(patched(read(SAMPLE_WORKFLOW)), "RAT"))

    assert steps["Download earlier training artifacts"]["with"]["path"] == "sample/.training-progress/artifacts-rat"
    assert 'FOUND=".training-progress/artifacts-rat"' in steps["Restore checkpoints from the artifacts"]["run"]


def test_rat_run_skips_hub_steps():
    steps = steps_by_name(resolve(patched(read(SAMPLE_WORKFLOW)), "RAT"))

    assert steps["Fetch starting weights from the Hub"]["if"] == "vars.START_FROM_HUB == 'true' && false"
    assert steps["Publish the model to the Hub"]["if"] == "always() && false"


def test_rat_fallback_output_dir_separate():
    assert job_env(resolve(patched(read(SAMPLE_WORKFLOW)), "RAT")) == {"FALLBACK_OUTPUT_DIR": ".training-progress/sample-ci-rat"}


def test_skipped_steps_keep_their_paths():
    """A step a RAT run skips needs no mark, so its lines stay as they were."""
    before, after = steps_by_name(read(SAMPLE_WORKFLOW)), steps_by_name(patched(read(SAMPLE_WORKFLOW)))

    for name in HUB_STEPS:
        assert after[name]["run"] == before[name]["run"]


# --- every other run ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", [None, "NanEcho"])
def test_nanecho_run_resolves_steps_as_before(model_type: str | None):
    """Outside the training step, only the Hub steps' conditions gain a clause, and it is true."""
    before = steps_by_name(read(SAMPLE_WORKFLOW))
    after = steps_by_name(resolve(patched(read(SAMPLE_WORKFLOW)), model_type))

    assert after.keys() == before.keys()
    for name, step in after.items():
        if name == "Run cached training":
            continue
        if name in HUB_STEPS:
            assert step.pop("if") == before[name]["if"] + " && true"
            assert step == {key: value for key, value in before[name].items() if key != "if"}
        else:
            assert step == before[name], name


@pytest.mark.parametrize("model_type", [None, "NanEcho"])
def test_nanecho_fallback_output_dir_unchanged(model_type: str | None):
    assert job_env(resolve(patched(read(SAMPLE_WORKFLOW)), model_type)) == job_env(read(SAMPLE_WORKFLOW))


# --- shapes of steps and conditions ---------------------------------------------------------------


def test_comments_and_longer_names_untouched():
    """A shell comment is no path, and checkpoints-old or checkpoints.bak are other folders."""
    run = steps_by_name(patched(read(WORKFLOWS / EDGE_CASES)))["Back up"]["run"]

    assert "# Backups go to out/checkpoints, old ones stay in out/checkpoints-old\n" in run
    assert "cp -r out/checkpoints-old/. out/checkpoints.bak/ || true\n" in run


def test_single_quoted_path_keeps_its_meaning():
    step = steps_by_name(patched(read(WORKFLOWS / EDGE_CASES)))["Upload the backups"]

    assert step["with"]["path"] == f"out/checkpoints{RAT_SUFFIX}/"


def test_quoted_fallback_env_keeps_its_meaning():
    document = YAML(typ="safe").load(patched(read(WORKFLOWS / EDGE_CASES)))

    assert document["env"] == {"LAST_RESORT_DIR": f"out/model-ci{RAT_SUFFIX}"}


def test_installing_hub_client_not_skipped():
    """Installing huggingface_hub moves no model, and a RAT run may need the package."""
    step = steps_by_name(patched(read(WORKFLOWS / EDGE_CASES)))["Install the Hub client"]

    assert "if" not in step


def test_step_without_condition_gets_clause_alone():
    step = steps_by_name(patched(read(WORKFLOWS / EDGE_CASES)))["Download the starting checkpoint"]

    assert step["if"] == NOT_RAT


def test_or_condition_bracketed():
    """`&&` binds tighter than `||`, so the old condition needs brackets to stay one operand."""
    step = steps_by_name(patched(read(WORKFLOWS / EDGE_CASES)))["Push to the Hub"]

    assert step["if"] == f"(success() || github.event_name == 'schedule') && {NOT_RAT}"


def test_expression_condition_stays_expression():
    step = steps_by_name(patched(read(WORKFLOWS / EDGE_CASES)))["Push with an action"]

    assert step["if"] == f"${{{{ always() && {NOT_RAT} }}}}"


def test_training_step_never_skipped():
    """A training step that also downloads from the Hub must still run for the RAT."""
    download = "        cd sample\n        huggingface-cli download my/data\n        echo"
    text = read(SAMPLE_WORKFLOW).replace("        cd sample\n        \n        echo", download, 1)

    step = steps_by_name(patched(text))["Run cached training"]

    assert "if" not in step


@pytest.mark.parametrize(
    "condition, message",
    [
        ("if: >-\n        always()", "not a one-line scalar"),
        ("if: run-${{ always() }}", "mixes text and `${{ }}`"),
    ],
)
def test_unpatchable_hub_condition_rejected(condition: str, message: str):
    text = read(SAMPLE_WORKFLOW).replace("if: vars.START_FROM_HUB == 'true'", condition)

    with pytest.raises(InputError) as raised:
        patch_workflow(text, "workflow.yml")

    assert message in raised.value.message
    assert raised.value.line == text.splitlines().index("    - name: Fetch starting weights from the Hub") + 2


# --- hand edits -------------------------------------------------------------------------------------


# (part, original line, hand-edited line, the line --force writes)
HAND_EDITS = [
    (
        "RAT backup folders",
        "mkdir -p .training-progress/checkpoints\n",
        "mkdir -p .training-progress/checkpoints${{ inputs.model_type == 'RAT' && '_rat' || '' }}\n",
        f"mkdir -p .training-progress/checkpoints{RAT_SUFFIX}\n",
    ),
    (
        "Hugging Face steps",
        "if: vars.START_FROM_HUB == 'true'\n",
        "if: inputs.model_type == 'NanEcho'\n",
        f"if: inputs.model_type == 'NanEcho' && {NOT_RAT}\n",
    ),
    (
        "RAT fallback output directory",
        "FALLBACK_OUTPUT_DIR: .training-progress/sample-ci\n",
        "FALLBACK_OUTPUT_DIR: .training-progress/sample-ci${{ inputs.model_type }}\n",
        f"FALLBACK_OUTPUT_DIR: .training-progress/sample-ci{RAT_SUFFIX}\n",
    ),
]


@pytest.mark.parametrize("name, old, new, forced", HAND_EDITS)
def test_hand_edit_is_conflict(name: str, old: str, new: str, forced: str):
    text = read(SAMPLE_WORKFLOW).replace(old, new, 1)

    result = patch_workflow(text, "workflow.yml")

    assert next(part for part in result.parts if part.name == name).status is Status.CONFLICT
    assert new in result.new_text


def test_conflicting_part_edits_nothing():
    """One hand-marked folder leaves every occurrence of the part as it was, the other parts still apply."""
    hand_marked = "mkdir -p .training-progress/checkpoints${{ inputs.model_type == 'RAT' && '_rat' || '' }}\n"
    text = read(SAMPLE_WORKFLOW).replace("mkdir -p .training-progress/checkpoints\n", hand_marked, 1)

    result = patch_workflow(text, "workflow.yml")

    assert RAT_SUFFIX not in steps_by_name(result.new_text)["Back up the best checkpoint"]["run"]
    assert "sample/.training-progress/checkpoints/\n" in result.new_text
    assert f"{NOT_RAT}" in steps_by_name(result.new_text)["Publish the model to the Hub"]["if"]


@pytest.mark.parametrize("name, old, new, forced", HAND_EDITS)
def test_forced_hand_edit_replaced_once(name: str, old: str, new: str, forced: str):
    """--force writes this patch's form; a second apply then finds everything applied."""
    text = read(SAMPLE_WORKFLOW).replace(old, new, 1)

    result = patch_workflow(text, "workflow.yml", force=True)
    again = patch_workflow(result.new_text, "workflow.yml")

    assert next(part for part in result.parts if part.name == name).status is Status.REPLACED
    assert forced in result.new_text
    assert again.new_text == result.new_text
    assert {part.status for part in again.parts} == {Status.APPLIED}


def test_partly_applied_folders_completed():
    """An occurrence upstream added after the first apply gets its mark on the next apply."""
    text = patched(read(SAMPLE_WORKFLOW)).replace(
        "        fi\n        echo", "        fi\n        ls .training-progress/checkpoints\n        echo", 1
    )

    result = patch_workflow(text, "workflow.yml")

    assert next(part for part in result.parts if part.name == "RAT backup folders").status is Status.ADDED
    assert f"ls .training-progress/checkpoints{RAT_SUFFIX}\n" in result.new_text


# --- the patch's own check ----------------------------------------------------------------------------


def test_wrong_mark_fails_own_check(monkeypatch: pytest.MonkeyPatch):
    """A mark that does not resolve to '' for NanEcho runs would move their backups: nothing is returned."""
    monkeypatch.setattr(workflow_separation, "RAT_SUFFIX", "${{ inputs.model_type == 'RAT' && '-rat' || '-x' }}")

    with pytest.raises(InputError) as raised:
        patch_workflow(read(SAMPLE_WORKFLOW), "workflow.yml")

    assert "would resolve some path or condition differently" in raised.value.message


def test_missed_hub_step_fails_own_check(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(workflow_patch, "patch_hub_steps", lambda *arguments: None)

    with pytest.raises(InputError) as raised:
        patch_workflow(read(SAMPLE_WORKFLOW), "workflow.yml")

    assert "a RAT run would still run 'Publish the model to the Hub'" in raised.value.message


def test_missed_folder_fails_own_check(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(workflow_patch, "patch_shared_folders", lambda *arguments: None)

    with pytest.raises(InputError) as raised:
        patch_workflow(read(SAMPLE_WORKFLOW), "workflow.yml")

    assert "a RAT run of 'Back up the best checkpoint' would still use a shared folder" in raised.value.message
