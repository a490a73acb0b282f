"""Command line: ``python -m autograder {release,grade,feedback,export,status,demo}``.

A thin layer: parse arguments, call the API, print the result.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    release = sub.add_parser("release", help="generate the student notebooks from the instructor sources")
    release.add_argument("--solutions", type=Path, default=Path("solutions"), help="instructor notebooks (default: solutions/)")
    release.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="where to write (default: notebooks/)")
    release.add_argument("assignments", nargs="*", help="only these assignments (default: all)")
    return parser


def _release(args: argparse.Namespace) -> int:
    from autograder.release import release_course

    result = release_course(
        solutions_dir=args.solutions, notebooks_dir=args.notebooks, assignments=args.assignments or None
    )
    for path in result.notebooks:
        print(f"{'written  ' if path in result.changed else 'unchanged'} {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"release": _release}
    try:
        return handlers[args.command](args)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
