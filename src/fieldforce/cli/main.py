"""The ``fieldforce`` command: one entry point, one subcommand per job.

Each subcommand lives in its own module of this package and provides
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``func(args) -> int`` (the exit code). User errors are
:class:`fieldforce.errors.FieldforceError`; they, and file-system errors (``OSError``:
a path that cannot be written), are printed as one sentence on stderr with exit code 2
(:func:`fieldforce.errors.report_errors`); warnings as one line each; an interruption
names how to continue. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from fieldforce.errors import report_errors
from fieldforce.version import __version__

#: what to say when a long job is interrupted (its outputs so far are kept)
RESUME_HINTS = {
    "train": "; rerun with --resume to continue from the last checkpoint",
    "md": "; rerun with --resume to continue from the last frame",
    "label": "; rerun the same command to continue (finished frames are kept)",
    "learn": "; rerun with --resume to continue (labelled frames are kept)",
}

# Subcommand modules, in the order `fieldforce --help` lists them.
SUBCOMMANDS = ("data", "label", "train", "committee", "eval", "md", "learn", "analyze", "field",
               "config", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fieldforce",
        description="Machine-learned electrostatics and electric-field response.",
    )
    parser.add_argument("--version", action="version", version=f"fieldforce {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full Python tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"fieldforce.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    formatter = warnings.formatwarning
    if not args.debug:  # warnings as one line each, like errors (the source line is noise)
        warnings.formatwarning = lambda message, category, *rest, **kw: (
            f"fieldforce {args.command}: warning: {message}\n")
    try:
        return report_errors(f"fieldforce {args.command}", lambda: args.func(args),
                             debug=args.debug,
                             interrupted=RESUME_HINTS.get(args.command, ""))
    finally:
        warnings.formatwarning = formatter


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
