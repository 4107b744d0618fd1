"""Time `patcher apply --dry-run` against LibCST's own no-op codemod on the same model file.

Both run as fresh processes, alternating, on one copy of the target, so that
start-up and imports count as a user meets them. Usage:

    .venv/bin/python benchmarks/bench_apply.py [TARGET] [--runs N]

TARGET defaults to the sample target in fixtures/echoself; give a clone of
9cog/echoself to measure the real thing. Figures vary with the machine's load:
compare the ratio, which both commands share the noise of. The load average
printed with them shows how busy the machine was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE_TARGET = Path(__file__).resolve().parent.parent / "fixtures" / "echoself"


def time_command(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def find_model_file(target: Path) -> Path:
    for candidate in ("nanecho_model.py", "NanEcho/nanecho_model.py"):
        if (target / candidate).is_file():
            return target / candidate
    raise SystemExit(f"{target}: no nanecho_model.py or NanEcho/nanecho_model.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", type=Path, default=SAMPLE_TARGET)
    parser.add_argument("--runs", type=int, default=15)
    arguments = parser.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "target"
        shutil.copytree(arguments.target, copy, ignore=shutil.ignore_patterns(".git"))
        model = find_model_file(copy).relative_to(copy)
        patcher = [sys.executable, "-m", "patcher", "apply", str(copy), "--dry-run"]
        noop = [sys.executable, "-m", "libcst.tool", "codemod", "--no-format", "noop.NOOPCommand", str(model)]

        time_command(patcher, copy)
        time_command(noop, copy)
        patcher_times, noop_times = [], []
        for _ in range(arguments.runs):
            patcher_times.append(time_command(patcher, copy))
            noop_times.append(time_command(noop, copy))

    patcher_median = statistics.median(patcher_times)
    noop_median = statistics.median(noop_times)
    print(f"target: {arguments.target} ({model}), {arguments.runs} runs each, alternating")
    print(f"load average {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print(f"patcher apply --dry-run   median {patcher_median * 1000:7.1f} ms (min {min(patcher_times) * 1000:7.1f})")
    print(f"libcst codemod NOOP       median {noop_median * 1000:7.1f} ms (min {min(noop_times) * 1000:7.1f})")
    print(f"ratio patcher / noop      {patcher_median / noop_median:.2f} (of the minimums {min(patcher_times) / min(noop_times):.2f})")


if __name__ == "__main__":
    main()
