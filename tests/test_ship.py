"""`apply --push --dispatch` end to end: the real command, a bare git remote and a GitHub-shaped server.

Every run of the command is checked for the token in its output and in the
target's whole .git folder.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from github_server import GitHubServer
from ship_target import (
    PROJECT,
    REPOSITORY,
    TOKEN,
    git,
    git_environment,
    make_bare_remote,
    make_target,
    places_holding,
    repository_state,
    run_patcher,
)

BRANCH = "rat/reservoir-transformer"
PATCHED_FILES = {"nanecho_model.py", ".github/workflows/netrain-cached.yml", "train_nanecho.py", "train_cached.py"}


class World:
    """A committed sample target, its bare remote and a running server, all under one tmp_path."""

    def __init__(self, root: Path, server: GitHubServer, target: Path, bare: Path):
        self.root = root
        self.server = server
        self.target = target
        self.bare = bare

    def ship(self, *extra: str, token: str | None = TOKEN, api: bool = True, **variables: str):
        arguments = ["apply", str(self.target), "--push", *extra]
        if api:
            arguments += ["--repo", REPOSITORY, "--api-url", self.server.url]
        result = run_patcher(self.root, *arguments, token=token, **variables)
        assert places_holding(TOKEN, {"stdout": result.stdout, "stderr": result.stderr}, self.target / ".git") == []
        return result

    def dispatches(self):
        return self.server.requests_to("POST", r"/dispatches$")


@pytest.fixture
def world(tmp_path: Path):
    target = make_target(tmp_path)
    bare = make_bare_remote(tmp_path, target)
    with GitHubServer(TOKEN, git_root=tmp_path / "remotes") as server:
        yield World(tmp_path, server, target, bare)


def files_in_commit(repository: Path, revision: str) -> set[str]:
    return set(git(repository, "diff-tree", "--no-commit-id", "--name-only", "-r", revision).splitlines())


# --- the flow -----------------------------------------------------------------------------------


def test_ship_commits_pushes_dispatches_and_prints_run(world):
    result = world.ship("--dispatch")

    assert result.returncode == 0, result.stderr
    local_tip = git(world.target, "rev-parse", BRANCH)
    assert git(world.bare, "rev-parse", BRANCH) == local_tip
    assert git(world.target, "rev-parse", "--abbrev-ref", "HEAD") == BRANCH
    assert git(world.target, "rev-parse", "--abbrev-ref", f"{BRANCH}@{{upstream}}") == f"origin/{BRANCH}"
    run_id = world.server.state.runs[0].id
    assert f"{world.server.url}/{REPOSITORY}/actions/runs/{run_id}" in result.stdout


def test_ship_commits_only_patched_files(world):
    (world.target / "notes.txt").write_text("my own notes\n")

    result = world.ship()

    assert result.returncode == 0, result.stderr
    assert files_in_commit(world.target, BRANCH) == PATCHED_FILES
    assert git(world.target, "status", "--porcelain") == "?? notes.txt"


def test_commit_message_names_parts_and_version(world):
    world.ship()

    message = git(world.target, "log", "-1", "--format=%B", BRANCH)
    assert message.splitlines()[0] == "Patch echoself to train a Reservoir-Augmented Transformer"
    assert "nanecho_model.py (model): imports, config fields" in message
    assert "echoself-rat-patcher 0.1.0" in message.splitlines()[2]
    assert message.splitlines()[-1] == "Generated-by: echoself-rat-patcher 0.1.0"


def test_dispatch_sends_branch_inputs_and_run_details(world):
    world.ship("--dispatch", "--input", "training_type=full", "--input", "data_dir=data/small")

    [dispatch] = world.dispatches()
    assert dispatch.path == "/repos/octo/echoself/actions/workflows/161/dispatches"
    assert dispatch.body == {
        "ref": BRANCH,
        "inputs": {"model_type": "RAT", "training_type": "full", "data_dir": "data/small"},
        "return_run_details": True,
    }


def test_given_model_type_replaces_default(world):
    world.ship("--dispatch", "--input", "model_type=NanEcho")

    assert world.dispatches()[0].body["inputs"] == {"model_type": "NanEcho"}


def test_push_without_dispatch_makes_no_api_call(world):
    result = world.ship(token=None, api=False)

    assert result.returncode == 0, result.stderr
    assert git(world.bare, "rev-parse", BRANCH) == git(world.target, "rev-parse", BRANCH)
    assert world.server.state.requests == []
    assert "patcher: dispatching" not in result.stdout
    assert result.stdout.rstrip().endswith(f"pushed {BRANCH} to origin (new branch, upstream set)")


def test_second_run_makes_no_commit_and_dispatches_again(world):
    world.ship("--dispatch")
    first_tip = git(world.target, "rev-parse", BRANCH)

    result = world.ship("--dispatch")

    assert result.returncode == 0, result.stderr
    assert git(world.target, "rev-parse", BRANCH) == first_tip
    assert f"branch {BRANCH} is up to date; no new commit" in result.stdout
    assert f"origin/{BRANCH} is already up to date" in result.stdout
    assert "dispatching again because --dispatch was given" in result.stdout
    assert len(world.dispatches()) == 2


def test_earlier_apply_is_committed_not_rejected(world):
    plain = run_patcher(world.root, "apply", str(world.target))
    assert plain.returncode == 0, plain.stderr

    result = world.ship()

    assert result.returncode == 0, result.stderr
    assert files_in_commit(world.target, BRANCH) == PATCHED_FILES


def test_rerun_from_main_reuses_patcher_branch(world):
    world.ship()
    tip = git(world.target, "rev-parse", BRANCH)
    git(world.target, "checkout", "-q", "main")

    result = world.ship()

    assert result.returncode == 0, result.stderr
    assert "reused" in result.stdout
    assert git(world.target, "rev-parse", BRANCH) == tip
    assert git(world.target, "rev-parse", "--abbrev-ref", "HEAD") == BRANCH
    assert git(world.target, "status", "--porcelain") == ""


def test_branch_option_on_detached_head_starts_there(world):
    start = git(world.target, "rev-parse", "HEAD")
    git(world.target, "checkout", "-q", "--detach")

    result = world.ship("--branch", "rat/from-detached")

    assert result.returncode == 0, result.stderr
    assert git(world.target, "rev-parse", "rat/from-detached~1") == start


def test_allow_dirty_commits_user_edits_with_patch(world):
    model = world.target / "nanecho_model.py"
    model.write_text(model.read_text() + "\n# tuned by hand\n")

    result = world.ship("--allow-dirty")

    assert result.returncode == 0, result.stderr
    assert "# tuned by hand" in git(world.target, "show", f"{BRANCH}:nanecho_model.py")


def test_gh_token_is_read_when_github_token_unset(world):
    result = world.ship("--dispatch", token=None, GH_TOKEN=TOKEN)

    assert result.returncode == 0, result.stderr
    assert len(world.dispatches()) == 1


# --- rejected input: exit 2, nothing changed ----------------------------------------------------------


def assert_rejected(world, result, before, message: str):
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert repository_state(world.target, world.bare) == before
    assert world.server.state.requests == []


def test_target_not_git_repository_rejected(world, tmp_path):
    plain = tmp_path / "plain" / "echoself"
    plain.parent.mkdir()
    subprocess.run(["cp", "-R", str(PROJECT / "fixtures" / "echoself"), str(plain)], check=True)
    before = {path: path.read_bytes() for path in plain.rglob("*") if path.is_file()}

    result = run_patcher(tmp_path, "apply", str(plain), "--push", "--dispatch", "--repo", REPOSITORY,
                         "--api-url", world.server.url)

    assert result.returncode == 2
    assert "not a git repository" in result.stderr
    assert {path: path.read_bytes() for path in plain.rglob("*") if path.is_file()} == before
    assert world.server.state.requests == []


def test_uncommitted_change_in_patched_file_rejected(world):
    model = world.target / "nanecho_model.py"
    model.write_text(model.read_text() + "\n# tuned by hand\n")
    before = repository_state(world.target, world.bare)

    result = world.ship("--dispatch")

    assert_rejected(world, result, before, "nanecho_model.py: has uncommitted changes that the patcher did not make")


def test_detached_head_without_branch_rejected(world):
    git(world.target, "checkout", "-q", "--detach")
    before = repository_state(world.target, world.bare)

    result = world.ship("--dispatch")

    assert_rejected(world, result, before, "HEAD is detached")
    assert "pass --branch NAME" in result.stderr


def test_branch_with_foreign_commits_rejected(world):
    git(world.target, "checkout", "-q", "-b", BRANCH)
    (world.target / "notes.txt").write_text("work in progress\n")
    git(world.target, "add", "notes.txt")
    git(world.target, "commit", "-q", "-m", "Start my own notes")
    git(world.target, "checkout", "-q", "main")
    before = repository_state(world.target, world.bare)

    result = world.ship("--dispatch")

    assert_rejected(world, result, before, "branch holds 1 commit(s) the patcher did not make")
    assert "Start my own notes" in result.stderr


def test_undeclared_input_rejected_with_declared_list(world):
    before = repository_state(world.target, world.bare)

    result = world.ship("--dispatch", "--input", "learning_rate=0.1")

    assert_rejected(world, result, before, "input learning_rate is not declared by the workflow")
    assert "declared inputs: data_dir, keep_checkpoints, max_iters, model_type, training_type" in result.stderr


def test_choice_outside_options_rejected(world):
    before = repository_state(world.target, world.bare)

    result = world.ship("--dispatch", "--input", "training_type=huge")

    assert_rejected(world, result, before, "invalid value 'huge' for input training_type: expected one of ci, full")


def test_missing_token_rejected(world):
    before = repository_state(world.target, world.bare)

    result = world.ship("--dispatch", token=None)

    assert_rejected(world, result, before, "no GitHub token: set GITHUB_TOKEN (or GH_TOKEN)")


def test_unknown_remote_rejected(world):
    before = repository_state(world.target, world.bare)

    result = world.ship("--remote", "upstream")

    assert_rejected(world, result, before, "git remote 'upstream' not found; remotes of this repository: origin")


# --- outside failures: exit 3 -------------------------------------------------------------------


def test_push_rejected_by_hook_fails_without_dispatch(tmp_path):
    target = make_target(tmp_path)
    bare = make_bare_remote(tmp_path, target, rejecting_hook="pushes to this repository are frozen")
    with GitHubServer(TOKEN, git_root=tmp_path / "remotes") as server:
        result = run_patcher(tmp_path, "apply", str(target), "--push", "--dispatch", "--repo", REPOSITORY,
                             "--api-url", server.url)

        assert result.returncode == 3
        assert "rejected the push" in result.stderr
        assert "pushes to this repository are frozen" in result.stderr
        assert server.state.requests == []
    assert git(bare, "for-each-ref", "refs/heads/" + BRANCH) == ""


def test_non_fast_forward_push_fails(world, tmp_path):
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(world.bare), str(other))
    git(other, "checkout", "-q", "-b", BRANCH)
    (other / "notes.txt").write_text("a colleague's work\n")
    git(other, "add", "notes.txt")
    git(other, "-c", "user.name=Colleague", "-c", "user.email=c@example.com", "commit", "-q", "-m", "Colleague work")
    git(other, "push", "-q", "origin", BRANCH)

    result = world.ship("--dispatch")

    assert result.returncode == 3
    assert "non-fast-forward" in result.stderr
    assert world.dispatches() == []


def test_api_bad_credentials_fails(world):
    world.server.state.token = "a-different-token"

    result = world.ship("--dispatch")

    assert result.returncode == 3
    assert "401 Bad credentials; the token was rejected" in result.stderr


def test_missing_workflow_fails_with_not_found(world):
    world.server.state.workflows["netrain-cached.yml"].file_name = "other.yml"

    result = world.ship("--dispatch")

    assert result.returncode == 3
    assert "finding workflow netrain-cached.yml in octo/echoself failed: 404 Not Found" in result.stderr


def test_server_undeclared_input_fails_with_api_message(world):
    world.server.state.workflows["netrain-cached.yml"].declared_inputs = ("training_type",)

    result = world.ship("--dispatch")

    assert result.returncode == 3
    assert '422 Unexpected inputs provided: ["model_type"]' in result.stderr


def test_unreachable_api_fails(world):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    result = run_patcher(world.root, "apply", str(world.target), "--push", "--dispatch", "--repo", REPOSITORY,
                         "--api-url", f"http://127.0.0.1:{closed_port}")

    assert result.returncode == 3
    assert f"cannot reach the GitHub API at http://127.0.0.1:{closed_port}" in result.stderr


def test_failed_dispatch_is_not_retried(world):
    world.server.state.dispatch_status = 502

    result = world.ship("--dispatch")

    assert result.returncode == 3
    assert len(world.dispatches()) == 1


def test_failed_get_is_retried(world):
    world.server.state.failing_gets = 1

    result = world.ship("--dispatch")

    assert result.returncode == 0, result.stderr
    assert len(world.server.requests_to("GET", r"/actions/workflows/netrain-cached.yml$")) == 2


# --- finding the run ----------------------------------------------------------------------------


def test_old_server_dispatches_again_and_lists_runs(world):
    world.server.state.rejects_run_details = True

    result = world.ship("--dispatch")

    assert result.returncode == 0, result.stderr
    first, second = world.dispatches()
    assert first.body["return_run_details"] is True
    assert "return_run_details" not in second.body
    [run] = world.server.state.runs
    assert f"run {run.id}: {world.server.url}/{REPOSITORY}/actions/runs/{run.id}" in result.stdout


def test_run_found_by_listing_after_204(world):
    world.server.state.ignores_run_details = True
    world.server.state.list_delay = 2

    result = world.ship("--dispatch")

    assert result.returncode == 0, result.stderr
    [run] = world.server.state.runs
    assert f"run {run.id}: " in result.stdout
    [listing] = world.server.requests_to("GET", r"/runs$")[-1:]
    assert listing.query["event"] == ["workflow_dispatch"]
    assert listing.query["branch"] == [BRANCH]
    assert listing.query["created"][0].startswith(">=")


def test_several_new_runs_reported_not_guessed(world):
    world.server.state.ignores_run_details = True
    world.server.state.runs_per_dispatch = 2

    result = world.ship("--dispatch")

    assert result.returncode == 3
    assert "not guessing which one it started" in result.stdout
    for run in world.server.state.runs:
        assert f"{world.server.url}/{REPOSITORY}/actions/runs/{run.id}" in result.stdout


def test_run_that_never_appears_fails(world):
    world.server.state.ignores_run_details = True
    world.server.state.list_delay = 10_000

    result = world.ship("--dispatch", PATCHER_RUN_WAIT_SECONDS="0.2")

    assert result.returncode == 3
    assert "no run of netrain-cached.yml on rat/reservoir-transformer appeared within 0.2 s" in result.stderr
    assert f"{world.server.url}/{REPOSITORY}/actions/workflows/netrain-cached.yml" in result.stderr


# --- watching -----------------------------------------------------------------------------------


def test_watch_follows_run_to_success(world):
    result = world.ship("--dispatch", "--watch")

    assert result.returncode == 0, result.stderr
    run_id = world.server.state.runs[0].id
    statuses = [line for line in result.stdout.splitlines() if line.startswith(f"patcher: run {run_id}: ") and "http" not in line]
    assert statuses == [
        f"patcher: run {run_id}: queued; jobs 0/2 done (prepare: queued, train: queued)",
        f"patcher: run {run_id}: in_progress; jobs 0/2 done (prepare: in_progress, train: queued)",
        f"patcher: run {run_id}: in_progress; jobs 1/2 done (train: in_progress)",
        f"patcher: run {run_id}: completed (success); jobs 2/2 done",
    ]


def test_watch_exits_3_on_failed_run(world):
    world.server.state.run_conclusion = "failure"

    result = world.ship("--dispatch", "--watch")

    assert result.returncode == 3
    assert f"concluded failure: {world.server.url}/{REPOSITORY}/actions/runs/" in result.stderr
    assert "train: failure" in result.stdout


def test_ctrl_c_stops_watching_not_run(world):
    environment = git_environment(world.root / "home")
    environment.update({"GITHUB_TOKEN": TOKEN, "PATCHER_POLL_SECONDS": "30"})
    command = [sys.executable, "-m", "patcher", "apply", str(world.target), "--dispatch", "--watch",
               "--repo", REPOSITORY, "--api-url", world.server.url]
    process = subprocess.Popen(command, cwd=PROJECT, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not world.server.requests_to("GET", r"/jobs$") and time.monotonic() < deadline:
        time.sleep(0.05)

    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "stopped watching; run" in stdout
    assert "goes on" in stdout
    assert [request.path for request in world.server.state.requests if request.method == "POST"] == [
        "/repos/octo/echoself/actions/workflows/161/dispatches"
    ]
    assert TOKEN not in stdout + stderr


# --- secrets ------------------------------------------------------------------------------------


def test_token_stays_out_of_verbose_output_and_git(world):
    result = world.ship("--dispatch", "--watch", "--verbose")

    assert result.returncode == 0, result.stderr
    assert "DEBUG" in result.stderr
    assert places_holding(TOKEN, {"stdout": result.stdout, "stderr": result.stderr}, world.target / ".git") == []


def test_plain_apply_imports_no_git_or_github(world):
    probe = (
        "import sys\n"
        "from patcher.cli import main\n"
        f"status = main(['apply', {str(world.target)!r}])\n"
        "print(status, sorted(name for name in ('git', 'github') if name in sys.modules))\n"
    )

    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True,
                            env=git_environment(world.root / "home"))

    assert result.stdout.splitlines()[-1] == "0 []"


# --- pushing over HTTP with the token ------------------------------------------------------------


def test_http_push_sends_token_only_as_header(world):
    git(world.target, "remote", "set-url", "origin", world.server.git_url())

    result = world.ship("--dispatch", "--api-url", world.server.url, api=False)

    assert result.returncode == 0, result.stderr
    assert git(world.bare, "rev-parse", BRANCH) == git(world.target, "rev-parse", BRANCH)
    assert git(world.target, "remote", "get-url", "origin") == world.server.git_url()
    pushes = world.server.requests_to("POST", r"\.git/git-receive-pack$")
    assert [request.authorized for request in pushes] == [True]
    assert world.dispatches()[0].path.startswith(f"/repos/{REPOSITORY}/")


def test_http_push_with_rejected_token_fails(world):
    git(world.target, "remote", "set-url", "origin", world.server.git_url())
    wrong_token = "ghp_wrongTokenForThisRepository0123456789"

    result = world.ship("--dispatch", "--api-url", world.server.url, api=False, token=wrong_token)

    assert result.returncode == 3
    assert "authentication failed when pushing to 'origin'" in result.stderr
    assert places_holding(wrong_token, {"stdout": result.stdout, "stderr": result.stderr},
                          world.target / ".git") == []
    assert world.dispatches() == []
