"""The git side of shipping: check the repository, put the patch on a branch, commit it and push it.

GitPython runs every git command; at --verbose its logger shows each one.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import git

from patcher import __version__
from patcher.credentials import git_environment, scrub
from patcher.errors import InputError, OutsideError

log = logging.getLogger("patcher.git")

DEFAULT_BRANCH = "rat/reservoir-transformer"
PATCHER_NAME = "echoself-rat-patcher"
# The trailer that marks a commit as the patcher's own, so that a later run may build on it.
TRAILER = "Generated-by"
TRAILER_PATTERN = re.compile(rf"^{TRAILER}: {PATCHER_NAME} \S+$", re.MULTILINE)

PUSH_ATTEMPTS = 3
# Messages of failures where git did not reach the remote, so sending the same push again is safe.
TRANSIENT_PUSH_FAILURES = (
    "Could not resolve host",
    "Failed to connect",
    "Connection refused",
    "Connection timed out",
    "Connection reset",
    "Operation timed out",
    "RPC failed",
    "early EOF",
)
AUTHENTICATION_FAILURES = (
    "Authentication failed",
    "could not read Username",
    "could not read Password",
    "terminal prompts disabled",
    "Permission denied",
    "The requested URL returned error: 401",
    "The requested URL returned error: 403",
)


class BranchAction(enum.Enum):
    CURRENT = "already checked out"
    CREATE = "create"
    REUSE = "reuse"
    FAST_FORWARD = "fast-forward"


@dataclass(frozen=True)
class BranchPlan:
    """The branch the commit goes on, and how the command moves there from HEAD."""

    name: str
    action: BranchAction
    start: str
    start_name: str


def open_repository(target: Path) -> git.Repo:
    """Open the target as a git work tree; raise InputError when it is not the root of one."""
    try:
        repository = git.Repo(target)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise InputError(str(target), "not a git repository; give the root folder of a clone (the one holding .git)") from None

    if repository.bare:
        raise InputError(str(target), "a bare git repository has no work tree to patch; give a clone")
    if not repository.head.is_valid():
        raise InputError(str(target), "the git repository has no commit yet; commit the files first")
    return repository


def check_identity(repository: git.Repo) -> None:
    try:
        repository.git.var("GIT_COMMITTER_IDENT")
    except git.GitCommandError:
        raise InputError(
            str(repository.working_tree_dir),
            "git has no committer identity; set one with git config user.name and git config user.email",
        ) from None


def remote_url(repository: git.Repo, remote: str) -> str:
    names = [item.name for item in repository.remotes]
    if remote not in names:
        known = ", ".join(names) or "none"
        raise InputError("--remote", f"git remote {remote!r} not found; remotes of this repository: {known}")
    return repository.remote(remote).url


def plan_branch(repository: git.Repo, name: str | None) -> BranchPlan:
    """Decide how to reach the branch; raise InputError for a branch the patcher must not build on."""
    head = repository.head
    if head.is_detached and name is None:
        raise InputError(
            str(repository.working_tree_dir),
            f"HEAD is detached at {head.commit.hexsha[:12]}; pass --branch NAME to commit on a new branch from it",
        )

    name = name or DEFAULT_BRANCH
    _check_branch_name(repository, name)
    start = head.commit.hexsha
    start_name = "the detached HEAD" if head.is_detached else head.reference.name
    if not head.is_detached and head.reference.name == name:
        # NOTE: commits already on the checked-out branch are not checked for foreign ones.
        return BranchPlan(name, BranchAction.CURRENT, start, start_name)
    if name not in repository.heads:
        return BranchPlan(name, BranchAction.CREATE, start, start_name)

    tip = repository.heads[name].commit
    foreign = [commit for commit in repository.iter_commits(f"{start}..{tip.hexsha}") if not is_patcher_commit(commit)]
    if foreign:
        listed = "; ".join(f"{commit.hexsha[:12]} {commit.summary}" for commit in foreign[:3])
        raise InputError(
            name,
            f"branch holds {len(foreign)} commit(s) the patcher did not make ({listed}); "
            "pass another --branch, or merge that work first",
        )

    if tip.hexsha == start or repository.is_ancestor(start, tip.hexsha):
        return BranchPlan(name, BranchAction.REUSE, start, start_name)
    if repository.is_ancestor(tip.hexsha, start):
        return BranchPlan(name, BranchAction.FAST_FORWARD, start, start_name)
    raise InputError(
        name,
        f"branch was made from other history than HEAD ({start[:12]}); delete it with "
        f"git branch -D {name}, or pass another --branch",
    )


def _check_branch_name(repository: git.Repo, name: str) -> None:
    try:
        repository.git.check_ref_format("--branch", name)
    except git.GitCommandError:
        raise InputError("--branch", f"invalid branch name {name!r}") from None


def is_patcher_commit(commit: git.Commit) -> bool:
    return bool(TRAILER_PATTERN.search(commit.message))


def committed_text(repository: git.Repo, revision: str, relative: str) -> str | None:
    """Return a file's text at a revision, or None when the revision has no such file."""
    try:
        blob = repository.commit(revision).tree / relative
    except KeyError:
        return None
    return blob.data_stream.read().decode("utf-8", errors="replace")


def is_untracked(repository: git.Repo, relative: str) -> bool:
    return bool(repository.git.ls_files("--others", "--exclude-standard", "--", relative))


def switch_to_branch(repository: git.Repo, plan: BranchPlan) -> None:
    """Check out the branch while keeping the work tree as it is, patched files included."""
    if plan.action is BranchAction.CURRENT:
        return

    if plan.action is BranchAction.CREATE:
        repository.git.checkout("-b", plan.name)
        return

    if plan.action is BranchAction.FAST_FORWARD:
        repository.git.update_ref(f"refs/heads/{plan.name}", plan.start, repository.heads[plan.name].commit.hexsha)
        repository.git.checkout(plan.name)
        return

    # The branch is HEAD plus the patcher's own commits, which touch only patched
    # files: point HEAD at it and bring those files' index entries along, so the
    # work tree stays exactly as the patch left it.
    # NOTE: a file an older patcher version changed but this one does not patch keeps
    # HEAD's text in the work tree, so it shows as modified and is not committed.
    moved = repository.git.diff("--name-only", plan.start, plan.name).splitlines()
    repository.git.symbolic_ref("HEAD", f"refs/heads/{plan.name}")
    if moved:
        repository.git.reset("-q", plan.name, "--", *moved)


def files_differing_from_head(repository: git.Repo, relatives: list[str]) -> list[str]:
    """Return the files whose work tree text differs from the branch tip, or that git does not track."""
    differing = []
    for relative in relatives:
        on_disk = (Path(repository.working_tree_dir) / relative).read_bytes()
        try:
            committed = (repository.head.commit.tree / relative).data_stream.read()
        except KeyError:
            committed = None
        if committed != on_disk:
            differing.append(relative)
    return differing


def commit_message(patched: list[tuple[str, str, list[str]]]) -> str:
    """Build the commit message: what was patched in which file, and by which patcher version."""
    lines = ["Patch echoself to train a Reservoir-Augmented Transformer", ""]
    lines.append(f"Applied by {PATCHER_NAME} {__version__}, which makes model_type=RAT")
    lines.append("replace each block's feed-forward layer with a fixed echo-state")
    lines.append("reservoir and a trained linear readout.")
    lines.append("")
    for relative, patch_name, part_names in patched:
        entry = f"- {relative} ({patch_name}): {', '.join(part_names)}"
        lines.extend(textwrap.wrap(entry, width=72, subsequent_indent="  ", break_on_hyphens=False))
    lines.append("")
    lines.append(f"{TRAILER}: {PATCHER_NAME} {__version__}")
    return "\n".join(lines) + "\n"


def commit(repository: git.Repo, relatives: list[str], message: str) -> git.Commit:
    """Commit exactly these files as they are on disk, leaving anything else staged as it was."""
    untracked = [relative for relative in relatives if is_untracked(repository, relative)]
    try:
        if untracked:
            repository.git.add("--", *untracked)
        repository.git.commit("-q", "-m", message, "--", *relatives)
    except git.GitCommandError as error:
        raise OutsideError(f"git commit failed: {_stderr(error)}") from None
    return repository.head.commit


@dataclass(frozen=True)
class PushOutcome:
    """The remote's result for the pushed branch."""

    up_to_date: bool
    new_branch: bool
    summary: str


def push(repository: git.Repo, remote: str, branch: str, token: str | None) -> PushOutcome:
    """Push the branch with its upstream set; retry only when the remote was not reached."""
    url = repository.remote(remote).url
    environment = git_environment(url, token)
    refspec = f"refs/heads/{branch}:refs/heads/{branch}"

    for attempt in range(1, PUSH_ATTEMPTS + 1):
        log.info("git push --set-upstream %s %s (attempt %d of %d)", remote, refspec, attempt, PUSH_ATTEMPTS)
        progress = git.RemoteProgress()
        try:
            with repository.git.custom_environment(**environment), _quiet_push_warnings():
                results = repository.remote(remote).push(refspec, progress=progress, set_upstream=True)
        except git.GitCommandError as error:
            message = scrub(_stderr(error), token)
            if attempt < PUSH_ATTEMPTS and _is_transient(message):
                log.warning("push to %s failed, retrying: %s", remote, message)
                time.sleep(2 ** attempt)
                continue
            raise OutsideError(_push_failure(remote, url, message)) from None
        return _outcome(results, _remote_messages(progress), remote, branch, token)
    raise AssertionError("unreachable: the last attempt returns or raises")


@contextlib.contextmanager
def _quiet_push_warnings():
    """Silence GitPython's warning about a failed push, because the OutsideError raised for it reports the same lines."""
    logger = logging.getLogger("git.remote")
    level = logger.level
    if not logger.isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _remote_messages(progress: git.RemoteProgress) -> str:
    """Return what the remote itself printed (hook output, protection notices): git prefixes it with "remote:"."""
    lines = [line.removeprefix("remote:").strip() for line in progress.other_lines if line.startswith("remote:")]
    return " | ".join(line for line in lines if line)


def _outcome(results: git.PushInfoList, remote_output: str, remote: str, branch: str, token: str | None) -> PushOutcome:
    # GitPython reports a rejected push in the results instead of raising, so check every flag.
    failed = [info for info in results if info.flags & (git.PushInfo.ERROR | git.PushInfo.REJECTED
                                                        | git.PushInfo.REMOTE_REJECTED | git.PushInfo.REMOTE_FAILURE)]
    if failed or not results:
        summary = "; ".join(info.summary.strip() for info in failed) or "git reported no result"
        message = f"the remote {remote!r} rejected the push of {branch}: {summary}"
        if remote_output:
            message += f"; the remote printed: {remote_output}"
        raise OutsideError(scrub(f"{message}; {_rejection_hint(failed)}", token))

    info = results[0]
    return PushOutcome(
        up_to_date=bool(info.flags & git.PushInfo.UP_TO_DATE),
        new_branch=bool(info.flags & git.PushInfo.NEW_HEAD),
        summary=info.summary.strip(),
    )


def _rejection_hint(failed) -> str:
    # GitHub rejects a token-authenticated push that changes a workflow file unless the token may edit workflows.
    if any("workflow" in info.summary and ("scope" in info.summary or "permission" in info.summary) for info in failed):
        return ("the patch changes the workflow file, so the token needs the workflow scope (classic token) "
                "or Workflows: write (fine-grained token)")
    if any(info.flags & git.PushInfo.REJECTED for info in failed):
        return "the remote branch has commits this one lacks (non-fast-forward); pull them or pass another --branch"
    return "a hook or branch protection on the remote declined it; resolve what the remote reports, then rerun"


def _push_failure(remote: str, url: str, message: str) -> str:
    if any(marker in message for marker in AUTHENTICATION_FAILURES):
        return (f"authentication failed when pushing to {remote!r} ({message}); check that GITHUB_TOKEN "
                "holds a token with contents: write for this repository")
    if _is_transient(message):
        return f"could not reach the remote {remote!r} after {PUSH_ATTEMPTS} attempts ({message}); check the network and rerun"
    return f"git push to {remote!r} failed: {message}"


def _is_transient(message: str) -> bool:
    return any(marker in message for marker in TRANSIENT_PUSH_FAILURES)


def _stderr(error: git.GitCommandError) -> str:
    text = error.stderr if isinstance(error.stderr, str) else str(error)
    text = text.strip().removeprefix("stderr:").strip().strip("'").strip()
    return _last_lines(text)


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:])
