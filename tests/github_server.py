"""A small GitHub-shaped HTTP server on 127.0.0.1 for the ship tests.

It serves the few REST API calls the patcher makes (workflow, dispatch, run
list, run, jobs) and serves bare git repositories over smart HTTP through
`git http-backend`, both behind the same token. Every request it receives is
recorded, without its credentials, so tests can check what was sent.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ruamel.yaml import YAML

# A run moves one stage further each time a client reads it.
RUN_STAGES = ("queued", "in_progress", "in_progress", "completed")
JOB_NAMES = ("prepare", "train")


@dataclass
class Run:
    id: int
    workflow_id: int
    branch: str
    event: str
    created_at: datetime
    conclusion: str
    reads: int = 0
    listed_after: int = 0

    @property
    def status(self) -> str:
        return RUN_STAGES[min(self.reads, len(RUN_STAGES) - 1)]


@dataclass
class Workflow:
    id: int
    file_name: str
    # None: read the declared inputs from the workflow file on the pushed branch, as GitHub does.
    declared_inputs: tuple[str, ...] | None = None


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: dict
    body: object
    authorized: bool


@dataclass
class ServerState:
    """The server's data and behaviour; tests set these fields before running the command."""

    token: str
    repository: str = "octo/echoself"
    git_root: Path | None = None
    workflows: dict[str, Workflow] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    requests: list[ReceivedRequest] = field(default_factory=list)
    # Older GitHub Enterprise Server: 400 when the dispatch requests the run's details.
    rejects_run_details: bool = False
    # A server that ignores return_run_details and returns 204.
    ignores_run_details: bool = False
    runs_per_dispatch: int = 1
    # How many run-list requests pass before a new run shows up in the list.
    list_delay: int = 1
    run_conclusion: str = "success"
    dispatch_status: int | None = None
    failing_gets: int = 0
    next_id: int = 9000

    def allocate_id(self) -> int:
        self.next_id += 1
        return self.next_id


class GitHubServer:
    """Start with `with GitHubServer(token) as server:`; `server.url` is the API base URL."""

    def __init__(self, token: str, git_root: Path | None = None, workflow_file: str = "netrain-cached.yml"):
        self.state = ServerState(token=token, git_root=git_root)
        self.state.workflows[workflow_file] = Workflow(id=161, file_name=workflow_file)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "GitHubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def git_url(self, repository: str | None = None) -> str:
        return f"{self.url}/{repository or self.state.repository}.git"

    def requests_to(self, method: str, path_pattern: str) -> list[ReceivedRequest]:
        pattern = re.compile(path_pattern)
        return [request for request in self.state.requests if request.method == method and pattern.search(request.path)]

    def _handler_class(self):
        server = self

        class Handler(GitHubHandler):
            github = server

        return Handler


class GitHubHandler(BaseHTTPRequestHandler):
    github: GitHubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._read_body()
        state = self.github.state
        is_git = ".git/" in parts.path
        authorized = self._git_authorized() if is_git else self._api_authorized()
        with self.github.lock:
            state.requests.append(ReceivedRequest(method, parts.path, parse_qs(parts.query), _json_or_raw(body, is_git), authorized))

        if is_git:
            self._serve_git(method, parts, body, authorized)
            return
        if not authorized:
            self._json(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
            return
        with self.github.lock:
            status, answer = route(self.github, method, parts.path, parse_qs(parts.query), _json_or_raw(body, False))
        self._json(status, answer)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _api_authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        return scheme.lower() in ("token", "bearer") and credential == self.github.state.token

    def _git_authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        _, _, password = base64.b64decode(encoded).decode(errors="replace").partition(":")
        return password == self.github.state.token

    def _json(self, status: int, answer) -> None:
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve_git(self, method: str, parts, body: bytes, authorized: bool) -> None:
        if not authorized:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        environment = {
            "GIT_PROJECT_ROOT": str(self.github.state.git_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "REQUEST_METHOD": method,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
            "PATH": "/usr/bin:/bin:/usr/local/bin",
        }
        if self.headers.get("Content-Encoding"):
            environment["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            environment["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        output = subprocess.run(["git", "http-backend"], input=body, env=environment, capture_output=True).stdout

        head, _, payload = output.partition(b"\r\n\r\n")
        headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
        status = next((int(value.split()[0]) for name, value in headers if name.lower() == "status"), 200)
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "status":
                self.send_header(name, value.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def route(server: GitHubServer, method: str, path: str, query: dict, body) -> tuple[int, object]:
    """Return the status and JSON body for one API request; the caller must hold the server's lock."""
    state = server.state
    prefix = f"/repos/{state.repository}"
    if method == "GET" and state.failing_gets > 0:
        state.failing_gets -= 1
        return 502, {"message": "Server Error"}
    if not path.startswith(prefix):
        return 404, {"message": "Not Found"}
    rest = path[len(prefix):]

    if method == "GET" and rest == "":
        return 200, {"id": 1, "full_name": state.repository, "url": server.url + prefix}
    match = re.fullmatch(r"/actions/workflows/([^/]+)(/dispatches|/runs)?", rest)
    if match:
        workflow = _find_workflow(state, match.group(1))
        if workflow is None:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest/actions/workflows"}
        if match.group(2) is None and method == "GET":
            return 200, _workflow_json(server, workflow)
        if match.group(2) == "/dispatches" and method == "POST":
            return _dispatch(server, workflow, body or {})
        if match.group(2) == "/runs" and method == "GET":
            return 200, _run_list(server, workflow, query)
    match = re.fullmatch(r"/actions/runs/(\d+)(/jobs)?", rest)
    if match and method == "GET":
        run = next((run for run in state.runs if run.id == int(match.group(1))), None)
        if run is None:
            return 404, {"message": "Not Found"}
        if match.group(2):
            return 200, _jobs_json(server, run)
        answer = _run_json(server, run)
        run.reads += 1
        return 200, answer
    return 404, {"message": "Not Found"}


def _find_workflow(state: ServerState, id_or_file: str) -> Workflow | None:
    for workflow in state.workflows.values():
        if id_or_file in (str(workflow.id), workflow.file_name):
            return workflow
    return None


def _dispatch(server: GitHubServer, workflow: Workflow, body: dict) -> tuple[int, object]:
    state = server.state
    if state.dispatch_status is not None:
        return state.dispatch_status, {"message": "Server Error"}
    if "return_run_details" in body and state.rejects_run_details:
        return 400, {"message": 'Invalid request.\n\n"return_run_details" is not a permitted key.'}

    ref = str(body.get("ref", ""))
    declared = workflow.declared_inputs
    if declared is None:
        workflow_text = _file_at_branch(state, ref, f".github/workflows/{workflow.file_name}")
        if workflow_text is None:
            return 422, {"message": f"No ref found for: {ref}"}
        trigger = (YAML(typ="safe", pure=True).load(workflow_text) or {}).get("on") or {}
        if "workflow_dispatch" not in trigger:
            return 422, {"message": "Workflow does not have 'workflow_dispatch' trigger"}
        declared = tuple(((trigger.get("workflow_dispatch") or {}).get("inputs") or {}).keys())
    unexpected = [name for name in (body.get("inputs") or {}) if name not in declared]
    if unexpected:
        return 422, {"message": f"Unexpected inputs provided: {json.dumps(unexpected)}"}

    runs = []
    for _ in range(state.runs_per_dispatch):
        run = Run(state.allocate_id(), workflow.id, ref, "workflow_dispatch", datetime.now(timezone.utc),
                  state.run_conclusion, listed_after=state.list_delay)
        state.runs.append(run)
        runs.append(run)
    if body.get("return_run_details") and not state.ignores_run_details:
        run = runs[0]
        return 200, {"workflow_run_id": run.id, "run_url": _run_url(server, run), "html_url": _run_html_url(server, run)}
    return 204, None


def _file_at_branch(state: ServerState, branch: str, path: str) -> str | None:
    if state.git_root is None:
        return None
    bare = state.git_root / f"{state.repository}.git"
    result = subprocess.run(["git", "--git-dir", str(bare), "show", f"refs/heads/{branch}:{path}"],
                            capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def _run_list(server: GitHubServer, workflow: Workflow, query: dict) -> dict:
    def matches(run: Run) -> bool:
        if run.workflow_id != workflow.id:
            return False
        if "branch" in query and run.branch != query["branch"][0]:
            return False
        if "event" in query and run.event != query["event"][0]:
            return False
        if "created" in query:
            since = datetime.strptime(query["created"][0].removeprefix(">="), "%Y-%m-%dT%H:%M:%SZ")
            if run.created_at < since.replace(tzinfo=timezone.utc):
                return False
        return True

    visible = []
    for run in server.state.runs:
        if matches(run):
            if run.listed_after > 0:
                run.listed_after -= 1
            else:
                visible.append(run)
    return {"total_count": len(visible), "workflow_runs": [_run_json(server, run) for run in reversed(visible)]}


def _workflow_json(server: GitHubServer, workflow: Workflow) -> dict:
    prefix = f"/repos/{server.state.repository}"
    return {
        "id": workflow.id,
        "name": "Train",
        "path": f".github/workflows/{workflow.file_name}",
        "state": "active",
        "url": f"{server.url}{prefix}/actions/workflows/{workflow.id}",
        "html_url": f"{server.url}/{server.state.repository}/actions/workflows/{workflow.file_name}",
    }


def _run_url(server: GitHubServer, run: Run) -> str:
    return f"{server.url}/repos/{server.state.repository}/actions/runs/{run.id}"


def _run_html_url(server: GitHubServer, run: Run) -> str:
    return f"{server.url}/{server.state.repository}/actions/runs/{run.id}"


def _run_json(server: GitHubServer, run: Run) -> dict:
    status = run.status
    return {
        "id": run.id,
        "name": "Train",
        "head_branch": run.branch,
        "event": run.event,
        "status": status,
        "conclusion": run.conclusion if status == "completed" else None,
        "workflow_id": run.workflow_id,
        "created_at": run.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "url": _run_url(server, run),
        "html_url": _run_html_url(server, run),
        "jobs_url": _run_url(server, run) + "/jobs",
    }


def _jobs_json(server: GitHubServer, run: Run) -> dict:
    # Clients read the jobs after the run, so the jobs match the stage that read reported.
    stage = min(max(run.reads - 1, 0), len(RUN_STAGES) - 1)
    # Stage 0: both queued; 1: the first job runs; 2: the first is done, the second runs; 3: both done.
    statuses = {0: ("queued", "queued"), 1: ("in_progress", "queued"), 2: ("completed", "in_progress")}.get(
        stage, ("completed", "completed"))
    conclusions = ("success", run.conclusion)
    jobs = []
    for index, (name, status) in enumerate(zip(JOB_NAMES, statuses)):
        jobs.append({
            "id": run.id * 10 + index,
            "run_id": run.id,
            "name": name,
            "status": status,
            "conclusion": conclusions[index] if status == "completed" else None,
            "url": f"{_run_url(server, run)}/jobs/{run.id * 10 + index}",
            "html_url": f"{_run_html_url(server, run)}/job/{run.id * 10 + index}",
        })
    return {"total_count": len(jobs), "jobs": jobs}


def _json_or_raw(body: bytes, is_git: bool):
    if not body or is_git:
        return None if not body else f"<{len(body)} bytes of git data>"
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")
