"""Argument parsing of ``smile-bench`` and dispatch to the benchmark modules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from smile.cli.bench.data import _data_main
from smile.cli.bench.decode import _decode_main
from smile.cli.bench.motion import _motion_main
from smile.cli.bench.step import _step_main


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``smile-bench``."""
    parser = argparse.ArgumentParser(prog="smile-bench", description=sys.modules[__package__].__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("motion", help="SMILE overlay + masking throughput on one device")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--ratio", type=float, default=0.8)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    st = sub.add_parser("step", help="training-step clips/s, TFLOP/s and peak memory of an experiment")
    st.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=smile_k400_vitb_stage1 ...")
    st.add_argument("--steps", type=int, default=5)
    st.add_argument("--warmup", type=int, default=2)
    st.add_argument("--compile", action="store_true", help="torch.compile the student")
    st.add_argument("--json", type=Path, default=None)
    d = sub.add_parser("decode", help="ms per pretraining clip, per video and decoding backend")
    d.add_argument("videos", nargs="*", type=Path, help="video files (default: a generated 10 s 340x256 H.264 clip)")
    d.add_argument("--backends", nargs="+", default=["decord", "pyav"])
    d.add_argument("--clips", type=int, default=20, help="clips timed per video")
    d.add_argument("--frames", type=int, default=16)
    d.add_argument("--rate", type=int, default=4)
    d.add_argument("--json", type=Path, default=None)
    da = sub.add_parser("data", help="input pipeline per clip: dataset item, collate, device side; workers needed")
    da.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=demo or data=synthetic video=tiny")
    da.add_argument("--batches", type=int, default=4, help="timed batches (after one warm-up batch)")
    da.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    da.add_argument("--target-clips-per-s", type=float, default=400.0, help="training rate to feed (clips/s)")
    da.add_argument("--threads", type=int, default=0, help="torch CPU threads of the device side (0 = torch's default)")
    da.add_argument(
        "--baseline",
        action="store_true",
        help="video lists: also time the reference loader (decord + PIL, one clip per decode) on the same videos",
    )
    da.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "decode":
        return _decode_main(args)
    if args.command == "data":
        return _data_main(args)
    if args.command == "step":
        return _step_main(args)
    return _motion_main(args)
