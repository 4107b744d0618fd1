"""Write patcher/template_history.json from every committed version of the templates.

Run it after committing a change to templates/rat.py or templates/settings.py:

    .venv/bin/python scripts/record_template_history.py          # rewrite the file
    .venv/bin/python scripts/record_template_history.py --check  # exit 1 when it is out of date

Each earlier version contributes the digests of the definitions, config fields
and model_type check it would insert, so that `apply` updates what an earlier
patcher wrote instead of calling it a conflict.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from patcher import template_history  # noqa: E402
from patcher.template_source import load_template  # noqa: E402

HISTORY_FILE = PROJECT / "patcher" / "template_history.json"
TEMPLATE_FILES = ("templates/rat.py", "templates/settings.py")


def git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=PROJECT, check=True, capture_output=True, text=True).stdout


def template_commits() -> list[str]:
    return git("log", "--format=%H", "--", *TEMPLATE_FILES).split()


def version_parts(directory: Path) -> tuple[set[str], set[str]]:
    load_template.cache_clear()
    return template_history.version_parts(load_template(directory))


def earlier_parts() -> tuple[set[str], set[str]]:
    digests: set[str] = set()
    names: set[str] = set()
    for commit in template_commits():
        with tempfile.TemporaryDirectory() as folder:
            try:
                for path in TEMPLATE_FILES:
                    (Path(folder) / Path(path).name).write_text(git("show", f"{commit}:{path}"))
                version_digests, version_names = version_parts(Path(folder))
            except (subprocess.CalledProcessError, SyntaxError, StopIteration):
                continue
        digests |= version_digests
        names |= version_names

    current_digests, current_names = version_parts(PROJECT / "templates")
    return digests - current_digests, names - current_names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is out of date, writing nothing")
    arguments = parser.parse_args()

    digests, names = earlier_parts()
    text = json.dumps({"digests": sorted(digests), "names": sorted(names)}, indent=1) + "\n"
    if arguments.check:
        current = HISTORY_FILE.read_text() if HISTORY_FILE.exists() else ""
        if current != text:
            print(f"{HISTORY_FILE.relative_to(PROJECT)} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    HISTORY_FILE.write_text(text)
    print(f"wrote {HISTORY_FILE.relative_to(PROJECT)}: {len(digests)} digests, {len(names)} earlier names")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
