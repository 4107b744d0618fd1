"""Ship the patch: commit the patched files on a branch, push it, dispatch the training workflow, follow the run.

`preflight` runs before the patcher writes anything and makes every check that
needs no network, so a rejected command leaves the files, the branch and the remote as
they were. `publish` runs after the write and does the rest, in the order a
user would: branch, commit, push, and only after a successful push, dispatch.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from patcher import credentials, dispatch_inputs, git_step, github_step, run_watch, ship_inputs
from patcher.errors import EXIT_OK, EXIT_OUTSIDE_FAILURE, InputError

DEFAULT_REMOTE = "origin"

log = logging.getLogger("patcher.ship")

POLL_SECONDS_VARIABLE = "PATCHER_POLL_SECONDS"
RUN_WAIT_SECONDS_VARIABLE = "PATCHER_RUN_WAIT_SECONDS"
DEFAULT_POLL_SECONDS = 5.0
DEFAULT_RUN_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Dispatch:
    """The repository, server, workflow and checked inputs of the dispatch, all settled before any network call."""

    repository: str
    api_url: str
    workflow_file: str
    inputs: dict
    token: str
    poll_seconds: float
    run_wait_seconds: float


@dataclass(frozen=True)
class Shipment:
    """Everything `publish` needs, derived from the command line and the repository."""

    repository: object
    branch: git_step.BranchPlan
    remote: str
    token: str | None
    dispatch: Dispatch | None


def preflight(arguments, changes, planned) -> None:
    """Raise InputError for anything that would stop the shipment, before a file is written."""
    shipment = prepare(arguments, planned)
    check_uncommitted_changes(shipment.repository, planned, arguments)


def publish(arguments, changes, planned) -> int:
    """Commit, push, then dispatch and follow the run; return the command's exit status."""
    shipment = prepare(arguments, planned)
    repository = shipment.repository

    git_step.switch_to_branch(repository, shipment.branch)
    say(f"on branch {shipment.branch.name} ({describe_branch(shipment.branch)})")

    new_commit = commit_patched_files(repository, shipment.branch.name, planned)

    say(f"pushing {shipment.branch.name} to {shipment.remote} ...")
    pushed = git_step.push(repository, shipment.remote, shipment.branch.name, shipment.token)
    if pushed.up_to_date:
        say(f"{shipment.remote}/{shipment.branch.name} is already up to date")
    else:
        created = "new branch, " if pushed.new_branch else ""
        say(f"pushed {shipment.branch.name} to {shipment.remote} ({created}upstream set)")

    if shipment.dispatch is None:
        return EXIT_OK
    if new_commit is None:
        say("dispatching again because --dispatch was given; the branch has no new commit")
    try:
        return dispatch_and_follow(shipment.dispatch, shipment.branch.name, arguments.watch)
    except KeyboardInterrupt:
        # Watching handles Ctrl-C itself; this is Ctrl-C while dispatching or looking for the run.
        print("patcher: interrupted; the dispatch may already have started a run", file=sys.stderr, flush=True)
        return run_watch.EXIT_INTERRUPTED


def prepare(arguments, planned) -> Shipment:
    """Derive the shipment from the arguments, raising InputError for anything that cannot work."""
    repository = git_step.open_repository(Path(arguments.target))
    git_step.check_identity(repository)
    remote = arguments.remote or DEFAULT_REMOTE
    remote_url = git_step.remote_url(repository, remote)
    branch = git_step.plan_branch(repository, arguments.branch)

    dispatch = None
    if arguments.dispatch:
        dispatch = prepare_dispatch(arguments, planned, remote_url)
    token = dispatch.token if dispatch else credentials.optional_token()
    return Shipment(repository, branch, remote, token, dispatch)


def prepare_dispatch(arguments, planned, remote_url: str) -> Dispatch:
    text, shown_as = ship_inputs.workflow_text_after_patch(arguments, planned)
    declared = dispatch_inputs.declared_inputs(text, shown_as)
    values = ship_inputs.parse_input_arguments(arguments.input)
    inputs = ship_inputs.checked_inputs(values, declared, shown_as)

    token = credentials.read_token()
    repository, host = github_step.resolve_repository(arguments.repo, remote_url, arguments.remote)
    api_url = arguments.api_url or github_step.api_url_for_host(host or "github.com")
    check_api_url(api_url)

    return Dispatch(
        repository=repository,
        api_url=api_url,
        workflow_file=Path(shown_as).name,
        inputs=inputs,
        token=token,
        poll_seconds=seconds_from_environment(POLL_SECONDS_VARIABLE, DEFAULT_POLL_SECONDS),
        run_wait_seconds=seconds_from_environment(RUN_WAIT_SECONDS_VARIABLE, DEFAULT_RUN_WAIT_SECONDS),
    )


def check_api_url(api_url: str) -> None:
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("--api-url", f"invalid URL {api_url!r}: expected http(s)://HOST[/PATH]")


def seconds_from_environment(variable: str, default: float) -> float:
    value = os.environ.get(variable)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise InputError(variable, f"invalid value {value!r}: expected a number of seconds, 0 or more")
    return seconds


def check_uncommitted_changes(repository, planned, arguments) -> None:
    """Raise InputError when a file the patcher touches contains uncommitted changes the patcher did not make.

    A file whose only difference from HEAD is this patch, written by an earlier
    `apply`, passes: it is exactly what the commit is meant to contain.
    """
    if arguments.allow_dirty:
        return

    for item in planned:
        relative = item.change.relative
        committed = git_step.committed_text(repository, "HEAD", relative)
        working = item.change.before
        if committed == working:
            continue
        if committed is not None and item.patch.apply(committed, relative, arguments.force).new_text == working:
            log.info("%s: the uncommitted changes are this patch, written by an earlier apply", relative)
            continue
        state = "is not committed to git" if committed is None else "has uncommitted changes"
        raise InputError(relative, f"{state} that the patcher did not make; commit or stash them, "
                                   "or rerun with --allow-dirty to commit them with the patch")


def commit_patched_files(repository, branch: str, planned):
    """Commit the patched files that differ from the branch tip; return the commit, or None when none do."""
    relatives = [item.change.relative for item in planned]
    differing = git_step.files_differing_from_head(repository, relatives)
    if not differing:
        say(f"branch {branch} is up to date; no new commit")
        return None

    patched = [(item.change.relative, item.patch.name, [part.name for part in item.result.parts])
               for item in planned if item.change.relative in differing]
    commit = git_step.commit(repository, differing, git_step.commit_message(patched))
    say(f"committed {commit.hexsha[:12]} on {branch}: {', '.join(differing)}")
    return commit


def describe_branch(plan: git_step.BranchPlan) -> str:
    start = f"{plan.start_name} at {plan.start[:12]}"
    return {
        git_step.BranchAction.CURRENT: "already checked out",
        git_step.BranchAction.CREATE: f"created from {start}",
        git_step.BranchAction.REUSE: f"reused: it holds {start} and earlier commits of this patcher",
        git_step.BranchAction.FAST_FORWARD: f"fast-forwarded to {start}",
    }[plan.action]


def dispatch_and_follow(dispatch: Dispatch, branch: str, watch: bool) -> int:
    client = github_step.connect(dispatch.api_url, dispatch.token)
    api = github_step.Api(client, dispatch.repository, dispatch.workflow_file, dispatch.token, dispatch.api_url)

    shown_inputs = ", ".join(f"{name}={value}" for name, value in dispatch.inputs.items())
    say(f"dispatching {dispatch.workflow_file} on {branch} in {dispatch.repository} with {shown_inputs} ...")
    outcome = api.dispatch(branch, dispatch.inputs, dispatch.run_wait_seconds, dispatch.poll_seconds)

    if outcome.run is None:
        return report_unidentified_run(outcome, dispatch, branch)
    say(f"run {outcome.run.id}: {outcome.run.html_url}")

    if not watch:
        return EXIT_OK
    return run_watch.watch(api, outcome.run.id, outcome.run.html_url, dispatch.poll_seconds)


def report_unidentified_run(outcome: github_step.DispatchOutcome, dispatch: Dispatch, branch: str) -> int:
    if outcome.candidates:
        say(f"the dispatch was accepted, but {len(outcome.candidates)} workflow_dispatch runs of "
            f"{dispatch.workflow_file} on {branch} started after it; not guessing which one it started:")
        for run in outcome.candidates:
            print(f"  run {run.id}: {run.html_url}", flush=True)
        return EXIT_OUTSIDE_FAILURE

    print(f"patcher: error: the dispatch was accepted, but no run of {dispatch.workflow_file} on {branch} "
          f"appeared within {dispatch.run_wait_seconds:g} s; look for it at {outcome.actions_url}",
          file=sys.stderr, flush=True)
    return EXIT_OUTSIDE_FAILURE


def say(message: str) -> None:
    print(f"patcher: {message}", flush=True)
