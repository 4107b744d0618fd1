"""Run the `run:` scripts of a workflow's steps locally, as a GitHub runner would, for the end-to-end tests.

Only what the training workflow's scripts use is supported: `${{ }}`
expressions made of context lookups, string literals, `==`, `!=`, `&&` and
`||`. They follow GitHub's rules: `||` and `&&` return an operand, string
comparison ignores case, and a missing value is null and renders as ''.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
TOKEN = re.compile(r"\s*(\|\||&&|==|!=|\(|\)|'(?:[^']|'')*'|[A-Za-z_][A-Za-z0-9_.-]*|\d+(?:\.\d+)?)")


def load_workflow(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def event_contexts(workflow: dict, event: str, inputs: dict[str, str] | None = None) -> dict:
    """The `github` and `inputs` contexts of an event; a dispatch fills in the inputs' defaults."""
    dispatched = {}
    if event == "workflow_dispatch":
        definitions = workflow["on"]["workflow_dispatch"]["inputs"]
        dispatched = {name: str(spec.get("default", "")) for name, spec in definitions.items()}
        dispatched.update(inputs or {})
    return {
        "github": {"event_name": event, "event": {"inputs": dict(dispatched)}},
        "inputs": dict(dispatched),
        "steps": {},
    }


def find_step(workflow: dict, name: str) -> tuple[dict, dict]:
    """Return the job and the step whose name or id is `name`."""
    for job in workflow["jobs"].values():
        for candidate in job["steps"]:
            if candidate.get("name") == name or candidate.get("id") == name:
                return job, candidate
    raise KeyError(f"no step named {name!r}")


def step_environment(workflow: dict, job: dict, definition: dict, contexts: dict) -> dict[str, str]:
    """The `env:` values of the workflow, the job and the step, rendered, later ones overriding earlier ones."""
    environment = {}
    for level in (workflow, job, definition):
        for key, value in (level.get("env") or {}).items():
            environment[key] = render(as_text(value), contexts)
    return environment


def render(script: str, contexts: dict) -> str:
    return EXPRESSION.sub(lambda match: as_text(evaluate(match.group(1), contexts)), script)


def run_step(workflow: dict, name: str, contexts: dict, workspace: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a step's script with `bash -e` in `workspace`; its GITHUB_OUTPUT lines land in `contexts['steps']`."""
    job, definition = find_step(workflow, name)
    script = workspace / f".step-{abs(hash(name))}.sh"
    script.write_text(render(definition["run"], contexts), encoding="utf-8")
    outputs = workspace / ".github_output"
    outputs.write_text("", encoding="utf-8")
    environment = {
        **os.environ,
        **step_environment(workflow, job, definition, contexts),
        "GITHUB_OUTPUT": str(outputs),
        # `python` in the script is the interpreter running the tests, with torch and numpy.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    completed = subprocess.run(["bash", "-e", str(script)], cwd=workspace, env=environment,
                               capture_output=True, text=True, timeout=timeout)
    if "id" in definition:
        pairs = [line.split("=", 1) for line in outputs.read_text(encoding="utf-8").splitlines() if "=" in line]
        contexts["steps"][definition["id"]] = {"outputs": dict(pairs)}
    return completed


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def truthy(value) -> bool:
    return value not in (None, "", False, 0)


def evaluate(expression: str, contexts: dict):
    tokens, position = [], 0
    while expression[position:].strip():
        match = TOKEN.match(expression, position)
        if match is None:
            raise ValueError(f"unsupported expression: {expression.strip()}")
        tokens.append(match.group(1))
        position = match.end()
    value, rest = _or(tokens, contexts)
    if rest:
        raise ValueError(f"unexpected {rest[0]!r} in {expression.strip()}")
    return value


def _or(tokens, contexts):
    value, tokens = _and(tokens, contexts)
    while tokens and tokens[0] == "||":
        right, tokens = _and(tokens[1:], contexts)
        value = value if truthy(value) else right
    return value, tokens


def _and(tokens, contexts):
    value, tokens = _comparison(tokens, contexts)
    while tokens and tokens[0] == "&&":
        right, tokens = _comparison(tokens[1:], contexts)
        value = right if truthy(value) else value
    return value, tokens


def _comparison(tokens, contexts):
    left, tokens = _primary(tokens, contexts)
    if tokens and tokens[0] in ("==", "!="):
        operator = tokens[0]
        right, tokens = _primary(tokens[1:], contexts)
        equal = as_text(left).lower() == as_text(right).lower()
        return equal if operator == "==" else not equal, tokens
    return left, tokens


def _primary(tokens, contexts):
    token, rest = tokens[0], tokens[1:]
    if token == "(":
        value, rest = _or(rest, contexts)
        return value, rest[1:]
    if token.startswith("'"):
        return token[1:-1].replace("''", "'"), rest
    if token in ("true", "false"):
        return token == "true", rest
    if token == "null":
        return None, rest
    if token[0].isdigit():
        return float(token), rest
    value = contexts
    for key in token.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value, rest
