"""Follow a workflow run until it completes, printing its status and its jobs' progress as they change."""

from __future__ import annotations

import sys
import time

from patcher.errors import EXIT_OK, EXIT_OUTSIDE_FAILURE

EXIT_INTERRUPTED = 130
SUCCESSFUL_CONCLUSIONS = ("success",)


def watch(api, run_id: int, html_url: str, poll_seconds: float, stream=sys.stdout) -> int:
    """Poll the run until it completes; return 0 on success, 3 otherwise, 130 when the user pressed Ctrl-C.

    Ctrl-C only stops the polling: nothing is sent to the server, so the run goes on.
    """
    try:
        return _follow(api, run_id, poll_seconds, stream)
    except KeyboardInterrupt:
        print(f"patcher: stopped watching; run {run_id} goes on: {html_url}", file=stream, flush=True)
        return EXIT_INTERRUPTED


def _follow(api, run_id: int, poll_seconds: float, stream) -> int:
    last_line = None
    while True:
        run = api.run(run_id)
        jobs = api.jobs(run)
        line = progress_line(run.status, run.conclusion, jobs)
        if line != last_line:
            print(f"patcher: run {run_id}: {line}", file=stream, flush=True)
            last_line = line

        if run.status == "completed":
            return _exit_status(run, stream)
        time.sleep(poll_seconds)


def progress_line(status: str, conclusion: str | None, jobs: list) -> str:
    """Describe the run and its jobs in one line, such as "in_progress; jobs 1/2 done (train: in_progress)"."""
    text = status if status != "completed" else f"completed ({conclusion})"
    if not jobs:
        return text

    done = sum(1 for job in jobs if job.status == "completed")
    unfinished = [f"{job.name}: {job.status}" for job in jobs if job.status != "completed"]
    failed = [f"{job.name}: {job.conclusion}" for job in jobs
              if job.status == "completed" and job.conclusion not in SUCCESSFUL_CONCLUSIONS + ("skipped",)]
    text += f"; jobs {done}/{len(jobs)} done"
    if unfinished or failed:
        text += f" ({', '.join(unfinished + failed)})"
    return text


def _exit_status(run, stream) -> int:
    if run.conclusion in SUCCESSFUL_CONCLUSIONS:
        print(f"patcher: run {run.id} succeeded: {run.html_url}", file=stream, flush=True)
        return EXIT_OK
    print(f"patcher: error: run {run.id} concluded {run.conclusion}: {run.html_url}", file=sys.stderr, flush=True)
    return EXIT_OUTSIDE_FAILURE
