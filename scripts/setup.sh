#!/usr/bin/env bash
# Create .venv beside this project and install the patcher with everything its tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi

# torch is pinned here: an unpinned torch pulls a CUDA build of several GB.
.venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
