"""The command line: `apply`, `check` and the options they share.

This module imports only the standard library and the patch modules, so that
`apply`, `apply --dry-run` and `check` stay fast; torch, GitPython and PyGithub
load only in the commands that need them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from patcher import __version__
from patcher.errors import EXIT_OK, EXIT_PENDING, InputError, PatcherError
from patcher.parts import Status

log = logging.getLogger("patcher")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patcher",
        description="Patch a clone of 9cog/echoself so it can train a Reservoir-Augmented Transformer (RAT).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    apply = commands.add_parser("apply", help="patch the target in place, or show the diff with --dry-run")
    add_target_arguments(apply)
    apply.add_argument("--dry-run", action="store_true", help="print the unified diff and write nothing")
    apply.add_argument("--force", action="store_true", help="overwrite parts that differ from what this version writes")

    check = commands.add_parser("check", help="exit 0 when the patch is fully applied, 1 and the pending diff when not")
    add_target_arguments(check)
    return parser


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", type=Path, metavar="PATH", help="the clone of the echoself repository to patch")
    parser.add_argument(
        "--model-file",
        type=Path,
        metavar="FILE",
        help="the model file, relative to PATH; default nanecho_model.py, else NanEcho/nanecho_model.py",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    try:
        if arguments.command == "check":
            return run_check(arguments)
        return run_apply(arguments)
    except PatcherError as error:
        print(f"patcher: error: {error}", file=sys.stderr)
        return error.exit_status


def options_from(arguments: argparse.Namespace, force: bool = False):
    from patcher.plan import Options

    return Options(target=arguments.target, force=force, model_file=arguments.model_file)


def run_apply(arguments: argparse.Namespace) -> int:
    from patcher.plan import plan

    changes, planned = plan(options_from(arguments, force=arguments.force))
    conflicts = [(item.change.relative, part) for item in planned for part in item.result.conflicts]
    if conflicts:
        for relative, part in conflicts:
            print(f"{relative}: {part.describe()}", file=sys.stderr)
        raise InputError(conflicts[0][0], "parts differ from what this patcher writes; nothing written. "
                         "Review them, then rerun with --force to overwrite them")

    changes.validate()
    if arguments.dry_run:
        changes.write_diff(sys.stdout)
        report_parts(planned, dry_run=True)
        return EXIT_OK

    changes.write()
    report_parts(planned, dry_run=False)
    return EXIT_OK


def run_check(arguments: argparse.Namespace) -> int:
    from patcher.plan import plan

    changes, planned = plan(options_from(arguments))
    conflicts = [(item.change.relative, part) for item in planned for part in item.result.conflicts]
    for relative, part in conflicts:
        print(f"{relative}: {part.describe()}", file=sys.stderr)
    if conflicts:
        raise InputError(conflicts[0][0], "parts differ from what this patcher writes; run apply --force to replace them")

    changes.validate()
    if changes.pending:
        changes.write_diff(sys.stdout)
        print(f"patcher: {len(changes.pending)} file(s) not fully patched; run `patcher apply`", file=sys.stderr)
        return EXIT_PENDING
    print("patcher: every part is applied")
    return EXIT_OK


def report_parts(planned, dry_run: bool) -> None:
    """Print, per file and part, what the command did or, in a dry run, would do."""
    stream = sys.stderr if dry_run else sys.stdout
    for item in planned:
        for part in item.result.parts:
            status = part.describe()
            if dry_run and part.status is not Status.APPLIED:
                status = f"{part.name}: would be {part.status.value}"
            print(f"{item.change.relative}: {status}", file=stream)
    if not any(item.change.changed for item in planned):
        print("patcher: nothing to do, every part is already applied", file=stream)
