"""``smile-data``: data preparation commands.

    smile-data pack-objects --root OBJECTS --out PACKED [--list object_instances.txt]
                            [--max-side 128] [--skip-bad] [--workers N]
    smile-data index --format {list,k400,ssv2,ucf101,hmdb51} --root VIDEOS [--annotations A]
                     [--split train] [--fold 1] --out LIST
    smile-data check --list LIST [--root R] [--workers N] [--backend auto] [--out report.tsv]
                     [--experiment NAME | --frames N --sampling-rate R]
    smile-data transcode --list LIST --out-dir DIR --out-list NEW_LIST [--root R] [--short-side 320]
                         [--gop 16] [--crf 23] [--workers N]
    smile-data check-ava --root ROOT [--frames DIR] [--annotations DIR] [--proposal-score 0.8]
                         [--expected-frames 27030] [--workers N] [--frame-source jpg|video]

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
    parser.add_argument("--max-side", type=int, default=256, help="side of the stored square sprites (default 256)")
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


@subcommand("index", "turn a dataset's published annotations into a '<path> <label>' list + classes.txt")
def _index(parser: argparse.ArgumentParser) -> Runner:
    parser.add_argument("--format", required=True, choices=("list", "k400", "ssv2", "ucf101", "hmdb51"))
    parser.add_argument("--root", required=True, help="folder of the videos (list format: base of relative paths)")
    parser.add_argument("--annotations", default=None, help="folder of the annotation files (default --root)")
    parser.add_argument("--split", default="train", help="train, val (alias validate) or test (default train)")
    parser.add_argument("--fold", type=int, default=1, help="official split 1-3 of ucf101/hmdb51 (default 1)")
    parser.add_argument("--out", required=True, help="list file to write; classes.txt goes beside it")

    def run(args: argparse.Namespace) -> int:
        from smile.data.indexes import index_dataset, write_list

        index = index_dataset(args.format, args.root, args.annotations, args.split, args.fold)
        out = write_list(index.records, args.out, index.classes)
        print(f"{args.format} {args.split}: {index.summary()}")
        print(f"wrote {out}" + (f" and {out.parent / 'classes.txt'}" if index.classes else ""))
        return 0

    return run


def experiment_span(name: str) -> tuple[int, int]:
    """``(video.num_frames, video.sampling_rate)`` of an experiment config, composed as ``train.py`` would."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    from smile.build import CONFIG_DIR

    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="train", overrides=[f"experiment={name}"])
    except ConfigCompositionException:
        known = ", ".join(sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml")))
        raise ValueError(
            f"--experiment {name}: no such experiment in {CONFIG_DIR}/experiment (one of: {known})"
        ) from None
    return int(cfg.video.num_frames), int(cfg.video.sampling_rate)


def _span(args: argparse.Namespace) -> int | None:
    """The clip span to flag short videos against, from ``--experiment`` or ``--frames``/``--sampling-rate``."""
    from smile.data.check import clip_span

    if args.experiment and (args.frames or args.sampling_rate):
        raise ValueError("give --experiment or --frames/--sampling-rate, not both")
    if args.experiment:
        return clip_span(*experiment_span(args.experiment))
    if (args.frames is None) != (args.sampling_rate is None):
        raise ValueError("--frames and --sampling-rate go together (span = (frames - 1) * rate + 1)")
    return None if args.frames is None else clip_span(args.frames, args.sampling_rate)


@subcommand("check", "decode the first and last frame of every video of a list; report unreadable and short ones")
def _check(parser: argparse.ArgumentParser) -> Runner:
    parser.add_argument("--list", dest="list_file", required=True, help="'<path> <label>' list or path,label CSV")
    parser.add_argument("--root", default=None, help="folder relative paths resolve against (default: the list's)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default CPU count; 1 = no pool)")
    parser.add_argument("--backend", default="auto", choices=("auto", "decord", "pyav"), help="decoder (default auto)")
    parser.add_argument(
        "--out", default=None, help="TSV report: path, status (ok/short/bad), reason, frames, fps, size, duration_s"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--experiment", default=None, help="flag videos shorter than this experiment's clip span")
    parser.add_argument("--frames", type=int, default=None, help="clip frames N (with --sampling-rate)")
    parser.add_argument("--sampling-rate", type=int, default=None, help="stride R: span = (N - 1) * R + 1 frames")

    def run(args: argparse.Namespace) -> int:
        from smile.data.check import check_list, write_report

        span = _span(args)
        report = check_list(args.list_file, args.root, args.backend, args.workers, not args.no_progress, span)
        print(report.summary())
        if args.out:
            print(f"wrote {write_report(report, args.out)}")
        return 1 if report.bad else 0

    return run


@subcommand("transcode", "rewrite a list's videos for fast training: short side 320, H.264, short GOP, no audio")
def _transcode(parser: argparse.ArgumentParser) -> Runner:
    parser.add_argument("--list", dest="list_file", required=True, help="'<path> <label>' list or path,label CSV")
    parser.add_argument("--root", default=None, help="folder relative paths resolve against (default: the list's)")
    parser.add_argument("--out-dir", required=True, help="folder of the new videos (the input layout is kept)")
    parser.add_argument("--out-list", required=True, help="the new list: same labels, new paths")
    parser.add_argument("--short-side", type=int, default=320, help="short side of the output (default 320)")
    parser.add_argument("--gop", type=int, default=16, help="largest keyframe interval in frames (default 16)")
    parser.add_argument("--crf", type=int, default=23, help="x264 quality, lower = better and larger (default 23)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default CPU count; 1 = no pool)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def run(args: argparse.Namespace) -> int:
        from smile.data.transcode import transcode_list

        results = transcode_list(
            args.list_file,
            args.out_dir,
            args.out_list,
            args.root,
            args.short_side,
            args.gop,
            args.crf,
            args.workers,
            not args.no_progress,
        )
        counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
        print(", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(results)} videos; wrote {args.out_list}")
        for r in results:
            if r.status == "failed":
                print(f"failed: {r.src}: {r.reason}", file=sys.stderr)
        return 1 if counts["failed"] else 0

    return run


@subcommand("check-ava", "read every AVA v2.2 annotation file and count every frame folder; report what is wrong")
def _check_ava(parser: argparse.ArgumentParser) -> Runner:
    parser.add_argument("--root", default=None, help="AVA root holding annotations/ and frames/")
    parser.add_argument("--frames", default=None, help="frame folders' root (default ROOT/frames)")
    parser.add_argument("--annotations", default=None, help="annotation files' folder (default ROOT/annotations)")
    parser.add_argument("--proposal-score", type=float, default=None, help="proposal score threshold (default 0.8)")
    parser.add_argument(
        "--expected-frames",
        type=int,
        default=None,
        help="frames of a complete folder, warn below (default 27030; 0: off)",
    )
    parser.add_argument("--workers", type=int, default=None, help="threads counting frames (default 8)")
    parser.add_argument(
        "--frame-source", default=None, help="jpg: frame folders (default) | video: FRAMES/<video_id>.* cut videos"
    )

    def run(args: argparse.Namespace) -> int:
        from smile.data.ava.check import check_ava

        given = {
            "proposal_score": args.proposal_score,
            "expected_frames": args.expected_frames,
            "workers": args.workers,
            "frame_source": args.frame_source,
        }
        options = {k: v for k, v in given.items() if v is not None}  # the defaults live in check_ava only
        report = check_ava(args.root, args.frames, args.annotations, **options)
        print(report.summary())
        return 0 if report.ok else 1

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
    except (FileNotFoundError, PermissionError, ValueError, KeyError) as exc:  # ObjectFileError is a ValueError
        print(f"smile-data {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
