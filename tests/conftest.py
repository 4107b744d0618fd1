"""Fixtures shared by the test modules: copies of the sample target and a way to run the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE_TARGET = PROJECT / "fixtures" / "echoself"


@pytest.fixture
def sample_target(tmp_path: Path) -> Path:
    """A fresh copy of the sample echoself-shaped target."""
    target = tmp_path / "echoself"
    shutil.copytree(SAMPLE_TARGET, target)
    return target


def run_patcher(*arguments: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m patcher` as a user would, in a subprocess, and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "patcher", *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes under `folder`, to prove a command left the tree untouched."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(folder).parts
    }
