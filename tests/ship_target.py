"""Sample targets for the ship tests: a git clone of the sample target, a bare remote, and the command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE_TARGET = PROJECT / "fixtures" / "echoself"
TOKEN = "ghp_patcherTestToken0123456789abcdefXYZ"
REPOSITORY = "octo/echoself"
WORKFLOW_RELATIVE = ".github/workflows/netrain-cached.yml"

def git(cwd: Path, *arguments: str, check: bool = True) -> str:
    result = subprocess.run(["git", *arguments], cwd=cwd, env=git_environment(cwd.parent), capture_output=True,
                            text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(arguments)} failed: {result.stderr}")
    return result.stdout.strip()


def git_environment(home: Path) -> dict[str, str]:
    """Return an environment that keeps the user's git and proxy settings out, and reaches 127.0.0.1 directly."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("GIT_", "GITHUB_", "GH_", "PATCHER_"))
                   and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    home.mkdir(parents=True, exist_ok=True)
    environment.update({
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return environment


def make_target(root: Path) -> Path:
    """Copy the sample target to root/echoself and commit it on main."""
    target = root / "echoself"
    shutil.copytree(SAMPLE_TARGET, target)

    git(target, "init", "-q", "-b", "main")
    git(target, "config", "user.name", "Ada Engineer")
    git(target, "config", "user.email", "ada@example.com")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "Add the sample target")
    return target


def make_bare_remote(root: Path, target: Path, name: str = "origin", rejecting_hook: str | None = None) -> Path:
    """Create a bare repository at root/remotes/octo/echoself.git holding main, and add it as a remote."""
    bare = root / "remotes" / f"{REPOSITORY}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    git(target, "remote", "add", name, str(bare))
    git(target, "push", "-q", name, "main")
    if rejecting_hook is not None:
        hook = bare / "hooks" / "pre-receive"
        hook.write_text(f"#!/bin/sh\necho '{rejecting_hook}' >&2\nexit 1\n")
        hook.chmod(0o755)
    return bare


def run_patcher(root: Path, *arguments: str, token: str | None = TOKEN, **variables: str):
    """Run `python -m patcher` as a user would, with the token in GITHUB_TOKEN unless token is None."""
    environment = git_environment(root / "home")
    environment.update({"PATCHER_POLL_SECONDS": "0.01", "PATCHER_RUN_WAIT_SECONDS": "3"})
    if token is not None:
        environment["GITHUB_TOKEN"] = token
    environment.update(variables)
    return subprocess.run([sys.executable, "-m", "patcher", *arguments], cwd=PROJECT, env=environment,
                          capture_output=True, text=True, timeout=120)


def repository_state(target: Path, bare: Path | None = None) -> dict:
    """Return everything a rejected command must leave alone: file bytes, refs, HEAD, index and the remote's refs."""
    files = {str(path.relative_to(target)): path.read_bytes()
             for path in sorted(target.rglob("*")) if path.is_file() and ".git" not in path.parts}
    state = {
        "files": files,
        "head": git(target, "rev-parse", "--symbolic-full-name", "HEAD") or git(target, "rev-parse", "HEAD"),
        "refs": git(target, "for-each-ref"),
        "status": git(target, "status", "--porcelain"),
        "config": (target / ".git" / "config").read_text(),
    }
    if bare is not None:
        state["remote refs"] = git(bare, "for-each-ref")
    return state


def places_holding(secret: str, texts: dict[str, str], git_folder: Path) -> list[str]:
    """Name every output and every file under the .git folder that contains the secret."""
    places = [name for name, text in texts.items() if secret in text]
    encoded = secret.encode()
    for path in git_folder.rglob("*"):
        if path.is_file() and encoded in path.read_bytes():
            places.append(str(path))
    return places
