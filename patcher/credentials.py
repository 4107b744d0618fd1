"""The GitHub token: where it is read from, and how it reaches git without being stored or shown."""

from __future__ import annotations

import base64
import os
from urllib.parse import urlsplit

from patcher.errors import InputError

TOKEN_VARIABLES = ("GITHUB_TOKEN", "GH_TOKEN")


def read_token(environment=os.environ) -> str:
    """Return the token from GITHUB_TOKEN, else GH_TOKEN; raise InputError when neither is set."""
    for name in TOKEN_VARIABLES:
        token = environment.get(name, "").strip()
        if token:
            return token
    raise InputError(
        "environment",
        "no GitHub token: set GITHUB_TOKEN (or GH_TOKEN) to a token with contents, actions and workflows: write",
    )


def optional_token(environment=os.environ) -> str | None:
    try:
        return read_token(environment)
    except InputError:
        return None


def scrub(text: str, token: str | None) -> str:
    """Replace the token in a text about to be shown, as a second guard behind never putting it there."""
    if not token:
        return text
    return text.replace(token, "***")


def git_environment(remote_url: str, token: str | None, environment=os.environ) -> dict[str, str]:
    """Return the environment variables that let one git command authenticate with the token.

    The token travels as an `http.<url>.extraHeader` passed through git's
    GIT_CONFIG_COUNT variables: it never enters `.git/config`, the remote URL
    or the command line, and only requests to the remote's own host carry it.
    Terminal prompts are off, so a rejected token fails instead of waiting.
    """
    variables = {"GIT_TERMINAL_PROMPT": "0"}
    parts = urlsplit(remote_url)
    if token is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return variables

    credentials = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    count = _config_count(environment)
    variables["GIT_CONFIG_COUNT"] = str(count + 1)
    variables[f"GIT_CONFIG_KEY_{count}"] = f"http.{parts.scheme}://{parts.netloc}/.extraHeader"
    variables[f"GIT_CONFIG_VALUE_{count}"] = f"Authorization: Basic {credentials}"
    return variables


def _config_count(environment) -> int:
    try:
        return int(environment.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        return 0
