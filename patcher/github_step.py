"""The GitHub side of shipping: dispatch the workflow on the pushed branch and find the run it started.

Every call goes through PyGithub. Only requests that are safe to repeat (GET)
are retried, so a dispatch is never sent twice by a retry.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import github
import requests
from github import Auth, GithubException, GithubRetry

from patcher.credentials import scrub
from patcher.errors import InputError, OutsideError

log = logging.getLogger("patcher.github")

PUBLIC_API_URL = "https://api.github.com"
REPOSITORY_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
GET_ATTEMPTS = 4
REQUEST_TIMEOUT_SECONDS = 30
# Runs created this long before the local clock's dispatch time still count, for clocks that differ.
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class RunReference:
    id: int
    html_url: str


@dataclass(frozen=True)
class DispatchOutcome:
    """The run a dispatch started, or every candidate run when the API did not identify it."""

    run: RunReference | None
    candidates: tuple[RunReference, ...] = ()
    actions_url: str = ""


def repository_from_remote_url(url: str) -> tuple[str, str] | None:
    """Return (host, "OWNER/NAME") from an https, ssh or scp-like remote URL, or None for other URLs."""
    scp_like = re.match(r"^(?:[^@/:]+@)?([^/:]+):(?!//)(.+)$", url)
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ssh", "git+ssh") or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    elif scp_like:
        host, path = scp_like.group(1), scp_like.group(2)
    else:
        return None

    path = path.strip("/").removesuffix(".git")
    if not REPOSITORY_NAME.match(path):
        return None
    return host, path


def api_url_for_host(host: str) -> str:
    """Return the API base URL of a GitHub host: api.github.com for github.com, /api/v3 on Enterprise Server."""
    if host in ("github.com", "www.github.com"):
        return PUBLIC_API_URL
    return f"https://{host}/api/v3"


def resolve_repository(repository_option: str | None, remote_url: str, remote: str) -> tuple[str, str | None]:
    """Return "OWNER/NAME" and the remote's host, from --repo or from the remote's URL."""
    parsed = repository_from_remote_url(remote_url)
    host = parsed[0] if parsed else None
    if repository_option is not None:
        if not REPOSITORY_NAME.match(repository_option):
            raise InputError("--repo", f"invalid repository {repository_option!r}: expected OWNER/NAME")
        return repository_option, host
    if parsed is None:
        raise InputError(
            "--repo",
            f"cannot read OWNER/NAME from the URL of remote {remote!r} ({remote_url}); pass --repo OWNER/NAME",
        )
    return parsed[1], host


def connect(api_url: str, token: str) -> github.Github:
    # GithubRetry also retries POST by default; limiting it to GET keeps the dispatch single.
    retry = GithubRetry(total=GET_ATTEMPTS - 1, backoff_factor=1, allowed_methods=frozenset({"GET", "HEAD"}))
    return github.Github(
        auth=Auth.Token(token),
        base_url=api_url.rstrip("/"),
        timeout=REQUEST_TIMEOUT_SECONDS,
        retry=retry,
        lazy=True,
    )


class Api:
    """One repository's workflow on one GitHub server, with every failure turned into an OutsideError."""

    def __init__(self, client: github.Github, repository: str, workflow_file: str, token: str, api_url: str):
        self.repository = client.get_repo(repository)
        self.repository_name = repository
        self.workflow_file = workflow_file
        self.token = token
        self.api_url = api_url

    def failure(self, doing: str, error: Exception) -> OutsideError:
        """Build an OutsideError whose message names the failed request, the server's reason and the next step."""
        if isinstance(error, GithubException):
            detail = _api_message(error)
            hint = {
                401: "the token was rejected; check GITHUB_TOKEN (or GH_TOKEN)",
                403: "the token lacks permission; it needs actions: write and contents: write on "
                     f"{self.repository_name}",
                404: f"check --repo {self.repository_name}, --api-url and that {self.workflow_file} exists "
                     "on the repository's default branch",
                422: "the server did not accept the dispatch as sent",
            }.get(error.status, "see the server's message")
            message = f"{doing} failed: {error.status} {detail}; {hint}"
        elif isinstance(error, requests.exceptions.RetryError):
            message = f"{doing} failed: the server returned errors on all {GET_ATTEMPTS} attempts; try again later"
        else:
            message = f"{doing} failed: cannot reach the GitHub API at {self.api_url} ({type(error).__name__}); " \
                      "check --api-url and the network"
        return OutsideError(scrub(message, self.token))

    def call(self, doing: str, action):
        try:
            return action()
        except (GithubException, requests.exceptions.RequestException) as error:
            raise self.failure(doing, error) from None

    def workflow(self):
        return self.repository.get_workflow(self.workflow_file)

    def dispatch(self, branch: str, inputs: dict[str, str], wait_seconds: float, poll_seconds: float) -> DispatchOutcome:
        """Dispatch the workflow on the branch and find the run it started."""
        workflow = self.workflow()
        self.call(f"finding workflow {self.workflow_file} in {self.repository_name}", lambda: workflow.id)
        dispatched_at = datetime.now(timezone.utc)
        known = self.run_ids(workflow, branch, since=dispatched_at)

        try:
            result = workflow.create_dispatch(branch, inputs, throw=True, return_run_details=True)
        except GithubException as error:
            if error.status != 400:
                raise self.failure(f"dispatching {self.workflow_file} on {branch}", error) from None
            # GitHub Enterprise Server 3.20 and older return 400 for return_run_details. The
            # dispatch was not accepted, so sending it without that field is not a repeat.
            log.info("the server rejected return_run_details (%s); dispatching without it", _api_message(error))
            result = self.call(f"dispatching {self.workflow_file} on {branch}",
                               lambda: workflow.create_dispatch(branch, inputs, throw=True))
        except requests.exceptions.RequestException as error:
            raise self.failure(f"dispatching {self.workflow_file} on {branch}", error) from None

        if isinstance(result, github.WorkflowRun.WorkflowRun):
            return DispatchOutcome(RunReference(result.id, result.html_url))
        return self.find_new_run(workflow, branch, known, dispatched_at, wait_seconds, poll_seconds)

    def run_ids(self, workflow, branch: str, since: datetime) -> dict[int, RunReference]:
        """Return the workflow_dispatch runs on the branch created since then, give or take CLOCK_SKEW."""
        created = f">={(since - CLOCK_SKEW).strftime('%Y-%m-%dT%H:%M:%SZ')}"

        def listing():
            runs = workflow.get_runs(branch=branch, event="workflow_dispatch", created=created)
            return {run.id: RunReference(run.id, run.html_url) for run in runs}

        return self.call(f"listing the runs of {self.workflow_file} on {branch}", listing)

    def find_new_run(self, workflow, branch, known, dispatched_at, wait_seconds, poll_seconds) -> DispatchOutcome:
        """Poll for the workflow_dispatch runs on the branch that were not there before the dispatch."""
        actions_url = self.actions_url()
        deadline = time.monotonic() + wait_seconds
        while True:
            new = [run for run_id, run in self.run_ids(workflow, branch, dispatched_at).items() if run_id not in known]
            if len(new) == 1:
                return DispatchOutcome(new[0], actions_url=actions_url)
            if len(new) > 1:
                return DispatchOutcome(None, tuple(sorted(new, key=lambda run: run.id)), actions_url)
            if time.monotonic() >= deadline:
                return DispatchOutcome(None, actions_url=actions_url)
            time.sleep(poll_seconds)

    def actions_url(self) -> str:
        """Return the web page listing the workflow's runs, built from the server's own links."""
        return self.call("reading the workflow", lambda: self.workflow().html_url)

    def run(self, run_id: int):
        return self.call(f"reading run {run_id}", lambda: self._fetched_run(run_id))

    def _fetched_run(self, run_id: int):
        run = self.repository.get_workflow_run(run_id)
        run.status  # noqa: B018 - a lazy object fetches on first read; fetch here so errors surface here
        return run

    def jobs(self, run) -> list:
        return self.call(f"listing the jobs of run {run.id}", lambda: list(run.jobs()))


def _api_message(error: GithubException) -> str:
    data = error.data
    if isinstance(data, dict):
        message = str(data.get("message", "")).strip()
        errors = data.get("errors")
        if errors:
            message += f" {errors}"
        return message or "(no message)"
    return str(data or error.message or "(no message)")
