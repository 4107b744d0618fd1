"""The command line: `apply`, `check` and the options they share.

This module imports only the standard library and the patch modules, so that
`apply`, `apply --dry-run` and `check` stay fast. Torch, GitPython and PyGithub
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
    add_ship_arguments(apply)

    check = commands.add_parser("check", help="exit 0 when the patch is fully applied, 1 and the pending diff when not")
    add_target_arguments(check)

    verify = commands.add_parser(
        "verify", help="train the patched target for a few steps on this machine, in a temporary folder"
    )
    add_target_arguments(verify)
    verify.add_argument("--timeout", type=float, default=600, metavar="SECONDS", help="time limit for the training run (default: %(default)s)")
    verify.add_argument("--max-iters", type=int, default=8, metavar="N", help="training iterations (default: %(default)s)")
    verify.add_argument(
        "--data-dir", type=Path, default=Path("data/nanecho"), metavar="DIR",
        help="the target's dataset, relative to PATH; without train.bin, val.bin and metadata.json there, "
             "verify builds a small one (default: %(default)s)",
    )
    verify.add_argument(
        "--tokenizer", type=Path, metavar="FILE",
        help="tokenizer.json for the dataset verify builds, relative to PATH; "
             "default NanEcho/dte_tokenizer/tokenizer.json when present, else UTF-8 bytes",
    )
    verify.add_argument(
        "--python", default=sys.executable, metavar="PYTHON",
        help="Python interpreter that runs the target's training (default: the one running the patcher)",
    )
    verify.add_argument("--keep", action="store_true", help="keep the temporary folder, to rerun or inspect the training")
    return parser


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", type=Path, metavar="PATH", help="the clone of the echoself repository to patch")
    parser.add_argument(
        "--model-file",
        type=Path,
        metavar="FILE",
        help="the model file, relative to PATH; default nanecho_model.py, else NanEcho/nanecho_model.py",
    )
    parser.add_argument(
        "--workflow-file",
        type=Path,
        metavar="FILE",
        help="the training workflow, relative to PATH; default .github/workflows/netrain-cached.yml",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")


def add_ship_arguments(parser: argparse.ArgumentParser) -> None:
    ship = parser.add_argument_group("commit, push and dispatch")
    ship.add_argument("--push", action="store_true", help="commit the patched files on a branch and push it")
    ship.add_argument("--dispatch", action="store_true", help="after the push, dispatch the training workflow on the branch")
    ship.add_argument(
        "--branch", metavar="NAME",
        help="branch to commit on (default: rat/reservoir-transformer); required on a detached HEAD",
    )
    ship.add_argument("--remote", help="git remote to push to (default: origin)")
    ship.add_argument(
        "--input", action="append", default=[], metavar="KEY=VALUE",
        help="workflow input for the dispatch, repeatable; model_type=RAT unless given",
    )
    ship.add_argument("--repo", metavar="OWNER/NAME", help="GitHub repository; default read from the remote's URL")
    ship.add_argument("--api-url", metavar="URL", help="GitHub API base URL, for GitHub Enterprise")
    ship.add_argument("--watch", action="store_true", help="follow the dispatched run until it completes")
    ship.add_argument("--allow-dirty", action="store_true", help="allow uncommitted changes in the files the patch touches")


SHIP_ONLY_OPTIONS = ("branch", "remote", "repo", "api_url", "watch", "input", "allow_dirty")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command == "apply":
        check_ship_options(parser, arguments)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    if not arguments.verbose:
        # urllib3 warns on every retry of an unreachable API, and the command's own error reports what failed.
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        if arguments.command == "check":
            return run_check(arguments)
        if arguments.command == "verify":
            from patcher import verify

            return verify.run(arguments)
        return run_apply(arguments)
    except PatcherError as error:
        print(f"patcher: error: {error}", file=sys.stderr)
        return error.exit_status


def check_ship_options(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> None:
    """Reject ship options that would be silently ignored; argparse exits with status 2."""
    shipping = arguments.push or arguments.dispatch
    unused = [name for name in SHIP_ONLY_OPTIONS if getattr(arguments, name) not in (None, False, [])]
    if arguments.dispatch is False and arguments.watch:
        parser.error("--watch follows a dispatched run: add --dispatch")
    if unused and not shipping:
        options = ", ".join("--" + name.replace("_", "-") for name in unused)
        parser.error(f"{options} only apply with --push or --dispatch")
    if shipping and arguments.dry_run:
        parser.error("--dry-run writes nothing, so it cannot commit or push: drop --push/--dispatch to see the diff")


def options_from(arguments: argparse.Namespace, force: bool = False):
    from patcher.plan import Options

    return Options(
        target=arguments.target,
        force=force,
        model_file=arguments.model_file,
        workflow_file=arguments.workflow_file,
    )


def run_apply(arguments: argparse.Namespace) -> int:
    from patcher.plan import plan, plan_conflicts

    changes, planned = plan(options_from(arguments, force=arguments.force))
    conflicts = plan_conflicts(planned)
    if conflicts:
        for relative, part in conflicts:
            print(f"{relative}: {part.describe()}", file=sys.stderr)
        raise InputError(conflicts[0][0], "parts differ from what this patcher writes; nothing written. "
                         "Review them (apply --dry-run --force shows the overwrite), then rerun with --force")

    changes.validate()
    if arguments.dry_run:
        changes.write_diff(sys.stdout)
        report_parts(planned, dry_run=True)
        return EXIT_OK

    shipping = arguments.push or arguments.dispatch
    if shipping:
        # GitPython and PyGithub load only here, so that a plain apply stays cheap.
        from patcher import ship

        ship.preflight(arguments, changes, planned)

    changes.write()
    report_parts(planned, dry_run=False)
    if shipping:
        return ship.publish(arguments, changes, planned)
    return EXIT_OK


def run_check(arguments: argparse.Namespace) -> int:
    from patcher.plan import plan, plan_conflicts

    changes, planned = plan(options_from(arguments))
    conflicts = plan_conflicts(planned)
    for relative, part in conflicts:
        print(f"{relative}: {part.describe()}", file=sys.stderr)
    if conflicts:
        raise InputError(conflicts[0][0], "parts differ from what this patcher writes; run apply --force to replace them")

    changes.validate()
    if changes.pending:
        changes.write_diff(sys.stdout)
        report_pending_parts(planned)
        print(f"patcher: {len(changes.pending)} file(s) not fully patched; run `patcher apply`", file=sys.stderr)
        return EXIT_PENDING
    print("patcher: every part is applied")
    return EXIT_OK


def report_pending_parts(planned) -> None:
    """Print each part that apply would still change, and how: added, or updated from an older version."""
    for item in planned:
        for part in item.result.parts:
            if part.status is not Status.APPLIED:
                print(f"{item.change.relative}: {part.name}: would be {part.status.value}", file=sys.stderr)


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
