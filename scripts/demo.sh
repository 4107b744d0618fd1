#!/usr/bin/env bash
# Set up .venv, copy the sample target from fixtures/ to a temporary folder and patch it:
# a dry run showing the diff, the real apply, a check, and a second apply that changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
target="$(mktemp -d)/echoself"
cp -R fixtures/echoself "$target"

run() {
    echo
    echo "\$ patcher $*"
    .venv/bin/python -m patcher "$@"
}

run apply "$target" --dry-run
run apply "$target"
run check "$target"
run apply "$target"
echo
echo "The patched sample target is in $target"
