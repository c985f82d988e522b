"""``smile-data``: data preparation commands.

    smile-data pack-objects --root OBJECTS --out PACKED [--list object_instances.txt]
                            [--max-side 128] [--skip-bad] [--workers N]

Subcommands register themselves in :data:`SUBCOMMANDS` (name -> registrar). A registrar adds its
arguments to the given sub-parser and returns the function that runs the command
(``args -> exit code``); add a new command with ``@subcommand("name", "help")``. Heavy imports
stay inside the runner, so ``smile-data --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main", "subcommand"]

Runner = Callable[[argparse.Namespace], int]
Registrar = Callable[[argparse.ArgumentParser], Runner]

SUBCOMMANDS: dict[str, tuple[str, Registrar]] = {}


def subcommand(name: str, help: str) -> Callable[[Registrar], Registrar]:
    """Decorator registering ``registrar(parser) -> runner`` as ``smile-data <name>``."""

    def register(registrar: Registrar) -> Registrar:
        if name in SUBCOMMANDS:
            raise ValueError(f"smile-data subcommand {name!r} registered twice")
        SUBCOMMANDS[name] = (help, registrar)
        return registrar

    return register


@subcommand("pack-objects", "validate RGBA object PNGs and pack them into one memory-mapped array")
def _pack_objects(parser: argparse.ArgumentParser) -> Runner:
    parser.add_argument("--root", required=True, help="folder of <category>/<name>.png RGBA objects")
    parser.add_argument("--out", required=True, help="output folder for objects.u8 + index.json")
    parser.add_argument(
        "--list",
        dest="list_file",
        default=None,
        help="subset: one <category>/<name>.png per line (object_instances.txt format)",
    )
    parser.add_argument("--max-side", type=int, default=128, help="side of the stored square sprites (default 128)")
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip (and count) files without alpha, fully transparent or unreadable ones",
    )
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default min(8, CPUs))")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def run(args: argparse.Namespace) -> int:
        from smile.data.objects import pack_objects

        report = pack_objects(
            args.root,
            args.out,
            list_file=args.list_file,
            max_side=args.max_side,
            skip_bad=args.skip_bad,
            workers=args.workers,
            progress=not args.no_progress,
        )
        print(report.summary())
        return 0

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smile-data", description="SMILE data preparation")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, registrar) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=registrar(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``smile-data``; returns the exit code (2 for usage errors, 1 for data errors)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (FileNotFoundError, ValueError, KeyError) as exc:  # ObjectFileError is a ValueError
        print(f"smile-data {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
